"""Repeated warnings summarised: the same message is logged once, then counted, and said again with its count."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["REPEAT_WINDOW_S", "RepeatFilter"]

REPEAT_WINDOW_S = 600.0  # a message repeated within ten minutes is counted, not logged again
MAX_KEYS = 256  # messages remembered at once (the oldest is forgotten first)


class RepeatFilter(logging.Filter):
    """A logging filter for the station's handler: a WARNING or worse whose text was logged less than ``window``
    seconds ago is dropped and counted; the next one after the window is logged with "(N more like it since ...)".

    So a broker that refuses every reconnection says so once and then every ten minutes, with a
    count, instead of filling the journal. INFO and DEBUG pass untouched.
    """

    def __init__(self, window: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (logged at, dropped since)

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to log ``record`` now (it may gain a count of the repeats dropped before it)."""
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        with self._lock:
            earlier = self._seen.pop(key, None)
            if earlier is not None and now - earlier[0] < self._window:
                self._seen[key] = (earlier[0], earlier[1] + 1)
                return False
            self._seen[key] = (now, 0)
            while len(self._seen) > MAX_KEYS:
                del self._seen[next(iter(self._seen))]
        if earlier is not None and earlier[1]:
            record.msg = f"{key[2]} ({earlier[1]} more like it in the last {now - earlier[0]:.0f} s)"
            record.args = None
        return True
