"""Help by voice latency: the press to the INVITE at the agent's phone, and to that phone ringing with the ticket
already on a console, against a raw baresip dial measured in the same run.

The agent's phone is a real baresip on loopback (tests/baresip_agent.py); the station's baresip
is the station's own, started and driven by it; the console is another process on the shared
subscription (bench/help_latency.py). Arrival times are CLOCK_MONOTONIC in every process.
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import common
from help_latency import SHARED, Listener
from mqtt_latency import ratio

from kiosk import config
from kiosk.cli.compose import build_station
from kiosk.domain.events import Tap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from baresip_agent import Agent, station_voice
from broker import Mosquitto
from station_process import PREFIX, station_config

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
WARM_UP = 3
TIMEOUT_S = 20.0


def incoming(agent: Agent, after: int) -> float:
    """When the agent's phone reported the next incoming call (its first CALL_INCOMING after ``after`` events)."""
    event = agent.wait_for(lambda events: next((e for e in events[after:] if e.get("type") == "CALL_INCOMING"), None),
                           TIMEOUT_S, "the INVITE at the agent")
    return float(event["at"])


def closed(agent: Agent, after: int) -> None:
    agent.wait_for(lambda events: any(e.get("type") == "CALL_CLOSED" for e in events[after:]), TIMEOUT_S,
                   "the call closed at the agent")


def rounds(station, agent: Agent, caller: Agent, console: Listener, results: dict[str, list[float]]) -> None:
    """The bench thread: press, measure, the agent busy, cancel; then a raw baresip dial to the same agent."""
    panel, loop = station.panel, station.loop
    hold_s = 2 * loop.state.settings.gpio.debounce_ms / 1000
    common.poll_until(lambda: station.link.connected and station.intercom.ready, TIMEOUT_S,
                      "MQTT link or baresip")  # once, before anything is measured
    for n in range(WARM_UP + ROUNDS):
        seen, heard = len(console.arrivals), len(agent.events)
        pressed = time.monotonic()
        panel.press()
        invite = incoming(agent, heard)
        queued = console.wait_for(PREFIX + "help/request", seen)
        time.sleep(hold_s)  # a finger stays longer than the debounce window
        panel.release()
        heard = len(agent.events)
        agent.send("hangup")  # busy: the station falls back to text
        closed(agent, heard - 1)
        loop.post(Tap("help:cancel"))
        common.poll_until(lambda: loop.state.help is None, TIMEOUT_S, "ticket closed")
        heard = len(agent.events)
        dialled = time.monotonic()
        caller.send("dial", agent.uri)
        raw = incoming(agent, heard)
        agent.send("hangup")
        closed(agent, heard)
        if n >= WARM_UP:
            results["invite"].append((invite - pressed) * 1000)
            results["ringing_with_ticket"].append((max(invite, queued) - pressed) * 1000)
            results["console_first"].append(1.0 if queued <= invite else 0.0)
            results["raw"].append((raw - dialled) * 1000)
        time.sleep(hold_s)


def main() -> None:
    """Print the figures."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-voice-") as scratch:
        folder = Path(scratch)
        broker = Mosquitto(folder / "broker").start()
        agent = Agent(folder / "agent", answer="manual", trace=False)
        caller = Agent(folder / "caller", user="caller", trace=False)
        console = None
        try:
            console = Listener(broker.port, SHARED)
            settings = config.load(station_config(folder / "station", broker.port))
            settings = replace(settings, voice=station_voice(folder / "station", agent))
            station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True,
                                    real_voice=True)
            results: dict[str, list[float]] = {"invite": [], "ringing_with_ticket": [], "console_first": [],
                                               "raw": []}
            common.beside_the_loop(station, lambda: rounds(station, agent, caller, console, results))
        finally:
            if console is not None:
                console.close()
            agent.close()
            caller.close()
            broker.stop()
    invite_ms, ringing_ms, raw_ms = results["invite"], results["ringing_with_ticket"], results["raw"]
    first = sum(results["console_first"])
    print(f"help by voice, {ROUNDS} presses (after {WARM_UP} warm-up) on a simulated pin; the station's own baresip "
          f"and an agent's baresip on loopback (PCMU), real mosquitto, the console in its own process")
    print(f"press -> INVITE at the agent's phone:         {common.summary(invite_ms)} (target: p99 < 300 ms)")
    print(f"raw baresip dial -> INVITE (same run):        {common.summary(raw_ms)}")
    print(f"  ratio {ratio(invite_ms, raw_ms)}")
    print(f"press -> ringing with the ticket on a console: {common.summary(ringing_ms)}; the ticket was at the "
          f"console before the phone rang in {first:.0f} of {ROUNDS} presses")
    print(f"total {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
