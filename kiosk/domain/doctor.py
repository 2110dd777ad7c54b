"""The doctor's findings: one judged line per part of the station, and the thresholds that judge the computer."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag, StrEnum
from typing import Any

__all__ = [
    "DISK_FAIL_BYTES", "DISK_WARN_BYTES", "NOW_BITS", "TEMPERATURE_FAIL_C", "TEMPERATURE_WARN_C", "Finding", "Health",
    "Part", "Report", "Throttling", "judge_clock", "judge_disk", "judge_temperature",
]

DISK_WARN_BYTES = 500 * 1024 * 1024
DISK_FAIL_BYTES = 100 * 1024 * 1024  # below this a day of events and a database migration may not fit
TEMPERATURE_WARN_C = 70.0
TEMPERATURE_FAIL_C = 80.0  # a Raspberry Pi starts to slow its CPU down at 80 °C


class Health(StrEnum):
    """How a part is: ``fail`` makes ``kiosk doctor`` exit non-zero; ``warn`` wants a look."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Part(StrEnum):
    """The parts the doctor looks at, in the order a technician reads them."""

    CONFIGURATION = "configuration"
    DATABASE = "database"
    TERMINAL = "terminal"
    GPIO = "gpio"
    DISPLAY = "display"
    VOICE = "voice"
    BROKER = "broker"
    CLOCK = "clock"
    TEMPERATURE = "temperature"
    SERVICE = "service"


@dataclass(frozen=True)
class Finding:
    """One part's health and what a technician should know about it, in one line."""

    part: Part
    health: Health
    detail: str


@dataclass(frozen=True)
class Report:
    """Every finding of one examination, in Part order."""

    findings: tuple[Finding, ...]

    @staticmethod
    def of(findings: Iterable[Finding]) -> Report:
        """The findings sorted by part (the order of Part)."""
        order = list(Part)
        return Report(tuple(sorted(findings, key=lambda f: order.index(f.part))))

    @property
    def healthy(self) -> bool:
        """No part failed (warnings allowed)."""
        return all(f.health is not Health.FAIL for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        """``{"healthy": bool, "findings": [{"part", "health", "detail"}, ...]}`` (kiosk doctor --json and cmd/doctor)."""
        return {"healthy": self.healthy,
                "findings": [{"part": str(f.part), "health": str(f.health), "detail": f.detail} for f in self.findings]}

    @staticmethod
    def from_json(raw: Any) -> Report:
        """The report as_json() made; ValueError if ``raw`` is not one."""
        try:
            return Report(tuple(Finding(Part(f["part"]), Health(f["health"]), str(f["detail"]))
                                for f in raw["findings"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a doctor's report: {exc}") from exc

    def lines(self) -> list[str]:
        """One line per finding for people: ``ok    database      integrity ok, 3.1 GB free``."""
        return [f"{f.health:<5} {f.part:<14} {f.detail}" for f in self.findings]


class Throttling(IntFlag):
    """The bits of a Raspberry Pi's firmware throttling word (``get_throttled``): now, and since boot."""

    UNDER_VOLTAGE = 0x1
    FREQUENCY_CAPPED = 0x2
    THROTTLED = 0x4
    SOFT_TEMPERATURE_LIMIT = 0x8
    UNDER_VOLTAGE_SINCE_BOOT = 0x10000
    FREQUENCY_CAPPED_SINCE_BOOT = 0x20000
    THROTTLED_SINCE_BOOT = 0x40000
    SOFT_TEMPERATURE_LIMIT_SINCE_BOOT = 0x80000


NOW_BITS = Throttling.UNDER_VOLTAGE | Throttling.FREQUENCY_CAPPED | Throttling.THROTTLED \
    | Throttling.SOFT_TEMPERATURE_LIMIT


def judge_temperature(celsius: float | None, throttling: int | None) -> Finding:
    """The CPU's temperature and the firmware's throttling word (None where the machine does not report them)."""
    said = "temperature not reported" if celsius is None else f"{celsius:.1f} °C"
    health = Health.OK
    if celsius is not None and celsius >= TEMPERATURE_FAIL_C:
        health = Health.FAIL
    elif celsius is not None and celsius >= TEMPERATURE_WARN_C:
        health = Health.WARN
    if throttling is None:
        return Finding(Part.TEMPERATURE, health, f"{said}; no throttling report (not a Raspberry Pi)")
    flags = Throttling(throttling & sum(Throttling))
    names = [str(flag.name).lower().replace("_", " ") for flag in Throttling if flag in flags]
    if flags & NOW_BITS:
        health = Health.FAIL if flags & Throttling.UNDER_VOLTAGE else max(health, Health.WARN, key=_rank)
    elif flags:
        health = max(health, Health.WARN, key=_rank)
    return Finding(Part.TEMPERATURE, health, f"{said}; " + (", ".join(names) if names else "never throttled"))


def judge_disk(free_bytes: int | None, database_detail: str, database_ok: bool) -> Finding:
    """The database's integrity and the free space on its file system."""
    if free_bytes is None:
        space, health = "free space unknown", Health.WARN
    else:
        space = f"{free_bytes / 1024 ** 3:.1f} GB free" if free_bytes >= 1024 ** 3 else f"{free_bytes // 1024 ** 2} MB free"
        health = Health.FAIL if free_bytes < DISK_FAIL_BYTES else Health.WARN if free_bytes < DISK_WARN_BYTES else Health.OK
    if not database_ok:
        health = Health.FAIL
    return Finding(Part.DATABASE, health, f"{database_detail}, {space}")


def judge_clock(synchronised: bool | None, source: str) -> Finding:
    """Whether the system clock is synchronised (tariffs, receipts and TLS need the right time)."""
    if synchronised is None:
        return Finding(Part.CLOCK, Health.WARN, f"cannot tell whether the clock is synchronised ({source})")
    if synchronised:
        return Finding(Part.CLOCK, Health.OK, f"synchronised ({source})")
    return Finding(Part.CLOCK, Health.FAIL, f"not synchronised ({source}): tariffs and TLS need the right time")


def _rank(health: Health) -> int:
    return list(Health).index(health)
