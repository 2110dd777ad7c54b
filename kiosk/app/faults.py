"""The fault board: the one owner of the station's active faults, "why parkers cannot pay" among them."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from kiosk.domain.events import Event, FaultsChanged
from kiosk.domain.faults import STATION, Catalogue
from kiosk.domain.records import FaultRecord
from kiosk.ports import StorageError, Store

__all__ = ["FaultBoard", "FaultListener"]

log = logging.getLogger(__name__)

FaultListener = Callable[[FaultRecord, bool, bool, datetime], None]
"""Told of every change: (fault, active, stored in the database, now)."""


class FaultBoard:
    """Holds the active faults, one per component, as Klipper holds its single shutdown state with its reason.

    Every raise and clear goes through here: it is committed to the database when one is
    usable (with its outbox row), told to the listeners (the uplink publishes what the store
    could not keep; the storage healer schedules its tries) and posted to the journey as
    FaultsChanged. What the database missed is remembered and written by ``record_unstored``
    once it works again.
    """

    def __init__(self, store: Store, post: Callable[[Event], None], faults: tuple[FaultRecord, ...] = (),
                 catalogue: Catalogue = STATION) -> None:
        self._store = store
        self._catalogue = catalogue  # the station's faults and those its payment methods declare
        self._post = post
        self._faults = {f.component: f for f in faults}
        self._unrecorded_clears: set[str] = set()  # components cleared while the database could not record it
        self._listeners: list[FaultListener] = []

    def listen(self, listener: FaultListener) -> None:
        """Call ``listener`` after every raise and clear."""
        self._listeners.append(listener)

    def active(self) -> tuple[FaultRecord, ...]:
        """The active faults as the station knows them (the database may not have been able to keep them all)."""
        return tuple(self._faults.values())

    def get(self, component: str) -> FaultRecord | None:
        """The active fault of ``component``, if any."""
        return self._faults.get(component)

    def knows(self, component: str) -> bool:
        """Whether ``component`` is one the station reports faults of (its own, its payment methods', active ones)."""
        return component in self._catalogue.components or component in self._faults

    def in_service_mode(self) -> bool:
        """A crew announced itself (cmd/mode service): door openings are expected."""
        operator = self._faults.get("operator")
        return operator is not None and operator.code == "service"

    def raise_fault(self, component: str, code: str, now: datetime, detail: str = "") -> None:
        """Record a fault (durably when the store works) and tell the journey; the same code again changes nothing."""
        kind = self._catalogue.kind_of(component, code)
        message = f"{kind.message} {detail}".strip()
        record = FaultRecord(component, code, kind.severity, message, kind.parker_impact, now)
        current = self._faults.get(component)
        if current is not None and current.code == code:
            return
        log.error("fault raised: %s/%s (%s): %s", component, code, kind.severity, message)
        stored = False
        if self._store.usable:
            try:
                record = self._store.raise_fault(component, code, kind.severity, message, kind.parker_impact, now)
                stored = True
            except StorageError as exc:
                log.error("fault %s/%s kept in memory only: %s", component, code, exc)
        self._faults[component] = record
        self._changed(record, True, stored, now)

    def clear_fault(self, component: str, now: datetime, *, must_store: bool = False) -> None:
        """Clear a component's fault (durably when the store works) and tell the journey.

        With ``must_store`` a failing database leaves the fault active and raises StorageError.
        """
        record = self._faults.get(component)
        if record is None:
            return
        stored = False
        if self._store.usable:
            try:
                stored = self._store.clear_fault(component, now)  # False: it never reached the store either
            except StorageError as exc:
                if must_store:
                    raise
                log.error("fault %s cleared in memory only: %s", component, exc)
        del self._faults[component]
        log.info("fault cleared: %s", component)
        if not stored:
            self._unrecorded_clears.add(component)
        self._changed(record, False, stored, now)

    def record_unstored(self, store: Store, now: datetime) -> None:
        """Bring ``store`` up to the board: every active fault raised, every unrecorded clear cleared.

        StorageError if it fails; the clears are kept for the next try.
        """
        store.sync_faults(self._faults.values(), self._unrecorded_clears, now)
        self._unrecorded_clears.clear()

    def _changed(self, record: FaultRecord, active: bool, stored: bool, now: datetime) -> None:
        for listener in self._listeners:
            listener(record, active, stored, now)
        self._post(FaultsChanged(self.active()))
