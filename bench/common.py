"""Shared helpers for the benchmarks: statistics, a scratch station, CPU and memory readings, MQTT clients."""
from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def summary(samples_ms: list[float]) -> str:
    """'median X ms, p99 Y ms' of a list of milliseconds."""
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered):.3f} ms, p99 {p99:.3f} ms"


def percentile(samples: list[float], fraction: float) -> float:
    """The sample at the given fraction (0..1) of the sorted list."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def poll_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` (every 5 ms) until it holds; RuntimeError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout} s")
        time.sleep(0.005)


def beside_the_loop(station: Any, work: Callable[[], None]) -> None:
    """Start ``station``, run ``work`` on a thread while this (main) thread runs the station's loop, as `kiosk run`
    does; stop the loop when ``work`` ends, close the station, and raise what ``work`` raised."""
    failed: list[BaseException] = []

    def worker() -> None:
        try:
            work()
        except BaseException as exc:  # raised again on the main thread
            failed.append(exc)
        finally:
            station.loop.stop()

    try:
        station.start()
        thread = threading.Thread(target=worker)
        thread.start()
        station.loop.run()
        thread.join()
    finally:
        station.close()
    if failed:
        raise failed[0]


def scratch_config() -> Path:
    """A configuration whose database is in a fresh temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    path = folder / "kiosk.toml"
    path.write_text(f'[storage]\ndatabase = "{folder / "kiosk.db"}"\n[screen]\nfullscreen = false\n')
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


def mqtt_client(port: int, name: str, on_message: Callable[..., None], timeout: float) -> Any:
    """A paho MQTT 5 client connected to 127.0.0.1:port, its network thread running; RuntimeError if not in time."""
    import paho.mqtt.client as mqtt  # only the MQTT benchmarks pay for the import

    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{name}-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda *args: connected.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(timeout):
        raise RuntimeError(f"{name} could not connect to the broker")
    return client


def subscribe(client: Any, topics: list[str], timeout: float) -> None:
    """Subscribe with QoS 1 and wait for the SUBACK; RuntimeError if none comes in time."""
    done = threading.Event()
    client.on_subscribe = lambda *args: done.set()
    client.subscribe([(topic, 1) for topic in topics])
    if not done.wait(timeout):
        raise RuntimeError(f"no SUBACK for {topics}")
