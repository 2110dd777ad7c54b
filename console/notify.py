"""Desktop notifications for the console's alerts through notify-send (libnotify), never blocking the UI."""
from __future__ import annotations

import html
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from console.alerts import Notice, Severity

__all__ = ["SESSION_VARIABLES", "DesktopNotifier", "Notifier", "graphical_session"]

log = logging.getLogger(__name__)

SESSION_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")
MAX_BODY = 1000  # characters of a notification's body
URGENCY = {Severity.ERROR: "critical", Severity.WARNING: "normal", Severity.INFORMATION: "low"}


class Notifier(Protocol):
    """Where ringing notices go besides the terminal bell (which the UI rings itself)."""

    def ring(self, notices: Sequence[Notice]) -> None:
        """Tell the agent about the ringing ones among one ``AlertDesk.due()`` answer; return at once."""


def graphical_session(environ: Mapping[str, str]) -> bool:
    """True if the environment names a display or a session bus a notification daemon can be reached on."""
    return any(environ.get(name) for name in SESSION_VARIABLES)


class DesktopNotifier:
    """One desktop notification per ``due()`` answer that rings, through ``notify-send`` (Debian: libnotify-bin).

    Off when there is no graphical session or no ``notify-send`` on ``PATH``. It starts
    ``notify-send`` and returns (children are reaped on later calls); at most one notification
    every ``min_interval_s`` and ``max_running`` unfinished ``notify-send`` at once; notices
    skipped by that limit are counted in the next notification. The first failure (the program
    cannot start, or exits non-zero) is logged once and turns desktop notifications off.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, min_interval_s: float = 2.0,
                 max_running: int = 4, app_name: str = "kiosk console",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._env = dict(os.environ if environ is None else environ)
        self._min_interval_s = min_interval_s
        self._max_running = max_running
        self._app_name = app_name
        self._clock = clock
        self._children: list[subprocess.Popen[bytes]] = []
        self._last: float | None = None
        self._skipped = 0
        self._program: str | None = None
        if not graphical_session(self._env):
            log.info("desktop notifications off: no graphical session (%s unset)", ", ".join(SESSION_VARIABLES))
        else:
            self._program = shutil.which("notify-send", path=self._env.get("PATH", os.defpath))
            if self._program is None:
                log.info("desktop notifications off: notify-send not found (Debian: apt install libnotify-bin)")

    @property
    def enabled(self) -> bool:
        """Whether notifications are sent (False without a session or notify-send, or after a failure)."""
        return self._program is not None

    def ring(self, notices: Sequence[Notice]) -> None:
        """Start one ``notify-send`` for the ringing notices (urgency critical if one is an error)."""
        ringing = [n for n in notices if n.rings]
        self.running()
        if not ringing or self._program is None:
            return
        now = self._clock()
        if (self._last is not None and now - self._last < self._min_interval_s) or \
                len(self._children) >= self._max_running:
            self._skipped += len(ringing)
            log.debug("desktop notification skipped (%d waiting)", self._skipped)
            return
        title, body = _text(ringing, self._skipped)
        urgency = "critical" if any(n.severity == Severity.ERROR for n in ringing) else URGENCY[ringing[0].severity]
        args = [self._program, f"--app-name={self._app_name}", f"--urgency={urgency}", "--", title, body]
        try:
            child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=self._env, start_new_session=True)
        except OSError as exc:
            self._off(f"{self._program} could not start: {exc}")
            return
        self._children.append(child)
        self._last, self._skipped = now, 0

    def running(self) -> int:
        """Reap finished ``notify-send`` children; how many are still running."""
        still: list[subprocess.Popen[bytes]] = []
        for child in self._children:
            code = child.poll()
            if code is None:
                still.append(child)
            elif code != 0 and self._program is not None:
                self._off(f"{self._program} exited with status {code}")
        self._children = still
        return len(still)

    def close(self) -> None:
        """End unfinished ``notify-send`` children (when the console quits)."""
        for child in self._children:
            if child.poll() is None:
                child.kill()
                child.wait()
        self._children = []

    def _off(self, why: str) -> None:
        log.warning("desktop notifications off: %s", why)
        self._program = None


def _text(notices: list[Notice], skipped: int) -> tuple[str, str]:
    """The summary line and the body (notification servers read the body as simple markup: escaped)."""
    if len(notices) == 1:
        title, body = notices[0].title, notices[0].message
    else:
        title, body = f"{len(notices)} alerts", "\n".join(n.title for n in notices)
    if skipped:
        body += f"\n(and {skipped} earlier: see the console)"
    return title, html.escape(body[:MAX_BODY], quote=False)
