"""What the console shows of stations and tickets: immutable views built by console.board from MQTT messages."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, IntEnum, StrEnum
from typing import Any

from console.payload import integer, text, timestamp

__all__ = [
    "MAX_FAULTS_IN_CONTEXT",
    "QUEUE_TESTS",
    "SEVERITY_RANK",
    "VOICE_LINES",
    "Context",
    "FaultView",
    "Line",
    "QueueFilter",
    "Standing",
    "StationView",
    "Telemetry",
    "TicketState",
    "TicketView",
    "VoiceView",
    "context_from",
    "telemetry_from",
    "voice_from",
]

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
MAX_FAULTS_IN_CONTEXT = 20
VOICE_STATES = ("dialling", "ringing", "talking", "ended", "failed")
VOICE_LINES = {"dialling": "Calling the agents by voice.", "ringing": "Voice call ringing.",
               "talking": "Voice call answered.", "ended": "Voice call ended", "failed": "Voice call failed"}


class Standing(IntEnum):
    """How urgently a station needs staff, worst first: the order of the fleet pane."""

    LOST = 0
    CRITICAL = 1
    OUT_OF_SERVICE = 2
    OFFLINE = 3
    WARNING = 4
    UNKNOWN = 5
    HEALTHY = 6

    @property
    def label(self) -> str:
        """As the fleet pane's filters name it."""
        return self.name.lower().replace("_", " ")


class TicketState(StrEnum):
    """A help ticket's state as help/state says it (``UNKNOWN``: known only from events so far)."""

    WAITING = "waiting"
    CONNECTED = "connected"
    CLOSED = "closed"
    UNKNOWN = "unknown"

    @property
    def open(self) -> bool:
        """Waiting or connected."""
        return self in (TicketState.WAITING, TicketState.CONNECTED)


@dataclass(frozen=True)
class FaultView:
    """One active fault of a station (retained ``fault/{component}``)."""

    component: str
    code: str | None
    severity: str
    since: datetime | None
    message: str | None
    parker_impact: str | None

    @property
    def name(self) -> str:
        """``component/code``, as help requests name faults."""
        return f"{self.component}/{self.code}" if self.code else self.component


@dataclass(frozen=True)
class Telemetry:
    """A station's last ``telemetry`` message: what a crew checks before driving out."""

    received: datetime
    uptime_s: int | None
    outbox_depth: int | None
    link: str | None
    terminal: str | None
    screen: str | None
    cpu_temp_c: float | None
    disk_free_bytes: int | None


@dataclass(frozen=True)
class StationView:
    """A station as the fleet pane shows it; ``state`` is online, offline, lost or unknown (no status yet)."""

    station: str
    state: str
    since: datetime | None
    boot: int | None
    zone: str | None
    firmware: str | None
    faults: tuple[FaultView, ...]
    standing: Standing = Standing.UNKNOWN
    telemetry: Telemetry | None = None

    @property
    def worst_severity(self) -> str | None:
        """The severity of its worst active fault, None without faults."""
        return self.faults[0].severity if self.faults else None


@dataclass(frozen=True)
class Context:
    """Where the parker was when they asked for help: screen, plate, last payment, active faults."""

    station: str | None = None
    zone: str | None = None
    screen: str | None = None
    plate: str | None = None
    last_payment: str | None = None
    last_payment_error: str | None = None
    active_faults: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VoiceView:
    """A ticket's latest voice call (help/state's ``voice``): its state, SIP Call-ID, why it closed, who called."""

    state: str
    call: str | None
    reason: str | None
    direction: str | None

    @property
    def summary(self) -> str:
        """One line for the queue and the details: "talking", "failed: busy", "callback ringing"."""
        who = "callback " if self.direction == "callback" else ""
        return f"{who}{self.state}" + (f": {self.reason}" if self.reason and self.state in ("ended", "failed") else "")


@dataclass(frozen=True)
class TicketView:
    """A help ticket as the queue shows it.

    ``mine`` means connected to this console's agent, ``taken_by_other`` connected to someone
    else; ``offered_to_me`` that this console received the ticket's ``help/request`` through the
    agents' shared subscription. ``waiting_s`` runs from the press until an agent is connected
    (or the ticket closed); ``connected_s`` from then on.
    """

    ticket: str
    station: str
    state: TicketState
    opened: datetime
    since: datetime | None
    waiting_s: int
    agent: str | None
    mine: bool
    taken_by_other: bool
    offered_to_me: bool
    overdue: bool
    outcome: str | None
    context: Context | None
    voice: VoiceView | None = None
    connected_s: int | None = None


@dataclass(frozen=True)
class Line:
    """One line of a conversation: ``who`` is agent, parker or station.

    ``confirmed`` means the station recorded it (its ``event/help``); an agent's line sent from
    this console stays unconfirmed until the station has shown it to the parker.
    """

    who: str
    text: str
    at: datetime
    agent: str | None = None
    choice: str | None = None
    confirmed: bool = True


class QueueFilter(Enum):
    """Which open tickets the help queue lists (ctrl+o cycles)."""

    ALL = "all"
    OFFERED = "offered to me"
    OVERDUE = "overdue"


QUEUE_TESTS: dict[QueueFilter, Callable[[TicketView], bool]] = {
    QueueFilter.ALL: lambda t: True,
    QueueFilter.OFFERED: lambda t: t.offered_to_me,
    QueueFilter.OVERDUE: lambda t: t.overdue,
}


def voice_from(data: Any, state_key: str) -> VoiceView | None:
    """A voice call as help/state (``state``) or an event/help ``call`` step (``call_state``) says it."""
    state = text(data, state_key)
    if state not in VOICE_STATES:
        return None
    return VoiceView(state, text(data, "call"), text(data, "reason"), text(data, "direction"))


def _payment_error(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    code = integer(value, "result_code")
    parts = [text(value, "reason"), None if code is None else f"result code {code}", text(value, "terminal_text")]
    return ", ".join(p for p in parts if p) or "unknown error"


def context_from(value: Any) -> Context | None:
    """A help request's ``context``, or None when it is not an object."""
    if not isinstance(value, dict):
        return None
    faults = value.get("active_faults")
    active = tuple((name, text(item, "severity") or "unknown")
                   for item in (faults[:MAX_FAULTS_IN_CONTEXT] if isinstance(faults, list) else [])
                   if (name := text(item, "fault")))
    return Context(station=text(value, "station"), zone=text(value, "zone"), screen=text(value, "screen"),
                   plate=text(value, "plate"), last_payment=text(value.get("last_payment"), "result"),
                   last_payment_error=_payment_error(value.get("last_payment_error")), active_faults=active)


def telemetry_from(data: dict[str, Any], received: datetime) -> Telemetry:
    """A ``telemetry`` payload; fields of the wrong type are left out (None)."""
    link = data.get("link")
    temperature = data.get("cpu_temp_c")
    return Telemetry(
        received=timestamp(data.get("ts")) or received, uptime_s=integer(data, "uptime_s"),
        outbox_depth=integer(data, "outbox_depth"), link=text(link, "state"), terminal=text(data, "terminal"),
        screen=text(data, "screen"),
        cpu_temp_c=float(temperature) if isinstance(temperature, int | float) and not isinstance(temperature, bool)
        else None,
        disk_free_bytes=integer(data, "disk_free_bytes"))
