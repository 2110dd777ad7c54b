"""What a driver or link posted to the loop, collected from whichever thread posts it, for tests to wait on."""
from __future__ import annotations

import threading
from typing import Any

from conftest import wait_for

from kiosk.domain.events import Event


class Posted:
    """The loop's side of a driver or link: every posted event, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[Event]:
        """Everything posted so far."""
        with self._lock:
            return list(self._events)

    def of(self, kind: type) -> list[Any]:
        """The posted events of one type."""
        return [e for e in self.events if isinstance(e, kind)]

    def wait(self, kind: type, count: int = 1, timeout: float = 10.0) -> list[Any]:
        """Wait until ``count`` events of ``kind`` were posted; return them all."""
        wait_for(lambda: len(self.of(kind)) >= count, timeout, f"{count} {kind.__name__}")
        return self.of(kind)

    def wait_for(self, expected: list[Event], timeout: float = 2) -> None:
        """Wait until exactly ``expected`` has been posted (fails on anything else once enough is there)."""
        wait_for(lambda: len(self.events) >= len(expected), timeout, f"events {expected}")
        assert self.events == expected
