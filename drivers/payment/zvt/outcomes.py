"""ZVT codes in the station's words: the DeclineReason of a payment the PT ended, the PaymentPrompt of its statuses."""
from __future__ import annotations

from drivers.payment.zvt import messages as msg
from drivers.payment.zvt.ecr import RESULT_ABORTED, RESULT_COMMUNICATION
from kiosk.domain.events import PaymentDeclined, PaymentStatus
from kiosk.domain.payment import DeclineReason, PaymentPrompt

RESULT_CARD_UNREADABLE = 0x64
RESULT_CARD_EXPIRED = 0x78


PROMPTS: dict[int, PaymentPrompt] = {  # 04 FF intermediate status codes (docs/zvt.md); 41-5D add "remove card"
    0x01: PaymentPrompt.ENTER_PIN,  # watch the PIN pad
    0x02: PaymentPrompt.ENTER_PIN,
    0x04: PaymentPrompt.WAIT,  # waiting for the host
    0x05: PaymentPrompt.WAIT,  # sending an auto-reversal
    0x06: PaymentPrompt.WAIT,  # sending post-bookings
    msg.STATUS_INSERT_CARD: PaymentPrompt.PRESENT_CARD,
    0x0B: PaymentPrompt.REMOVE_CARD,
    0x0E: PaymentPrompt.WAIT,
    0x15: PaymentPrompt.WRONG_PIN,
    0x17: PaymentPrompt.WAIT,
    0x1C: PaymentPrompt.WAIT,  # approved: the station's vending answer comes next
    0x1D: PaymentPrompt.WAIT,  # declined: the result follows
    **{code: PaymentPrompt.REMOVE_CARD for code in range(0x41, 0x5E)},
}


def status(payment_id: str, intermediate: msg.Intermediate) -> PaymentStatus:
    """The PaymentStatus event of a 04 FF: the station's prompt for its code, and the text the PT itself sent.

    When the PT sent no text, the event carries none: the code's English default
    (msg.INTERMEDIATE_TEXTS) is the station's, never to be shown as the terminal's words.
    """
    default = msg.INTERMEDIATE_TEXTS.get(intermediate.code, msg.DEFAULT_INTERMEDIATE_TEXT)
    own = "" if intermediate.text == default else intermediate.text
    return PaymentStatus(payment_id, own, PROMPTS.get(intermediate.code, PaymentPrompt.FOLLOW_TERMINAL))


def decline_reason(result_code: int) -> DeclineReason:
    """Why a payment that ended with this ZVT result code did not go through."""
    if result_code == RESULT_ABORTED:
        return DeclineReason.ABORTED
    if result_code == RESULT_CARD_UNREADABLE:
        return DeclineReason.UNREADABLE
    if result_code == RESULT_CARD_EXPIRED:
        return DeclineReason.EXPIRED
    if result_code == RESULT_COMMUNICATION:
        return DeclineReason.NO_ANSWER
    if result_code in msg.ISSUER_RESULTS:
        return DeclineReason.DECLINED
    return DeclineReason.FAILED


def declined(payment_id: str, result_code: int, text: str | None = None) -> PaymentDeclined:
    """The PaymentDeclined event for a ZVT result code: its reason, the code itself, and the PT's text (or the code's)."""
    return PaymentDeclined(payment_id, decline_reason(result_code), result_code,
                           msg.result_text(result_code) if text is None else text)
