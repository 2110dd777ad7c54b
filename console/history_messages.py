"""The stations' messages the console's history reads (event/help, event/feedback, event/fault, fault/*), checked."""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from console.metrics import RATINGS, FaultChange, VoiceFigures
from console.payload import station_level

__all__ = [
    "HISTORY_TOPICS",
    "FaultSeen",
    "HelpAction",
    "HelpStep",
    "Malformed",
    "Rating",
    "Record",
    "parse",
]

ROOT = "paystation/v1/"
HISTORY_TOPICS = (  # what a console subscribes to for its history (QoS 1)
    f"{ROOT}+/event/help",
    f"{ROOT}+/event/feedback",
    f"{ROOT}+/event/fault",
    f"{ROOT}+/fault/+",
)
MAX_ID = 100  # characters of a station, ticket, component, code, agent or event id
MAX_TEXT = 500  # characters kept of a message


class Malformed(ValueError):
    """A message on a topic the history reads that does not fit the MQTT contract."""


class HelpAction(StrEnum):
    """The steps of a help ticket the history keeps (the others it ignores)."""

    OPEN = "open"
    ACCEPT = "accept"
    CLOSE = "close"


@dataclass(frozen=True)
class HelpStep:
    """An ``event/help`` step: open (plate, screen, zone), accept (agent) or close (agent, outcome, figures)."""

    event_id: str
    station: str
    at: datetime
    ticket: str
    action: HelpAction
    agent: str | None = None
    outcome: str | None = None
    presses: int | None = None
    time_to_accept_s: float | None = None
    time_to_resolve_s: float | None = None
    voice: VoiceFigures | None = None
    plate: str | None = None
    screen: str | None = None
    zone: str | None = None


@dataclass(frozen=True)
class Rating:
    """An ``event/feedback``: a parker's CSAT rating (1-5) of a parking session and of the journey's help call."""

    event_id: str
    station: str
    at: datetime
    rating: int
    session_id: str | None
    ticket: str | None  # the help ticket of the rated journey (None: no help call, or a station from before)


@dataclass(frozen=True)
class FaultSeen:
    """A fault change: an ``event/fault`` (``event_id`` and ``seq``) or a retained ``fault/{component}`` (None)."""

    station: str
    component: str
    change: FaultChange
    event_id: str | None
    seq: int | None

    @property
    def at(self) -> datetime:
        """When the change happened: the event's ``ts``, or the retained payload's ``since``."""
        return self.change.at


Record = HelpStep | Rating | FaultSeen


def parse(topic: str, payload: bytes) -> Record | None:
    """The record a message makes; None for a topic (or help step) the history does not use; Malformed if invalid."""
    if not topic.startswith(ROOT):
        return None
    levels = topic[len(ROOT):].split("/")
    if len(levels) != 3:
        return None
    station, family, name = levels
    if not station_level(station):
        return None
    if family == "event":
        reader = EVENT_READERS.get(name)
        return None if reader is None else reader(_identifier(station, "station"), _envelope(payload, name))
    if family == "fault":
        return _retained_fault(_identifier(station, "station"), _identifier(name, "component"), payload)
    return None


@dataclass(frozen=True)
class Envelope:
    """The checked envelope of an event."""

    event_id: str
    at: datetime
    seq: int | None
    data: dict[str, Any]


def _envelope(payload: bytes, kind: str) -> Envelope:
    envelope = _object(payload)
    if envelope.get("kind") != kind:
        raise Malformed(f"kind is not {kind}")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise Malformed("data: not an object")
    return Envelope(_identifier(envelope.get("id"), "id"), _time(envelope.get("ts"), "ts"),
                    _integer(envelope, "seq"), data)


def _help(station: str, event: Envelope) -> HelpStep | None:
    data = event.data
    action = data.get("action")
    if not isinstance(action, str):
        raise Malformed("action: missing or not a string")
    if action not in HELP_ACTIONS:
        return None  # a step the history does not use (message, reply, call ...)
    step = HelpAction(action)
    base = HelpStep(event.event_id, station, event.at, _identifier(data.get("ticket"), "ticket"), step)
    if step is HelpAction.OPEN:
        context = data.get("context")
        if context is not None and not isinstance(context, dict):
            raise Malformed("context: not an object")
        context = context or {}
        return replace(base, plate=_text(context, "plate"), screen=_text(context, "screen"), zone=_text(context, "zone"))
    if step is HelpAction.ACCEPT:
        agent = _text(data, "agent")
        if not agent:
            raise Malformed("agent: missing")
        return replace(base, agent=agent[:MAX_ID])
    outcome = _identifier(data.get("outcome"), "outcome")
    presses = _integer(data, "presses")
    if presses is not None and presses < 0:
        raise Malformed("presses: negative")
    return replace(base, agent=(_text(data, "agent") or "")[:MAX_ID] or None, outcome=outcome, presses=presses,
                   time_to_accept_s=_seconds(data, "time_to_accept_s"),
                   time_to_resolve_s=_seconds(data, "time_to_resolve_s"), voice=_voice(data.get("voice")))


def _voice(value: Any) -> VoiceFigures | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Malformed("voice: not an object")
    calls = _integer(value, "calls")
    if calls is not None and calls < 0:
        raise Malformed("voice.calls: negative")
    return VoiceFigures(calls or 0, _seconds(value, "answer_s"), _seconds(value, "talk_s"), _text(value, "outcome"))


def _feedback(station: str, event: Envelope) -> Rating:
    rating = _integer(event.data, "rating")
    if rating not in RATINGS:
        raise Malformed("rating: not an integer from 1 to 5")
    session, ticket = event.data.get("session_id"), event.data.get("ticket")
    return Rating(event.event_id, station, event.at, rating,
                  None if session is None else _identifier(session, "session_id"),
                  None if ticket is None else _identifier(ticket, "ticket"))


def _fault_event(station: str, event: Envelope) -> FaultSeen:
    data = event.data
    return FaultSeen(station, _identifier(data.get("component"), "component"), _change(data, event.at),
                     event.event_id, event.seq)


def _retained_fault(station: str, component: str, payload: bytes) -> FaultSeen | None:
    if not payload:  # the retained fault was cleared by hand: it says nothing about when
        return None
    data = _object(payload)
    return FaultSeen(station, component, _change(data, _time(data.get("since"), "since")), None, None)


def _change(data: dict[str, Any], at: datetime) -> FaultChange:
    active = data.get("active")
    if not isinstance(active, bool):
        raise Malformed("active: not true or false")
    return FaultChange(at, active, _identifier(data.get("code"), "code"), (_text(data, "severity") or "")[:MAX_ID],
                       _text(data, "message") or "", (_text(data, "parker_impact") or "")[:MAX_ID])


EVENT_READERS: dict[str, Callable[[str, Envelope], Record | None]] = {
    "help": _help,
    "feedback": _feedback,
    "fault": _fault_event,
}
HELP_ACTIONS = frozenset(action.value for action in HelpAction)


def _object(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Malformed(f"expected a JSON object, got {type(value).__name__}")
    return value


def _clean(text: str, limit: int) -> str:
    """At most ``limit`` characters, lone surrogates and control characters replaced."""
    text = text[:limit].encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c.isprintable() else " " for c in text)


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key}: not a string")
    return _clean(value, MAX_TEXT)


def _identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID or not value.isprintable():
        raise Malformed(f"{what}: not a plain string of 1 to {MAX_ID} characters")
    return value


def _integer(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not -2**63 <= value < 2**63:
        raise Malformed(f"{key}: not an integer")
    return value


def _seconds(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise Malformed(f"{key}: not a number of seconds")
    return float(value)


def _time(value: Any, what: str) -> datetime:
    """An ISO 8601 time with ``Z`` or an offset, in UTC."""
    if not isinstance(value, str) or len(value) > 40:
        raise Malformed(f"{what}: not a time")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
        utc = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        raise Malformed(f"{what}: not an ISO 8601 time") from None
    if utc is None:
        raise Malformed(f"{what}: no UTC offset")
    return utc
