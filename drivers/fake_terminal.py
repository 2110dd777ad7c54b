"""A scriptable in-process payment terminal with a durable journal, for tests and simulation."""
from __future__ import annotations

import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from drivers.terminal import Post
from kiosk.events import PaymentAuthorized, PaymentDeclined, TerminalStatus
from kiosk.records import PaymentResultData

log = logging.getLogger(__name__)

RESULT_ABORTED = 0x6C


@dataclass(frozen=True)
class Outcome:
    """What the fake terminal does with the next payment.

    kind: "approve" (authorize, then wait for the vending answer), "decline" (end with
    result_code), or "silent" (never answer: a dead terminal).
    """

    kind: str = "approve"
    result_code: int = 0
    statuses: tuple[str, ...] = ("Present card", "Please wait")
    text: str = ""
    brand: str = "Visa"
    masked_pan: str = "411111******1111"


APPROVE = Outcome()


class FakeTerminal:
    """Answers payments at once, as scripted; journals what a real terminal would book.

    The journal (JSON lines, fsynced) plays the terminal's own memory: on start-up every
    authorization that was never confirmed is journalled as auto-reversed, as a real
    terminal does when the station never gave its vending answer.
    """

    def __init__(self, post: Post, journal_path: Path | None = None) -> None:
        self._post = post
        self._journal_path = journal_path
        self._script: deque[Outcome] = deque()
        self._active: str | None = None
        self._silent = False
        self._authorized: dict[str, int] = {}
        self._trace = 0
        if journal_path is not None:
            self._auto_reverse_unconfirmed()

    def script(self, outcome: Outcome) -> None:
        """Queue the outcome for the next payment (unscripted payments are approved)."""
        self._script.append(outcome)

    def script_words(self, words: list[str]) -> None:
        """Script from scenario words: `approve [BRAND]`, `decline CODE [TEXT..]` (hex), `silent`."""
        if not words:
            raise ValueError("expected approve, decline CODE or silent")
        kind, *rest = words
        if kind == "approve":
            self.script(Outcome(brand=rest[0]) if rest else APPROVE)
        elif kind == "decline" and rest:
            try:
                code = int(rest[0], 16)
            except ValueError:
                raise ValueError(f"result code must be hex like 05 or 64, got {rest[0]!r}") from None
            if not 0 < code <= 0xFF:
                raise ValueError(f"result code out of range 01..FF: {rest[0]!r}")
            self.script(Outcome(kind="decline", result_code=code, text=" ".join(rest[1:])))
        elif kind == "silent":
            self.script(Outcome(kind="silent"))
        else:
            raise ValueError(f"expected approve, decline CODE or silent, got {' '.join(words)!r}")

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None:
        """Charge as scripted, posting the terminal's events at once."""
        outcome = self._script.popleft() if self._script else APPROVE
        self._active = payment_id
        self._silent = outcome.kind == "silent"
        self._write({"event": "started", "payment": payment_id, "amount": amount, "currency": currency})
        if self._silent:
            return
        for text in outcome.statuses:
            self._post(TerminalStatus(payment_id, text))
        if outcome.kind == "decline":
            self._finish_declined(payment_id, outcome.result_code, outcome.text or "Declined")
            return
        self._trace += 1
        result = PaymentResultData(
            result_code=0, brand=outcome.brand, masked_pan=outcome.masked_pan,
            auth_code=f"{self._trace:06d}", receipt_no=f"{self._trace:04d}", trace_no=f"{self._trace:06d}",
        )
        self._authorized[payment_id] = amount
        self._write({"event": "authorized", "payment": payment_id, "amount": amount})
        self._post(PaymentAuthorized(payment_id, result))

    def cancel_payment(self) -> None:
        """Abort the payment in progress unless it is already authorized (a silent terminal ignores it)."""
        payment_id = self._active
        if payment_id is None or payment_id in self._authorized or self._silent:
            return
        self._finish_declined(payment_id, RESULT_ABORTED, "Aborted")

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        """Book (accept) or reverse the authorized payment."""
        if self._authorized.pop(payment_id, None) is None:
            log.warning("vending answer for unknown payment %s ignored", payment_id)
            return
        self._write({"event": "booked" if accept else "reversed", "payment": payment_id})
        self._active = None

    def close(self) -> None:
        """Nothing to release."""

    def journal(self) -> list[dict[str, object]]:
        """Every journal entry so far (empty without a journal file)."""
        if self._journal_path is None or not self._journal_path.exists():
            return []
        return [json.loads(line) for line in self._journal_path.read_text().splitlines() if line.strip()]

    def _finish_declined(self, payment_id: str, code: int, text: str) -> None:
        self._active = None
        self._write({"event": "declined", "payment": payment_id, "result_code": code})
        self._post(PaymentDeclined(payment_id, code, text))

    def _auto_reverse_unconfirmed(self) -> None:
        pending: set[str] = set()
        for entry in self.journal():
            if entry["event"] == "authorized":
                pending.add(str(entry["payment"]))
            elif entry["event"] in ("booked", "reversed", "auto-reversed"):
                pending.discard(str(entry["payment"]))
        for payment_id in sorted(pending):
            log.warning("terminal auto-reverses payment %s: the station never confirmed it", payment_id)
            self._write({"event": "auto-reversed", "payment": payment_id})

    def _write(self, entry: dict[str, object]) -> None:
        if self._journal_path is None:
            return
        self._journal_path.parent.mkdir(parents=True, exist_ok=True)
        with self._journal_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
