"""Help button latency: the press to the ticket at a console's shared subscription, and to the screen's overlay.

The console is another process, as it is in real life (bench/mqtt_listener.py): in this process it
would compete with the station's rendering for the GIL, which a real console never does.
Its arrival times are CLOCK_MONOTONIC, the same clock in every process on the machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import common
from mqtt_latency import BASELINE_TOPIC, Client, ratio
from paho.mqtt.packettypes import PacketTypes

from kiosk import config
from kiosk.cli.compose import build_station
from kiosk.domain.events import Tap
from kiosk.mqtt.client import json_properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto
from station_process import PREFIX, station_config

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
WARM_UP = 5
TIMEOUT_S = 20.0
SHARED = "$share/agents/paystation/v1/+/help/request"


class Listener:
    """A console in its own process: a paho client on the shared subscription that prints what arrives, when."""

    def __init__(self, port: int, *topics: str) -> None:
        self.arrivals: list[tuple[float, str]] = []  # (time.monotonic(), topic)
        self._changed = threading.Condition()
        self._process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("mqtt_listener.py")), str(port),
                                          *topics],
                                         stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "subscribed":
            raise RuntimeError("the listening console did not subscribe")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            at, topic = line.split(" ", 1)
            with self._changed:
                self.arrivals.append((float(at), topic.strip()))
                self._changed.notify_all()

    def wait_for(self, topic: str, after: int) -> float:
        """The arrival time of the first message on ``topic`` after the first ``after`` arrivals."""
        deadline = time.monotonic() + TIMEOUT_S
        with self._changed:
            while True:
                found = next((at for at, t in self.arrivals[after:] if t == topic), None)
                if found is not None:
                    return found
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no {topic} at the console within {TIMEOUT_S} s")
                self._changed.wait(deadline - time.monotonic())

    def close(self) -> None:
        """Stop the console process."""
        self._process.terminate()
        self._process.wait(10)


class Overlay:
    """Wraps the display's render: notes when a frame with the help overlay was drawn, wakes waiters on every frame."""

    def __init__(self, display) -> None:
        self.drawn: list[float] = []
        self._rendered = threading.Condition()
        self._render = display.render
        display.render = self.render

    def render(self, state, now: datetime) -> None:
        self._render(state, now)
        with self._rendered:
            if state.help is not None:
                self.drawn.append(time.monotonic())
            self._rendered.notify_all()

    def wait(self, condition, what: str) -> None:
        """Wait, without polling, until a frame was drawn after which condition() holds."""
        with self._rendered:
            if not self._rendered.wait_for(condition, TIMEOUT_S):
                raise RuntimeError(f"no {what} within {TIMEOUT_S} s")


def rounds(station, overlay: Overlay, console: Listener, sender: Client, results: dict[str, list[float]]) -> None:
    """The bench thread: press, measure, release, cancel the call; interleaved with raw paho rounds."""
    panel, loop = station.panel, station.loop
    hold_s = 2 * loop.state.settings.gpio.debounce_ms / 1000
    common.poll_until(lambda: station.link.connected, TIMEOUT_S, "MQTT connection")  # once, before any round
    for n in range(WARM_UP + ROUNDS):
        seen, drawn = len(console.arrivals), len(overlay.drawn)
        pressed = time.monotonic()
        panel.press()
        overlay.wait(lambda: len(overlay.drawn) > drawn, "help overlay")
        arrived = console.wait_for(PREFIX + "help/request", seen)
        time.sleep(hold_s)  # a finger stays longer than the debounce window
        panel.release()
        seen = len(console.arrivals)
        sent = time.monotonic()
        sender.publish(BASELINE_TOPIC, json.dumps({"round": n}), json_properties(PacketTypes.PUBLISH))
        raw = console.wait_for(BASELINE_TOPIC, seen) - sent
        if n >= WARM_UP:
            results["console"].append((arrived - pressed) * 1000)
            results["screen"].append((overlay.drawn[drawn] - pressed) * 1000)
            results["raw"].append(raw * 1000)
        loop.post(Tap("help:cancel"))
        overlay.wait(lambda: loop.state.help is None, "the call to end")
        time.sleep(hold_s)


def main() -> None:
    """Print the figures."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-help-") as scratch:
        folder = Path(scratch)
        broker = Mosquitto(folder / "broker").start()
        console = sender = None
        try:
            console = Listener(broker.port, SHARED, BASELINE_TOPIC)
            sender = Client(broker.port, "sender")
            settings = config.load(station_config(folder / "station", broker.port))
            station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True)
            overlay = Overlay(station.display)
            results: dict[str, list[float]] = {"console": [], "screen": [], "raw": []}
            common.beside_the_loop(station, lambda: rounds(station, overlay, console, sender, results))
        finally:
            for client in (console, sender):
                if client is not None:
                    client.close()
            broker.stop()
    console_ms, screen_ms, raw_ms = results["console"], results["screen"], results["raw"]
    print(f"help button latency, {ROUNDS} presses (after {WARM_UP} warm-up) on a simulated pin, real mosquitto on "
          f"loopback, the station in-process with its loop on the main thread, the console in its own process")
    print(f"press -> help/request at a $share console: {common.summary(console_ms)}")
    print(f"raw paho publish -> receive (same run):    {common.summary(raw_ms)}")
    print(f"  ratio {ratio(console_ms, raw_ms)}; p99 difference "
          f"{common.percentile(console_ms, 0.99) - common.percentile(raw_ms, 0.99):+.2f} ms (target: within +10 ms)")
    print(f"press -> frame with the help overlay drawn: {common.summary(screen_ms)} (target: p99 < 100 ms)")
    print(f"total {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
