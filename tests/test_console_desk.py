"""The console as agents and crews use it: safe keys, confirmations, the fleet worst first, queue work, crew commands."""
from __future__ import annotations

import asyncio
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from console_pilot import FakeStation, console, fleet_rows, iso, js, rows, topic, type_burst, until

from console.alerts import AlertDesk, AlertSettings, Notice
from console.app import ConsoleApp
from console.forms import ConfirmScreen, FormScreen
from console.screens import PickScreen

pytestmark = pytest.mark.slow

TICKET_A = "0a0a0a0a-0000-4000-8000-00000000000a"
TICKET_B = "0b0b0b0b-0000-4000-8000-00000000000b"
WRITES = ("paystation/v1/+/cmd/#", "paystation/v1/+/help/to-parker")


def status(zone: str, opened: datetime, state: str = "online") -> bytes:
    """A retained status."""
    return js({"state": state, "boot": 3, "firmware": "0.9.0", "zone": zone, "ts": iso(opened)})


def fault(code: str, severity: str, impact: str = "none", since: datetime | None = None) -> bytes:
    """A retained active fault."""
    return js({"active": True, "code": code, "severity": severity, "since": iso(since or datetime.now(UTC)),
               "message": f"{code} message", "parker_impact": impact})


def waiting(ticket: str, station: str, opened: datetime, plate: str) -> bytes:
    """A waiting help/state."""
    return js({"ticket": ticket, "state": "waiting", "since": iso(opened), "opened": iso(opened), "agent": None,
               "overdue": False, "context": {"station": station, "zone": "Nord", "screen": "plate", "plate": plate}})


def small_fleet(station: FakeStation, now: datetime) -> None:
    """Six stations, one of each standing, and two waiting calls (ST-5's older)."""
    station.publish(topic("ST-1", "status"), status("Nord", now), retain=True)
    station.publish(topic("ST-2", "status"), status("Süd", now), retain=True)
    station.publish(topic("ST-2", "fault/card_terminal"), fault("unreachable", "critical", "no_card_payment",
                                                                now - timedelta(minutes=3)), retain=True)
    station.publish(topic("ST-3", "status"), status("Nord", now), retain=True)
    station.publish(topic("ST-3", "fault/operator"), fault("out_of_service", "info", "out_of_service"), retain=True)
    station.publish(topic("ST-4", "status"), status("Nord", now), retain=True)
    station.publish(topic("ST-4", "fault/outbox"), fault("backlog", "warning"), retain=True)
    station.publish(topic("ST-5", "status"), status("Süd", now), retain=True)
    station.publish(topic("ST-5", "help/state"), waiting(TICKET_A, "ST-5", now - timedelta(seconds=90), "B-XY 77"),
                    retain=True)
    station.publish(topic("ST-1", "help/state"), waiting(TICKET_B, "ST-1", now - timedelta(seconds=30), "M-AB 1"),
                    retain=True)
    station.publish(topic("ST-6", "status"), status("Nord", now), retain=True)
    station.publish(topic("ST-6", "status"), js({"state": "lost", "boot": 3}), retain=True)


def run(port: int, scenario: Any, agent: str = "anna") -> None:
    """Run ``scenario(app, pilot)`` in a console on the test broker, once its fleet is loaded."""
    async def main() -> None:
        app = console(port, agent)
        async with app.run_test(size=(200, 55)) as pilot:
            await until(pilot, lambda: not app.loading, "the fleet to load")
            await scenario(app, pilot)

    asyncio.run(main())


def test_letters_typed_in_any_pane_never_act(broker) -> None:
    station = FakeStation(broker.port)
    station.subscribe(*WRITES)
    small_fleet(station, datetime.now(UTC))

    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        await until(pilot, lambda: len(rows(app, "#queue")) == 2, "the queue")
        typing = string.ascii_lowercase + string.digits + " .,?!/-"
        for pane in ("fleet", "queue", "search", "zone", "state", "severity", "chat"):
            app.query_one(f"#{pane}").focus()
            await pilot.pause()
            await type_burst(app, pilot, typing + "\r\t ")
            assert app.screen is app.screen_stack[0], f"a dialog opened from typing in the {pane} pane"
            await pilot.press("escape")
        # A deliberate command last: the console's messages arrive in order, so anything typing sent is before it.
        app.query_one("#search").value = ""
        app.query_one("#fleet").focus()
        target = await until(pilot, lambda: app.query_one("#fleet").station, "a station under the cursor")
        await pilot.press("f8")
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the notice form")
        await pilot.press("ctrl+y")
        await until(pilot, lambda: station.messages, "the deliberate notice")
        assert [m.topic for m in station.messages] == [f"paystation/v1/{target}/cmd/notice"]

    try:
        run(broker.port, scenario)
    finally:
        station.close()


def test_every_station_changing_action_asks_for_ctrl_y(broker) -> None:
    station = FakeStation(broker.port)
    station.subscribe(*WRITES)
    small_fleet(station, datetime.now(UTC))

    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        await until(pilot, lambda: app.selected is not None, "a selected ticket")
        app.query_one("#queue").focus()
        for key in ("f7", "f6", "f8", "f5"):  # end journey, courtesy, notice, resolve
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen | FormScreen), f"the dialog of {key}")
            for typed in "yes\r\r\r":  # enter cancels a question (Cancel has the focus) and never sends a form
                await pilot.press("enter" if typed == "\r" else typed)
            for _ in range(3):  # a form's selection list may be open over it
                if isinstance(app.screen, ConfirmScreen | FormScreen):
                    await pilot.press("escape")

        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the end-journey question")
        await pilot.press("ctrl+y")
        [cancel] = await until(pilot, lambda: station.on(topic("ST-5", "cmd/journey/cancel")), "the command")
        assert cancel.json() == {"reason": "ended by agent anna", "ticket": TICKET_A}
        assert station.messages == [cancel]  # in order: nothing the dialogs above were typed at came before it

        await pilot.press("f8")  # an empty notice clears it, once confirmed
        await until(pilot, lambda: isinstance(app.screen, FormScreen), "the notice form")
        await pilot.press("ctrl+y")
        [notice] = await until(pilot, lambda: station.on(topic("ST-5", "cmd/notice")), "the notice command")
        assert notice.json() == {"text": None}

    try:
        run(broker.port, scenario)
    finally:
        station.close()


def test_the_fleet_worst_first_with_counts_filters_search_and_detail(broker) -> None:
    station = FakeStation(broker.port)
    now = datetime.now(UTC)
    small_fleet(station, now)

    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        station.publish(topic("ST-2", "telemetry"), js({"ts": iso(now), "uptime_s": 3600, "outbox_depth": 2,
                                                        "link": {"state": "connected"}, "terminal": "unreachable",
                                                        "screen": "welcome", "cpu_temp_c": 48.5,
                                                        "disk_free_bytes": 12_300_000_000}))
        await until(pilot, lambda: app.fleet.total == 6 and app.board.station("ST-2").telemetry, "the fleet")
        assert [row[0] for row in fleet_rows(app)] == ["ST-6", "ST-2", "ST-3", "ST-4", "ST-1", "ST-5"]
        title = str(app.query_one("#fleet").border_title)
        assert title == "Fleet 6 · 1 lost · 1 critical · 1 out of service · 1 warning", title

        app.query_one("#fleet").focus()
        await pilot.press("down")  # ST-2, the critical one
        await until(pilot, lambda: app.query_one("#fleet").station == "ST-2", "the cursor on ST-2")
        detail = app.query_one("#station").render().plain
        assert "card_terminal/unreachable (critical) since" in detail and "(3 min)" in detail
        assert "parkers: no_card_payment" in detail and "unreachable message" in detail
        assert "terminal unreachable, screen welcome, link connected, outbox 2, up 1:00:00, cpu 48.5 °C, " \
               "disk free 12.3 GB" in detail

        app.query_one("#state").value = app.query_one("#state").value.__class__("out of service")
        await until(pilot, lambda: [r[0] for r in fleet_rows(app)] == ["ST-3"], "the out-of-service filter")
        assert str(app.query_one("#fleet").border_title).startswith("Fleet 1 of 6 · ")
        app.query_one("#state").value = app.query_one("#state").value.__class__("all states")
        app.query_one("#zone").value = "Süd"
        await until(pilot, lambda: [r[0] for r in fleet_rows(app)] == ["ST-2", "ST-5"], "the zone filter")
        app.query_one("#zone").clear()

        await pilot.press("ctrl+f")
        assert app.focused is app.query_one("#search")
        for key in "xy77":
            await pilot.press(key)
        await until(pilot, lambda: [r[0] for r in fleet_rows(app)] == ["ST-5"], "the plate search")
        app.query_one("#search").value = "st-4"
        await until(pilot, lambda: [r[0] for r in fleet_rows(app)] == ["ST-4"], "the station search")

    try:
        run(broker.port, scenario)
    finally:
        station.close()


def test_queue_work_next_call_filters_and_the_closed_ticket_leaving(broker) -> None:
    station = FakeStation(broker.port)
    now = datetime.now(UTC)
    small_fleet(station, now)

    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        await until(pilot, lambda: len(rows(app, "#queue")) == 2, "the queue")
        assert [r[0] for r in rows(app, "#queue")] == ["ST-5", "ST-1"]  # oldest first
        assert app.selected == ("ST-5", TICKET_A)
        await pilot.press("ctrl+o")  # offered to me: none was
        await until(pilot, lambda: rows(app, "#queue") == [], "the offered filter")
        await pilot.press("ctrl+o", "ctrl+o")
        await until(pilot, lambda: len(rows(app, "#queue")) == 2, "all again")

        connected_at = now - timedelta(seconds=60)  # ST-5's parker waited 30 s, then anna answered
        station.publish(topic("ST-5", "help/state"), js({
            "ticket": TICKET_A, "state": "connected", "since": iso(connected_at),
            "opened": iso(now - timedelta(seconds=90)), "agent": "anna", "overdue": False}), retain=True)
        await until(pilot, lambda: rows(app, "#queue")[0][2] == "connected to you", "the call connected")
        assert rows(app, "#queue")[0][1] == "00:30"  # the waiting time stopped at the answer

        station.publish(topic("ST-5", "help/state"), js({
            "ticket": TICKET_A, "state": "closed", "since": iso(now), "opened": iso(now - timedelta(seconds=90)),
            "agent": "anna", "outcome": "solved", "overdue": False}), retain=True)
        await until(pilot, lambda: app.selected == ("ST-1", TICKET_B), "the next waiting call in the pane")
        assert "ST-1" in app.query_one("#details").render().plain

        app.query_one("#fleet").focus()
        assert app.query_one("#fleet").station != "ST-1"  # a call closing on its own moved nothing of the agent's
        await pilot.press("f4")
        assert app.selected == ("ST-1", TICKET_B) and app.focused is app.query_one("#queue")
        assert app.query_one("#fleet").station == "ST-1"  # the fleet follows the call the agent asked for

    try:
        run(broker.port, scenario)
    finally:
        station.close()


def test_crew_commands_with_the_stations_reply(broker) -> None:
    station = FakeStation(broker.port)
    station.subscribe("paystation/v1/+/cmd/#")
    small_fleet(station, datetime.now(UTC))

    async def scenario(app: ConsoleApp, pilot: Any) -> None:
        await until(pilot, lambda: app.fleet.total == 6, "the fleet")
        app.query_one("#fleet").focus()
        await pilot.press("down")
        await until(pilot, lambda: app.query_one("#fleet").station == "ST-2", "ST-2 selected")

        await pilot.press("f9")
        picker = await until(pilot, lambda: isinstance(app.screen, PickScreen) and app.screen, "the command list")
        picker.query_one("#pick").highlighted = 4  # doctor: no confirmation, it changes nothing
        await pilot.press("enter")
        [doctor] = await until(pilot, lambda: station.on(topic("ST-2", "cmd/doctor")), "the doctor command")
        station.publish(station.response_topics[doctor.correlation], js({
            "ok": True, "code": "ok", "detail": "terminal failed", "healthy": False,
            "findings": [{"part": "database", "health": "ok", "detail": "fine"},
                         {"part": "terminal", "health": "fail", "detail": "no answer"}]}),
            correlation=doctor.correlation)
        await until(pilot, lambda: "doctor: terminal failed; NOT healthy: database ok, terminal fail (no answer)"
                    in app.query_one("#station").render().plain, "the doctor's findings in the station pane")

        await pilot.press("f9")
        picker = await until(pilot, lambda: isinstance(app.screen, PickScreen) and app.screen, "the command list")
        picker.query_one("#pick").highlighted = 0  # mode
        await pilot.press("enter")
        form = await until(pilot, lambda: isinstance(app.screen, FormScreen) and app.screen, "the mode form")
        form.query_one("#field-reason").value = "crew on site"
        await pilot.press("ctrl+y")
        [mode] = await until(pilot, lambda: station.on(topic("ST-2", "cmd/mode")), "the mode command")
        assert mode.json() == {"mode": "service", "reason": "crew on site"}
        station.publish(station.response_topics[mode.correlation], js({"ok": False, "code": "busy",
                                                                      "detail": "a parker is paying"}),
                        correlation=mode.correlation)
        await until(pilot, lambda: "mode: refused: busy: a parker is paying" in app.query_one("#station").render().plain,
                    "the refusal")

        await pilot.press("f9")
        picker = await until(pilot, lambda: isinstance(app.screen, PickScreen) and app.screen, "the command list")
        picker.query_one("#pick").highlighted = 1  # restart: confirmed first
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the restart question")
        await pilot.press("enter")  # Cancel has the focus
        await pilot.press("f9")  # then doctor, whose arrival means anything sent before it has arrived too
        picker = await until(pilot, lambda: isinstance(app.screen, PickScreen) and app.screen, "the command list")
        picker.query_one("#pick").highlighted = 4
        await pilot.press("enter")
        await until(pilot, lambda: len(station.on(topic("ST-2", "cmd/doctor"))) == 2, "the second doctor")
        assert not station.on(topic("ST-2", "cmd/restart"))

    try:
        run(broker.port, scenario)
    finally:
        station.close()


class Rings:
    """A console's bell and desktop notifications, counted."""

    def __init__(self) -> None:
        self.bells = 0
        self.notices: list[Notice] = []

    def watch(self, app: ConsoleApp) -> ConsoleApp:
        """Count the app's bell."""
        app.bell = self._bell  # type: ignore[method-assign]
        return app

    def _bell(self) -> None:
        self.bells += 1

    def ring(self, notices: Any) -> None:
        """The Notifier port."""
        self.notices.extend(n for n in notices if n.rings)


def test_an_unanswered_call_escalates_to_every_console_and_alerts_are_acknowledged(broker) -> None:
    station = FakeStation(broker.port)
    now = datetime.now(UTC)
    station.publish(topic("ST-1", "status"), status("Nord", now), retain=True)
    settings = AlertSettings(coalesce_s=0.5, escalate_after_s=2)

    async def main() -> None:
        rings = {name: Rings() for name in ("anna", "ben")}
        anna, ben = (rings[name].watch(console(broker.port, name, desk=AlertDesk(settings), notifier=rings[name]))
                     for name in ("anna", "ben"))
        async with anna.run_test(size=(200, 55)) as pa, ben.run_test(size=(200, 55)) as pb:
            for app, pilot in ((anna, pa), (ben, pb)):
                await until(pilot, lambda: not app.loading, "the fleet to load")
                assert "LOADING" not in str(app.query_one("#fleet").border_title)
            opened = datetime.now(UTC)
            station.publish(topic("ST-1", "help/state"), waiting(TICKET_A, "ST-1", opened, "B-AB 1"), retain=True)
            station.publish(topic("ST-1", "help/request"), js({"ticket": TICKET_A, "station": "ST-1",
                                                               "opened": iso(opened), "context": {}}))
            offered = await until(pa, lambda: [app for app in (anna, ben) if rings[app.agent].notices], "the offer")
            assert len(offered) == 1 and [n.title for n in rings[offered[0].agent].notices] == ["1 new call at ST-1"]
            for app, pilot in ((anna, pa), (ben, pb)):  # nobody answers: both consoles ring, whoever was offered it
                await until(pilot, lambda: any(n.title == "1 call waiting too long at ST-1"
                                               for n in rings[app.agent].notices), f"{app.agent}'s escalation")
                assert rings[app.agent].bells >= 1
                await until(pilot, lambda: "ctrl+g" in app.query_one("#alerts").render().plain, "the alert bar")

            station.publish(topic("ST-1", "status"), js({"state": "lost", "boot": 3}), retain=True)
            await until(pb, lambda: any(n.title == "Station ST-1 lost" for n in rings["ben"].notices), "lost rings")
            count = ben.alerting.desk.unacknowledged  # the escalated call, the lost station, and the new call if ben had it
            assert count == (3 if offered[0] is ben else 2), [n.title for n in ben.alerting.desk.open_notices()]
            await pb.press("ctrl+g")
            assert ben.alerting.desk.unacknowledged == 0
            await until(pb, lambda: "No unacknowledged alert." in ben.query_one("#alerts").render().plain, "the bar")
            assert anna.alerting.desk.unacknowledged > 0  # acknowledging is per console

    try:
        asyncio.run(main())
    finally:
        station.close()
