"""The agents' console at fleet scale: load, idle CPU, keypress to screen, a fault burst, memory; and the broker's limits.

Each fleet size runs in a fresh process with its own mosquitto; the fleet publishes from another
process (bench/fleet_sim.py), so the CPU and memory figures are the console's alone. The console
runs headless in-process (``app.run_test``), driven like Textual's pilot::

    .venv/bin/python bench/console_scale.py                       # 100, 1,000 and 5,000 stations
    .venv/bin/python bench/console_scale.py --sizes 5000 --huge   # also 50,000
    .venv/bin/python bench/console_scale.py --app console.app:ConsoleApp --load-timeout 300

"Applied" means the board knows every station's state and zone, every active fault (component and
code) and every waiting ticket that was published (fleet_sim.unknown_to), checked, not assumed.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import common
import fleet_sim
from paho.mqtt.subscribeoptions import SubscribeOptions
from textual import events

from console.agent_link import AgentLink

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto

HERE = Path(__file__).resolve().parent
SIZES = (100, 1000, 5000)
HUGE = 50_000
UNLIMITED = "max_queued_messages 0\n"  # see docs/performance.md: the default (1000) drops a late subscriber's state
IDLE_S = 10.0
PRESSES = 200
PRESS_TIMEOUT_S = 30.0
BURST_RATE, BURST_S = 200.0, 30.0
QUIET_S = 3.0  # a subscriber that received nothing for this long has all it will get
SUBSCRIBER_TOPICS = ("paystation/v1/+/status", "paystation/v1/+/fault/#", "paystation/v1/+/help/state")
TARGETS = {"applied": 5.0, "idle_cpu": 5.0, "press_p99": 100.0, "behind": 1.0, "rss": 150.0}


@dataclass
class Run:
    """The figures of one fleet size; None where a phase did not finish in time (``notes`` says what happened)."""

    stations: int
    retained: int = 0
    faults: int = 0
    bare_s: float | None = None
    listed_s: float | None = None
    applied_s: float | None = None
    loaded_s: float | None = None  # until the console itself said the fleet is loaded (no more LOADING…)
    unknown: int = 0
    idle_cpu: float | None = None
    presses_idle: list[float] = field(default_factory=list)
    presses_burst: list[float] = field(default_factory=list)
    burst_cpu: float | None = None
    behind_s: float | None = None
    burst_applied_s: float | None = None
    rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)


def load_app_class(spec: str) -> Callable[..., Any]:
    """``module:Class`` as a class called ``(link_factory, agent)``."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "ConsoleApp")


def start_fleet(port: int, stations: int, *args: str) -> subprocess.Popen[str]:
    """bench/fleet_sim.py in its own process; returns once its first line (``loaded`` or ``burst``) says it is done."""
    return subprocess.Popen([sys.executable, str(HERE / "fleet_sim.py"), "--port", str(port), "--stations",
                             str(stations), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def first_line(process: subprocess.Popen[str], what: str) -> str:
    """The process's next line of output; RuntimeError if it ended instead."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"{what} ended with {process.wait()}")
    return line.strip()


def bare_subscriber(port: int, qos: int, expected: int, results: Queue[tuple[int, float]]) -> None:
    """A plain paho subscriber to the console's retained topics: (messages received, seconds from SUBSCRIBE to the
    last of them), once ``expected`` arrived or nothing came for QUIET_S."""
    received: list[float] = []
    done = threading.Event()

    def on_message(*_args: Any) -> None:
        received.append(time.monotonic())
        if len(received) >= expected:
            done.set()

    client = common.mqtt_client(port, "bare", on_message, 10.0)
    began = time.monotonic()
    client.subscribe([(topic, SubscribeOptions(qos=qos)) for topic in SUBSCRIBER_TOPICS])
    while not done.wait(QUIET_S) and (not received or time.monotonic() - received[-1] < QUIET_S):
        pass
    client.disconnect()
    client.loop_stop()
    results.put((len(received), (received[-1] - began) if received else float("nan")))


def bare(port: int, qos: int, expected: int) -> tuple[int, float]:
    """:func:`bare_subscriber` in its own process."""
    spawn = multiprocessing.get_context("spawn")
    results: Queue[tuple[int, float]] = spawn.Queue()
    process = spawn.Process(target=bare_subscriber, args=(port, qos, expected, results))
    process.start()
    result = results.get(timeout=600)
    process.join(10)
    return result


def cpu_now() -> float:
    """This process's user + system CPU seconds (every thread: the UI's and paho's)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Watch:
    """Checks on the console from the test's coroutine, on the app's own event loop."""

    def __init__(self, app: Any, fleet: fleet_sim.Fleet, table: str) -> None:
        self.app, self.fleet, self.table = app, fleet, table

    def listed(self) -> int:
        """Rows in the fleet pane (its virtual list shows every station of the index)."""
        return len(self.app.fleet)

    async def until(self, condition: Callable[[], bool], timeout: float) -> float | None:
        """Seconds until ``condition`` holds, polled every 5 ms; None after ``timeout``."""
        began = time.monotonic()
        while not condition():
            if time.monotonic() - began > timeout:
                return None
            await asyncio.sleep(0.005)
        return time.monotonic() - began

    async def applied(self, began: float, timeout: float) -> tuple[float | None, int]:
        """(seconds from ``began`` until the board knows the whole fleet, or None; what it did not know at the end).

        The poll (fleet_sim.Tracker) waits four times its own cost, at least 20 ms, so that it takes at most a
        fifth of the loop from the console.
        """
        tracker = fleet_sim.Tracker(self.fleet)
        while True:
            started = time.monotonic()
            if tracker.known(self.app.board, datetime.now(UTC)):
                return time.monotonic() - began, 0
            if time.monotonic() - began > timeout:
                return None, len(tracker.missing)
            await asyncio.sleep(max(0.02, 4 * (time.monotonic() - started)))

    async def press(self, key: str) -> float:
        """Milliseconds from a key posted to the app until the fleet's cursor moved to another station and the
        screen was refreshed after it; RuntimeError after PRESS_TIMEOUT_S."""
        fleet = self.app.query_one(self.table)
        before = fleet.station
        began = time.perf_counter()
        self.app.post_message(events.Key(key, None))
        while fleet.station == before:
            if time.perf_counter() - began > PRESS_TIMEOUT_S:
                raise RuntimeError(f"{key} not handled within {PRESS_TIMEOUT_S} s")
            await asyncio.sleep(0.001)
        painted = asyncio.Event()
        self.app.call_after_refresh(painted.set)
        try:
            await asyncio.wait_for(painted.wait(), PRESS_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(f"{key} handled, but no screen refresh within {PRESS_TIMEOUT_S} s") from None
        return (time.perf_counter() - began) * 1000


async def drive(app: Any, run: Run, fleet: fleet_sim.Fleet, port: int, args: argparse.Namespace, began: float) -> None:
    """Every phase on the running console, each capped by its timeout."""
    watch = Watch(app, fleet, args.fleet_table)
    listed = await watch.until(lambda: watch.listed() >= run.stations, args.load_timeout)
    run.listed_s = None if listed is None else time.monotonic() - began
    if listed is None:
        run.notes.append(f"listed {watch.listed()} of {run.stations} after {args.load_timeout:g} s")
    run.applied_s, run.unknown = await watch.applied(began, args.load_timeout)
    if run.applied_s is None:
        run.notes.append(f"{run.unknown} stations or tickets not known after {args.load_timeout:g} s")
    loaded = await watch.until(lambda: not app.loading, args.load_timeout)
    run.loaded_s = None if loaded is None else time.monotonic() - began
    cpu = cpu_now()
    await asyncio.sleep(IDLE_S)
    run.idle_cpu = (cpu_now() - cpu) / IDLE_S * 100
    app.query_one(args.fleet_table).focus()
    await watch.until(lambda: app.focused is not None, 5.0)
    phase = time.monotonic()
    for index in range(args.presses):
        if time.monotonic() - phase > args.phase_timeout:
            run.notes.append(f"{index} of {args.presses} idle presses within {args.phase_timeout:g} s")
            break
        try:
            run.presses_idle.append(await watch.press("down" if index % 2 == 0 else "up"))
        except RuntimeError as exc:
            run.notes.append(f"idle press {index}: {exc}")
            break
    await burst_phase(app, watch, run, port, args)


async def burst_phase(app: Any, watch: Watch, run: Run, port: int, args: argparse.Namespace) -> None:
    """Presses while the fleet sends the burst, the CPU meanwhile, then how far behind the board is at its end."""
    total = int(BURST_RATE * BURST_S)
    replay = fleet_sim.build_fleet(run.stations, watch.fleet.now, args.seed)
    last = list(fleet_sim.burst(replay, total, args.seed))[-1]
    cpu, began = cpu_now(), time.monotonic()
    publisher = start_fleet(port, run.stations, "--seed", str(args.seed), "burst", "--rate", str(BURST_RATE),
                            "--seconds", str(BURST_S))
    finished = asyncio.get_running_loop().run_in_executor(None, first_line, publisher, "the burst")
    index = 0
    while not finished.done() and time.monotonic() - began < BURST_S + args.phase_timeout:
        try:
            run.presses_burst.append(await watch.press("down" if index % 2 == 0 else "up"))
        except RuntimeError as exc:
            run.notes.append(f"burst press {index}: {exc}")
            break
        index += 1
        await asyncio.sleep(max(0.0, BURST_S / args.presses - run.presses_burst[-1] / 1000))
    await finished
    run.burst_cpu = (cpu_now() - cpu) / (time.monotonic() - began) * 100

    def shown() -> float | None:
        view = app.board.station(last.station)
        faults = {f.component: f for f in view.faults} if view else {}
        stamp = fleet_sim.parse_stamp(faults[last.component].message) if last.component in faults else None
        return stamp[1] if stamp and stamp[2] else None

    seen = await watch.until(lambda: shown() is not None, args.phase_timeout)
    sent = shown()
    run.behind_s = None if seen is None or sent is None else time.monotonic() - sent
    if run.behind_s is None:
        run.notes.append(f"the last burst change was not shown within {args.phase_timeout:g} s of the burst's end")
    watch.fleet = replay
    run.burst_applied_s, unknown = await watch.applied(time.monotonic(), args.phase_timeout)
    if run.burst_applied_s is None:
        run.notes.append(f"after the burst, {unknown} stations not as published")
    publisher.wait(10)


def measure(stations: int, args: argparse.Namespace, results: Queue[Run]) -> None:
    """One fleet size, start to end, in this (fresh) process; the Run goes to ``results``."""
    run = Run(stations)
    try:
        measure_into(run, args)
    except Exception as exc:  # the set-up failed: say so instead of leaving the parent waiting
        run.notes.append(f"stopped: {exc!r}")
    run.rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
    results.put(run)


class Warnings(logging.Handler):
    """The console's warnings and errors (a lost connection, a refused subscription), for the notes."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message."""
        self.lines.append(f"{record.name}: {record.getMessage()}")


def measure_into(run: Run, args: argparse.Namespace) -> None:
    """The phases of :func:`measure`, filling ``run``."""
    warnings = Warnings()
    logging.getLogger().addHandler(warnings)
    try:
        measure_phases(run, args)
    finally:
        logging.getLogger().removeHandler(warnings)
        if warnings.lines:
            run.notes.append(f"the console logged {len(warnings.lines)} warning(s): "
                             + "; ".join(sorted(set(warnings.lines))[:3]))


def measure_phases(run: Run, args: argparse.Namespace) -> None:
    """Publish the fleet, measure the bare subscriber, then drive the console through every phase."""
    stations = run.stations
    fleet = fleet_sim.build_fleet(stations, datetime.now(UTC), args.seed)
    run.retained, run.faults = len(fleet.messages), fleet.fault_count
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-console-") as scratch:
        broker = Mosquitto(Path(scratch), extra=UNLIMITED).start()
        loader = start_fleet(broker.port, stations, "--seed", str(args.seed), "load")
        try:
            first_line(loader, "the fleet")
            count, run.bare_s = bare(broker.port, 1, run.retained)
            if count != run.retained:
                run.notes.append(f"the bare subscriber received {count} of {run.retained}")
            app_class = load_app_class(args.app)
            began = time.monotonic()
            app = app_class(lambda on_message, on_state: AgentLink(
                f"mqtt://127.0.0.1:{broker.port}", "bench", on_message=on_message, on_state=on_state), "bench")

            async def main() -> None:
                async with app.run_test(size=(200, 60)):
                    await drive(app, run, fleet, broker.port, args, began)

            try:
                asyncio.run(main())
            except Exception as exc:  # the console died: that is a result too
                run.notes.append(f"the console raised {exc!r}")
        finally:
            assert loader.stdin is not None
            loader.stdin.close()
            loader.wait(10)
            broker.stop()


def measure_apart(stations: int, args: argparse.Namespace) -> Run:
    """:func:`measure` in a fresh process (its CPU and peak memory are the console's only)."""
    spawn = multiprocessing.get_context("spawn")
    results: Queue[Run] = spawn.Queue()
    process = spawn.Process(target=measure, args=(stations, args, results))
    process.start()
    budget = 3 * args.load_timeout + 3 * args.phase_timeout + BURST_S + IDLE_S + 120
    try:
        return results.get(timeout=budget)
    except Exception:  # queue.Empty, or the process died without a result
        run = Run(stations)
        run.notes.append(f"no result within {budget:g} s (exit code {process.exitcode})")
        return run
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()


def default_broker_check(stations: int, seed: int, app: str) -> list[str]:
    """What a late subscriber receives from a mosquitto with its default limits, by subscription QoS."""
    fleet = fleet_sim.build_fleet(stations, datetime.now(UTC), seed)
    lines = []
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-default-") as scratch:
        broker = Mosquitto(Path(scratch)).start()
        loader = start_fleet(broker.port, stations, "--seed", str(seed), "load")
        try:
            first_line(loader, "the fleet")
            for qos in (1, 0):
                count, seconds = bare(broker.port, qos, len(fleet.messages))
                lines.append(f"  subscription QoS {qos}: {count:,} of {len(fleet.messages):,} retained messages "
                             f"({seconds:.2f} s)")
            known, faults = asyncio.run(console_on(broker.port, fleet, app))
            lines.append(f"  the console (its retained state at QoS 0): knows {known:,} of {fleet.count:,} stations "
                         f"as published, shows {faults:,} of {fleet.fault_count:,} active faults")
            dropped = broker.log().count("Outgoing messages are being dropped")
            lines.append(f"  mosquitto's log: 'Outgoing messages are being dropped for client …' {dropped} time(s)")
        finally:
            assert loader.stdin is not None
            loader.stdin.close()
            loader.wait(10)
            broker.stop()
    return lines


async def console_on(port: int, fleet: fleet_sim.Fleet, app_spec: str) -> tuple[int, int]:
    """Run the console until its board stops changing for QUIET_S: (stations known as published, faults shown)."""
    app = load_app_class(app_spec)(lambda on_message, on_state: AgentLink(
        f"mqtt://127.0.0.1:{port}", "bench", on_message=on_message, on_state=on_state), "bench")
    async with app.run_test(size=(200, 60)):
        seen: tuple[int, int] = (-1, -1)
        while True:
            await asyncio.sleep(QUIET_S)
            views = app.board.stations()
            now = (len(views), sum(len(view.faults) for view in views))
            if now == seen and now[0]:
                break
            seen = now
        unknown = fleet_sim.unknown_to(app.board, fleet, list(fleet.states), datetime.now(UTC))
    return fleet.count - len([s for s in unknown if s in fleet.states]), seen[1]


def verdict(value: float | None, target: float) -> str:
    """'met' or 'NOT met' against an upper bound."""
    return "not measured" if value is None else ("met" if value < target else "NOT met")


def seconds(value: float | None) -> str:
    """Seconds with two decimals, or a dash."""
    return "-" if value is None else f"{value:.2f} s"


def ratio(value: float | None, base: float | None) -> str:
    """' (xR to the baseline)', or nothing."""
    return f" (x{value / base:.1f})" if value is not None and base else ""


def report(run: Run, base: Run) -> None:
    """Print one size's figures, with ratios to the bare subscriber and to ``base`` (the first size measured)."""
    print(f"{run.stations:,} stations: {run.retained:,} retained messages, {run.faults:,} active faults")
    print(f"  bare paho subscriber, SUBSCRIBE to every retained message: {seconds(run.bare_s)}")
    print(f"  console start -> fleet listed: {seconds(run.listed_s)}{ratio(run.listed_s, run.bare_s)}")
    print(f"  console start -> all retained state applied: {seconds(run.applied_s)}"
          f"{ratio(run.applied_s, run.bare_s)}  (target < {TARGETS['applied']:g} s: "
          f"{verdict(run.applied_s, TARGETS['applied'])})")
    print(f"  console start -> its LOADING state ends: {seconds(run.loaded_s)}")
    idle = "-" if run.idle_cpu is None else f"{run.idle_cpu:.1f} % of a core"
    print(f"  idle CPU over {IDLE_S:g} s: {idle}{ratio(run.idle_cpu, base.idle_cpu)}  "
          f"(target < {TARGETS['idle_cpu']:g} %: {verdict(run.idle_cpu, TARGETS['idle_cpu'])})")
    for name, presses, base_presses in (("idle", run.presses_idle, base.presses_idle),
                                        ("during the burst", run.presses_burst, base.presses_burst)):
        if presses:
            p99 = common.percentile(presses, 0.99)
            base_p99 = common.percentile(base_presses, 0.99) if base_presses else None
            print(f"  keypress to screen, {name} ({len(presses)} presses): {common.summary(presses)}"
                  f"{ratio(p99, base_p99)}  (target p99 < {TARGETS['press_p99']:g} ms: "
                  f"{verdict(p99, TARGETS['press_p99'])})")
        else:
            print(f"  keypress to screen, {name}: no press measured")
    burst_cpu = "-" if run.burst_cpu is None else f"{run.burst_cpu:.1f} % of a core"
    print(f"  burst of {BURST_RATE:g} fault changes/s for {BURST_S:g} s: CPU {burst_cpu}; behind at its end "
          f"{seconds(run.behind_s)} (target < {TARGETS['behind']:g} s: {verdict(run.behind_s, TARGETS['behind'])});"
          f" every change applied {seconds(run.burst_applied_s)} after that")
    print(f"  peak RSS {run.rss_mb:.1f} MB (target < {TARGETS['rss']:g} MB: {verdict(run.rss_mb, TARGETS['rss'])})")
    for note in run.notes:
        print(f"  note: {note}")


def main() -> None:
    """Measure each size, then check the default broker's limits, and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="fleet sizes, comma-separated")
    parser.add_argument("--huge", action="store_true", help=f"also {HUGE:,} stations")
    parser.add_argument("--app", default="console.app:ConsoleApp", help="module:Class of the console")
    parser.add_argument("--fleet-table", default="#fleet", help="the fleet table's selector")
    parser.add_argument("--load-timeout", type=float, default=300.0, help="cap of the listed and applied phases (s)")
    parser.add_argument("--phase-timeout", type=float, default=120.0, help="cap of each other phase (s)")
    parser.add_argument("--presses", type=int, default=PRESSES)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--skip-default-check", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")] + ([HUGE] if args.huge else [])
    began = time.monotonic()
    print(f"console {args.app}; mosquitto with {UNLIMITED.strip()}; the fleet from bench/fleet_sim.py in its own "
          f"process; {args.presses} presses of down/up in the fleet table; ratios to the first size", flush=True)
    runs: list[Run] = []
    for stations in sizes:
        runs.append(measure_apart(stations, args))
        report(runs[-1], runs[0])
        print(f"  ({time.monotonic() - began:.0f} s so far)", flush=True)
    if not args.skip_default_check:
        largest = max(size for size in sizes if size <= max(SIZES))
        print(f"mosquitto with its default limits (max_queued_messages 1000, max_inflight_messages 20), "
              f"{largest:,} stations, a subscriber that subscribes after the fleet published:")
        for line in default_broker_check(largest, args.seed, args.app):
            print(line)
    print(f"{time.monotonic() - began:.0f} s in all")


if __name__ == "__main__":
    main()
