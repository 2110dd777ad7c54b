"""The payment terminal interface the station drives (ZVT vending semantics), independent of any device."""
from __future__ import annotations

from typing import Callable, Protocol

from kiosk.domain.events import Event

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
