"""The service manager's side of the station: systemd's notify protocol (READY, WATCHDOG, STATUS, STOPPING)."""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["SystemdNotifier"]

log = logging.getLogger(__name__)


class SystemdNotifier:
    """kiosk.ports.ServiceManager over ``$NOTIFY_SOCKET`` (sd_notify(3) without libsystemd: one datagram a message).

    Without ``$NOTIFY_SOCKET`` (not started by systemd, or ``Type=simple``) every call does
    nothing. ``watchdog_interval`` is half of ``$WATCHDOG_USEC`` (when ``$WATCHDOG_PID`` is
    absent or names this process), as sd_watchdog_enabled(3) advises; None without a watchdog.
    A message that cannot be sent is logged once, then counted.
    """

    def __init__(self, environment: Mapping[str, str] | None = None) -> None:
        env = os.environ if environment is None else environment
        socket_name = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + socket_name[1:] if socket_name.startswith("@") else socket_name
        self._failures = 0
        self._status = ""
        self.watchdog_interval: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if self._address and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000 / 2

    @property
    def enabled(self) -> bool:
        """A service manager listens."""
        return bool(self._address)

    def ready(self, status: str) -> None:
        """The station can serve parkers now."""
        self._status = status
        self._send(f"READY=1\nSTATUS={status}")

    def alive(self) -> None:
        """The loop went round: feed the watchdog."""
        if self.watchdog_interval is not None:
            self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """What the station is doing, for `systemctl status` (sent only when it changed)."""
        if text != self._status:
            self._status = text
            self._send(f"STATUS={text}")

    def stopping(self) -> None:
        """The station is stopping on purpose."""
        self._send("STOPPING=1\nSTATUS=stopping")

    def _send(self, message: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            self._failures += 1
            if self._failures == 1:
                log.warning("cannot notify the service manager at %r: %s (further failures are only counted)",
                            self._address, exc)
            elif self._failures % 100 == 0:
                log.warning("%d notifications to the service manager failed so far", self._failures)
