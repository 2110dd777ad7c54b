"""The station's MQTT wire contract: its topics and the exact bytes of the payloads it builds (docs/mqtt.md).

Pure: the standard library and kiosk.domain only, so that the store, the uplink and the
help calls kept in memory all build the same messages the same way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kiosk.domain.records import FaultRecord, PaymentRecord, RepairNoteRecord, SessionRecord

__all__ = [
    "CFG_DESIRED", "CFG_REPORTED", "COMMAND_PREFIX", "EVENT_PREFIX", "FAULT_PREFIX", "HELP_FROM_PARKER",
    "HELP_REQUEST", "HELP_REQUEST_EXPIRY_S", "HELP_STATE", "HELP_TO_PARKER", "STATUS", "TELEMETRY", "TOPIC_ROOT",
    "VOICE_STATE_KEYS", "event_envelope", "event_topic", "fault_event_data", "fault_state", "fault_topic",
    "from_parker", "help_idle", "help_request", "help_state", "json_text", "payment_event_data", "repair_event_data",
    "session_event_data",
    "station_prefix", "time_text", "voice_state", "will_payload",
]

# --- topics, below the station's prefix ------------------------------------------------------------------------

TOPIC_ROOT = "paystation/v1"
STATUS = "status"  # retained birth, offline and will
TELEMETRY = "telemetry"
CFG_DESIRED = "cfg/desired"  # subscribed: staff's remote configuration
CFG_REPORTED = "cfg/reported"  # retained: what the station applied
HELP_STATE = "help/state"  # retained: the current help ticket
HELP_REQUEST = "help/request"  # offered to the agents' shared subscription
HELP_FROM_PARKER = "help/from-parker"
HELP_TO_PARKER = "help/to-parker"  # subscribed: an agent's accept, message or resolve
COMMAND_PREFIX = "cmd/"  # subscribed: cmd/{name}
FAULT_PREFIX = "fault/"  # retained: fault/{component}
EVENT_PREFIX = "event/"  # event/{kind}, numbered by the database

HELP_REQUEST_EXPIRY_S = 120  # a help/request nobody took within about two minutes leaves the broker


def station_prefix(station_id: str) -> str:
    """The prefix of every topic of station ``station_id``: ``paystation/v1/{station}/``."""
    return f"{TOPIC_ROOT}/{station_id}/"


def fault_topic(component: str) -> str:
    """The retained topic of ``component``'s fault: ``fault/{component}``."""
    return FAULT_PREFIX + component


def event_topic(kind: str) -> str:
    """The topic of events of ``kind``: ``event/{kind}``."""
    return EVENT_PREFIX + kind


# --- payloads --------------------------------------------------------------------------------------------------


def time_text(value: datetime) -> str:
    """MQTT form of a time: ISO 8601 UTC with milliseconds and ``Z``; ValueError unless timezone-aware."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"timestamp must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def json_text(value: Any) -> str:
    """Compact UTF-8 JSON, keys in insertion order, as published on MQTT."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def will_payload(boot: int) -> str:
    """The ``status`` will of the connection with this boot number, exactly as the broker publishes it."""
    return json_text({"state": "lost", "boot": boot})


def fault_state(fault: FaultRecord, active: bool, now: datetime) -> str:
    """The retained ``fault/{component}`` payload: the fault raised (since when) or cleared (now)."""
    return json_text({"active": active, "code": fault.code, "severity": fault.severity,
                      "since": time_text(fault.since if active else now), "message": fault.message,
                      "parker_impact": fault.parker_impact})


def help_state(ticket_id: str, state: str, since: datetime, opened: datetime, agent: str | None, overdue: bool,
               context: dict[str, Any], outcome: str | None, voice: dict[str, Any] | None = None) -> str:
    """The retained ``help/state`` payload: the current ticket, since when it is in ``state``; ``voice`` (its latest
    voice call, see voice_state) only for a ticket that had one."""
    retained: dict[str, Any] = {"ticket": ticket_id, "state": state, "since": time_text(since),
                                "opened": time_text(opened), "agent": agent, "overdue": overdue, "context": context}
    if state == "closed":
        retained["outcome"] = outcome
    if voice is not None:
        retained["voice"] = voice
    return json_text(retained)


VOICE_STATE_KEYS = ("call", "uri", "state", "reason", "direction", "since")
"""What help/state's ``voice`` says of the latest call; the store keeps more (the metrics) in the same record."""


def voice_state(kept: dict[str, Any]) -> dict[str, Any]:
    """help/state's ``voice``: the latest call's SIP Call-ID, far end, state, reason, direction and since when."""
    return {key: kept.get(key) for key in VOICE_STATE_KEYS}


def help_idle(since: datetime) -> str:
    """The retained ``help/state`` of a station that never had a help ticket: ``idle``, ticket null."""
    return json_text({"ticket": None, "state": "idle", "since": time_text(since)})


def help_request(ticket_id: str, station_id: str, opened: datetime, context: dict[str, Any]) -> str:
    """The ``help/request`` payload offered to the agents' shared subscription."""
    return json_text({"ticket": ticket_id, "station": station_id, "opened": time_text(opened), "context": context})


def from_parker(ticket_id: str, text: str, choice: str, now: datetime) -> str:
    """The ``help/from-parker`` payload: the parker's quick reply, for the agent."""
    return json_text({"ticket": ticket_id, "text": text, "choice": choice, "ts": time_text(now)})


def event_envelope(event_id: str, series: str, seq: int, boot: int, now: datetime, kind: str,
                   data: dict[str, Any]) -> str:
    """The ``event/{kind}`` payload: ``data`` in the envelope that numbers it within the database's series."""
    return json_text({"id": event_id, "series": series, "seq": seq, "boot": boot, "ts": time_text(now),
                      "kind": kind, "data": data})


def fault_event_data(fault: FaultRecord, active: bool) -> dict[str, Any]:
    """The data of an ``event/fault``: the fault raised or cleared."""
    return {"component": fault.component, "code": fault.code, "severity": fault.severity, "message": fault.message,
            "parker_impact": fault.parker_impact, "active": active}


def repair_event_data(note: RepairNoteRecord) -> dict[str, Any]:
    """The data of an ``event/repair``: a crew member's "fixed" note and the fault it notes (code null without one)."""
    raised = None if note.fault_raised_at is None else time_text(note.fault_raised_at)
    return {"component": note.component, "code": note.code, "fault_raised_at": raised,
            "fault_active": note.fault_active, "note": note.note, "by": note.by}


def session_event_data(session: SessionRecord, reason: str | None) -> dict[str, Any]:
    """The data of an ``event/session``: a session created or changed, and why (courtesy)."""
    return {"session_id": session.id, "plate": session.plate, "zone": session.zone, "kind": session.kind,
            "starts": time_text(session.starts), "expires": time_text(session.expires), "minutes": session.minutes,
            "amount": session.amount, "currency": session.currency, "payment_id": session.payment_id,
            "extends_id": session.extends_id, "reason": reason}


def payment_event_data(payment: PaymentRecord, session_id: str | None) -> dict[str, Any]:
    """The data of an ``event/payment``; the masked PAN stays on the station (receipts need it, staff do not)."""
    return {"payment_id": payment.id, "method": payment.method, "state": payment.state, "plate": payment.plate,
            "zone": payment.zone, "amount": payment.amount, "currency": payment.currency, "minutes": payment.minutes,
            "result_code": payment.result_code, "brand": payment.brand, "auth_code": payment.auth_code,
            "receipt_no": payment.receipt_no, "trace_no": payment.trace_no, "session_id": session_id}
