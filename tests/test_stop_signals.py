"""A stop (SIGTERM, SIGINT) at any moment of `kiosk run`'s start-up is a clean stop, exit code 0.

The station's first instruction blocks both stop signals (kiosk/cli/entry.py); /proc/<pid>/status
shows it in SigBlk. That moment is time 0 here. The process is frozen there (SIGSTOP) to
check that it came before the station's imports: the sqlite3 extension module, which the
station imports with peewee, is not mapped yet. Before time 0 only the interpreter's own
start-up runs, which no Python code can guard (systemd/kiosk.service blocks the signals for it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker import Mosquitto
from conftest import ROOT, wait_for
from mqtt_client import Received, Staff
from station_process import PREFIX, station_config

STOP_SIGNALS_MASK = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
IMPORTED_LATE = "_sqlite3"  # an extension module among the station's later imports (peewee)
START_S = 20
STOP_S = 20  # the station's own bounds: 10 s for the card terminal worker, 3 + 6 s for the MQTT link
RUNS = 15
SPAN_S = 1.5
DENSITY = 2.5  # offsets grow as (run / RUNS) ** DENSITY: most runs land in the start-up's first half second


def _entry_point() -> list[str]:
    """What the `kiosk` console script that pip generates from pyproject.toml runs."""
    module, function = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["kiosk"].split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]


ENTRIES = {"python -m kiosk.cli": [sys.executable, "-m", "kiosk.cli"], "kiosk": _entry_point()}


class Started:
    """A `kiosk` process whose stderr goes to a file."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=out)

    def log(self) -> str:
        """What it wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def status(self, field: str) -> str:
        """A field of /proc/<pid>/status ("" once the process is gone)."""
        try:
            lines = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        except OSError:
            return ""
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(field + ":")), "")

    def blocks_stop_signals(self) -> bool:
        """Whether the main thread blocks SIGTERM and SIGINT (SigBlk is a hexadecimal mask, bit n-1 for signal n)."""
        return int(self.status("SigBlk") or "0", 16) & STOP_SIGNALS_MASK == STOP_SIGNALS_MASK

    def freeze_at_first_instruction(self) -> None:
        """Wait for the stop signals to be blocked, stop the process there, check that its imports are still to come."""
        wait_for(lambda: self.proc.poll() is not None or self.blocks_stop_signals(), START_S,
                 "the station to block the stop signals")
        assert self.proc.poll() is None, self.log()
        os.kill(self.proc.pid, signal.SIGSTOP)
        wait_for(lambda: self.status("State").startswith("T"), START_S, "the process to stop")
        imported = IMPORTED_LATE in Path(f"/proc/{self.proc.pid}/maps").read_text()
        assert not imported, f"the stop signals were blocked only after the station's imports ({IMPORTED_LATE})"

    def stopped(self) -> int:
        """The exit code, waiting STOP_S at most."""
        try:
            return self.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {STOP_S} s after the stop signal:\n{self.log()}") from None


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[list[str], str], Started]]:
    """Start `kiosk` processes (argv, log name); whatever is still running afterwards is killed."""
    started: list[Started] = []

    def run(argv: list[str], name: str) -> Started:
        started.append(Started(argv, tmp_path / f"{name}.log"))
        return started[-1]

    yield run
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()  # also ends a process stopped with SIGSTOP
        process.proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_stop_while_the_station_imports_its_modules_is_clean(start: Callable[[list[str], str], Started],
                                                              station_config: Path, tmp_path: Path, entry: str,
                                                              signum: int) -> None:
    station = start(ENTRIES[entry] + ["run", "--headless", "--config", str(station_config)], "station")
    station.freeze_at_first_instruction()
    os.kill(station.proc.pid, signum)
    os.kill(station.proc.pid, signal.SIGCONT)
    assert station.stopped() == 0, station.log()
    assert f"signal {signal.Signals(signum).name} during start-up: stopping" in station.log()
    assert not (tmp_path / "kiosk.db").exists(), "stopped before it opened anything"


@pytest.mark.slow
def test_a_stop_at_any_moment_of_start_up_is_clean(start: Callable[[list[str], str], Started], tmp_path: Path,
                                                    broker: Mosquitto) -> None:
    """SIGTERM 0 to 1.5 s after the first instruction, RUNS times, each a restart of the same station.

    With the card terminal simulator and a broker, so that the stops also land while the ZVT
    worker registers and the MQTT link connects. Every stop exits 0 within STOP_S, leaves the
    database closed (no write-ahead log left over) and, once the station said `online`, says
    `offline`: never the will.
    """
    config = station_config(tmp_path / "station", broker.port)
    database = tmp_path / "station" / "kiosk.db"
    staff = Staff(broker.port)
    staff.subscribe(PREFIX + "status")

    def statuses(messages: list[Received]) -> list[dict]:
        return [m.json() for m in messages if m.payload]

    try:
        for run in range(RUNS):
            offset = SPAN_S * (run / (RUNS - 1)) ** DENSITY
            station = start([sys.executable, "-m", "kiosk.cli", "run", "--simulate", "--headless", "--config",
                             str(config)], f"run-{run}")
            station.freeze_at_first_instruction()
            os.kill(station.proc.pid, signal.SIGCONT)
            started = time.monotonic()
            with pytest.raises(subprocess.TimeoutExpired):  # waits out the offset; the station must not exit
                station.proc.wait(max(0.0, started + offset - time.monotonic()))
            station.proc.send_signal(signal.SIGTERM)
            code = station.stopped()
            where = f"SIGTERM {offset * 1000:.0f} ms after the first instruction (run {run}):\n{station.log()}"
            assert code == 0, where
            assert not database.with_name("kiosk.db-wal").exists(), "database not closed: " + where
            online = {s["boot"] for s in statuses(staff.messages) if s["state"] == "online"}
            staff.wait_for(lambda m: online <= {s["boot"] for s in statuses(m) if s["state"] == "offline"},
                           STOP_S, "`offline` for every `online`: " + where)
            assert not [s for s in statuses(staff.messages) if s["state"] not in ("online", "offline")], where
    finally:
        staff.close()
