"""ZVT result codes in the station's words: the DeclineReason of a payment the PT ended without charging."""
from __future__ import annotations

from drivers.payment.zvt import messages as msg
from drivers.payment.zvt.ecr import RESULT_ABORTED, RESULT_COMMUNICATION
from kiosk.domain.events import PaymentDeclined
from kiosk.domain.payment import DeclineReason

RESULT_CARD_UNREADABLE = 0x64
RESULT_CARD_EXPIRED = 0x78


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
