"""The seams the station drives its devices through: a payment method and the `post` callable it answers with."""
from __future__ import annotations

from typing import Callable, Protocol

from kiosk.domain.events import Event
from kiosk.domain.payment import Capability

Post = Callable[[Event], None]


class PaymentMethod(Protocol):
    """A way for the parker to pay (a card terminal, ...), charged with vending semantics.

    This is the one interface between the station and a payment device; adapters live in
    ``drivers.payment``, one folder per kind of device. An adapter is built with the
    :data:`Post` callable of the loop and never blocks its caller: it answers by posting
    events tagged with the payment id (TerminalStatus, PaymentAuthorized, PaymentConfirmed,
    PaymentDeclined) and, about itself, TerminalHealth (and TerminalReport, PaymentReconciled
    for the capabilities below).

    Adapters *must* implement:

    * :attr:`name`: the component its faults are raised under and staff see (TerminalHealth
      codes are fault codes of this component). It is part of MQTT topics and stored faults,
      so an adapter keeps it for good: the ZVT terminal's is ``"card_terminal"``.
    * :attr:`capabilities`: what it *may* do besides paying (below); empty if nothing.
    * :meth:`start`, :meth:`close`
    * :meth:`start_payment`, :meth:`cancel_payment`, :meth:`confirm_payment`: a payment
      ends in PaymentDeclined, carrying a :class:`~kiosk.domain.payment.DeclineReason` and the
      method's own result code (opaque: stored for staff, never interpreted by the station),
      or in PaymentAuthorized. After PaymentAuthorized the method holds the payment until
      confirm_payment: accept=True books it (the session is already durable; PaymentConfirmed
      follows once the device has the answer), accept=False, or no answer at all before the
      method's own timeout, reverses it. So a station that dies before committing the session
      never keeps the parker's money.
    * :meth:`request`: even without request capabilities (it then refuses every kind).

    Adapters *may* implement the following, and declare each in :attr:`capabilities`:

    * :attr:`~kiosk.domain.payment.Capability.STATUS`,
      :attr:`~kiosk.domain.payment.Capability.END_OF_DAY`: staff requests of that ``kind``
      through :meth:`request`, answered by a TerminalReport event. The station asks only for
      the kinds declared.
    * :attr:`~kiosk.domain.payment.Capability.RECONCILE`: settling the payments owed from
      before a restart (approved, session stored, booking not known). The adapter is built
      with them and posts one PaymentReconciled for each (booked, reversed or unknown).
    """

    @property
    def name(self) -> str:
        """The fault component of this method, e.g. ``"card_terminal"``."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional features this method has."""

    def start(self) -> None:
        """Start talking to the device (from the composition root, once the loop exists)."""

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None:
        """Ask the method to charge `amount` minor units of `currency`."""

    def cancel_payment(self) -> None:
        """Abort the payment in progress (the parker pressed Cancel); ends in PaymentDeclined."""

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        """The vending answer for an authorized payment."""

    def request(self, kind: str, request_id: str) -> None:
        """Queue a staff request of a declared ``kind`` (a Capability value); ValueError for any other kind."""

    def close(self) -> None:
        """Release the device."""
