"""ZVT codes in the station's words: the DeclineReason of a payment the PT ended, the PaymentPrompt of its statuses."""
from __future__ import annotations

from drivers.payment.zvt import messages as msg
from drivers.payment.zvt.ecr import RESULT_ABORTED, RESULT_COMMUNICATION
from kiosk.domain.events import PaymentDeclined, PaymentStatus
from kiosk.domain.payment import DeclineReason, PaymentPrompt

RESULT_CARD_UNREADABLE = 0x64
RESULT_CARD_EXPIRED = 0x78


PROMPTS: dict[int, PaymentPrompt] = {  # 04 FF intermediate status codes (docs/zvt.md)
    0x01: PaymentPrompt.ENTER_PIN,  # watch the PIN pad
    0x0A: PaymentPrompt.PRESENT_CARD,  # insert card
    0x0B: PaymentPrompt.REMOVE_CARD,
    0x0E: PaymentPrompt.WAIT,
    0x15: PaymentPrompt.WRONG_PIN,
    0x17: PaymentPrompt.WAIT,
    0x1C: PaymentPrompt.WAIT,  # approved: the station's vending answer comes next
    0x1D: PaymentPrompt.WAIT,  # declined: the result follows
}


def status(payment_id: str, intermediate: msg.Intermediate) -> PaymentStatus:
    """The PaymentStatus event of a 04 FF: the station's prompt for its code, and the PT's own text."""
    return PaymentStatus(payment_id, intermediate.text, PROMPTS.get(intermediate.code, PaymentPrompt.FOLLOW_TERMINAL))


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
