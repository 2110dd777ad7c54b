"""Malformed messages from stations, logged as a summary: one warning a minute at most, with a count and an example."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

__all__ = ["MalformedWarnings"]

log = logging.getLogger(__name__)


class MalformedWarnings:
    """Malformed messages, logged as at most one warning per ``every``: the first at once, then a count with an example."""

    def __init__(self, what: str, every: timedelta) -> None:
        """Warn at most once per ``every``; ``what`` (the console's history, its board) starts every warning."""
        self.what = what
        self.every = every
        self.count = 0
        self.example = ""
        self.last: datetime | None = None

    def note(self, topic: str, reason: str, now: datetime) -> None:
        """One more malformed message."""
        self.count += 1
        if not self.example:
            self.example = f"{_printable(topic)}: {_printable(reason)}"
        self.flush_if_due(now)

    def flush_if_due(self, now: datetime) -> None:
        """Log what was counted, unless a warning went out less than ``every`` ago."""
        if not self.count or (self.last is not None and now - self.last < self.every):
            return
        if self.count == 1:
            log.warning("%s: skipped a malformed message: %s", self.what, self.example)
        else:
            log.warning("%s: skipped %d malformed messages, the first: %s", self.what, self.count, self.example)
        self.count, self.example, self.last = 0, "", now


def _printable(text: str) -> str:
    text = text[:200].encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c.isprintable() else "?" for c in text)
