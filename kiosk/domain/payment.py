"""Method-neutral payment vocabulary: why a payment failed, what a payment method can do, the station's own codes."""
from __future__ import annotations

from enum import StrEnum


class DeclineReason(StrEnum):
    """Why a payment did not go through, in the station's words.

    The values are the keys the Declined screen translates and the help desk context carries;
    they are stored and sent as they are, so they never change. A payment method maps its own
    result codes to these; the journey never looks at a method's code.
    """

    DECLINED = "declined"  # the card issuer (bank) said no
    UNREADABLE = "unreadable"  # the card could not be read
    EXPIRED = "expired"  # the card has expired
    ABORTED = "aborted"  # the payment was cancelled before anything was charged
    FAILED = "terminal"  # the payment method had a problem of its own
    NO_ANSWER = "terminal_timeout"  # the payment method did not answer (or not in time); nothing was charged
    NOT_STORED = "not_stored"  # the station could not store the payment or its session; it was not charged


class Capability(StrEnum):
    """An optional feature of a payment method, declared in kiosk.ports.PaymentMethod.capabilities.

    STATUS and END_OF_DAY are also the ``kind`` of the staff request they allow
    (PaymentMethod.request), answered by a MethodReport event.
    """

    STATUS = "status"  # a diagnosis for staff: is the device ready, which version
    END_OF_DAY = "end_of_day"  # close the day's batch of payments and report its totals
    RECONCILE = "reconcile"  # settle the payments owed from before a restart, posting PaymentReconciled


class PaymentPrompt(StrEnum):
    """What the payment method asks of the parker during a payment, in the station's words.

    The Paying screen says each in the parker's language; a method maps its own status codes
    to these. Where the station has no words (FOLLOW_TERMINAL), and for a PIN prompt, the
    screen also shows the method's own text, labelled as the terminal's.
    """

    PRESENT_CARD = "present_card"  # insert, tap or swipe the card
    ENTER_PIN = "enter_pin"
    WRONG_PIN = "wrong_pin"
    REMOVE_CARD = "remove_card"
    WAIT = "wait"  # the method is working (reading, asking the bank)
    FOLLOW_TERMINAL = "follow_terminal"  # anything else: the terminal's own text says what


REQUEST_KINDS = frozenset({Capability.STATUS, Capability.END_OF_DAY})
"""The capabilities that are staff requests (PaymentMethod.request's ``kind``)."""

ABANDONED_CODE = 0x6C
"""The code stored for a payment the station itself abandoned.

That is a payment the station reversed or gave up on without the method declining it: it
timed out, it was approved after the parker's Cancel, or its payment id belongs to no
journey any more. Like every method code it is opaque detail for staff and storage, never
interpreted by the domain. The value is the one the station has always stored for these
payments (it is ZVT's "aborted"), so stored rows and reports stay as they were.
"""

NO_CODE = 0
"""The code recorded when the station, not the payment method, ended the payment: it could not store it or its session."""
