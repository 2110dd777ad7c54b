"""The agents' console model: the fleet, the help queue and the conversations, built from MQTT messages (no I/O)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, overload

log = logging.getLogger(__name__)

TOPIC_ROOT = ("paystation", "v1")
STATION_STATES = ("online", "offline", "lost")
TICKET_STATES = ("waiting", "connected", "closed")
OPEN_STATES = ("waiting", "connected")
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
MAX_TEXT = 500  # characters kept of any text a station sends (the station accepts 500 from agents)
MAX_ID = 100
MAX_LINES = 500  # per conversation
MAX_CLOSED = 200  # closed tickets remembered (for their conversation, and to ignore late requests)
MAX_SEEN_EVENTS = 10_000  # event ids remembered to drop duplicates (delivery is at least once)
MAX_FAULTS_IN_CONTEXT = 20


class _Invalid(ValueError):
    """A message that does not fit the MQTT contract."""


@dataclass(frozen=True)
class Alert:
    """Something an agent should notice now; ``severity`` is Textual's: information, warning or error."""

    severity: str
    title: str
    message: str
    station: str
    ticket: str | None = None


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
class StationView:
    """A station as the fleet pane shows it; ``state`` is online, offline, lost or unknown (no status yet)."""

    station: str
    state: str
    since: datetime | None
    boot: int | None
    zone: str | None
    firmware: str | None
    faults: tuple[FaultView, ...]


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


VOICE_STATES = ("dialling", "ringing", "talking", "ended", "failed")
VOICE_LINES = {"dialling": "Calling the agents by voice.", "ringing": "Voice call ringing.",
               "talking": "Voice call answered.", "ended": "Voice call ended", "failed": "Voice call failed"}


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

    ``state`` is waiting, connected or closed; ``mine`` means connected to this console's agent,
    ``taken_by_other`` connected to someone else; ``offered_to_me`` that this console received
    the ticket's ``help/request`` through the agents' shared subscription.
    """

    ticket: str
    station: str
    state: str
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


@dataclass
class _Line:
    who: str
    text: str
    at: datetime
    agent: str | None
    choice: str | None
    sources: set[str]


@dataclass
class _Station:
    id: str
    state: str = "unknown"
    since: datetime | None = None
    boot: int | None = None
    online_boot: int | None = None
    zone: str | None = None
    firmware: str | None = None
    faults: dict[str, FaultView] = field(default_factory=dict)


@dataclass
class _Ticket:
    id: str
    station: str
    opened: datetime
    state: str | None = None  # None: known only from events so far
    since: datetime | None = None
    agent: str | None = None
    overdue: bool = False
    outcome: str | None = None
    context: Context | None = None
    offered: bool = False
    accepting: bool = False  # this console sent an accept the station has not answered yet
    closed_at: datetime | None = None
    voice: VoiceView | None = None
    lines: list[_Line] = field(default_factory=list)


class Board:
    """Everything the console knows, fed with every MQTT message it receives.

    ``help/request`` is subscribed to only through ``$share/agents/...`` (see
    ``console.agent_link``), so every ``help/request`` given to :meth:`apply` is one the broker
    offered to this console. Malformed messages are logged and ignored; :meth:`apply` never raises.
    """

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._stations: dict[str, _Station] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._seen_events: dict[str, None] = {}

    # ---- input ----

    def apply(self, topic: str, payload: bytes, retained: bool, now: datetime) -> list[Alert]:
        """Take one message (full topic); return what the agent should be told about it."""
        try:
            return self._apply(topic, bytes(payload), retained, now)
        except _Invalid as exc:
            log.warning("ignored %s: %s", topic, exc)
        except Exception:  # last resort: a console must outlive any station's bug
            log.exception("ignored %s: unexpected failure", topic)
        return []

    def sent_accept(self, ticket_id: str) -> None:
        """This console asked to accept the ticket: tell the agent if someone else gets it."""
        ticket = self._tickets.get(ticket_id)
        if ticket is not None:
            ticket.accepting = True

    def sent_message(self, ticket_id: str, text: str, now: datetime) -> None:
        """This console sent a chat line; it shows unconfirmed until the station's ``message`` event."""
        ticket = self._tickets.get(ticket_id)
        if ticket is not None:
            _merge(ticket, "agent", clean(text), "sent", now, agent=self.agent)

    # ---- views ----

    def stations(self) -> list[StationView]:
        """The fleet by station id; each station's active faults critical first."""
        return [self._station_view(s) for _, s in sorted(self._stations.items())]

    def station(self, station_id: str) -> StationView | None:
        """One station, if known."""
        station = self._stations.get(station_id)
        return None if station is None else self._station_view(station)

    def queue(self, now: datetime) -> list[TicketView]:
        """Open tickets (waiting or connected), oldest first."""
        open_tickets = [t for t in self._tickets.values() if t.state in OPEN_STATES]
        open_tickets.sort(key=lambda t: (t.opened, t.id))
        return [self._ticket_view(t, now) for t in open_tickets]

    def ticket(self, station: str, ticket_id: str, now: datetime) -> TicketView | None:
        """One ticket (open or recently closed) of ``station``."""
        ticket = self._tickets.get(ticket_id)
        if ticket is None or ticket.station != station:
            return None
        return self._ticket_view(ticket, now)

    def conversation(self, ticket_id: str) -> list[Line]:
        """The ticket's lines in the order they arrived."""
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return []
        return [Line(line.who, line.text, line.at, line.agent, line.choice,
                     confirmed=line.who == "station" or "event" in line.sources) for line in ticket.lines]

    def _station_view(self, station: _Station) -> StationView:
        faults = sorted(station.faults.values(), key=lambda f: (SEVERITY_RANK.get(f.severity, 3), f.component))
        return StationView(station.id, station.state, station.since, station.boot, station.zone, station.firmware,
                           tuple(faults))

    def _ticket_view(self, ticket: _Ticket, now: datetime) -> TicketView:
        end = ticket.closed_at if ticket.state == "closed" and ticket.closed_at else now
        connected = ticket.state == "connected"
        return TicketView(
            ticket=ticket.id, station=ticket.station, state=ticket.state or "unknown", opened=ticket.opened,
            since=ticket.since, waiting_s=max(0, int((end - ticket.opened).total_seconds())), agent=ticket.agent,
            mine=connected and ticket.agent == self.agent,
            taken_by_other=connected and ticket.agent is not None and ticket.agent != self.agent,
            offered_to_me=ticket.offered, overdue=ticket.overdue, outcome=ticket.outcome, context=ticket.context,
            voice=ticket.voice)

    # ---- messages ----

    def _apply(self, topic: str, payload: bytes, retained: bool, now: datetime) -> list[Alert]:
        levels = topic.split("/")
        if len(levels) < 4 or tuple(levels[:2]) != TOPIC_ROOT:
            raise _Invalid("not a paystation/v1 topic")
        station = _identifier(levels[2], "station id")
        rest = "/".join(levels[3:])
        if rest == "status":
            return self._status(station, payload, retained, now)
        if rest.startswith("fault/"):
            return self._fault(station, _identifier(rest[len("fault/"):], "component"), payload, retained)
        if rest == "help/state":
            return self._help_state(station, payload, now)
        if rest == "help/request":
            return self._help_request(station, payload, now)
        if rest == "event/help":
            return self._help_event(station, payload, now)
        if rest == "help/from-parker":
            return self._from_parker(station, payload, now)
        raise _Invalid("not a topic the console reads")

    def _status(self, station_id: str, payload: bytes, retained: bool, now: datetime) -> list[Alert]:
        station = self._stations.setdefault(station_id, _Station(station_id))
        if not payload:  # the retained status was cleared
            station.state, station.since, station.boot = "unknown", None, None
            return []
        data = _object(payload)
        state = _text(data, "state", required=True)
        if state not in STATION_STATES:
            raise _Invalid(f"state {state!r} is not one of {', '.join(STATION_STATES)}")
        boot = _integer(data, "boot")
        if state == "lost" and boot is not None and station.online_boot is not None and boot < station.online_boot:
            log.info("stale will of %s ignored (boot %d, online since boot %d)", station_id, boot, station.online_boot)
            return []
        was = station.state
        station.state, station.since, station.boot = state, _time(data.get("ts")) or now, boot
        if state == "online":
            station.online_boot = boot
            station.zone = _text(data, "zone")
            station.firmware = _text(data, "firmware")
        if state == "lost" and was != "lost" and not retained:
            return [Alert("error", f"{station_id} lost", f"Station {station_id} lost its connection to the broker.",
                          station_id)]
        return []

    def _fault(self, station_id: str, component: str, payload: bytes, retained: bool) -> list[Alert]:
        station = self._stations.setdefault(station_id, _Station(station_id))
        if not payload:
            station.faults.pop(component, None)
            return []
        data = _object(payload)
        active = data.get("active")
        if not isinstance(active, bool):
            raise _Invalid("active: not true or false")
        if not active:
            station.faults.pop(component, None)
            return []
        fault = FaultView(component, _text(data, "code"), _text(data, "severity") or "unknown",
                          _time(data.get("since")), _text(data, "message"), _text(data, "parker_impact"))
        before = station.faults.get(component)
        station.faults[component] = fault
        already = before is not None and before.severity == "critical" and before.code == fault.code
        if fault.severity != "critical" or already or retained:
            return []
        detail = f": {fault.message}" if fault.message else ""
        return [Alert("error", f"{station_id}: {fault.name}", f"Critical fault at {station_id}{detail}", station_id)]

    def _help_state(self, station: str, payload: bytes, now: datetime) -> list[Alert]:
        if not payload:
            self._end_others(station, None, now)
            return []
        data = _object(payload)
        state = _text(data, "state", required=True)
        if state == "idle":
            self._end_others(station, None, now)
            return []
        if state not in TICKET_STATES:
            raise _Invalid(f"state {state!r} is not one of {', '.join(TICKET_STATES)}")
        ticket = self._ticket_of(station, _identifier(data.get("ticket"), "ticket"), now)
        if ticket.state == "closed" and state != "closed":
            log.info("help/state %s for closed ticket %s ignored", state, ticket.id)
            return []
        self._end_others(station, ticket.id, now)
        ticket.state, ticket.since = state, _time(data.get("since")) or now
        ticket.opened = _time(data.get("opened")) or ticket.opened
        ticket.agent = _text(data, "agent")
        ticket.overdue = data.get("overdue") is True
        ticket.context = _context(data.get("context")) or ticket.context
        ticket.voice = _voice(data.get("voice"), "state") or ticket.voice
        if state == "closed":
            self._close(ticket, _text(data, "outcome"), now)
        if not ticket.accepting or state == "waiting":
            return []
        ticket.accepting = False
        if state == "connected" and ticket.agent != self.agent:
            return [Alert("warning", "Ticket taken", f"{ticket.agent or 'Another agent'} took the ticket at {station}.",
                          station, ticket.id)]
        return []

    def _help_request(self, station: str, payload: bytes, now: datetime) -> list[Alert]:
        data = _object(payload)
        ticket_id = _identifier(data.get("ticket"), "ticket")
        known = self._tickets.get(ticket_id)
        if known is not None and known.state == "closed":
            log.info("help/request for closed ticket %s ignored", ticket_id)
            return []
        ticket = self._ticket_of(station, ticket_id, now)
        ticket.state = ticket.state or "waiting"
        ticket.opened = _time(data.get("opened")) or ticket.opened
        ticket.context = ticket.context or _context(data.get("context"))
        first = not ticket.offered
        ticket.offered = True
        if not first or ticket.state != "waiting":
            return []
        plate = ticket.context.plate if ticket.context else None
        where = f" (plate {plate})" if plate else ""
        return [Alert("information", "Help request", f"A parker at {station}{where} asks for help.", station, ticket_id)]

    def _help_event(self, station: str, payload: bytes, now: datetime) -> list[Alert]:
        envelope = _object(payload)
        if envelope.get("kind") != "help":
            raise _Invalid("kind is not help")
        event_id = envelope.get("id") if isinstance(envelope.get("id"), str) else None
        if event_id in self._seen_events:
            return []
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise _Invalid("data: not an object")
        ticket = self._ticket_of(station, _identifier(data.get("ticket"), "ticket"), now)
        action = _text(data, "action", required=True)
        at = _time(envelope.get("ts")) or now
        alerts = self._help_action(ticket, action, data, at, now)
        if event_id is not None:
            self._seen_events[event_id] = None
            if len(self._seen_events) > MAX_SEEN_EVENTS:
                del self._seen_events[next(iter(self._seen_events))]
        return alerts

    def _help_action(self, ticket: _Ticket, action: str, data: dict[str, Any], at: datetime,
                     now: datetime) -> list[Alert]:
        agent = _text(data, "agent")
        if action == "open":
            ticket.state = ticket.state or "waiting"
            _merge(ticket, "station", "Help requested.", "event", at)
        elif action == "accept":
            _merge(ticket, "station", f"{agent or 'An agent'} accepted.", "event", at)
        elif action == "message":
            _merge(ticket, "agent", _text(data, "text") or "", "event", at, agent=agent)
        elif action == "reply":
            _merge(ticket, "parker", _text(data, "text") or "", "event", at, choice=_text(data, "choice"))
        elif action == "overdue":
            ticket.overdue = True
            _merge(ticket, "station", "No agent has answered in time (overdue).", "event", at)
        elif action == "wait":
            _merge(ticket, "station", "The parker keeps waiting.", "event", at)
        elif action == "close":
            outcome, text = _text(data, "outcome"), _text(data, "text")
            by = f" by {agent}" if agent else ""
            _merge(ticket, "station", f"Closed{by}: {outcome or 'no outcome'}" + (f". {text}" if text else ""),
                   "event", at)
            self._close(ticket, outcome, now)
        elif action == "refused":
            return self._refused(ticket, data, agent, at)
        elif action == "call":
            voice = _voice(data, "call_state")
            if voice is None:
                raise _Invalid("call: no valid call_state")
            ticket.voice = voice
            ending = f" ({voice.reason})." if voice.reason and voice.state in ("ended", "failed") else ""
            _merge(ticket, "station", VOICE_LINES[voice.state] + (ending or ("." if voice.state in ("ended", "failed")
                                                                              else "")), "event", at)
        else:
            raise _Invalid(f"unknown help action {action!r}")
        return []

    def _refused(self, ticket: _Ticket, data: dict[str, Any], agent: str | None, at: datetime) -> list[Alert]:
        what, reason = _text(data, "refused") or "request", _text(data, "reason") or "no reason given"
        _merge(ticket, "station", f"Refused {what} from {agent or 'an agent'}: {reason}", "event", at)
        if agent != self.agent:
            return []
        if what == "accept":
            ticket.accepting = False
        return [Alert("warning", f"{ticket.station} refused your {what}", reason, ticket.station, ticket.id)]

    def _from_parker(self, station: str, payload: bytes, now: datetime) -> list[Alert]:
        data = _object(payload)
        ticket = self._ticket_of(station, _identifier(data.get("ticket"), "ticket"), now)
        _merge(ticket, "parker", _text(data, "text") or "", "live", _time(data.get("ts")) or now,
               choice=_text(data, "choice"))
        return []

    # ---- tickets ----

    def _ticket_of(self, station: str, ticket_id: str, now: datetime) -> _Ticket:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            ticket = self._tickets[ticket_id] = _Ticket(ticket_id, station, opened=now)
        elif ticket.station != station:
            raise _Invalid(f"ticket {ticket_id} belongs to {ticket.station}")
        return ticket

    def _end_others(self, station: str, keep: str | None, now: datetime) -> None:
        """A station has one current ticket: any other still open there is over."""
        for ticket in list(self._tickets.values()):
            if ticket.station == station and ticket.id != keep and ticket.state != "closed":
                self._close(ticket, ticket.outcome, now)

    def _close(self, ticket: _Ticket, outcome: str | None, now: datetime) -> None:
        ticket.state, ticket.outcome, ticket.accepting = "closed", outcome, False
        ticket.closed_at = ticket.closed_at or now
        closed = [t for t in self._tickets.values() if t.state == "closed"]
        if len(closed) > MAX_CLOSED:
            oldest = min(closed, key=lambda t: t.closed_at or now)
            del self._tickets[oldest.id]


def _merge(ticket: _Ticket, who: str, text: str, source: str, at: datetime, *, agent: str | None = None,
           choice: str | None = None) -> None:
    """Add a line, or record ``source`` on the same line already known from another source."""
    for line in ticket.lines:
        if (line.who, line.text, line.agent, line.choice) == (who, text, agent, choice) and source not in line.sources:
            line.sources.add(source)
            return
    ticket.lines.append(_Line(who, text, at, agent, choice, {source}))
    del ticket.lines[:-MAX_LINES]


# ---- payload reading: every field checked, every text made safe to show ----

def _object(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _Invalid(f"expected a JSON object, got {type(value).__name__}")
    return value


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """At most ``limit`` characters, lone surrogates and control characters (escape sequences) replaced."""
    text = text[:limit].encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c.isprintable() else " " for c in text)


@overload
def _text(data: Any, key: str, *, required: Literal[True]) -> str: ...


@overload
def _text(data: Any, key: str, *, required: bool = False) -> str | None: ...


def _text(data: Any, key: str, *, required: bool = False) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, str):
        return clean(value)
    if required:
        raise _Invalid(f"{key}: missing or not a string")
    return None


def _voice(data: Any, state_key: str) -> VoiceView | None:
    """A voice call as help/state (``state``) or an event/help ``call`` step (``call_state``) says it."""
    state = _text(data, state_key)
    if state not in VOICE_STATES:
        return None
    return VoiceView(state, _text(data, "call"), _text(data, "reason"), _text(data, "direction"))


def _identifier(value: Any, what: str) -> str:
    """A station, component or ticket id: used in topics and shown as is, so it must be plain."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID or not value.isprintable():
        raise _Invalid(f"{what}: not a plain string of 1 to {MAX_ID} characters")
    return value


def _integer(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or an offset; none means UTC), or None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _payment_error(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    code = _integer(value, "result_code")
    parts = [_text(value, "reason"), None if code is None else f"result code {code}", _text(value, "terminal_text")]
    return ", ".join(p for p in parts if p) or "unknown error"


def _context(value: Any) -> Context | None:
    if not isinstance(value, dict):
        return None
    faults = value.get("active_faults")
    active = tuple((name, _text(item, "severity") or "unknown")
                   for item in (faults[:MAX_FAULTS_IN_CONTEXT] if isinstance(faults, list) else [])
                   if (name := _text(item, "fault")))
    return Context(station=_text(value, "station"), zone=_text(value, "zone"), screen=_text(value, "screen"),
                   plate=_text(value, "plate"), last_payment=_text(value.get("last_payment"), "result"),
                   last_payment_error=_payment_error(value.get("last_payment_error")), active_faults=active)
