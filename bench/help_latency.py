"""Help button latency: the press to the ticket at a console's shared subscription, and to the screen's overlay."""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import common
from mqtt_latency import BASELINE_TOPIC, Client, baseline_round, ratio

from kiosk import config
from kiosk.cli import build_station
from kiosk.events import Tap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto  # noqa: E402  (the tests' mosquitto on a free port)
from station_process import PREFIX, station_config  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
WARM_UP = 5
TIMEOUT_S = 20.0
SHARED = "$share/agents/paystation/v1/+/help/request"


class Overlay:
    """Wraps the display's render to note when a frame with the help overlay was drawn (perf_counter)."""

    def __init__(self, display) -> None:
        self.drawn: list[float] = []
        self._render = display.render
        display.render = self.render

    def render(self, state, now: datetime) -> None:
        self._render(state, now)
        if state.help is not None:
            self.drawn.append(time.perf_counter())


def wait(condition, what: str) -> None:
    """Poll a condition the station's loop thread makes true (the bench thread only reads)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {TIMEOUT_S} s")
        time.sleep(0.001)


def rounds(station, overlay: Overlay, console: Client, sender: Client, results: dict[str, list[float]],
           failed: list[BaseException]) -> None:
    """The bench thread: press, measure, release, cancel the call; interleaved with raw paho rounds."""
    try:
        panel, loop = station.panel, station.loop
        hold_s = 2 * loop.state.settings.gpio.debounce_ms / 1000
        wait(lambda: station.link.connected, "MQTT connection")
        for n in range(WARM_UP + ROUNDS):
            seen, drawn = len(console.messages), len(overlay.drawn)
            pressed = time.perf_counter()
            panel.press()
            wait(lambda: len(overlay.drawn) > drawn, "help overlay")
            request = console.wait_for(lambda m: next((a for a in m[seen:] if a.topic == PREFIX + "help/request"),
                                                      None), "help/request")
            time.sleep(hold_s)  # a finger stays longer than the debounce window
            panel.release()
            raw = baseline_round(sender, console, json.dumps({"round": n}).encode())
            if n >= WARM_UP:
                results["console"].append((request.perf - pressed) * 1000)
                results["screen"].append((overlay.drawn[drawn] - pressed) * 1000)
                results["raw"].append(raw)
            loop.post(Tap("help:cancel"))
            wait(lambda: loop.state.help is None, "the call to end")
            time.sleep(hold_s)
    except BaseException as exc:  # reported by the main thread
        failed.append(exc)
    finally:
        station.loop.stop()


def main() -> None:
    """Print the figures."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-help-") as scratch:
        folder = Path(scratch)
        broker = Mosquitto(folder / "broker").start()
        console = sender = None
        try:
            console = Client(broker.port, "console")
            console.subscribe(SHARED, BASELINE_TOPIC)
            sender = Client(broker.port, "sender")
            settings = config.load(station_config(folder / "station", broker.port))
            station = build_station(settings, lambda: datetime.now(timezone.utc), simulate=True, headless=True)
            overlay = Overlay(station.display)
            results: dict[str, list[float]] = {"console": [], "screen": [], "raw": []}
            failed: list[BaseException] = []
            try:
                station.start()
                worker = threading.Thread(target=rounds, args=(station, overlay, console, sender, results, failed))
                worker.start()
                station.loop.run()  # the main thread runs the loop, as in `kiosk run`
                worker.join()
            finally:
                station.close()
            if failed:
                raise failed[0]
        finally:
            for client in (console, sender):
                if client is not None:
                    client.close()
            broker.stop()
    console_ms, screen_ms, raw_ms = results["console"], results["screen"], results["raw"]
    print(f"help button latency, {ROUNDS} presses (after {WARM_UP} warm-up) on a simulated pin, "
          f"real mosquitto on loopback, the station in-process with its loop on the main thread")
    print(common.figure("press -> help/request at a $share console", console_ms))
    print(common.figure("raw paho publish -> receive (same run)", raw_ms))
    print(f"  ratio {ratio(console_ms, raw_ms)}; p99 difference "
          f"{common.percentile(console_ms, 0.99) - common.percentile(raw_ms, 0.99):+.2f} ms (target: within +10 ms)")
    print(common.figure("press -> frame with the help overlay drawn", screen_ms))
    print(f"  target: p99 < 100 ms; median of medians check {statistics.median(screen_ms):.2f} ms")
    print(f"total {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
