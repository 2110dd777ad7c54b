"""The computer the station runs on, as Linux reports it: temperature, throttling, disk, clock, service, addresses."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

__all__ = ["LinuxHost"]

log = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")  # Raspberry Pi kernels only
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")  # touched by systemd-timesyncd once synchronised
COMMAND_TIMEOUT_S = 5
SERVICE = "kiosk"


class LinuxHost:
    """Reads the machine's health from /sys, systemd's tools and iproute2; each read says None when it cannot tell.

    The file locations are parameters so that tests can point them at files of their own.
    """

    def __init__(self, thermal_zone: Path = THERMAL_ZONE, throttled: Path = THROTTLED,
                 timesync_flag: Path = TIMESYNC_FLAG) -> None:
        self._thermal_zone = thermal_zone
        self._throttled = throttled
        self._timesync_flag = timesync_flag

    def cpu_temperature_c(self) -> float | None:
        """The SoC temperature in °C (one decimal) where the kernel reports it."""
        try:
            millidegrees = int(self._thermal_zone.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        return round(millidegrees / 1000, 1)

    def throttling(self) -> int | None:
        """The Raspberry Pi firmware's throttling word (kiosk.domain.doctor.Throttling); None on other machines."""
        try:
            return int(self._throttled.read_text(encoding="ascii").strip(), 16)
        except (OSError, ValueError):
            return None

    def disk_free_bytes(self, path: Path) -> int | None:
        """Free bytes on the file system holding ``path`` (its nearest existing parent)."""
        for candidate in (path, *path.parents):
            if candidate.exists():
                try:
                    return shutil.disk_usage(candidate).free
                except OSError as exc:
                    log.warning("cannot read free disk space of %s: %s", candidate, exc)
                    return None
        return None

    def clock_synchronised(self) -> tuple[bool | None, str]:
        """Whether the system clock is synchronised, and who said so (timedatectl, else timesyncd's flag file)."""
        said = _run("timedatectl", "show", "--property=NTPSynchronized", "--value")
        if said in ("yes", "no"):
            return said == "yes", "timedatectl"
        if self._timesync_flag.exists():
            return True, "systemd-timesyncd"
        return None, "no timedatectl answer and no systemd-timesyncd flag"

    def service_state(self) -> str | None:
        """systemd's word on the kiosk service (active, activating, failed, inactive, ...); None without systemd."""
        return _run("systemctl", "is-active", SERVICE)

    def addresses(self) -> tuple[str, ...]:
        """The machine's IP addresses with their interfaces (``eth0 192.0.2.7``), loopback left out."""
        said = _run("ip", "-json", "address", "show")
        try:
            interfaces = json.loads(said) if said else []
            return tuple(f"{interface['ifname']} {address['local']}" for interface in interfaces
                         for address in interface.get("addr_info", ())
                         if interface.get("ifname") != "lo" and address.get("scope") == "global")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cannot read the IP addresses: %s", exc)
            return ()


def _run(*command: str) -> str | None:
    """A command's standard output, stripped; None if it is missing, fails to start or times out.

    A non-zero exit still returns what it printed (``systemctl is-active`` exits 3 for "inactive").
    """
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
