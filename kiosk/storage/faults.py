"""The store's faults: one active fault per component, its history, each change with its retained state and event."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from kiosk.domain.records import FaultRecord, RepairNoteRecord
from kiosk.domain.refusals import InvalidValue
from kiosk.mqtt.contract import fault_event_data, fault_state, fault_topic, repair_event_data
from kiosk.storage.core import StoreCore
from kiosk.storage.rows import check_choice, check_text, to_record
from kiosk.storage.schema import Fault, RepairNote, utc

__all__ = ["SEVERITIES", "FaultLog", "fault_record"]

log = logging.getLogger("kiosk.storage.store")

SEVERITIES = ("info", "warning", "critical")
COMPONENT_CHARS = 64  # a fault component's longest name
NOTE_CHARS = 200  # a repair note's longest text
BY_CHARS = 64  # the longest account name that signs one


def fault_record(component: str, code: str, severity: str, message: str, parker_impact: str,
                 since: datetime) -> FaultRecord:
    """A validated fault about to be stored; InvalidValue for empty text or an unknown severity."""
    for name, value in (("component", component), ("code", code), ("message", message),
                        ("parker_impact", parker_impact)):
        check_text(name, value)
    check_choice("severity", severity, SEVERITIES)
    return FaultRecord(component, code, severity, message, parker_impact, utc(since, "since"))


class FaultLog:
    """Faults raised and cleared, each change committed with its ``fault/{component}`` and ``event/fault`` rows."""

    def __init__(self, core: StoreCore) -> None:
        """Keep faults in ``core``'s database."""
        self._core = core

    def raise_fault(self, component: str, code: str, severity: str, message: str, parker_impact: str,
                    now: datetime) -> FaultRecord:
        """Make ``code`` the active fault of ``component``, replacing another code.

        Idempotent: raising the code that is already active writes nothing and returns it.
        """
        fault = fault_record(component, code, severity, message, parker_impact, utc(now, "now"))
        with self._core.write():
            current = self._active_fault(component)
            if current is not None and current.code == code:
                return to_record(FaultRecord, current, since=current.raised_at)
            fault = self._raise(fault, current, now)
        log.warning("fault %s/%s (%s): %s", component, code, severity, message)
        return fault

    def clear_fault(self, component: str, now: datetime) -> bool:
        """Clear the active fault of ``component``; False (and nothing written) if there is none."""
        utc(now, "now")
        with self._core.write():
            current = self._active_fault(component)
            if current is None:
                return False
            self._clear(current, now)
        log.info("fault %s/%s cleared", component, current.code)
        return True

    def sync_faults(self, active: Iterable[FaultRecord], cleared: Iterable[str], now: datetime) -> int:
        """Record the faults kept in memory while the database failed, in one transaction; returns how many changed.

        Each of ``active`` that is not active here with its code is raised with its own
        ``since``; the active fault of each component in ``cleared`` (and not in ``active``) is
        cleared now. Each change is reported as ``raise_fault`` and ``clear_fault`` report it.
        """
        wanted = {f.component: fault_record(f.component, f.code, f.severity, f.message, f.parker_impact, f.since)
                  for f in active}
        utc(now, "now")
        changed = 0
        with self._core.write():
            for component in set(cleared) - set(wanted):
                current = self._active_fault(component)
                if current is not None:
                    self._clear(current, now)
                    changed += 1
            for fault in wanted.values():
                current = self._active_fault(fault.component)
                if current is None or current.code != fault.code:
                    self._raise(fault, current, now)
                    changed += 1
        if changed:
            log.info("%d fault changes kept in memory recorded in the database", changed)
        return changed

    def raised_since(self, component: str, code: str, since: datetime) -> bool:
        """Whether the fault ``component``/``code`` was raised at or after ``since`` (active or cleared)."""
        query = Fault.select().where(Fault.component == component, Fault.code == code, Fault.raised_at >= since)
        with self._core.guard():
            return bool(query.exists(self._core.db))

    def active_faults(self) -> list[FaultRecord]:
        """Every active fault, ordered by component."""
        query = Fault.select().where(Fault.cleared_at.is_null()).order_by(Fault.component)
        with self._core.guard():
            return [to_record(FaultRecord, row, since=row.raised_at) for row in query.execute(self._core.db)]

    def note_repair(self, component: str, note: str, by: str, now: datetime) -> RepairNoteRecord:
        """Store a crew member's "fixed" note with its ``event/repair``, in one transaction.

        The note names the fault it notes: the component's active fault, else its latest; none
        when the component never had one. InvalidValue for an empty or too long note or name.
        """
        for name, value, longest in (("component", component, COMPONENT_CHARS), ("note", note, NOTE_CHARS),
                                     ("by", by, BY_CHARS)):
            if len(check_text(name, value)) > longest:
                raise InvalidValue(f"{name} must be at most {longest} characters, got {len(value)}")
        utc(now, "now")
        with self._core.write():
            fault: Fault | None = (Fault.select().where(Fault.component == component)
                                   .order_by(Fault.cleared_at.is_null().desc(), Fault.raised_at.desc(), Fault.id.desc())
                                   .first(self._core.db))
            note_id = RepairNote.insert(component=component, code=None if fault is None else fault.code, note=note,
                                        by=by, fault_id=None if fault is None else fault.id,
                                        created=now).execute(self._core.db)
            record = RepairNoteRecord(int(note_id), component, None if fault is None else fault.code,
                                      None if fault is None else fault.raised_at,
                                      fault is not None and fault.cleared_at is None, note, by, utc(now, "now"))
            self._core.add_event("repair", repair_event_data(record), now)
        log.info("repair note on %s by %s (fault %s, %s)", component, by, record.code,
                 "still active" if record.fault_active else "not active")
        return record

    def _active_fault(self, component: str) -> Fault | None:
        found: Fault | None = Fault.select().where(Fault.component == component,
                                                   Fault.cleared_at.is_null()).first(self._core.db)
        return found

    def _raise(self, fault: FaultRecord, current: Fault | None, now: datetime) -> FaultRecord:
        """Inside a transaction: close ``current`` (another code) in the history, insert ``fault``, report it."""
        db = self._core.db
        if current is not None:
            Fault.update(cleared_at=now).where(Fault.id == current.id).execute(db)
        fault_id = Fault.insert(component=fault.component, code=fault.code, severity=fault.severity,
                                message=fault.message, parker_impact=fault.parker_impact,
                                raised_at=fault.since).execute(db)
        row = self._core.one(Fault, fault_id, "fault")
        fault = to_record(FaultRecord, row, since=row.raised_at)
        self._report(fault, True, now)
        return fault

    def _clear(self, current: Fault, now: datetime) -> None:
        """Inside a transaction: clear the active fault ``current`` and report it."""
        Fault.update(cleared_at=now).where(Fault.id == current.id).execute(self._core.db)
        self._report(to_record(FaultRecord, current, since=current.raised_at), False, now)

    def _report(self, fault: FaultRecord, active: bool, now: datetime) -> None:
        self._core.insert_outbox(fault_topic(fault.component), fault_state(fault, active, now), 1, True, None, now)
        self._core.add_event("fault", fault_event_data(fault, active), now)
