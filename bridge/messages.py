"""What the bridge reads from the broker, checked: stations' status, faults and help calls, acknowledgements, alerts."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bridge.model import RepairSeen, Severity, parse_time

__all__ = ["ACCOUNT", "ALERTS", "EARLIEST", "LATEST", "MAX_BOOT", "PREFIX", "AckSeen", "AlertSeen", "FaultSeen",
           "HelpSeen", "LinkState", "Malformed", "Observation", "StatusSeen", "parse", "station_time", "subscriptions"]

PREFIX = "paystation/v1"
ALERTS = f"{PREFIX}/_alerts"
STATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
COMPONENT = re.compile(r"[a-z0-9_]{1,64}")
# A broker account's name, as the broker tool (provisioning/broker_accounts.py) accepts it: the one rule for the
# users of acknowledgements, the people of the configuration and the bridge's own account.
ACCOUNT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ALERT_ID = re.compile(r"[a-z0-9-]{1,64}")
MAX_PAYLOAD = 65_536
MAX_TEXT = 500  # a fault's message is cut to this many characters
MAX_NOTE = 200
MAX_BOOT = 2**63 - 1  # a boot number is kept in SQLite, whose integers are signed 64-bit
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # a station's time outside these is wrong (a clock not set, a bug)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class Malformed(ValueError):
    """A message the bridge cannot use; the text says why (it is logged and dropped)."""


class LinkState(StrEnum):
    """A station's ``status`` state."""

    ONLINE = "online"
    OFFLINE = "offline"
    LOST = "lost"


@dataclass(frozen=True)
class StatusSeen:
    """A station's retained ``status``: its birth (with its zone), its clean stop, or its will."""

    station: str
    state: LinkState
    boot: int | None
    zone: str | None


@dataclass(frozen=True)
class FaultSeen:
    """A station's retained ``fault/{component}``."""

    station: str
    component: str
    active: bool
    code: str | None
    severity: Severity
    message: str
    parker_impact: str | None
    since: datetime | None


@dataclass(frozen=True)
class HelpSeen:
    """A station's help call: ``waiting`` for an agent (``overdue`` once nobody answered in time), or not."""

    station: str
    ticket: str | None
    waiting: bool
    overdue: bool
    zone: str | None


@dataclass(frozen=True)
class AckSeen:
    """Someone acknowledged an alert (``_ack/{user}/{alert_id}``)."""

    user: str
    alert_id: str
    note: str | None


@dataclass(frozen=True)
class AlertSeen:
    """A retained ``_alerts/{id}`` the broker holds (the bridge's own, perhaps from before its database)."""

    alert_id: str


Observation = StatusSeen | FaultSeen | HelpSeen | AckSeen | AlertSeen | RepairSeen


def subscriptions() -> list[tuple[str, int]]:
    """The bridge's subscriptions and their QoS: retained state at 0 (no queue limit drops it), the rest at 1."""
    return [(f"{PREFIX}/+/status", 0), (f"{PREFIX}/+/fault/+", 0), (f"{PREFIX}/+/help/state", 0),
            (f"{ALERTS}/+", 0), (f"{PREFIX}/+/help/request", 1), (f"{PREFIX}/_ack/+/+", 1),
            (f"{PREFIX}/+/event/repair", 1)]


def parse(topic: str, payload: bytes, retained: bool) -> Observation | None:
    """The observation a message carries; None for one that says nothing (an empty retained alert).

    Raises Malformed for anything the bridge cannot use.
    """
    levels = topic.split("/")
    if len(levels) < 4 or "/".join(levels[:2]) != PREFIX:
        raise Malformed(f"topic {topic!r}: not under {PREFIX}/")
    owner, rest = levels[2], tuple(levels[3:])
    if owner == "_alerts" and len(rest) == 1:
        return AlertSeen(_match(ALERT_ID, rest[0], "alert id")) if payload else None
    if owner == "_ack" and len(rest) == 2:
        if retained:
            raise Malformed(f"{topic}: a retained acknowledgement (clear it: an empty retained message)")
        if not payload:
            raise Malformed(f"{topic}: an empty acknowledgement (send {{}} or {{\"note\": ...}})")
        return _ack(_match(ACCOUNT, rest[0], "user"), _match(ALERT_ID, rest[1], "alert id"), _object(payload))
    station = _match(STATION, owner, "station id")
    if rest == ("status",):
        return _status(station, _object(payload))
    if len(rest) == 2 and rest[0] == "fault":
        return _fault(station, _match(COMPONENT, rest[1], "component"), _object(payload))
    if rest in (("help", "state"), ("help", "request")):
        return HELP_READERS[rest[1]](station, _object(payload))
    if rest == ("event", "repair"):
        return _repair(station, _object(payload))
    raise Malformed(f"topic {topic!r}: not one the bridge reads")


def _match(pattern: re.Pattern[str], text: str, what: str) -> str:
    if not pattern.fullmatch(text):
        raise Malformed(f"{what} {text[:80]!r} is not valid")
    return text


def _object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise Malformed(f"payload of {len(payload)} bytes (over {MAX_PAYLOAD})")
    try:
        value = json.loads(payload.decode("utf-8")) if payload else {}
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # JSON may escape a lone surrogate
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise Malformed(f"payload is not UTF-8 JSON: {str(exc)[:80]}") from None
    if not isinstance(value, dict):
        raise Malformed("payload is not a JSON object")
    return value


def _text(data: dict[str, Any], key: str, *, limit: int = MAX_TEXT, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key}: {'a text or null' if optional else 'a text'} is required, got {type(value).__name__}")
    if limit < MAX_TEXT and not value.isprintable():
        raise Malformed(f"{key}: control characters")
    return value[:limit]


def _zone(data: object) -> str | None:
    zone = data.get("zone") if isinstance(data, dict) else None
    return zone[:120] if isinstance(zone, str) and zone.strip() and zone.isprintable() else None


def _status(station: str, data: dict[str, Any]) -> StatusSeen:
    state = data.get("state")
    if state not in LinkState.__members__.values():
        raise Malformed(f"status state {str(state)[:40]!r}: one of online, offline, lost")
    boot = data.get("boot")
    if boot is not None and (not isinstance(boot, int) or isinstance(boot, bool) or not 0 <= boot <= MAX_BOOT):
        raise Malformed(f"status boot: a whole number from 0 to {MAX_BOOT}")
    return StatusSeen(station, LinkState(str(state)), boot, _zone(data))


def _repair(station: str, envelope: dict[str, Any]) -> RepairSeen:
    """A crew member's "fixed" note (``event/repair``): the component, and when the station recorded it."""
    at, data = station_time(envelope.get("ts")), envelope.get("data")
    if at is None or not isinstance(data, dict):
        raise Malformed("repair event: no ts (a station's time) or no data object")
    component, active = data.get("component"), data.get("fault_active")
    if not isinstance(component, str) or not isinstance(active, bool):
        raise Malformed("repair event: component (text) and fault_active (true or false) are required")
    return RepairSeen(station, _match(COMPONENT, component, "component"), at, active)


def _fault(station: str, component: str, data: dict[str, Any]) -> FaultSeen:
    active = data.get("active")
    if not isinstance(active, bool):
        raise Malformed("fault active: true or false is required")
    severity = data.get("severity", Severity.WARNING.value if not active else None)
    if severity not in Severity.__members__.values():
        raise Malformed(f"fault severity {str(severity)[:40]!r}: one of critical, warning, info")
    code = _text(data, "code", limit=64, optional=not active)
    return FaultSeen(station, component, active, code, Severity(str(severity)),
                     _text(data, "message", optional=True) or "", _text(data, "parker_impact", limit=64, optional=True),
                     station_time(data.get("since")))


def station_time(value: object) -> datetime | None:
    """A station's time as an aware UTC datetime; None if it is not one, or not between EARLIEST and LATEST."""
    try:
        moment = parse_time(value)
    except OverflowError:  # a far-off year with an offset: fromisoformat takes it, astimezone cannot
        return None
    return moment if moment is not None and EARLIEST <= moment < LATEST else None


def _help_state(station: str, data: dict[str, Any]) -> HelpSeen:
    state = data.get("state")
    if state not in ("idle", "waiting", "connected", "closed"):
        raise Malformed(f"help state {str(state)[:40]!r}: one of idle, waiting, connected, closed")
    overdue = data.get("overdue", False)
    if not isinstance(overdue, bool):
        raise Malformed("help overdue: true or false")
    return HelpSeen(station, _text(data, "ticket", limit=64, optional=True), state == "waiting", overdue,
                    _zone(data.get("context")))


def _help_request(station: str, data: dict[str, Any]) -> HelpSeen:
    return HelpSeen(station, _text(data, "ticket", limit=64), True, False, _zone(data.get("context")))


HELP_READERS: dict[str, Callable[[str, dict[str, Any]], HelpSeen]] = {"state": _help_state, "request": _help_request}


def _ack(user: str, alert_id: str, data: dict[str, Any]) -> AckSeen:
    unknown = sorted(set(data) - {"note"})
    if unknown:
        raise Malformed(f"acknowledgement: unknown keys {', '.join(repr(k[:40]) for k in unknown[:5])}")
    note = data.get("note")
    if "note" in data and (not isinstance(note, str) or not 1 <= len(note) <= MAX_NOTE):
        raise Malformed(f"acknowledgement note: 1 to {MAX_NOTE} characters")
    return AckSeen(user, alert_id, note)
