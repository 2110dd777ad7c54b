"""Time for the ZVT code: a monotonic clock that the code also waits on; the real one unless a test passes its own."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

Ready = Callable[[float], bool]
"""Looks for what a wait waits for, blocking at most the seconds given; True once it happened.

``threading.Event.wait`` is one; so is a select() on a descriptor, a queue's ``get`` or one
read of a port whose own timeout bounds it (such a probe may return sooner than asked).
"""


class Clock(Protocol):
    """Monotonic seconds, and a wait on them (kiosk.ports is its eventual home)."""

    def monotonic(self) -> float:
        """Seconds since some fixed point; never goes back."""

    def wait(self, ready: Ready, timeout: float) -> bool:
        """Call ``ready`` until it returns True or ``timeout`` seconds pass on this clock; whether it did.

        ``ready`` is called at least once, even with a timeout of 0 or less, and given how long
        it may block. A fake clock may give it less (0: look, do not wait) and move its time on
        by itself when nothing can happen before the timeout but the timeout.
        """


class MonotonicClock:
    """The real clock: time.monotonic, and waits that block in ``ready`` until the deadline."""

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def wait(self, ready: Ready, timeout: float) -> bool:
        """Call ``ready`` with the time left until it returns True or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            if ready(max(0.0, deadline - time.monotonic())):
                return True
            if time.monotonic() >= deadline:
                return False


REAL_CLOCK = MonotonicClock()
