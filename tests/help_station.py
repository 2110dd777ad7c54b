"""A whole station built in-process (as `kiosk run --simulate --headless` wires it), for help-desk tests and benchmarks.

In-process, so that a test can press the simulated help button (gpiozero MockFactory) and
read the screen, while the station talks to a real broker over its real MQTT link.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conftest import wait_for
from station_process import station_config

from drivers.intercom.baresip import BaresipIntercom
from kiosk import config
from kiosk.cli.compose import Station, build_station
from kiosk.config import VoiceSettings

if TYPE_CHECKING:
    from mqtt_client import Received, Staff


def help_desk_view(port: int) -> Staff:
    """An agents' console's view of the broker on ``port``: the queue, every help topic, faults and replies."""
    from mqtt_client import Staff
    from station_process import PREFIX, REPLY_TOPIC

    view = Staff(port, session_expiry=600)
    view.subscribe("$share/agents/paystation/v1/+/help/request", PREFIX + "help/state", PREFIX + "event/help",
                   PREFIX + "help/from-parker", PREFIX + "fault/#", REPLY_TOPIC + "/#")
    return view


def utc_now() -> datetime:
    """The station's clock: real time, as in production."""
    return datetime.now(UTC)


def start_station(folder: Path, port: int, **mqtt: object) -> Station:
    """A started station with simulated card terminal and GPIO, headless, connected to the broker on ``port``."""
    settings = config.load(station_config(folder, port, **mqtt))
    station = build_station(settings, utc_now, simulate=True, headless=True)
    station.start()
    return station


def start_voice_station(folder: Path, port: int, voice: VoiceSettings) -> Station:
    """start_station with help by voice through a real baresip (``voice``), started and ready to call."""
    settings = replace(config.load(station_config(folder, port)), voice=voice)
    station = build_station(settings, utc_now, simulate=True, headless=True, real_voice=True)
    station.start()
    intercom = station.intercom
    assert isinstance(intercom, BaresipIntercom)
    settle_until(station, lambda: intercom.ready, 15, "the station's baresip to start")
    return station


def settle_until(station: Station, condition: Callable[[], object], timeout: float, what: str) -> None:
    """Run the station's loop (as loop.run would) until ``condition()`` holds."""
    wait_for(lambda: bool(condition()), timeout, what, between=station.loop.settle)


def press_help(station: Station, timeout: float = 10) -> None:
    """A finger on the physical help button (through the GPIO driver): down until the station took the press
    and longer than the debounce time, as a real finger stays, then up."""
    assert station.panel is not None, "the simulated station has a GPIO panel"
    held_at_least = time.monotonic() + station.loop.state.settings.gpio.debounce_ms / 1000 * 2
    before = station.loop.state.help
    station.panel.press()
    settle_until(station, lambda: station.loop.state.help not in (None, before) and time.monotonic() >= held_at_least,
                 timeout, "the station to take the help press")
    station.panel.release()


def screen_says(station: Station, text: str) -> bool:
    """``text`` is part of some text drawn in the last frame."""
    return any(text in drawn for drawn in station.display.texts())


def station_publishes(station: Station, staff: Staff, condition: Callable[[list[Received]], object],
                      timeout: float, what: str) -> Any:
    """Run the station's loop until ``condition(staff.messages)`` is truthy; return its value."""
    found: list[object] = []

    def seen() -> bool:
        value = condition(list(staff.messages))
        if value:
            found.append(value)
        return bool(value)

    settle_until(station, seen, timeout, what)
    return found[0]
