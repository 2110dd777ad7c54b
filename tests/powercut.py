"""The random power-cut matrix: SIGKILL the station at random moments of payment journeys, recover, check the money.

Shared by tests/test_powercut.py (a seeded, bounded run) and bench/powercut_soak.py (500+ kills);
docs/power-cut.md describes the set-ups, the timers and the invariants.
"""
from __future__ import annotations

import ctypes
import itertools
import logging
import os
import queue
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from powercut_checks import Journal, unsettled_payments, violations
from powercut_terminal import READY, SCRIPTED

from drivers.payment.zvt.simulator import PAIRINGS

log = logging.getLogger("powercut")

ROOT = Path(__file__).resolve().parent.parent
TERMINAL_RUNNER = Path(__file__).resolve().parent / "powercut_terminal.py"
SETUPS = ("A", "B")

# Short ZVT timers, so that a cut costs seconds, not the real T2 (5 s) and vending window (30 s).
VENDING_WINDOW_S = 5  # the station's [terminal] vending_window_s, sent to the terminal as BMP 01
ANSWER_TIMEOUT_S = 1.0  # set-up A's terminal: how long it waits for the station's answer (T3)
ASK_AGAIN_S = 0.5  # set-up A's terminal: re-ask interval after 84 9C 00
T2_S = 1.0  # set-up A's terminal: link repeat timer
LINE_QUIET_MS = 1500  # the station's [terminal] line_quiet_ms: above max(T2_S, ANSWER_TIMEOUT_S)

CUT_MARGIN = 1.15  # a journey is cut at a uniform offset in 0 .. this times its uncut duration (some end uncut)
EARLY_KILLS = 2  # a restart is cut again, up to this many times in a row ...
EARLY_KILL_P = 0.4  # ... each time with this chance ...
EARLY_KILL_S = 4.0  # ... at a uniform offset in its first seconds: start-up, line recovery, reconciliation
JOURNEY_TIMEOUT_S = 90.0  # an uncut journey that runs longer hangs
RECOVERY_TIMEOUT_S = 45.0  # a restarted station settles everything within this
STOP_TIMEOUT_S = 20.0  # a station stops within this after SIGTERM
TERMINAL_START_S = 20.0
POLL_S = 0.05
LOG_POLL_S = 0.005  # a journey's start is seen in its log within this
JOURNEY_BEGUN = "first frame drawn"  # from here on the journey runs (before it, start-up: cut in restarts)
READY_LINES = ("ready: waiting for parkers", "card terminal ready")  # what the station logs once it serves parkers

KINDS = ("approve", "decline", "pin", "cancel")
# Generous first guesses of each journey's duration from its first frame, until an uncut one is measured.
GUESS_S = {"approve": 2.0, "decline": 2.5, "pin": 3.5, "cancel": 2.5}
START = "start 2026-01-05T10:00:00+01:00"
# PYTHONPATH: the station and terminal run the code of this checkout, also when it is a copy of another commit.
ENV = {**{k: v for k, v in os.environ.items() if k != "KIOSK_CRASHPOINT"}, "PYTHONPATH": str(ROOT),
       "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}

_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the harness dies, so that no station or terminal outlives it."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class Journey:
    """A parker's payment journey, replayed as a scenario; the terminal's first answer depends on `kind`."""

    kind: str
    plate: str
    minutes: int
    pin_s: float

    @property
    def behaviour(self) -> str:
        """The terminal's behaviour for the journey's first payment (kiosk/cli/scenario.py SIMULATOR_WORDS)."""
        return {"approve": "approve", "decline": "decline 05 Declined", "pin": f"pin {self.pin_s:.1f} girocard",
                "cancel": "wait-card"}[self.kind]

    def scenario(self, scripted: bool) -> str:
        """The scenario file; `scripted` puts the terminal's behaviour in it (the in-process simulator of set-up B)."""
        plate = self.plate
        middle = {"approve": [],
                  "decline": ["expect screen declined", "help press", "help release", "expect row help_ticket state=waiting",
                              "tap help:cancel", "tap retry"],  # the parker calls for help: the rating names the call
                  "pin": ['expect text "Enter PIN"'],
                  "cancel": ['expect text "The terminal is ready for your card."', "tap cancel", "expect screen duration",
                             f"expect row payment plate={plate} state=declined result_code=108", "tap pay"]}[self.kind]
        steps = [START, "expect screen welcome", "tap start", f"type {plate}", "tap continue",
                 f"duration {self.minutes}", *([f"terminal {self.behaviour}"] if scripted else []), "tap pay", *middle,
                 "expect screen paid", f"expect row payment plate={plate} state=approved confirmed=*", "tap done",
                 f"tap rate:{1 + self.minutes % 5}", "expect screen thanks"]
        return "\n".join(steps) + "\n"


class Process:
    """A child process of the matrix; its output is appended to `log_path` after a header line."""

    def __init__(self, args: list[str], log_path: Path, header: str, **popen: object) -> None:
        self.log_path = log_path
        with log_path.open("a", encoding="utf-8") as out:
            out.write(f"=== {time.strftime('%H:%M:%S')} {header}: {' '.join(args)}\n")
        self._log_start = log_path.stat().st_size
        with log_path.open("ab") as out:
            stdout = popen.pop("stdout", out)
            self.popen = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=stdout, stderr=out,
                                          preexec_fn=_die_with_parent, **popen)  # type: ignore[call-overload]
        self.started = time.monotonic()

    def output(self) -> str:
        """What this process logged so far."""
        with self.log_path.open("rb") as f:
            f.seek(self._log_start)
            return f.read().decode("utf-8", errors="replace")

    def logged(self, text: str, timeout: float) -> float | None:
        """The time by which it has logged `text` (polled); None if it ended or `timeout` s passed first."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while text not in self.output():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                return None
            pause.wait(LOG_POLL_S)
        return time.monotonic()

    def cut_at(self, when: float) -> bool:
        """Let it run until `when` (time.monotonic()), then SIGKILL it (a power cut); False if it ended first."""
        try:
            self.popen.wait(timeout=max(0.0, when - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
        return self.popen.returncode == -signal.SIGKILL

    def kill(self) -> None:
        """SIGKILL it (if it still runs) and reap it."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()

    def stop(self) -> int | None:
        """SIGTERM and its exit code; None (and SIGKILL) if it does not stop within STOP_TIMEOUT_S."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class Terminal:
    """Set-up A's card terminal: tests/powercut_terminal.py in a process of its own that outlives every station."""

    def __init__(self, link: Path, journal: Path, log_path: Path, pairing: str) -> None:
        self._args = [sys.executable, str(TERMINAL_RUNNER), "--link", str(link), "--journal", str(journal),
                      "--answer-timeout", str(ANSWER_TIMEOUT_S), "--ask-again", str(ASK_AGAIN_S), "--t2", str(T2_S),
                      "--pairing", pairing]
        self.log_path = log_path
        self._process: Process | None = None
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    def start(self) -> None:
        """Power it on (it recovers from its journal) and wait until it serves the pty."""
        self._lines = queue.SimpleQueue()
        self._process = Process(self._args, self.log_path, "terminal", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        threading.Thread(target=self._read, args=(self._process.popen, self._lines), daemon=True).start()
        self._expect(READY)

    @staticmethod
    def _read(popen: subprocess.Popen[str], lines: queue.SimpleQueue[str]) -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            lines.put(line)

    def _expect(self, word: str) -> None:
        try:
            line = self._lines.get(timeout=TERMINAL_START_S)
        except queue.Empty:
            raise RuntimeError(f"the terminal did not say {word!r}; see {self.log_path}") from None
        if not line.startswith(word):
            raise RuntimeError(f"the terminal said {line!r} instead of {word!r}; see {self.log_path}")

    def script(self, behaviour: str) -> None:
        """Make `behaviour` the next payment's (replacing one left unused) and wait until the terminal has it."""
        assert self._process is not None and self._process.popen.stdin is not None
        self._process.popen.stdin.write(behaviour + "\n")
        self._process.popen.stdin.flush()
        self._expect(SCRIPTED)

    def alive(self) -> bool:
        """True while the terminal's process runs."""
        return self._process is not None and self._process.popen.poll() is None

    def power_cycle(self) -> None:
        """Cut its power and switch it on again: it auto-reverses what it had authorized (its own recovery)."""
        if self._process is not None:
            self._process.kill()
        self.start()

    def close(self) -> None:
        """Switch it off: end of stdin, SIGKILL if it does not stop."""
        if self._process is None:
            return
        popen = self._process.popen
        try:
            if popen.stdin is not None:
                popen.stdin.close()
            popen.wait(STOP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()


class Cabinet:
    """One station's configuration, database and card terminal, for set-up A or B."""

    def __init__(self, folder: Path, setup: str, pairing: str) -> None:
        if setup not in SETUPS or pairing not in PAIRINGS or (setup == "B" and pairing != "loose"):
            raise ValueError(f"set-up A (loose or strict pairing) or B (the in-process simulator, loose), "
                             f"got {setup} {pairing}")
        folder.mkdir(parents=True, exist_ok=True)
        self.setup = setup
        self.db = folder / "kiosk.db"
        self.logs = folder / "logs"
        self.logs.mkdir(exist_ok=True)
        self.config = folder / "kiosk.toml"
        terminal = [f'vending_window_s = {VENDING_WINDOW_S}', f"line_quiet_ms = {LINE_QUIET_MS}"]
        self.terminal: Terminal | None = None
        self._refuser: socket.socket | None = None
        self._stations: list[Process] = []
        if setup == "A":
            link = folder / "pt"
            self.journal = Journal(folder / "terminal.jsonl")
            self.terminal = Terminal(link, self.journal.path, folder / "terminal.log", pairing)
            terminal.append(f'port = "{link}"')
            mqtt = []  # no host: no MQTT link at all, the outbox keeps everything
        else:
            self.journal = Journal(self.db.with_suffix(".terminal.jsonl"))  # where `run --simulate` keeps it
            # --simulate without a host would try a broker on localhost:1883: give it a port that refuses instead.
            self._refuser = socket.socket()
            self._refuser.bind(("127.0.0.1", 0))
            mqtt = ["[mqtt]", 'host = "127.0.0.1"', f"port = {self._refuser.getsockname()[1]}"]
        self.config.write_text("\n".join([f'[storage]\ndatabase = "{self.db}"', "[screen]\nfullscreen = false",
                                          "[terminal]", *terminal, *mqtt]) + "\n", encoding="utf-8")
        if self.terminal is not None:
            self.terminal.start()

    def station(self, log_path: Path, header: str, scenario: Path | None = None) -> Process:
        """Start `kiosk run` (with --simulate in set-up B), replaying `scenario` if given."""
        args = [sys.executable, "-m", "kiosk.cli", "--log-level", "DEBUG", "run", "--headless", "--config",
                str(self.config), *(["--simulate"] if self.setup == "B" else []),
                *(["--scenario", str(scenario)] if scenario is not None else [])]
        self._stations = [station for station in self._stations if station.popen.poll() is None]
        self._stations.append(Process(args, log_path, header))
        return self._stations[-1]

    def close(self) -> None:
        """Kill any station still running (a run that failed half-way), switch the terminal off, free the port."""
        for station in self._stations:
            station.kill()
        if self.terminal is not None:
            self.terminal.close()
        if self._refuser is not None:
            self._refuser.close()


@dataclass
class Violation:
    """A broken invariant, with what is needed to reproduce it."""

    seed: int
    setup: str
    cycle: int
    kill: int
    cuts: tuple[str, ...]
    what: str
    log: Path
    journal: Path

    def __str__(self) -> str:
        return (f"seed {self.seed}, set-up {self.setup}, cycle {self.cycle} (kill {self.kill}; "
                f"{'; '.join(self.cuts) or 'no cut'}): {self.what}\n"
                f"    station log: {self.log}\n    journal: {self.journal}")


@dataclass
class Tally:
    """What a run did and found."""

    kills: int = 0
    journeys: int = 0
    restarts: int = 0
    violations: list[Violation] = field(default_factory=list)
    elapsed_s: float = 0.0

    @classmethod
    def total(cls, tallies: list[Tally]) -> Tally:
        """The figures of several runs together."""
        return cls(sum(t.kills for t in tallies), sum(t.journeys for t in tallies), sum(t.restarts for t in tallies),
                   [v for t in tallies for v in t.violations], sum(t.elapsed_s for t in tallies))

    def summary(self) -> str:
        """'kills K, journeys J, restarts R, violations V, elapsed E s'."""
        return (f"kills {self.kills}, journeys {self.journeys}, restarts {self.restarts}, "
                f"violations {len(self.violations)}, elapsed {self.elapsed_s:.1f} s")


class Matrix:
    """Power cuts on one cabinet: each cycle runs a journey, cuts it, restarts (cutting some restarts again),
    waits for recovery, stops the station cleanly and checks the invariants."""

    def __init__(self, folder: Path, setup: str, pairing: str, seed: int) -> None:
        self.seed = seed
        self.label = f"A/{pairing}" if setup == "A" else "B"
        self.rng = random.Random(f"{seed}/{self.label}")
        self.cabinet = Cabinet(folder, setup, pairing)
        self.tally = Tally()
        self._measured: dict[str, float] = {}  # the longest uncut duration of each kind of journey
        self._cycle = 0
        self._cuts: list[str] = []
        self._log = self.cabinet.logs
        self._known: set[str] = set()

    def run(self, kills: int) -> Tally:
        """Cycles until `kills` SIGKILLs were made; the first cycle's journey is never cut (a baseline)."""
        started = time.monotonic()
        try:
            while self.tally.kills < kills:
                self._cycle += 1
                self._run_cycle()
                self.tally.elapsed_s = time.monotonic() - started
                log.info("%s cycle %d: %s", self.label, self._cycle, self.tally.summary())
        finally:
            self.cabinet.close()
            self.tally.elapsed_s = time.monotonic() - started
        return self.tally

    def _run_cycle(self) -> None:
        rng = self.rng  # the same number of draws every cycle: a seed gives the same journeys and cut fractions
        kind, minutes, pin_s = rng.choice(KINDS), rng.choice((30, 60, 90, 120)), rng.uniform(0.5, 1.5)
        fraction = rng.random()
        early = [(rng.random() < EARLY_KILL_P, rng.random() * EARLY_KILL_S) for _ in range(EARLY_KILLS)]
        journey = Journey(kind, f"{self.cabinet.setup}{self._cycle:05d}", minutes, pin_s)
        self._cuts = []
        self._log = self.cabinet.logs / f"cycle-{self._cycle:04d}.log"
        offset = None if self._cycle == 1 else fraction * self._measured.get(kind, GUESS_S[kind]) * CUT_MARGIN
        if self._journey(journey, offset):
            for cut, at in early:
                if not cut:
                    break
                self.tally.restarts += 1
                restart = self.cabinet.station(self._log, f"restart, cut at {at:.3f}")
                if not self._cut(restart, restart.started, at, "restart"):
                    self._violation(f"a restart ended by itself within {at:.3f} s (exit {restart.popen.returncode})")
            self._recover()
        self._check()

    def _journey(self, journey: Journey, offset: float | None) -> bool:
        """Run the journey, cut `offset` s after its first frame (None: never); True if the station must recover."""
        scenario = self._log.with_suffix(".scn")
        scenario.write_text(journey.scenario(scripted=self.cabinet.terminal is None), encoding="utf-8")
        terminal = self.cabinet.terminal
        if terminal is not None:
            if not terminal.alive():
                self._violation("the terminal's process died; switched on again")
                terminal.start()
            terminal.script(journey.behaviour)
        self.tally.journeys += 1
        station = self.cabinet.station(self._log, f"journey {journey.kind} {journey.plate}, cut at {offset}", scenario)
        begun = station.logged(JOURNEY_BEGUN, JOURNEY_TIMEOUT_S) or time.monotonic()
        if offset is not None:
            if self._cut(station, begun, offset, f"journey {journey.kind}"):
                return True
        elif station.cut_at(begun + JOURNEY_TIMEOUT_S):
            self._violation(f"the uncut journey did not end within {JOURNEY_TIMEOUT_S} s")
            return True
        if station.popen.returncode != 0:
            self._violation(f"journey {journey.kind} ran uncut and failed (exit {station.popen.returncode}): "
                            f"{_scenario_report(station.output())}")
            return True
        self._measured[journey.kind] = max(self._measured.get(journey.kind, 0.0), time.monotonic() - begun)
        return False

    def _cut(self, process: Process, since: float, offset: float, what: str) -> bool:
        """Cut `process` `offset` s after `since`; counted as a kill if it still ran."""
        if not process.cut_at(since + offset):
            return False
        self.tally.kills += 1
        self._cuts.append(f"{what} cut at {offset:.3f} s")
        return True

    def _recover(self) -> None:
        """Restart the station and let it recover; then SIGTERM it, which must end it cleanly."""
        self.tally.restarts += 1
        station = self.cabinet.station(self._log, "restart to recover")
        try:
            unmet = self._until(lambda: self._unmet(station), lambda: station.popen.poll() is not None)
            code = station.popen.poll()
            if code is not None:
                self._violation(f"the restarted station exited by itself (exit {code}): "
                                f"{'; '.join(unmet) or 'after it recovered'}")
            else:
                if unmet:
                    self._violation(f"not recovered after {RECOVERY_TIMEOUT_S} s: {'; '.join(unmet)}")
                code = station.stop()
                if code != 0:
                    self._violation(f"SIGTERM did not stop the station cleanly: exit {code} (None: still running "
                                    f"after {STOP_TIMEOUT_S} s)")
        finally:
            station.kill()
        if self.cabinet.terminal is not None and any(READY_LINES[1] in why for why in unmet):
            log.warning("the terminal never became ready for the station: switched off and on to go on")
            self.cabinet.terminal.power_cycle()

    def _unmet(self, station: Process) -> list[str]:
        """What keeps the restarted station from counting as recovered; empty once it has."""
        output = station.output()
        unmet = [f"'{line}' not logged" for line in READY_LINES if line not in output]
        try:
            unmet += unsettled_payments(self.cabinet.db)
        except sqlite3.Error as exc:
            unmet.append(f"database unreadable: {exc}")
        return unmet + [f"{b} still authorized at the terminal" for b in self.cabinet.journal.open_authorizations()]

    @staticmethod
    def _until(unmet: Callable[[], list[str]], ended: Callable[[], bool]) -> list[str]:
        """Poll `unmet` until it is empty, `ended` holds or RECOVERY_TIMEOUT_S passes; its last answer."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        pause = threading.Event()
        while True:
            found = unmet()
            if not found or ended() or time.monotonic() > deadline:
                return found
            pause.wait(POLL_S)

    def _check(self) -> None:
        """The invariants between the stopped station's database and the terminal's journal."""
        if not self.cabinet.db.exists():
            self._violation("no database after the station ran")
            return
        for what in violations(self.cabinet.db, self.cabinet.journal):
            if what not in self._known:  # the database and journal keep it: report it once, where it appeared
                self._known.add(what)
                self._violation(what)

    def _violation(self, what: str) -> None:
        found = Violation(self.seed, self.label, self._cycle, self.tally.kills, tuple(self._cuts), what, self._log,
                          self.cabinet.journal.path)
        log.warning("violation: %s", found)
        self.tally.violations.append(found)


def _scenario_report(output: str) -> str:
    """The report a failed scenario printed (`scenario failed: ...` and its indented lines), or the log's last line."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("scenario failed:")), None)
    if start is None:
        return lines[-1] if lines else "(nothing logged)"
    report = [lines[start]] + list(itertools.takewhile(lambda line: line.startswith("  "), lines[start + 1:]))
    return "\n    ".join(report)


def run_matrix(folder: Path, seed: int, plan: list[tuple[str, str, int]]) -> dict[str, Tally]:
    """Run each (set-up, pairing, kills) of `plan` on its own cabinet under `folder`; each one's figures by name."""
    tallies = {}
    for setup, pairing, kills in plan:
        name = f"{setup}-{pairing}" if setup == "A" else setup
        tallies[name] = Matrix(folder / name, setup, pairing, seed).run(kills)
        log.info("set-up %s: %s", name, tallies[name].summary())
    return tallies
