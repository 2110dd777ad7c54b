"""Health figures of the station's computer for the MQTT telemetry message: CPU temperature and free disk."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature_c(source: Path = THERMAL_ZONE) -> float | None:
    """The SoC temperature in °C (one decimal) where the kernel reports it, else None."""
    try:
        millidegrees = int(source.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return round(millidegrees / 1000, 1)


def disk_free_bytes(path: Path) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing parent), None if unknown."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError as exc:
                log.warning("cannot read free disk space of %s: %s", candidate, exc)
                return None
    return None
