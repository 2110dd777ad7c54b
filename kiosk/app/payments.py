"""Payment bookkeeping on the loop thread: what a payment method settled after the journey moved on, stored or kept."""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

from kiosk import crashpoints
from kiosk.app.faults import FaultBoard
from kiosk.domain.events import MethodHealth, PaymentConfirmed, PaymentReconciled
from kiosk.domain.faults import STATION, STATION_COMPONENTS, Catalogue, ParkerImpact
from kiosk.domain.payment import Capability
from kiosk.domain.refusals import Refused
from kiosk.ports import PaymentMethod, StorageError, Store

__all__ = ["METHOD_NAME", "PaymentRouter", "Settled", "Settlements", "method_catalogue"]

log = logging.getLogger(__name__)

METHOD_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A payment method's name: its fault component (an MQTT topic level) and the ``method`` of its payments."""


def method_catalogue(methods: Sequence[PaymentMethod]) -> Catalogue:
    """The station's fault catalogue with every method's faults; ValueError if the methods cannot work together.

    Each method needs a name of its own that is a valid topic level and no station component
    (they share the fault board's one slot per component), and declares its faults under that
    name: a fault it raised under its name but declared under another would be unknown, and
    take the whole station out of service.
    """
    if not methods:
        raise ValueError("a station needs at least one payment method")
    names = [m.name for m in methods]
    for method in methods:
        if not METHOD_NAME.fullmatch(method.name):
            raise ValueError(f"payment method name {method.name!r}: lower-case letters, digits and _ (an MQTT topic level)")
        if names.count(method.name) > 1:
            raise ValueError(f"two payment methods are named {method.name!r}: a payment must name its method")
        if method.name in STATION_COMPONENTS:
            raise ValueError(f"payment method name {method.name!r} is a station component's")
        for kind in method.fault_kinds:
            if kind.component != method.name:
                raise ValueError(f"payment method {method.name!r} declares the fault {kind.component}/{kind.code}, "
                                 f"not under its own name")
    return STATION.with_kinds(kind for method in methods for kind in method.fault_kinds)

Settled = PaymentConfirmed | PaymentReconciled


class Settlements:
    """Applies confirmations and reconciliations to the stored payments, and a method's health to the fault board.

    The parker's journey does not wait for any of this. What the database cannot take is
    kept in memory, in order, and written by ``record_unstored`` once it works again, so a
    payment a method booked is never forgotten (docs/terminal.md).
    """

    def __init__(self, store: Store, faults: FaultBoard, component: str) -> None:
        self._store = store
        self._faults = faults
        self._component = component  # the fault component of health reports that name no method
        self._unrecorded: list[Settled] = []  # settled while the database failed

    def health(self, event: MethodHealth, now: datetime) -> None:
        """A payment method is usable again (code None) or has a fault, raised under its name."""
        component = event.method or self._component
        if event.code is None:
            self._faults.clear_fault(component, now)
        else:
            self._faults.raise_fault(component, event.code, now, event.detail)

    def settled(self, event: Settled, now: datetime) -> None:
        """Store what the payment method settled; keep it in memory if the database fails."""
        if not self._store.usable:
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
                reason = f"payment {event.payment_id} reversed by its payment method ({event.detail})"
                store.reverse_unconfirmed_payment(event.payment_id, reason, now)
            else:
                detail = f"payment {event.payment_id}: {event.detail}"
                try:
                    store.mark_unreconciled(event.payment_id, event.detail, now)
                except StorageError:
                    self._faults.raise_fault("payments", "unreconciled", now, detail)  # staff hear of it even so
                    raise
                self._faults.raise_fault("payments", "unreconciled", now, detail)
        except Refused as exc:
            log.warning("payment %s: %s not applied: %s", event.payment_id, type(event).__name__, exc)


class PaymentRouter:
    """The station's payment methods as one PaymentMethod: each payment goes to one method, and stays with it.

    A payment goes to the first method that is not stopped by a fault (the first one if all
    are: it then says why itself); ``choose`` picks it before the payment is stored, so that
    the payment row names its method. Cancelling and the vending answer go to the method that
    took it. A staff request goes to the first method that declares it. The first method's
    name stands for the station's payment in telemetry.
    """

    def __init__(self, methods: Sequence[PaymentMethod], faults: FaultBoard) -> None:
        """Route over ``methods`` (checked by method_catalogue), the first one first."""
        method_catalogue(methods)
        self._methods = tuple(methods)
        self._faults = faults
        self._current: tuple[str, PaymentMethod] | None = None  # the journey's payment (one at a time) and its method

    @property
    def name(self) -> str:
        """The first method's name."""
        return self._methods[0].name

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What any of the methods can do besides paying."""
        return frozenset().union(*(m.capabilities for m in self._methods))

    def choose(self) -> PaymentMethod:
        """The method the next payment goes to: the first one not stopped by a fault, else the first one."""
        return next((m for m in self._methods if self._usable(m)), self._methods[0])

    def start(self) -> None:
        """Start every method."""
        for method in self._methods:
            method.start()

    def start_payment(self, payment_id: str, amount: int, currency: str, method: PaymentMethod | None = None) -> None:
        """Charge on ``method`` (one ``choose`` picked, the one the stored payment names), else on the one it picks now."""
        method = method or self.choose()
        self._current = (payment_id, method)
        method.start_payment(payment_id, amount, currency)

    def cancel_payment(self) -> None:
        """Abort the payment in progress on its method."""
        self._method_of(None).cancel_payment()

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        """The vending answer, to the method that took ``payment_id``."""
        self._method_of(payment_id).confirm_payment(payment_id, accept)

    def request(self, kind: str, request_id: str) -> None:
        """A staff request, to the first method that declares ``kind``; ValueError if none does."""
        method = next((m for m in self._methods if kind in m.capabilities), None)
        if method is None:
            raise ValueError(f"no payment method has {kind} requests")
        method.request(kind, request_id)

    def close(self) -> None:
        """Release every method."""
        for method in self._methods:
            method.close()

    def _usable(self, method: PaymentMethod) -> bool:
        """No fault of ``method`` stops it (a notice does not)."""
        fault = self._faults.get(method.name)
        return fault is None or fault.parker_impact in (ParkerImpact.NONE, ParkerImpact.NOTICE)

    def _method_of(self, payment_id: str | None) -> PaymentMethod:
        """The method of the journey's payment (``payment_id`` None: whichever it is), else the first one."""
        if self._current is not None and payment_id in (None, self._current[0]):
            return self._current[1]
        return self._methods[0]
