"""Defects a review found in the console, each shown by the smallest exact case (a console over a fake link)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from console_pilot import fleet_rows, iso, js, offline_console, rows, topic, until
from textual import events

from console.alerting import Alerting
from console.alerts import AlertDesk, AlertKind
from console.app import ConsoleApp
from console.board import Board
from console.forms import FormScreen
from console.screens import PickScreen

T1 = "0a0a0a0a-0000-4000-8000-00000000000a"
T2 = "0b0b0b0b-0000-4000-8000-00000000000b"
NOW = datetime.now(UTC)


def status(zone: str = "Nord", state: str = "online") -> bytes:
    """A status."""
    return js({"state": state, "boot": 1, "zone": zone, "ts": iso(NOW)})


def waiting(ticket: str, opened: datetime) -> bytes:
    """A waiting help/state."""
    return js({"ticket": ticket, "state": "waiting", "since": iso(opened), "opened": iso(opened), "agent": None,
               "overdue": False})


def door(active: bool) -> bytes:
    """The cabinet door's fault."""
    return js({"active": active, "code": "open", "severity": "critical", "since": iso(NOW), "message": "door",
               "parker_impact": "none"})


def run(scenario: Callable[[ConsoleApp, Any], Awaitable[None]], **options: Any) -> ConsoleApp:
    """``scenario(app, pilot)`` in a console over a fake link."""
    app = offline_console(**options)

    async def main() -> None:
        async with app.run_test(size=(200, 55)) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())
    return app


def test_arrows_and_enter_in_an_empty_queue_then_a_call_do_not_crash() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        app.query_one("#queue").focus()
        await pilot.press("up", "enter", "up")
        app.intake.put(topic("S1", "status"), status(), True)
        app.intake.put(topic("S1", "help/state"), waiting(T1, NOW), True)
        await until(pilot, lambda: rows(app, "#queue"), "the call")
        await pilot.press("enter", "up", "down")
        assert app.selected == ("S1", T1) and app.is_running

    run(scenario)


def test_a_fault_raised_and_cleared_in_one_batch_does_not_ring() -> None:
    board = Board("anna")
    alerting = Alerting(AlertDesk(), board, None)
    signals = board.apply(topic("S1", "fault/door"), door(True), False, NOW)
    signals += board.apply(topic("S1", "fault/door"), door(False), False, NOW)
    signals += board.apply(topic("S2", "status"), js({"state": "lost", "boot": 1}), False, NOW)
    signals += board.apply(topic("S2", "status"), status(), False, NOW)
    for signal in signals:
        alerting.desk.add(signal)
    alerting.resolve_over(signals)
    notices = alerting.due([], NOW + timedelta(seconds=5))
    assert [(n.kind, n.rings) for n in notices] == [(AlertKind.STATION_LOST, False), (AlertKind.CRITICAL_FAULT, False)]
    assert alerting.desk.unacknowledged == 0


def test_a_call_offered_is_selected_where_the_cursor_is_and_f3_accepts_it() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        app.intake.put(topic("S1", "help/state"), waiting(T1, NOW - timedelta(seconds=30)), True)
        await until(pilot, lambda: app.selected == ("S1", T1), "the oldest call selected")
        app.query_one("#queue").focus()
        app.intake.put(topic("S2", "help/state"), waiting(T2, NOW), True)  # one batch: state and the offer
        app.intake.put(topic("S2", "help/request"), js({"ticket": T2, "opened": iso(NOW)}), False)
        await until(pilot, lambda: app.selected == ("S2", T2), "the offered call selected")
        await until(pilot, lambda: app.query_one("#queue").cursor_row == 1, "the cursor on it")
        await pilot.press("f3")
        assert app.link.sent[-1] == ("to_parker", "S2", T2, "accept", "")  # type: ignore[attr-defined]

    run(scenario)


def test_a_call_offered_while_the_agent_types_leaves_the_keys_in_the_chat() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        app.intake.put(topic("S1", "help/state"), waiting(T1, NOW - timedelta(seconds=30)), True)
        await until(pilot, lambda: app.selected == ("S1", T1), "a call")
        await pilot.press("f3")  # accepting: the station has not connected the agent yet
        await pilot.press("h", "i")
        app.intake.put(topic("S2", "help/state"), waiting(T2, NOW), True)
        app.intake.put(topic("S2", "help/request"), js({"ticket": T2, "opened": iso(NOW)}), False)
        await until(pilot, lambda: len(rows(app, "#queue")) == 2, "the second call")
        await pilot.press("space", "y", "o", "u")
        assert app.focused is app.query_one("#chat") and app.query_one("#chat").value == "hi you"
        assert app.selected == ("S1", T1)

    run(scenario)


def test_the_chat_only_sends_once_the_call_is_the_agents() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        app.intake.put(topic("S1", "help/state"), waiting(T1, NOW), True)
        await until(pilot, lambda: app.selected == ("S1", T1), "a call")
        await pilot.press("f2", "h", "i", "enter")
        assert app.link.sent == [] and app.query_one("#chat").value == "hi"  # type: ignore[attr-defined]

    run(scenario)


def test_a_click_selects_the_row_clicked_and_the_view_follows_the_cursors_station() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        for i in range(60):
            app.intake.put(topic(f"S{i:02d}", "status"), status(), True)
        await until(pilot, lambda: app.fleet.total == 60, "the fleet")
        await pilot.click("#fleet", offset=(5, 3))  # the border is line 0: line 3 is the third row
        assert app.query_one("#fleet").station == "S02"
        await pilot.press("end")
        await until(pilot, lambda: fleet_rows(app)[-1][0] == "S59", "the last rows in view")
        app.intake.put(topic("S59", "status"), js({"state": "lost", "boot": 1}), False)  # it moves to the top
        await until(pilot, lambda: fleet_rows(app)[0][0] == "S59", "the view following S59 to the top")
        assert app.query_one("#fleet").station == "S59"

    run(scenario)


def test_the_search_takes_stations_that_arrive_later_and_ignores_dashes() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        app.intake.put(topic("ST-3", "status"), status(), True)
        await until(pilot, lambda: app.fleet.total == 1, "ST-3")
        await pilot.press("ctrl+f", "s", "t", "3")
        await until(pilot, lambda: [r[0] for r in fleet_rows(app)] == ["ST-3"], "the search")
        app.intake.put(topic("ST-30", "status"), status(), True)
        app.intake.put(topic("ST-4", "status"), status(), True)
        await until(pilot, lambda: [r[0] for r in fleet_rows(app)] == ["ST-3", "ST-30"], "ST-30 found too")

    run(scenario)


def test_out_of_service_without_a_reason_is_caught_in_the_form() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        app.intake.put(topic("S1", "status"), status(), True)
        await until(pilot, lambda: app.query_one("#fleet").station == "S1", "S1")
        app.query_one("#fleet").focus()
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, PickScreen), "the commands")
        await pilot.press("enter")
        form = await until(pilot, lambda: isinstance(app.screen, FormScreen) and app.screen, "the mode form")
        form.query_one("#field-mode").value = "out_of_service"
        await pilot.press("ctrl+y")
        assert isinstance(app.screen, FormScreen) and app.link.sent == []  # type: ignore[attr-defined]
        assert "needs a reason" in str(form.query_one("#problem").render())

    run(scenario)


def test_messages_arriving_while_the_console_closes_are_harmless() -> None:
    app = run(lambda app, pilot: until(pilot, lambda: app.is_running, "the console"))
    app.intake.put(topic("S1", "status"), status(), True)
    app._drain()  # a batch timer that was already due runs after the widgets are gone


def test_a_dialog_confirmed_twice_before_it_closes_sends_once_and_the_console_runs_on() -> None:
    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        app.intake.put(topic("S1", "status"), status(), True)
        await until(pilot, lambda: app.query_one("#fleet").station == "S1", "S1")
        app.query_one("#fleet").focus()
        for key, closing in (("f8", "ctrl+y"), ("f9", "enter"), ("f1", "escape")):
            await pilot.press(key)
            dialog = await until(pilot, lambda: len(app.screen_stack) == 2 and app.screen, f"the dialog of {key}")
            if isinstance(dialog, PickScreen):
                dialog.query_one("#pick").highlighted = 4  # doctor: sent at once, no form
            handled: list[bool] = []
            for _ in range(3):  # keys typed faster than the console handles them
                app.post_message(events.Key(closing, None))
            app.relay(handled.append, True)  # handled in order: after it, so are the keys
            await until(pilot, lambda: handled, "the keys handled")
            assert len(app.screen_stack) == 1, "the dialog closed once, the console's screen left"
        await pilot.press("f1", "escape")  # round trips: every key forwarded to a screen is handled before the end
        assert app.is_running and len(app.screen_stack) == 1
        assert [s[2] for s in app.link.sent] == ["notice", "doctor"]  # type: ignore[attr-defined]

    run(scenario)
