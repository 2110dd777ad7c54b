"""The payment terminal interface the station drives (ZVT vending semantics), independent of any device."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Protocol

from kiosk.domain.events import Event, TerminalReport
from kiosk.domain.records import FaultRecord
from kiosk.domain.staff import Done

Post = Callable[[Event], None]


class PaymentTerminal(Protocol):
    """A card terminal that charges an amount and waits for the station's vending answer.

    Implementations never block the caller: they post TerminalStatus, PaymentAuthorized,
    PaymentConfirmed and PaymentDeclined events (tagged with the payment id), TerminalHealth
    and PaymentReconciled through the `post` callable they were built with. After
    PaymentAuthorized the terminal holds the payment until confirm_payment: accept=True books
    it (the session is already durable; PaymentConfirmed follows once the terminal has the
    answer), accept=False, or no answer at all before the terminal's own timeout, reverses
    it. So a station that dies before committing the session never keeps the parker's money.
    """

    def start(self) -> None:
        """Start talking to the device (from the composition root, once the loop exists)."""

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None:
        """Ask the terminal to charge `amount` minor units of `currency`."""

    def cancel_payment(self) -> None:
        """Abort the payment in progress (the parker pressed Cancel); ends in PaymentDeclined."""

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        """The vending answer for an authorized payment."""

    def close(self) -> None:
        """Release the device."""


class FaultBoard(Protocol):
    """The one owner of the station's active faults (kiosk.app.faults.FaultBoard implements it)."""

    def active(self) -> tuple[FaultRecord, ...]:
        """The active faults, one per component."""

    def raise_fault(self, component: str, code: str, now: datetime, detail: str = "") -> None:
        """Raise ``component``'s fault (durably when the database works); the same code again changes nothing."""

    def clear_fault(self, component: str, now: datetime, *, must_store: bool = False) -> None:
        """Clear ``component``'s fault; with ``must_store``, StorageError unless the database recorded it."""


class StaffOperations(Protocol):
    """Staff commands executed on the loop thread (kiosk.app.operations.Operations implements it)."""

    def execute(self, name: str, args: Any, now: datetime) -> Done:
        """Run command ``name`` with its validated ``args``; Refusal if it must not run now."""

    def ask_payment_method(self, kind: str, request_id: str) -> None:
        """Pass a staff request to the payment method (a TerminalReport answers it); Refusal while a parker pays."""

    def keep_report(self, event: TerminalReport, now: datetime) -> str:
        """Store what a report carries (an end of day's totals); words to add to the reply."""
