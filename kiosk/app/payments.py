"""Payment bookkeeping on the loop thread: what a payment method settled after the journey moved on, stored or kept."""
from __future__ import annotations

import logging
from datetime import datetime

from kiosk import crashpoints
from kiosk.app.faults import FaultBoard
from kiosk.domain.events import PaymentConfirmed, PaymentReconciled, TerminalHealth
from kiosk.ports import StorageError, Store

__all__ = ["PaymentBook", "Settled"]

log = logging.getLogger(__name__)

Settled = PaymentConfirmed | PaymentReconciled


class PaymentBook:
    """Applies confirmations and reconciliations to the stored payments, and a method's health to the fault board.

    The parker's journey does not wait for any of this. What the database cannot take is
    kept in memory, in order, and written by ``record_unstored`` once it works again, so a
    payment the terminal booked is never forgotten (docs/terminal.md).
    """

    def __init__(self, store: Store | None, faults: FaultBoard, component: str) -> None:
        self._store = store
        self._faults = faults
        self._component = component
        self._unrecorded: list[Settled] = []  # settled while the database failed

    def health(self, event: TerminalHealth, now: datetime) -> None:
        """The payment method is usable again (code None) or has a fault."""
        if event.code is None:
            self._faults.clear_fault(self._component, now)
        else:
            self._faults.raise_fault(self._component, event.code, now, event.detail)

    def settled(self, event: Settled, now: datetime) -> None:
        """Store what the payment method settled; keep it in memory if the database fails."""
        if self._store is None:
            log.error("payment %s: %s kept in memory, no usable database", event.payment_id, type(event).__name__)
            self._unrecorded.append(event)
            return
        try:
            self._record(self._store, event, now)
        except StorageError as exc:
            log.error("payment %s: %s kept in memory: %s", event.payment_id, type(event).__name__, exc)
            self._unrecorded.append(event)
            self._faults.raise_fault("storage", exc.reason, now, str(exc))

    def record_unstored(self, store: Store, now: datetime) -> None:
        """Write what was kept in memory, oldest first; StorageError if it still fails (the rest stays kept)."""
        while self._unrecorded:
            self._record(store, self._unrecorded[0], now)
            self._unrecorded.pop(0)

    def _record(self, store: Store, event: Settled, now: datetime) -> None:
        """Apply what the payment method settled to the stored payment; StorageError if the database fails."""
        try:
            if isinstance(event, PaymentConfirmed) or event.outcome == "booked":
                store.mark_confirmed(event.payment_id, now)
                crashpoints.reached("payment.confirmed")
            elif event.outcome == "reversed":
                reason = f"payment {event.payment_id} reversed by the card terminal ({event.detail})"
                store.reverse_unconfirmed_payment(event.payment_id, reason, now)
            else:
                detail = f"payment {event.payment_id}: {event.detail}"
                try:
                    store.mark_unreconciled(event.payment_id, event.detail, now)
                except StorageError:
                    self._faults.raise_fault("payments", "unreconciled", now, detail)  # staff hear of it even so
                    raise
                self._faults.raise_fault("payments", "unreconciled", now, detail)
        except ValueError as exc:
            log.warning("payment %s: %s not applied: %s", event.payment_id, type(event).__name__, exc)
