"""Scenario replay: a file of steps (taps, terminal outcomes, clock, expectations) run against the real service."""
from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from kiosk.app.loop import Loop
from kiosk.domain import journey
from kiosk.domain.events import Event, HelpPressed, HelpReleased

log = logging.getLogger(__name__)

MAX_TICKS_PER_ADVANCE = 10_000
EXPECT_TIMEOUT_S = 10.0  # devices answer in real time: an expectation may take this long to come true
UNITS = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1), "m": timedelta(minutes=1),
         "h": timedelta(hours=1), "d": timedelta(days=1)}


class ScenarioError(Exception):
    """A step could not be parsed or an expectation was not met; str() is the readable report."""


@dataclass(frozen=True)
class Step:
    """One line of a scenario file."""

    source: str
    line: int
    words: tuple[str, ...]

    def where(self) -> str:
        """'file:line: the step' for reports."""
        return f"{self.source}:{self.line}: {' '.join(self.words)}"


class ManualClock:
    """A clock that moves only when told (deterministic replays)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the scenario clock needs a timezone-aware start")
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        """Move to `when` (never backwards)."""
        self._now = max(self._now, when)


class ScriptableSimulator(Protocol):
    """The terminal simulator's scripting hooks (drivers.payment.zvt.simulator.Simulator).

    They script the device's side of a simulated card terminal; this is not a payment seam:
    the station still pays through the ZVT driver, a kiosk.ports.PaymentMethod like any other.
    """

    def script_words(self, words: list[str]) -> None: ...

    def set_status(self, status: int) -> None: ...

    def inject(self, fault: str, count: int = 1) -> None: ...


SIMULATOR_WORDS = ("approve [BRAND] | decline CODE [TEXT] | wait-card | silent | pin SECONDS [BRAND] | status XX"
                   " | inject FAULT [N]")


def script_simulator(simulator: ScriptableSimulator, words: list[str]) -> None:
    """Apply one behaviour line (SIMULATOR_WORDS) to the terminal simulator; ValueError if it is not one."""
    if not words:
        raise ValueError(f"expected {SIMULATOR_WORDS}")
    if words[0] == "status" and len(words) == 2:
        simulator.set_status(int(words[1], 16))
    elif words[0] == "inject" and len(words) in (2, 3):
        simulator.inject(words[1], int(words[2]) if len(words) == 3 else 1)
    else:
        simulator.script_words(words)


class Target(Protocol):
    """A tap target's rectangle (pygame.Rect has this)."""

    center: tuple[int, int]


class ScenarioDisplay(Protocol):
    """What the runner needs from the display."""

    def press(self, x: int, y: int) -> None: ...

    def release(self, x: int, y: int) -> list: ...

    def targets(self) -> Mapping[str, Target]: ...

    def texts(self) -> list[str]: ...

    def screenshot(self, path: Path) -> None: ...


def parse(text: str, source: str) -> tuple[datetime | None, list[Step]]:
    """Split a scenario into steps; the optional first step `start ISO-TIME` sets the clock."""
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            words = tuple(shlex.split(raw, comments=True))
        except ValueError as exc:
            raise ScenarioError(f"{source}:{number}: cannot split the line: {exc}") from exc
        if words:
            steps.append(Step(source, number, words))
    start = None
    if steps and steps[0].words[0] == "start":
        first = steps.pop(0)
        start = _parse_start(first)
    for step in steps:
        if step.words[0] not in VERBS:
            raise ScenarioError(f"{step.where()}: unknown step '{step.words[0]}'; steps: start, {', '.join(sorted(VERBS))}")
    return start, steps


def _parse_start(step: Step) -> datetime:
    try:
        start = datetime.fromisoformat(step.words[1])
    except (IndexError, ValueError) as exc:
        raise ScenarioError(f"{step.where()}: expected 'start 2026-05-04T09:00:00+02:00'") from exc
    if start.tzinfo is None:
        raise ScenarioError(f"{step.where()}: the start time needs a UTC offset, e.g. +02:00")
    return start


def parse_duration(text: str) -> timedelta:
    """'90s', '5m', '1h', '250ms' -> timedelta."""
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * UNITS[unit]
    raise ValueError(f"expected a duration like 30s, 5m, 2h, got {text!r}")


class Runner:
    """Runs steps against a loop, on the loop's thread: a replay's loop on a ManualClock, or a live one.

    Without ``clock`` (a live simulated station, driven by `kiosk sim`, runs on real time)
    ``advance`` is refused.
    """

    def __init__(self, loop: Loop, display: ScenarioDisplay, terminal: ScriptableSimulator | None,
                 clock: ManualClock | None, base_dir: Path) -> None:
        self.loop = loop
        self.display = display
        self.terminal = terminal
        self.clock = clock
        self.base_dir = base_dir

    def run(self, steps: list[Step]) -> None:
        """Run every step; raise ScenarioError with a report at the first failure."""
        self.loop.settle()
        for step in steps:
            self.step(step)

    def step(self, step: Step) -> None:
        """Run one step and settle the loop; ScenarioError with a report (the step, why, the screen) if it fails."""
        try:
            VERBS[step.words[0]](self, list(step.words[1:]))
        except ScenarioError as exc:
            raise ScenarioError(f"{step.where()}\n  {exc}\n{self._situation()}") from None
        except (ValueError, IndexError) as exc:
            raise ScenarioError(f"{step.where()}\n  bad step: {exc}\n{self._situation()}") from None
        self.loop.settle()
        log.debug("step done: %s", step.where())

    def _situation(self) -> str:
        state = self.loop.state
        return (f"  screen: {state.screen}, plate: {state.plate!r}, minutes: {state.minutes}\n"
                f"  targets: {', '.join(sorted(self.display.targets()))}\n"
                f"  texts: {' | '.join(self.display.texts())}")

    # ---- steps ----

    def tap(self, args: list[str]) -> None:
        """tap TARGET: press and release at the centre of a target on screen."""
        (target,) = args
        rect = self.display.targets().get(target)
        if rect is None:
            raise ScenarioError(f"no target '{target}' on screen {self.loop.state.screen}")
        self.display.press(*rect.center)
        for event in self.display.release(*rect.center):
            self.loop.post(event)
        self.loop.settle()

    def type(self, args: list[str]) -> None:
        """type TEXT: tap the keyboard key of each character."""
        (text,) = args
        for char in text.upper():
            self.tap([f"key:{char}"])

    def duration(self, args: list[str]) -> None:
        """duration MINUTES: tap plus/minus until the duration shows MINUTES."""
        wanted = int(args[0])
        for _ in range(1000):
            minutes = self.loop.state.minutes
            if minutes == wanted:
                return
            before = minutes
            self.tap(["plus" if minutes < wanted else "minus"])
            if self.loop.state.minutes == before:
                break
        raise ScenarioError(f"cannot reach {wanted} min; the duration stays at {self.loop.state.minutes} min")

    def script_terminal(self, args: list[str]) -> None:
        """terminal BEHAVIOUR: what the simulated terminal does next (SIMULATOR_WORDS)."""
        if self.terminal is None:
            raise ScenarioError("the terminal can only be scripted with --simulate (the simulator runs in the station)")
        script_simulator(self.terminal, args)

    def help(self, args: list[str]) -> None:
        """help press|release: the physical help button."""
        (action,) = args
        events: dict[str, Event] = {"press": HelpPressed(), "release": HelpReleased()}
        if action not in events:
            raise ValueError("expected 'help press' or 'help release'")
        self.loop.post(events[action])

    def advance(self, args: list[str]) -> None:
        """advance DURATION: move the clock, firing every deadline on the way at its own time."""
        clock = self.clock
        if clock is None:
            raise ScenarioError("advance needs a replay's manual clock; a live station runs on real time")
        target = clock() + parse_duration(args[0])
        for _ in range(MAX_TICKS_PER_ADVANCE):
            due = journey.deadline(self.loop.state)
            if due is None or due > target:
                break
            clock.set(due)
            self.loop.settle()
        clock.set(target)

    def expect(self, args: list[str]) -> None:
        """expect screen NAME | text TEXT | no-text TEXT | row TABLE k=v.. | rows TABLE N k=v..

        Waits up to EXPECT_TIMEOUT_S of real time for the expectation to come true (devices
        such as the card terminal answer in real time), handling events meanwhile.
        """
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        pause = threading.Event()
        while True:
            try:
                self._expect_now(args)
                return
            except ScenarioError:
                if time.monotonic() >= deadline:
                    raise
            pause.wait(0.005)
            self.loop.settle()

    def _expect_now(self, args: list[str]) -> None:
        kind, *rest = args
        if kind == "screen":
            if str(self.loop.state.screen) != rest[0]:
                raise ScenarioError(f"expected screen {rest[0]}, but it is {self.loop.state.screen}")
        elif kind in ("text", "no-text"):
            wanted = " ".join(rest)
            present = any(wanted in text for text in self.display.texts())
            if present != (kind == "text"):
                raise ScenarioError(f"expected {'' if kind == 'text' else 'no '}text containing {wanted!r}")
        elif kind in ("row", "rows"):
            self._expect_rows(kind, rest)
        else:
            raise ValueError(f"unknown expectation '{kind}'; expected screen, text, no-text, row, rows")

    def _expect_rows(self, kind: str, args: list[str]) -> None:
        store = self.loop.store
        if not store.usable:
            raise ScenarioError("no database is open")
        table, *conditions = args
        count = None
        if kind == "rows":
            count, conditions = int(conditions[0]), conditions[1:]
        wanted = dict(c.split("=", 1) for c in conditions)
        matching = [r for r in store.rows(table) if all(_matches(r.get(k), v) for k, v in wanted.items())]
        if (count is None and not matching) or (count is not None and len(matching) != count):
            expected = "at least 1" if count is None else str(count)
            raise ScenarioError(f"expected {expected} {table} row(s) with {wanted}, found {len(matching)}")

    def screenshot(self, args: list[str]) -> None:
        """screenshot FILE: save the current frame as PNG (relative to the scenario's folder)."""
        path = self.base_dir / args[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.display.screenshot(path)


def _matches(value: object, wanted: str) -> bool:
    """A column value against a scenario's `k=v`: `*` matches any value that is set (not NULL)."""
    return value is not None if wanted == "*" else str(value) == wanted


VERBS: dict[str, Callable[[Runner, list[str]], None]] = {
    "tap": Runner.tap,
    "type": Runner.type,
    "duration": Runner.duration,
    "terminal": Runner.script_terminal,
    "help": Runner.help,
    "advance": Runner.advance,
    "expect": Runner.expect,
    "screenshot": Runner.screenshot,
}
