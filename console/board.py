"""The agents' console model: the fleet, the help queue and the conversations, built from MQTT messages (no I/O)."""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from console.alerts import AlertKind, Signal
from console.payload import Invalid, clean, identifier, integer, json_object, station_level, text, timestamp
from console.summarised import MalformedWarnings
from console.views import (
    SEVERITY_RANK,
    VOICE_LINES,
    Context,
    FaultView,
    Line,
    Standing,
    StationView,
    Telemetry,
    TicketState,
    TicketView,
    VoiceView,
    context_from,
    telemetry_from,
    voice_from,
)

__all__ = ["Board", "normal_plate"]

log = logging.getLogger(__name__)

TOPIC_ROOT = ("paystation", "v1")
STATION_STATES = ("online", "offline", "lost")
MAX_LINES = 500  # per conversation
MAX_CLOSED = 200  # closed tickets remembered (for their conversation, and to ignore late requests)
MAX_SEEN_EVENTS = 10_000  # event ids remembered to drop duplicates (delivery is at least once)
MAX_PLATES = 50_000  # plates remembered for the fleet search (from help calls and parking sessions)
STATIONS_PER_PLATE = 3
WARN_EVERY = timedelta(minutes=1)  # malformed messages are summarised in one warning a minute at most


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
    telemetry: Telemetry | None = None


@dataclass
class _Ticket:
    id: str
    station: str
    opened: datetime
    state: TicketState = TicketState.UNKNOWN
    since: datetime | None = None
    connected_at: datetime | None = None
    agent: str | None = None
    overdue: bool = False
    outcome: str | None = None
    context: Context | None = None
    offered: bool = False
    accepting: bool = False  # this console sent an accept the station has not answered yet
    closed_at: datetime | None = None
    voice: VoiceView | None = None
    lines: list[_Line] = field(default_factory=list)


def normal_plate(plate: str) -> str:
    """A plate as the search compares it: letters and digits only, upper case."""
    return "".join(c for c in plate.upper() if c.isalnum())


def standing(station: StationView) -> Standing:
    """Where the station ranks in the fleet pane: lost, critical, out of service, offline, warning, ..."""
    if station.state == "lost":
        return Standing.LOST
    severities = {f.severity for f in station.faults}
    if "critical" in severities:
        return Standing.CRITICAL
    if any(f.parker_impact == "out_of_service" for f in station.faults):
        return Standing.OUT_OF_SERVICE
    if station.state == "offline":
        return Standing.OFFLINE
    if "warning" in severities:
        return Standing.WARNING
    if station.state == "unknown":
        return Standing.UNKNOWN
    return Standing.HEALTHY


class Board:
    """Everything the console knows, fed with every MQTT message it receives.

    ``help/request`` is subscribed to only through ``$share/agents/...`` (see
    ``console.agent_link``), so every ``help/request`` given to :meth:`apply` is one the broker
    offered to this console. Malformed messages are logged and ignored; :meth:`apply` never raises.
    What changed since the last :meth:`take_changes` is kept, so that a screen redraws only that.
    """

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._stations: dict[str, _Station] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._station_tickets: dict[str, set[str]] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._seen_events: dict[str, None] = {}
        self._plates: OrderedDict[str, dict[str, str]] = OrderedDict()  # normal plate -> {station: plate}
        self._changed_stations: set[str] = set()
        self._changed_tickets: set[str] = set()
        self._changed_telemetry: set[str] = set()
        self._malformed = MalformedWarnings("console", WARN_EVERY)

    # ---- input ----

    def apply(self, topic: str, payload: bytes, retained: bool, now: datetime) -> list[Signal]:
        """Take one message (full topic); return what the agent should be told about it."""
        try:
            return self._apply(topic, bytes(payload), retained, now)
        except Invalid as exc:
            self._malformed.note(topic, str(exc), now)
        except Exception:  # last resort: a console must outlive any station's bug
            log.exception("ignored %s: unexpected failure", topic)
        return []

    def reads(self, topic: str) -> bool:
        """Whether :meth:`apply` uses messages of this topic (the console subscribes to more, for its history)."""
        levels = topic.split("/", 3)
        return len(levels) == 4 and station_level(levels[2]) and (levels[3] in self._HANDLERS
                                                                   or levels[3].startswith("fault/"))

    def sent_accept(self, ticket_id: str) -> None:
        """This console asked to accept the ticket: tell the agent if someone else gets it."""
        ticket = self._tickets.get(ticket_id)
        if ticket is not None:
            ticket.accepting = True

    def sent_message(self, ticket_id: str, words: str, now: datetime) -> None:
        """This console sent a chat line; it shows unconfirmed until the station's ``message`` event."""
        ticket = self._tickets.get(ticket_id)
        if ticket is not None:
            _merge(ticket, "agent", clean(words), "sent", now, agent=self.agent)
            self._changed_tickets.add(ticket_id)

    def flush_warnings(self, now: datetime) -> None:
        """Log the malformed messages counted since the last warning, once a minute at most."""
        self._malformed.flush_if_due(now)

    def accepting(self, ticket_id: str) -> bool:
        """This console sent an accept for the ticket that the station has not answered yet."""
        ticket = self._tickets.get(ticket_id)
        return ticket is not None and ticket.accepting

    def take_changes(self) -> tuple[set[str], set[str], set[str]]:
        """The stations, the tickets, and the stations with new telemetry only, since the last call (then forgotten)."""
        changes = self._changed_stations, self._changed_tickets, self._changed_telemetry - self._changed_stations
        self._changed_stations, self._changed_tickets, self._changed_telemetry = set(), set(), set()
        return changes

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
        open_tickets = [t for t in self._tickets.values() if t.state.open]
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

    def search(self, query: str) -> frozenset[str]:
        """Stations whose id, or a plate seen there, contains ``query`` (letters and digits only: "st5" finds ST-5)."""
        wanted = normal_plate(query)
        if not wanted:
            return frozenset()
        return frozenset(s for s in self._stations if wanted in normal_plate(s)) | self.stations_with_plate(query)

    def stations_with_plate(self, query: str) -> set[str]:
        """Stations where a plate containing ``query`` asked for help or parked (since the console started)."""
        wanted = normal_plate(query)
        if not wanted:
            return set()
        return {station for plate, stations in self._plates.items() if wanted in plate for station in stations}

    def plates_at(self, station_id: str) -> list[str]:
        """The plates seen at a station, as written there (at most a few per plate)."""
        return [spelt for stations in self._plates.values() if (spelt := stations.get(station_id))]

    def _station_view(self, station: _Station) -> StationView:
        faults = tuple(sorted(station.faults.values(), key=lambda f: (SEVERITY_RANK.get(f.severity, 3), f.component)))
        view = StationView(station.id, station.state, station.since, station.boot, station.zone, station.firmware,
                           faults, telemetry=station.telemetry)
        return replace(view, standing=standing(view))

    def _ticket_view(self, ticket: _Ticket, now: datetime) -> TicketView:
        end = ticket.closed_at if ticket.state is TicketState.CLOSED and ticket.closed_at else now
        connected = ticket.state is TicketState.CONNECTED
        waited_until = min(ticket.connected_at, end) if ticket.connected_at else end
        return TicketView(
            ticket=ticket.id, station=ticket.station, state=ticket.state, opened=ticket.opened,
            since=ticket.since, waiting_s=_seconds(ticket.opened, waited_until), agent=ticket.agent,
            mine=connected and ticket.agent == self.agent,
            taken_by_other=connected and ticket.agent is not None and ticket.agent != self.agent,
            offered_to_me=ticket.offered, overdue=ticket.overdue, outcome=ticket.outcome, context=ticket.context,
            voice=ticket.voice,
            connected_s=_seconds(ticket.connected_at, end) if ticket.connected_at else None)

    # ---- messages ----

    def _apply(self, topic: str, payload: bytes, retained: bool, now: datetime) -> list[Signal]:
        levels = topic.split("/")
        if len(levels) < 4 or tuple(levels[:2]) != TOPIC_ROOT:
            raise Invalid("not a paystation/v1 topic")
        if not station_level(levels[2]):
            return []
        station = identifier(levels[2], "station id")
        rest = "/".join(levels[3:])
        if rest.startswith("fault/"):
            return self._fault(station, identifier(rest[len("fault/"):], "component"), payload, retained, now)
        handler = self._HANDLERS.get(rest)
        if handler is None:
            raise Invalid("not a topic the console reads")
        return handler(self, station, payload, retained, now)

    def _status(self, station_id: str, payload: bytes, retained: bool, now: datetime) -> list[Signal]:
        station = self._station(station_id)
        if not payload:  # the retained status was cleared
            station.state, station.since, station.boot = "unknown", None, None
            return []
        data = json_object(payload)
        state = text(data, "state", required=True)
        if state not in STATION_STATES:
            raise Invalid(f"state {state!r} is not one of {', '.join(STATION_STATES)}")
        boot = integer(data, "boot")
        if state == "lost" and boot is not None and station.online_boot is not None and boot < station.online_boot:
            log.info("stale will of %s ignored (boot %d, online since boot %d)", station_id, boot, station.online_boot)
            return []
        was = station.state
        station.state, station.since, station.boot = state, timestamp(data.get("ts")) or now, boot
        if state == "online":
            station.online_boot = boot
            station.zone = text(data, "zone")
            station.firmware = text(data, "firmware")
        if state == "lost" and was != "lost" and not retained:
            return [Signal(AlertKind.STATION_LOST, station_id, None,
                           f"Station {station_id} lost its connection to the broker.", now)]
        return []

    def _fault(self, station_id: str, component: str, payload: bytes, retained: bool, now: datetime) -> list[Signal]:
        station = self._station(station_id)
        if not payload:
            station.faults.pop(component, None)
            return []
        data = json_object(payload)
        active = data.get("active")
        if not isinstance(active, bool):
            raise Invalid("active: not true or false")
        if not active:
            station.faults.pop(component, None)
            return []
        fault = FaultView(component, text(data, "code"), text(data, "severity") or "unknown",
                          timestamp(data.get("since")), text(data, "message"), text(data, "parker_impact"))
        before = station.faults.get(component)
        station.faults[component] = fault
        already = before is not None and before.severity == "critical" and before.code == fault.code
        if fault.severity != "critical" or already or retained:
            return []
        detail = f": {fault.message}" if fault.message else ""
        return [Signal(AlertKind.CRITICAL_FAULT, station_id, fault.name, f"Critical fault at {station_id}{detail}", now)]

    def _telemetry(self, station_id: str, payload: bytes, _retained: bool, now: datetime) -> list[Signal]:
        """Kept for the station pane; not a change of the fleet's rows (5,000 stations send 17 a second)."""
        telemetry = telemetry_from(json_object(payload), now)
        station = self._stations.get(station_id)
        if station is None:
            station = self._station(station_id)
        station.telemetry = telemetry
        self._changed_telemetry.add(station_id)
        return []

    def _session(self, station_id: str, payload: bytes, _retained: bool, _now: datetime) -> list[Signal]:
        data = json_object(payload).get("data")
        plate = text(data, "plate")
        if plate:
            self._remember_plate(station_id, plate)
        return []

    def _help_state(self, station: str, payload: bytes, _retained: bool, now: datetime) -> list[Signal]:
        if not payload:
            self._end_others(station, None, now)
            return []
        data = json_object(payload)
        state = text(data, "state", required=True)
        if state == "idle":
            self._end_others(station, None, now)
            return []
        if state not in ("waiting", "connected", "closed"):
            raise Invalid(f"state {state!r} is not one of waiting, connected, closed")
        new = TicketState(state)
        ticket = self._ticket_of(station, identifier(data.get("ticket"), "ticket"), now)
        if ticket.state is TicketState.CLOSED and new is not TicketState.CLOSED:
            log.info("help/state %s for closed ticket %s ignored", state, ticket.id)
            return []
        self._end_others(station, ticket.id, now)
        ticket.state, ticket.since = new, timestamp(data.get("since")) or now
        if new is TicketState.CONNECTED and ticket.connected_at is None:
            ticket.connected_at = ticket.since
        ticket.opened = timestamp(data.get("opened")) or ticket.opened
        ticket.agent = text(data, "agent")
        ticket.overdue = data.get("overdue") is True
        ticket.context = context_from(data.get("context")) or ticket.context
        self._plate_of(ticket)
        ticket.voice = voice_from(data.get("voice"), "state") or ticket.voice
        if new is TicketState.CLOSED:
            self._close(ticket, text(data, "outcome"), now)
        if not ticket.accepting or new is TicketState.WAITING:
            return []
        ticket.accepting = False
        if new is TicketState.CONNECTED and ticket.agent != self.agent:
            return [Signal(AlertKind.ACCEPT_TAKEN, station, ticket.id,
                           f"{ticket.agent or 'Another agent'} took the ticket at {station}.", now)]
        return []

    def _help_request(self, station: str, payload: bytes, _retained: bool, now: datetime) -> list[Signal]:
        data = json_object(payload)
        ticket_id = identifier(data.get("ticket"), "ticket")
        known = self._tickets.get(ticket_id)
        if known is not None and known.state is TicketState.CLOSED:
            log.info("help/request for closed ticket %s ignored", ticket_id)
            return []
        ticket = self._ticket_of(station, ticket_id, now)
        if ticket.state is TicketState.UNKNOWN:
            ticket.state = TicketState.WAITING
        ticket.opened = timestamp(data.get("opened")) or ticket.opened
        ticket.context = ticket.context or context_from(data.get("context"))
        self._plate_of(ticket)
        first = not ticket.offered
        ticket.offered = True
        if not first or ticket.state is not TicketState.WAITING:
            return []
        plate = ticket.context.plate if ticket.context else None
        where = f" (plate {plate})" if plate else ""
        return [Signal(AlertKind.NEW_CALL, station, ticket_id, f"A parker at {station}{where} asks for help.", now)]

    def _help_event(self, station: str, payload: bytes, _retained: bool, now: datetime) -> list[Signal]:
        envelope = json_object(payload)
        if envelope.get("kind") != "help":
            raise Invalid("kind is not help")
        event_id = envelope.get("id") if isinstance(envelope.get("id"), str) else None
        if event_id in self._seen_events:
            return []
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise Invalid("data: not an object")
        ticket = self._ticket_of(station, identifier(data.get("ticket"), "ticket"), now)
        action = text(data, "action", required=True)
        step = self._ACTIONS.get(action)
        if step is None:
            raise Invalid(f"unknown help action {action!r}")
        alerts = step(self, ticket, data, timestamp(envelope.get("ts")) or now, now)
        if event_id is not None:
            self._seen_events[event_id] = None
            if len(self._seen_events) > MAX_SEEN_EVENTS:
                del self._seen_events[next(iter(self._seen_events))]
        return alerts

    def _opened(self, ticket: _Ticket, _data: dict[str, Any], at: datetime, _now: datetime) -> list[Signal]:
        if ticket.state is TicketState.UNKNOWN:
            ticket.state = TicketState.WAITING
        _merge(ticket, "station", "Help requested.", "event", at)
        return []

    def _accepted(self, ticket: _Ticket, data: dict[str, Any], at: datetime, _now: datetime) -> list[Signal]:
        _merge(ticket, "station", f"{text(data, 'agent') or 'An agent'} accepted.", "event", at)
        return []

    def _message(self, ticket: _Ticket, data: dict[str, Any], at: datetime, _now: datetime) -> list[Signal]:
        _merge(ticket, "agent", text(data, "text") or "", "event", at, agent=text(data, "agent"))
        return []

    def _reply(self, ticket: _Ticket, data: dict[str, Any], at: datetime, _now: datetime) -> list[Signal]:
        _merge(ticket, "parker", text(data, "text") or "", "event", at, choice=text(data, "choice"))
        return []

    def _overdue(self, ticket: _Ticket, _data: dict[str, Any], at: datetime, _now: datetime) -> list[Signal]:
        ticket.overdue = True
        _merge(ticket, "station", "No agent has answered in time (overdue).", "event", at)
        return []

    def _wait(self, ticket: _Ticket, _data: dict[str, Any], at: datetime, _now: datetime) -> list[Signal]:
        _merge(ticket, "station", "The parker keeps waiting.", "event", at)
        return []

    def _closed_event(self, ticket: _Ticket, data: dict[str, Any], at: datetime, now: datetime) -> list[Signal]:
        outcome, words, agent = text(data, "outcome"), text(data, "text"), text(data, "agent")
        by = f" by {agent}" if agent else ""
        _merge(ticket, "station", f"Closed{by}: {outcome or 'no outcome'}" + (f". {words}" if words else ""),
               "event", at)
        self._close(ticket, outcome, now)
        return []

    def _refused(self, ticket: _Ticket, data: dict[str, Any], at: datetime, now: datetime) -> list[Signal]:
        what, reason, agent = text(data, "refused") or "request", text(data, "reason") or "no reason given", \
            text(data, "agent")
        _merge(ticket, "station", f"Refused {what} from {agent or 'an agent'}: {reason}", "event", at)
        if agent != self.agent:
            return []
        if what == "accept":
            ticket.accepting = False
        return [Signal(AlertKind.REFUSED, ticket.station, ticket.id, f"{ticket.station} refused your {what}: {reason}",
                       now)]

    def _call(self, ticket: _Ticket, data: dict[str, Any], at: datetime, _now: datetime) -> list[Signal]:
        voice = voice_from(data, "call_state")
        if voice is None:
            raise Invalid("call: no valid call_state")
        ticket.voice = voice
        ended = voice.state in ("ended", "failed")
        ending = f" ({voice.reason})." if voice.reason and ended else ("." if ended else "")
        _merge(ticket, "station", VOICE_LINES[voice.state] + ending, "event", at)
        return []

    def _from_parker(self, station: str, payload: bytes, _retained: bool, now: datetime) -> list[Signal]:
        data = json_object(payload)
        ticket = self._ticket_of(station, identifier(data.get("ticket"), "ticket"), now)
        _merge(ticket, "parker", text(data, "text") or "", "live", timestamp(data.get("ts")) or now,
               choice=text(data, "choice"))
        return []

    _HANDLERS: ClassVar[dict[str, Callable[[Board, str, bytes, bool, datetime], list[Signal]]]] = {
        "status": _status, "telemetry": _telemetry, "event/session": _session, "help/state": _help_state,
        "help/request": _help_request, "event/help": _help_event, "help/from-parker": _from_parker}
    _ACTIONS: ClassVar[dict[str, Callable[[Board, _Ticket, dict[str, Any], datetime, datetime], list[Signal]]]] = {
        "open": _opened, "accept": _accepted, "message": _message, "reply": _reply, "overdue": _overdue,
        "wait": _wait, "close": _closed_event, "refused": _refused, "call": _call}

    # ---- stations, tickets and plates ----

    def _station(self, station_id: str) -> _Station:
        self._changed_stations.add(station_id)
        station = self._stations.get(station_id)
        if station is None:
            station = self._stations[station_id] = _Station(station_id)
        return station

    def _ticket_of(self, station: str, ticket_id: str, now: datetime) -> _Ticket:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            ticket = self._tickets[ticket_id] = _Ticket(ticket_id, station, opened=now)
            self._station_tickets.setdefault(station, set()).add(ticket_id)
        elif ticket.station != station:
            raise Invalid(f"ticket {ticket_id} belongs to {ticket.station}")
        self._changed_tickets.add(ticket_id)
        return ticket

    def _end_others(self, station: str, keep: str | None, now: datetime) -> None:
        """A station has one current ticket: any other still open there is over."""
        for ticket_id in list(self._station_tickets.get(station, ())):
            ticket = self._tickets[ticket_id]
            if ticket_id != keep and ticket.state is not TicketState.CLOSED:
                self._changed_tickets.add(ticket_id)
                self._close(ticket, ticket.outcome, now)

    def _close(self, ticket: _Ticket, outcome: str | None, now: datetime) -> None:
        ticket.state, ticket.outcome, ticket.accepting = TicketState.CLOSED, outcome, False
        ticket.closed_at = ticket.closed_at or now
        self._closed[ticket.id] = None
        while len(self._closed) > MAX_CLOSED:
            oldest, _ = self._closed.popitem(last=False)
            gone = self._tickets.pop(oldest)
            self._station_tickets[gone.station].discard(oldest)

    def _plate_of(self, ticket: _Ticket) -> None:
        if ticket.context is not None and ticket.context.plate:
            self._remember_plate(ticket.station, ticket.context.plate)

    def _remember_plate(self, station: str, plate: str) -> None:
        key = normal_plate(plate)
        if not key:
            return
        stations = self._plates.pop(key, {})
        stations.pop(station, None)
        stations[station] = plate
        while len(stations) > STATIONS_PER_PLATE:
            del stations[next(iter(stations))]
        self._plates[key] = stations
        while len(self._plates) > MAX_PLATES:
            self._plates.popitem(last=False)


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def _merge(ticket: _Ticket, who: str, words: str, source: str, at: datetime, *, agent: str | None = None,
           choice: str | None = None) -> None:
    """Add a line, or record ``source`` on the same line already known from another source."""
    for line in ticket.lines:
        if (line.who, line.text, line.agent, line.choice) == (who, words, agent, choice) and source not in line.sources:
            line.sources.add(source)
            return
    ticket.lines.append(_Line(who, words, at, agent, choice, {source}))
    del ticket.lines[:-MAX_LINES]
