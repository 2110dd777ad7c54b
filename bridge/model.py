"""The alert bridge's vocabulary: problems, severities, alerts as the retained `_alerts` topic carries them, sends."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

__all__ = ["Alert", "AlertState", "Channel", "Delivery", "Problem", "RepairSeen", "SendKind", "Severity", "Target",
           "ack_link", "format_time", "parse_time"]


class Problem(StrEnum):
    """What an alert is about."""

    LOST = "lost"  # a station's link is gone (the broker published its will)
    FAULT = "fault"  # one fault at one station
    FLEET_FAULT = "fleet_fault"  # the same fault (component and code) at many stations
    HELP = "help"  # a parker's help call that nobody answered
    FLEET_LOST = "fleet_lost"  # many stations lost within the fleet window (a regional outage)


class Severity(StrEnum):
    """How bad, as the stations' faults say it."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertState(StrEnum):
    """An open alert, before and after someone took it."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class SendKind(StrEnum):
    """Why a message is sent: a new alert, its escalation to the next group, or its end."""

    ALERT = "alert"
    ESCALATION = "escalation"
    RESOLVED = "resolved"


class Channel(StrEnum):
    """How a message is sent."""

    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclass(frozen=True, order=True)
class Target:
    """One recipient: an e-mail address, or the name of a configured webhook."""

    channel: Channel
    address: str


@dataclass(frozen=True)
class Delivery:
    """One message to send: ``kind`` of alert ``alert_id`` (at escalation ``level``) to ``target``."""

    alert_id: str
    level: int
    kind: SendKind
    target: Target


@dataclass
class Alert:
    """One alert: what it is about, whom it reached, and where it stands.

    ``zones`` maps each station to its zone (None when unknown); ``notified`` is every target that got it;
    ``escalate_at`` is when it goes to the next group (None: it does not); ``closed`` is set when it ended.
    ``repaired`` is when the problem was repaired, by the stations' own clocks where they say it (the clear's
    ``since``, or a crew's ``event/repair`` note): None while it is not (or came back since).
    """

    id: str
    problem: Problem
    title: str
    stations: list[str]
    zones: dict[str, str | None]
    component: str | None
    code: str | None
    severity: Severity
    message: str
    parker_impact: str | None
    since: datetime
    opened: datetime
    group: str
    escalate_at: datetime | None
    state: AlertState = AlertState.OPEN
    level: int = 0
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_note: str | None = None
    changes: int = 1
    notified: list[Target] = field(default_factory=list)
    closed: datetime | None = None
    repaired: datetime | None = None

    @property
    def zone(self) -> str | None:
        """The zone all its stations share, else None."""
        zones = {self.zones.get(station) for station in self.stations}
        return zones.pop() if len(zones) == 1 else None

    def payload(self) -> dict[str, Any]:
        """The retained ``_alerts/{id}`` message (docs/alerts.md)."""
        return {"id": self.id, "problem": self.problem.value, "state": self.state.value, "title": self.title,
                "stations": list(self.stations), "zone": self.zone, "component": self.component, "code": self.code,
                "severity": self.severity.value, "message": self.message, "parker_impact": self.parker_impact,
                "since": format_time(self.since), "opened": format_time(self.opened), "level": self.level,
                "group": self.group, "acked_by": self.acked_by,
                "acked_at": format_time(self.acked_at) if self.acked_at else None, "changes": self.changes}

    def encoded(self) -> bytes:
        """The payload as compact UTF-8 JSON."""
        return json.dumps(self.payload(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class RepairSeen:
    """A station's ``event/repair``: a crew member noted ``component`` fixed at ``at`` (the event's ``ts``)."""

    station: str
    component: str
    at: datetime
    fault_active: bool


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as stations write times."""
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime: {moment!r}")
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: object) -> datetime | None:
    """A station's time (ISO 8601 with an offset or ``Z``) as an aware datetime; None if it is not one."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):  # "0001-01-01T00:00:00+01:00" is before the first UTC moment Python has
        return None


def ack_link(crew_page_url: str, station: str, alert_id: str) -> str:
    """The crew page's link that opens ``station`` and asks to acknowledge ``alert_id``."""
    return f"{crew_page_url}?station={quote(station, safe='')}#ack={quote(alert_id, safe='')}"
