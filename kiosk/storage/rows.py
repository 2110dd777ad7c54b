"""Validation and row-to-record helpers shared by the store's modules (store.py, store_payments.py)."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any, Sequence, TypeVar

import peewee as pw

from kiosk.domain.helpdesk import Phase
from kiosk.domain.records import FaultRecord, PaymentRecord, SessionRecord
from kiosk.storage.schema import _utc

R = TypeVar("R")


def _ts(value: datetime) -> str:
    """MQTT form: ISO 8601 UTC with milliseconds and ``Z``."""
    return _utc(value, "timestamp").replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _json(value: Any) -> str:
    """Compact UTF-8 JSON, keys in insertion order, as published on MQTT."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def fault_state(fault: FaultRecord, active: bool, now: datetime) -> str:
    """The retained ``fault/{component}`` payload (MQTT.md): the fault raised (since when) or cleared (now)."""
    return _json({"active": active, "code": fault.code, "severity": fault.severity,
                  "since": _ts(fault.since if active else now), "message": fault.message,
                  "parker_impact": fault.parker_impact})


def help_state(ticket_id: str, state: str, since: datetime, opened: datetime, agent: str | None, overdue: bool,
               context: dict[str, Any], outcome: str | None) -> str:
    """The retained ``help/state`` payload (MQTT.md): the current ticket, since when it is in ``state``."""
    retained: dict[str, Any] = {"ticket": ticket_id, "state": state, "since": _ts(since), "opened": _ts(opened),
                                "agent": agent, "overdue": overdue, "context": context}
    if state == Phase.CLOSED:
        retained["outcome"] = outcome
    return _json(retained)


def help_request(ticket_id: str, station_id: str, opened: datetime, context: dict[str, Any]) -> str:
    """The ``help/request`` payload offered to the agents' shared subscription."""
    return _json({"ticket": ticket_id, "station": station_id, "opened": _ts(opened), "context": context})


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return value


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _where(plate: str, zone: str, minutes: int, starts: datetime, expires: datetime) -> None:
    _text("plate", plate)
    _text("zone", zone)
    _int("minutes", minutes, 1)
    if _utc(expires, "expires") <= _utc(starts, "starts"):
        raise ValueError(f"expires {expires} must be after starts {starts}")


# --- rows -> records and event data ----------------------------------------------------------------------------


def _record(cls: type[R], row: pw.Model, **extra: Any) -> R:
    names = (f.name for f in fields(cls) if f.name not in extra)
    return cls(**{name: getattr(row, name) for name in names}, **extra)


def _session_data(s: SessionRecord, reason: str | None) -> dict[str, Any]:
    return {"session_id": s.id, "plate": s.plate, "zone": s.zone, "kind": s.kind, "starts": _ts(s.starts),
            "expires": _ts(s.expires), "minutes": s.minutes, "amount": s.amount, "currency": s.currency,
            "payment_id": s.payment_id, "extends_id": s.extends_id, "reason": reason}


def _payment_data(p: PaymentRecord, session_id: str | None) -> dict[str, Any]:
    # The masked PAN stays on the station: receipts need it, staff do not.
    return {"payment_id": p.id, "state": p.state, "plate": p.plate, "zone": p.zone, "amount": p.amount,
            "currency": p.currency, "minutes": p.minutes, "result_code": p.result_code, "brand": p.brand,
            "auth_code": p.auth_code, "receipt_no": p.receipt_no, "trace_no": p.trace_no, "session_id": session_id}
