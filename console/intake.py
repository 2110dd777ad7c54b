"""Messages from the MQTT thread handed to the UI thread in batches, and whether the retained state has all arrived."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Intake", "Message"]

Message = tuple[str, bytes, bool]  # topic, payload, retained


class Intake:
    """A thread-safe queue: ``put`` from any thread, ``take`` from the UI thread.

    ``wake()`` is called (on the putting thread) when a message arrives at an empty queue, so
    that the UI thread is told once per batch, not once per message. :meth:`loaded` answers
    whether the broker has finished sending the retained state and the UI has applied it.
    """

    def __init__(self, wake: Callable[[], None], quiet_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._wake, self._quiet_s, self._clock = wake, quiet_s, clock
        self._queue: deque[Message] = deque()
        self._lock = threading.Lock()
        self._woken = False
        self._subscribed_at: float | None = None
        self._last_retained = 0.0
        self._retained_in = 0
        self.received = 0

    def put(self, topic: str, payload: bytes, retained: bool) -> None:
        """One message from the broker."""
        with self._lock:
            self._queue.append((topic, payload, retained))
            self.received += 1
            if retained:
                self._last_retained = self._clock()
                self._retained_in += 1
            wake, self._woken = not self._woken, True
        if wake:
            self._wake()

    def take(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages, oldest first; after the queue ran empty the next ``put`` wakes again."""
        with self._lock:
            count = min(limit, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            if not self._queue:
                self._woken = False
            return batch

    def subscribed(self, yes: bool) -> None:
        """The link subscribed (the broker starts sending the retained state), or lost its connection."""
        with self._lock:
            self._subscribed_at = self._clock() if yes else None
            self._last_retained = self._clock()

    @property
    def backlog(self) -> int:
        """Messages waiting for the UI thread."""
        return len(self._queue)

    def loaded(self, retained_applied: int) -> bool:
        """Subscribed, no retained message for ``quiet_s``, and every retained one received applied by the UI
        (``retained_applied``: how many it applied so far); live messages may keep arriving meanwhile."""
        with self._lock:
            return self._subscribed_at is not None and retained_applied >= self._retained_in and \
                self._clock() - self._last_retained >= self._quiet_s
