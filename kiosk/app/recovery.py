"""Start-up recovery: the database opened or its fault kept, stored remote configuration, the help call shown again."""
from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from kiosk import config, remote_config
from kiosk.domain import helpdesk, journey
from kiosk.domain.faults import METHOD_DOWN, STATION
from kiosk.domain.records import FaultRecord, PaymentRecord
from kiosk.mqtt.contract import time_text
from kiosk.storage.store import StorageError, Store

__all__ = ["open_store", "remote_settings", "removed_methods", "restore_help", "start_fault", "storage_fault"]

log = logging.getLogger(__name__)


def open_store(path: Path, station_id: str, now: datetime) -> tuple[Store | None, tuple[FaultRecord, ...]]:
    """Open the database at start; a broken one becomes a storage fault (StorageHealer retries it), never a crash loop.

    The storage fault of the last run is cleared (the database opened), a database made in
    place of an empty file raises ``storage/replaced`` at its first start, and payments left
    pending by the last run are resolved. Returns the store (None if unusable) and the active faults.
    """
    try:
        store = Store.open(path, station_id, now)
    except StorageError as exc:
        return None, (storage_fault(exc, now),)
    try:
        if any(f.component == "storage" for f in store.active_faults()):
            store.clear_fault("storage", now)
        replaced = store.replaced_at
        if replaced is not None and not store.raised_since("storage", "replaced", replaced):
            kind = STATION.kind_of("storage", "replaced")
            message = f"{kind.message} Made anew at {time_text(replaced)}, new series {store.series}."
            store.raise_fault("storage", "replaced", kind.severity, message, kind.parker_impact, now)
        for payment in store.resolve_pending_payments(now):
            log.warning("payment %s left pending by the last run resolved as %s", payment.id, payment.state)
        return store, tuple(store.active_faults())
    except StorageError as exc:
        with suppress(StorageError):
            store.close()
        return None, (storage_fault(exc, now),)


def storage_fault(exc: StorageError, now: datetime) -> FaultRecord:
    """The storage fault for a database that cannot be used, as the catalogue describes it."""
    kind = STATION.kind_of("storage", exc.reason)
    log.critical("database unusable (%s): %s", exc.reason, exc)
    return FaultRecord("storage", exc.reason, kind.severity, f"{kind.message} {exc}", kind.parker_impact, now)


def start_fault(store: Store | None, component: str, code: str, detail: str, now: datetime) -> FaultRecord:
    """A fault found while starting, as the catalogue describes it; stored when the database works."""
    kind = STATION.kind_of(component, code)
    message = f"{kind.message} {detail}"
    if store is None:
        return FaultRecord(component, code, kind.severity, message, kind.parker_impact, now)
    return store.raise_fault(component, code, kind.severity, message, kind.parker_impact, now)


def remote_settings(file_settings: config.Settings, store: Store | None, faults: tuple[FaultRecord, ...],
                     now: datetime) -> tuple[config.Settings, tuple[FaultRecord, ...]]:
    """The file's settings with the stored remote configuration (cfg/desired) over them, if it still validates."""
    desired = store.remote_config() if store is not None else None
    if desired is None:
        return file_settings, faults
    try:
        settings = remote_config.overlay(file_settings, desired)
    except config.ConfigError as exc:
        detail = "; ".join(str(p) for p in exc.problems)
        log.error("stored remote configuration version %s no longer validates: %s", desired.get("version"), detail)
        fault = start_fault(store, "config", "remote_invalid", detail, now)
        return file_settings, tuple(f for f in faults if f.component != "config") + (fault,)
    if store is not None and any(f.component == "config" for f in faults):
        store.clear_fault("config", now)
        faults = tuple(f for f in faults if f.component != "config")
    log.info("remote configuration version %d applied over the file", settings.version)
    return settings, faults


def removed_methods(store: Store, owed: Sequence[PaymentRecord], methods: Collection[str],
                    faults: tuple[FaultRecord, ...], now: datetime) -> tuple[FaultRecord, ...]:
    """What payment methods the station no longer has left behind: their faults cleared, their owed payments to staff.

    Nothing can clear the fault that stopped a method that is gone (an impact in METHOD_DOWN,
    which only payment methods have), so it is cleared here. Nobody can
    settle (book or reverse) a payment owed to such a method either: ``payments/unreconciled``
    is raised first, then each is marked unreconciled, as a method does when it cannot tell.
    If the database fails on the way, the fault is kept in memory with the storage fault,
    and what was not marked is still owed at the next start. Returns the active faults.
    """
    for fault in faults:
        if fault.parker_impact in METHOD_DOWN and fault.component not in methods:
            log.warning("fault %s/%s belongs to no payment method of this station: cleared", fault.component, fault.code)
            faults = tuple(f for f in faults if f.component != fault.component)
            with suppress(StorageError):  # the fault stops nothing (faults.blocking); the next start tries again
                store.clear_fault(fault.component, now)
    orphans = [p for p in owed if p.method not in methods]
    if not orphans:
        return faults
    detail = (f"payments {', '.join(p.id for p in orphans)}: their payment method is not among this station's "
              f"({', '.join(methods)})")
    others = tuple(f for f in faults if f.component != "payments")
    try:
        fault = start_fault(store, "payments", "unreconciled", detail, now)
        for payment in orphans:
            store.mark_unreconciled(payment.id, f"its payment method {payment.method} is not configured", now)
            log.error("payment %s owed to %s, a method this station does not have: left to staff", payment.id,
                      payment.method)
    except StorageError as exc:
        return (*others, start_fault(None, "payments", "unreconciled", detail, now), storage_fault(exc, now))
    return (*others, fault)


def restore_help(store: Store, state: journey.State, timeouts: config.TimeoutSettings, now: datetime) -> journey.State:
    """A help call open when the station stopped is shown again, or closed as abandoned if it is stale."""
    ticket = store.open_help_ticket_record(now)
    if ticket is not None and helpdesk.stale(ticket, timeouts, now):
        log.info("help ticket %s was open when the station stopped, long ago: closed as abandoned", ticket.id)
        store.record_help(ticket.id, helpdesk.HelpAction.CLOSE, now, outcome=helpdesk.ABANDONED)
    elif ticket is not None:
        log.info("help ticket %s (%s) was open when the station stopped: shown again", ticket.id, ticket.state)
        state = replace(state, help=helpdesk.restore(ticket, timeouts, now), help_ticket_id=ticket.id)
    return state
