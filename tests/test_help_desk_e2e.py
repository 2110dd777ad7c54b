"""End to end: the help button at a station, two agents' consoles (Textual pilot) racing for it, one real broker."""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pygame
import pytest
from broker import Mosquitto
from console_pilot import activity, console, rows
from help_station import press_help, screen_says
from mqtt_client import Staff
from station_process import PREFIX, station_config

from console.app import ConsoleApp
from console.forms import FormScreen
from console.history import History
from console.metrics import Grouping
from kiosk import config
from kiosk.cli.compose import Station, build_station
from kiosk.cli.scenario import ManualClock
from kiosk.domain import helpdesk
from kiosk.domain.events import Tap
from kiosk.domain.parker_state import Screen

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).resolve().parent / "golden"
DOC_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin
PLATE = "B-HELP1"


async def until(pilots: list[Any], station: Station, condition: Callable[[], Any], what: str,
                timeout: float = 15.0) -> Any:
    """Run the consoles and the station's loop until ``condition()`` is truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        station.loop.settle()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        for pilot in pilots:
            await pilot.pause(0.01)


def queue(app: ConsoleApp) -> list[list[str]]:
    """The console's help queue as plain text cells."""
    return rows(app, "#queue")


def assert_matches_golden(station: Station, name: str, tmp_path: Path) -> None:
    """The station's last frame is pixel for pixel the reviewed picture tests/golden/<name>.png.

    Fonts and pygame-ce are pinned, so the picture is the same on every machine. After an
    intended change of the screen, regenerate with KIOSK_UPDATE_GOLDEN=1 and review the PNG.
    """
    actual = tmp_path / f"{name}.png"
    station.display.screenshot(actual)
    golden = GOLDEN / f"{name}.png"
    if os.environ.get("KIOSK_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(actual.read_bytes())
    assert golden.exists(), f"no golden picture {golden}; run once with KIOSK_UPDATE_GOLDEN=1 and review it"
    want, got = pygame.image.load(str(golden)), pygame.image.load(str(actual))
    assert want.get_size() == got.get_size(), f"size differs from {golden}"
    assert pygame.image.tobytes(want, "RGB") == pygame.image.tobytes(got, "RGB"), (
        f"the station's screen differs from {golden}; see {actual}")


def test_button_to_console_and_back_with_two_agents_racing(tmp_path: Path, broker: Mosquitto) -> None:
    clock = ManualClock(START)
    settings = config.load(station_config(tmp_path / "station", broker.port))
    station = build_station(settings, clock, simulate=True, headless=True)
    station.start()
    events = Staff(broker.port)
    events.subscribe(PREFIX + "event/help")

    async def scenario() -> None:
        anna, ben = (console(broker.port, agent, history=History(":memory:")) for agent in ("anna", "ben"))
        async with anna.run_test(size=(160, 45)) as pilot_a, ben.run_test(size=(160, 45)) as pilot_b:
            pilots = [pilot_a, pilot_b]
            await until(pilots, station, lambda: all(
                app.board.station("ST-1") is not None and app.board.station("ST-1").state == "online"
                for app in (anna, ben)), "both consoles to see the station online")

            # A parker starts typing a plate, then presses the red button.
            for target in ["start", *(f"key:{c}" for c in PLATE)]:
                station.loop.post(Tap(target))
            press_help(station)
            assert station.panel.led_pattern == helpdesk.LED_BLINKING
            for app in (anna, ben):
                rows = await until(pilots, station, lambda: queue(app), f"{app.agent}'s queue to show the ticket")
                assert rows[0][0] == "ST-1" and PLATE in rows[0], rows
            offered = [app.agent for app in (anna, ben) if app.board.queue(clock())[0].offered_to_me]
            assert len(offered) == 1, f"the shared subscription offers the ticket to one console: {offered}"

            # Both agents accept at once: the station takes the first, refuses the second.
            clock.set(START + timedelta(seconds=42))
            await pilot_a.press("f3")
            await pilot_b.press("f3")
            await until(pilots, station, lambda: station.loop.state.help.agent, "the station to connect an agent")
            winner_name = station.loop.state.help.agent
            winner, loser = (anna, ben) if winner_name == "anna" else (ben, anna)
            await until(pilots, station, lambda: queue(winner)[0][2] == "connected to you", "the winner's console")
            await until(pilots, station, lambda: "taken by" in " ".join(queue(loser)[0]), "the loser's console")
            await until(pilots, station, lambda: "taken by" in activity(loser), "the loser told why")
            assert station.panel.led_pattern == helpdesk.LED_STEADY
            win_pilot = pilot_a if winner is anna else pilot_b

            # The winner writes; the parker's screen shows it.
            chat = winner.query_one("#chat")
            chat.focus()
            chat.value = "I can see your station. One moment please."
            await win_pilot.press("enter")
            await until(pilots, station, lambda: screen_says(station, "I can see your station."), "the message")
            await until(pilots, station, lambda: [(line.text, line.confirmed) for line in winner.board.conversation(
                station.loop.state.help.id) if line.who == "agent"] == [
                ("I can see your station. One moment please.", True)], "the station's confirmation in the console")
            station.loop.render_if_changed()
            assert_matches_golden(station, f"help-connected-{winner_name}", tmp_path)

            # A courtesy session for the plate being entered, recorded as such.
            winner.query_one("#queue").focus()
            await win_pilot.press("f6")
            await until(pilots, station, lambda: isinstance(winner.screen, FormScreen), "the courtesy form")
            await win_pilot.press("ctrl+y")
            await until(pilots, station, lambda: "courtesy at ST-1: " in activity(winner), "the reply")
            await until(pilots, station, lambda: screen_says(station, PLATE), "the courtesy on the parker's screen")
            [session] = station.store.rows("parking_session", plate=PLATE)
            assert (session["kind"], session["amount"], session["payment_id"]) == ("courtesy", 0, None)

            # Resolved two minutes after the accept.
            clock.set(START + timedelta(seconds=162))
            await win_pilot.press("f5")
            form = await until(pilots, station, lambda: isinstance(winner.screen, FormScreen) and winner.screen,
                               "the resolve form")
            form.query_one("#field-text").value = "Your parking is free today. Goodbye!"
            await win_pilot.click("#confirm")
            await until(pilots, station, lambda: screen_says(station, "Your parking is free today."), "the ending")
            assert station.panel.led_pattern == helpdesk.LED_OFF
            await until(pilots, station, lambda: not queue(winner) and not queue(loser), "the queues to empty")

            # The parker extends and rates the visit: the rating counts for the agent who helped.
            for target in ["help:ok", "continue"]:
                station.loop.post(Tap(target))
            await until(pilots, station, lambda: station.loop.state.screen is Screen.DURATION, "the duration screen")
            station.loop.post(Tap("pay"))
            await until(pilots, station, lambda: station.loop.state.screen is Screen.PAID, "the payment")
            for target in ["done", "rate:4"]:
                station.loop.post(Tap(target))
            for app in (winner, loser):
                await until(pilots, station, lambda: [(m.key, m.ratings) for m in app.history.help_metrics(
                    Grouping.AGENT)] == [(winner_name, (0, 0, 0, 1, 0))], f"{app.agent}'s CSAT per agent")
            if os.environ.get("KIOSK_WRITE_DOC_IMAGES") == "1":
                winner.save_screenshot(filename="console.svg", path=str(DOC_IMAGES))

    try:
        asyncio.run(scenario())
        [closed] = events.wait_for(lambda ms: [m.json()["data"] for m in ms if m.json()["data"]["action"] == "close"],
                                   15, "the closing event")
        assert (closed["outcome"], closed["time_to_accept_s"], closed["time_to_resolve_s"], closed["presses"]) == (
            "solved", 42, 162, 1)
        actions = [m.json()["data"]["action"] for m in events.messages]
        assert actions[:2] == ["open", "accept"] and "refused" in actions and "message" in actions
    finally:
        events.close()
        station.close()
