"""Plain, immutable records that cross the storage boundary (no peewee types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PaymentState(StrEnum):
    """Where a card payment is (``state`` of the payment row and of payment events).

    ``pending`` until the terminal answers; ``approved`` with its session stored; ``declined``
    (the terminal did not charge) or ``reversed`` (the money went back) without a session.
    """

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A parking session: the right to park ``plate`` in ``zone`` until ``expires``.

    ``kind`` is ``"paid"`` (then ``payment_id`` is set) or ``"courtesy"`` (amount 0,
    no payment). ``amount`` is in integer minor units of ``currency``.
    """

    id: str
    plate: str
    zone: str
    starts: datetime
    expires: datetime
    minutes: int
    amount: int
    currency: str
    kind: str
    payment_id: str | None
    extends_id: str | None
    created: datetime


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A payment attempt and what its payment method answered.

    ``method`` is the name of the payment method that took it (``card_terminal``);
    ``state`` is a PaymentState (pending, approved, declined or reversed); ``confirmed`` is
    when the method received the station's vending answer for an approved payment (None
    while that is not known); ``unreconciled`` says why an unconfirmed one could not be
    settled with its method (left to staff). Of a card only receipt data is kept: brand,
    masked PAN, auth code, receipt and trace numbers (None for a method without cards).
    """

    id: str
    method: str
    plate: str
    zone: str
    amount: int
    currency: str
    state: str
    minutes: int
    starts: datetime
    expires: datetime
    extends_id: str | None
    result_code: int | None
    brand: str | None
    masked_pan: str | None
    auth_code: str | None
    receipt_no: str | None
    trace_no: str | None
    confirmed: datetime | None
    created: datetime
    updated: datetime
    unreconciled: str | None = None


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """An active fault of one component (at most one per component)."""

    component: str
    code: str
    severity: str
    message: str
    parker_impact: str
    since: datetime


@dataclass(frozen=True, slots=True)
class RepairNoteRecord:
    """A crew member's "fixed" note on a component, stored in the fault history (``cmd/fixed``, ``event/repair``).

    ``code`` and ``fault_raised_at`` are those of the fault it notes: the component's active
    fault, else its latest; both None when the component never had one. ``fault_active`` says
    whether that fault was still active when the note was recorded (``created``).
    """

    id: int
    component: str
    code: str | None
    fault_raised_at: datetime | None
    fault_active: bool
    note: str
    by: str
    created: datetime


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One queued MQTT message; ``seq`` is set for events only, ``topic`` has no prefix."""

    id: int
    seq: int | None
    topic: str
    payload: str
    qos: int
    retain: bool
    expiry_s: int | None = None


@dataclass(frozen=True, slots=True)
class PaymentResultData:
    """What the payment method returned for an approved payment (input to the store); the card data None without a card."""

    result_code: int
    brand: str | None
    masked_pan: str | None
    auth_code: str | None
    receipt_no: str | None
    trace_no: str | None


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """An MQTT command remembered by its key (built from response topic and correlation data).

    ``state`` is ``"running"`` (begun, no reply stored yet) or ``"done"``; ``reply`` is the
    compact JSON reply once done.
    """

    key: str
    name: str
    state: str
    reply: str | None
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class HelpMessageRecord:
    """One line of a help ticket's conversation: ``direction`` to_parker (an agent's) or from_parker."""

    direction: str
    agent: str | None
    text: str
    created: datetime


@dataclass(frozen=True, slots=True)
class HelpTicketRecord:
    """A help ticket as stored, with its conversation in order."""

    id: str
    state: str
    opened: datetime
    accepted: datetime | None
    agent: str | None
    presses: int
    messages: tuple[HelpMessageRecord, ...]
    courtesies: tuple[SessionRecord, ...] = ()  # free parking granted during the call, oldest first
    spoken: bool = False  # a person answered one of its voice calls
    on_call: bool = False  # a voice call was going on when the station stopped (the parker was talking then)
