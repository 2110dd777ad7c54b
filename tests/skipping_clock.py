"""A fake clock for the ZVT driver and simulator on a pty: real time, except that a timer nobody can beat expires at once."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SETTLE_S = 0.03  # how long (real) everybody must have waited and looked before time jumps
PAUSE_S = 0.002  # between two looks of a waiting thread (any change wakes it sooner)


class SkippingClock:
    """A drivers.payment.zvt.clock.Clock shared by threads that wait for each other: real time plus jumps.

    Its time is the real monotonic time plus what it skipped. It skips when each of the
    ``parties`` threads waits on it, each has looked (its ``ready`` said no) since anything last
    happened, and ``settle_s`` real seconds have passed since then: nothing but a deadline can
    happen any more, so time jumps to the earliest deadline that any of them waits for (a thread
    waits for the deadline of its innermost wait: an outer one counts once that returned), and
    that timer expires at once instead of after real seconds. Time then stands still until each
    thread whose deadline it reached has left that wait (it may be in the middle of a blocking
    read), so that a later deadline, however close, still expires later. Everything else runs in
    real time.

    What happens: a ``ready`` that says yes, a thread that starts waiting, a new value of
    ``activity()`` (e.g. the byte counters of both ends of the line), a skip, the end of a hold.
    A ``ready`` is given 0 s (look, do not block); a pyserial read still blocks for its own timeout.
    """

    def __init__(self, parties: int = 2, settle_s: float = SETTLE_S) -> None:
        """A clock that skips only once ``parties`` threads all wait on it."""
        self.parties = parties
        self.settle_s = settle_s
        self.skipped_s = 0.0
        self.skips = 0
        self._activity: Callable[[], object] = lambda: None
        self._seen: object = None
        self._cond = threading.Condition()
        self._deadlines: dict[int, list[float]] = {}  # per waiting thread, its nested waits' deadlines
        self._looked: dict[int, int] = {}  # per waiting thread, the generation its last look began in
        self._generation = 0
        self._changed_at = time.monotonic()
        self._holds = 0
        self._frozen: float | None = None  # the time of the last skip, until its timers have fired
        self._due: dict[int, int] = {}  # the threads whose deadline the last skip reached: how deep that wait is

    def watch(self, activity: Callable[[], object]) -> None:
        """Treat every new value of ``activity()`` as something that happened (bytes written or read)."""
        self._activity = activity

    @contextmanager
    def hold(self) -> Iterator[None]:
        """No skip inside: for a test's own input (a tap) that must come before a timer could expire."""
        with self._cond:
            self._holds += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                self._changed()

    def monotonic(self) -> float:
        """Real monotonic seconds plus all that was skipped (the time of a skip until its timers fired)."""
        frozen = self._frozen
        return frozen if frozen is not None else time.monotonic() + self.skipped_s

    def wait(self, ready: Callable[[float], bool], timeout: float) -> bool:
        """Look with ``ready`` until it says yes or ``timeout`` passes on this clock (which may then be skipped)."""
        me = threading.get_ident()
        deadline = self.monotonic() + timeout
        with self._cond:
            stack = self._deadlines.setdefault(me, [])
            if not stack:
                self._changed()
            stack.append(deadline)
        try:
            while True:
                with self._cond:
                    generation = self._generation
                if ready(0.0):
                    with self._cond:
                        self._changed()
                    return True
                if self.monotonic() >= deadline:
                    return False
                with self._cond:
                    self._looked[me] = generation
                    if not self._skip():
                        self._cond.wait(PAUSE_S)
        finally:
            with self._cond:
                stack.pop()
                if not stack:
                    del self._deadlines[me]
                    self._looked.pop(me, None)
                if me in self._due and len(stack) < self._due[me]:
                    del self._due[me]
                    if not self._due and self._frozen is not None:
                        self.skipped_s = self._frozen - time.monotonic()
                        self._frozen = None
                        self._changed()

    def _changed(self) -> None:
        """Something happened: everybody must look again, and the settle time starts again (lock held)."""
        self._generation += 1
        self._changed_at = time.monotonic()
        self._cond.notify_all()

    def _skip(self) -> bool:
        """Jump to the earliest deadline if nothing else can happen before it; whether it did (lock held)."""
        seen = self._activity()
        if seen != self._seen:
            self._seen = seen
            self._changed()
            return False
        if self._holds or self._frozen is not None or len(self._deadlines) < self.parties:
            return False
        if any(self._looked.get(thread, -1) < self._generation for thread in self._deadlines):
            return False
        if time.monotonic() - self._changed_at < self.settle_s:
            return False
        target = min(stack[-1] for stack in self._deadlines.values())
        now = self.monotonic()
        if math.isinf(target) or target <= now:
            return False
        self.skipped_s += target - now
        self.skips += 1
        self._frozen = target
        self._due = {thread: len(stack) for thread, stack in self._deadlines.items() if stack[-1] <= target}
        self._changed()
        return True
