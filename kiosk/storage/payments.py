"""The store's card payments, parking sessions and feedback: pending, committed, confirmed, failed, reconciled."""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.domain.plates import plate_key, same_plate
from kiosk.domain.records import PaymentRecord, PaymentResultData, SessionRecord
from kiosk.mqtt.contract import payment_event_data, session_event_data
from kiosk.storage.core import StoreCore
from kiosk.storage.errors import InvalidValue, NotOwed, WrongState
from kiosk.storage.rows import check_choice, check_int, check_parking, check_text, to_record
from kiosk.storage.schema import FIRST_METHOD, Feedback, HelpTicket, ParkingSession, Payment, utc

__all__ = ["COURTESY_CURRENCY", "OWED_QUERY", "NotOwed", "PaymentBook", "count_owed"]

log = logging.getLogger("kiosk.storage.store")

COURTESY_CURRENCY = "XXX"  # ISO 4217 for "no currency involved": courtesy sessions cost nothing
_MASKED_PAN_MAX_DIGITS = 10  # first 6 + last 4 at most


OWED_QUERY = "SELECT count(*) FROM payment WHERE state = 'approved' AND confirmed IS NULL AND unreconciled IS NULL"


def count_owed(database: Path, method: str) -> int:
    """How many payments a (stopped) station's database owes the payment method ``method``; read-only, 0 without the file.

    A database from before payments named their method (schema 5) owes every such payment to
    the card terminal, the only method then. Raises sqlite3.Error if the file is not a
    readable kiosk database of schema 5 or newer (the station migrates older ones at its start).
    """
    if not database.exists():
        return 0
    conn = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(payment)")}
        if not columns:
            raise sqlite3.DatabaseError("no payment table: not a kiosk database")
        if "method" not in columns:
            return int(conn.execute(OWED_QUERY).fetchone()[0]) if method == FIRST_METHOD else 0
        return int(conn.execute(f"{OWED_QUERY} AND method = ?", (method,)).fetchone()[0])
    finally:
        conn.close()


class PaymentBook:
    """Card payments and the sessions they (or staff, or a help call) grant; each step with its events."""

    def __init__(self, core: StoreCore) -> None:
        """Keep payments and sessions in ``core``'s database."""
        self._core = core

    def begin_payment(self, plate: str, zone: str, amount: int, currency: str, minutes: int, starts: datetime,
                      expires: datetime, extends_id: str | None, now: datetime, *, method: str) -> PaymentRecord:
        """Record a payment about to be asked of the payment method ``method`` (state pending, no event yet)."""
        check_parking(plate, zone, minutes, starts, expires)
        check_text("method", method)
        check_int("amount", amount, 1)
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise InvalidValue(f"currency must be an ISO 4217 code, got {currency!r}")
        utc(now, "now")
        payment_id = str(uuid.uuid4())
        with self._core.write():
            if extends_id is not None:
                self._core.one(ParkingSession, extends_id, "session")
            Payment.insert(id=payment_id, method=method, plate=plate, zone=zone, amount=amount, currency=currency,
                           state="pending", minutes=minutes, starts=starts, expires=expires, extends_id=extends_id,
                           created=now, updated=now).execute(self._core.db)
            payment = to_record(PaymentRecord, self._core.one(Payment, payment_id, "payment"))
        log.info("payment %s pending: %d %s in zone %s", payment_id, amount, currency, zone)
        return payment

    def commit_paid_session(self, payment_id: str, result: PaymentResultData, now: datetime) -> SessionRecord:
        """Approve a pending payment and create its session, with both events, in one transaction.

        Raises UnknownRecord if the payment is unknown, WrongState if it is no longer pending:
        one payment never yields two sessions.
        """
        check_int("result_code", result.result_code, 0)
        if sum(ch.isdigit() for ch in result.masked_pan or "") > _MASKED_PAN_MAX_DIGITS:
            raise InvalidValue("masked_pan shows more than the first 6 and last 4 digits")
        utc(now, "now")
        with self._core.write():
            pending = self._pending(payment_id)
            Payment.update(state="approved", result_code=result.result_code, brand=result.brand,
                           masked_pan=result.masked_pan, auth_code=result.auth_code, receipt_no=result.receipt_no,
                           trace_no=result.trace_no, updated=now).where(Payment.id == payment_id).execute(self._core.db)
            session = self._insert_session(
                pending.plate, pending.zone, pending.minutes, pending.starts, pending.expires, now,
                amount=pending.amount, currency=pending.currency, kind="paid", payment_id=payment_id,
                extends_id=pending.extends_id)
            payment = to_record(PaymentRecord, self._core.one(Payment, payment_id, "payment"))
            self._core.add_event("payment", payment_event_data(payment, session.id), now)
            self._core.add_event("session", session_event_data(session, None), now)
        log.info("payment %s approved: session %s until %s", payment_id, session.id, session.expires)
        return session

    def fail_payment(self, payment_id: str, state: str, result_code: int | None, now: datetime) -> PaymentRecord:
        """Mark a pending payment ``declined`` or ``reversed`` and report it."""
        check_choice("state", state, ("declined", "reversed"))
        if result_code is not None:
            check_int("result_code", result_code, 0)
        utc(now, "now")
        with self._core.write():
            self._pending(payment_id)
            Payment.update(state=state, result_code=result_code, updated=now).where(
                Payment.id == payment_id).execute(self._core.db)
            payment = to_record(PaymentRecord, self._core.one(Payment, payment_id, "payment"))
            self._core.add_event("payment", payment_event_data(payment, None), now)
        log.info("payment %s %s, result code %s", payment_id, state, result_code)
        return payment

    def grant_courtesy_session(self, plate: str, zone: str, minutes: int, starts: datetime, expires: datetime,
                               reason: str, now: datetime) -> SessionRecord:
        """Create a free session (amount 0, currency XXX, no payment) and report it."""
        check_parking(plate, zone, minutes, starts, expires)
        check_text("reason", reason)
        utc(now, "now")
        with self._core.write():
            session = self._insert_session(plate, zone, minutes, starts, expires, now, amount=0,
                                           currency=COURTESY_CURRENCY, kind="courtesy", reason=reason)
            self._core.add_event("session", session_event_data(session, reason), now)
        log.info("courtesy session %s in zone %s: %s", session.id, zone, reason)
        return session

    def active_session(self, plate: str, zone: str, now: datetime, *, look_alikes: bool = True) -> SessionRecord | None:
        """The session of ``plate`` in ``zone`` with the latest expiry after ``now``, if any.

        However it was spelled (kiosk.domain.plates.same_plate): "AB-123" finds "AB123".
        """
        query = ParkingSession.select().where(
            ParkingSession.plate_key == plate_key(plate), ParkingSession.zone == zone,
            ParkingSession.expires > utc(now, "now"),
        ).order_by(ParkingSession.expires.desc())
        with self._core.guard():
            rows = list(query.execute(self._core.db))
        row = next((r for r in rows if same_plate(r.plate, plate, look_alikes)), None)
        return None if row is None else to_record(SessionRecord, row)

    def resolve_pending_payments(self, now: datetime) -> list[PaymentRecord]:
        """At start-up, settle every pending payment: reversed, or approved if a session for it exists.

        A pending payment normally has no session: the station died before committing it, so
        it never gave the terminal a positive vending answer and the terminal reverses it (or
        the station refuses it if the terminal asks again). One with a session (only an older
        firmware could leave that) becomes approved and unconfirmed, so that the start-up
        reconciliation with the terminal settles it. Returns the changed payments; one event each.
        """
        utc(now, "now")
        changed = []
        with self._core.write():
            for pending in self._pending_rows():
                session_id = ParkingSession.select(ParkingSession.id).where(
                    ParkingSession.payment_id == pending.id).scalar(self._core.db)
                state = "reversed" if session_id is None else "approved"
                Payment.update(state=state, updated=now).where(Payment.id == pending.id).execute(self._core.db)
                payment = to_record(PaymentRecord, self._core.one(Payment, pending.id, "payment"))
                self._core.add_event("payment", payment_event_data(payment, session_id), now)
                changed.append(payment)
        for payment in changed:
            log.warning("pending payment %s resolved at start-up: %s", payment.id, payment.state)
        return changed

    def mark_confirmed(self, payment_id: str, now: datetime) -> PaymentRecord:
        """Record that the terminal received the positive vending answer for an approved payment.

        Idempotent: an already confirmed payment keeps its first time. Raises UnknownRecord if
        the payment is unknown, WrongState if it is not approved.
        """
        utc(now, "now")
        with self._core.write():
            row = self._core.one(Payment, payment_id, "payment")
            if row.state != "approved":
                raise WrongState(f"payment {payment_id} is {row.state}, not approved")
            if row.confirmed is None:
                Payment.update(confirmed=now, updated=now).where(Payment.id == payment_id).execute(self._core.db)
            payment = to_record(PaymentRecord, self._core.one(Payment, payment_id, "payment"))
        log.info("payment %s confirmed to the terminal", payment_id)
        return payment

    def unconfirmed_payments(self) -> list[PaymentRecord]:
        """Approved payments (their session is stored) whose vending answer their payment method may not have had.

        Those already found unreconciled are left out: they are staff's, not the method's.
        """
        query = Payment.select().where(Payment.state == "approved", Payment.confirmed.is_null(),
                                       Payment.unreconciled.is_null()).order_by(Payment.created)
        with self._core.guard():
            return [to_record(PaymentRecord, row) for row in query.execute(self._core.db)]

    def mark_unreconciled(self, payment_id: str, detail: str, now: datetime) -> PaymentRecord:
        """Record that an approved, unconfirmed payment could not be settled with its payment method, and why.

        It is not owed again at the next start (a receipt number may meanwhile belong to another
        payment): staff settle it by hand. Idempotent; NotOwed if the payment is not approved
        and unconfirmed.
        """
        check_text("detail", detail)
        utc(now, "now")
        with self._core.write():
            row = self._owed(payment_id)
            if row.unreconciled is None:
                Payment.update(unreconciled=detail, updated=now).where(Payment.id == payment_id).execute(self._core.db)
            payment = to_record(PaymentRecord, self._core.one(Payment, payment_id, "payment"))
        log.warning("payment %s left unreconciled for staff: %s", payment_id, detail)
        return payment

    def reverse_unconfirmed_payment(self, payment_id: str, reason: str, now: datetime) -> SessionRecord:
        """The terminal reversed an approved payment: mark it reversed and make its session a courtesy one.

        The parker keeps the parking they were shown as paid (the station failed, not them),
        but the session is no longer marked paid for money that was given back. Both changes
        and their events are one transaction. Returns the session as it is now.
        """
        check_text("reason", reason)
        utc(now, "now")
        with self._core.write():
            self._owed(payment_id)
            session_id = ParkingSession.select(ParkingSession.id).where(
                ParkingSession.payment_id == payment_id).scalar(self._core.db)
            Payment.update(state="reversed", updated=now).where(Payment.id == payment_id).execute(self._core.db)
            ParkingSession.update(kind="courtesy", payment_id=None, amount=0, currency=COURTESY_CURRENCY,
                                  reason=reason).where(ParkingSession.id == session_id).execute(self._core.db)
            payment = to_record(PaymentRecord, self._core.one(Payment, payment_id, "payment"))
            session = to_record(SessionRecord, self._core.one(ParkingSession, session_id, "session"))
            self._core.add_event("payment", payment_event_data(payment, session_id), now)
            self._core.add_event("session", session_event_data(session, reason), now)
        log.warning("payment %s reversed by the terminal after commit; session %s kept as courtesy", payment_id,
                    session_id)
        return session

    def save_feedback(self, rating: int, session_id: str | None, ticket_id: str | None, now: datetime) -> None:
        """Store a parker's rating (1..5), of a session and of the parker's help call if they had them, and report it.

        A help call this database does not have (one opened straight over MQTT while storage
        failed) is not named: the rating is kept without it.
        """
        check_int("rating", rating, 1, 5)
        utc(now, "now")
        with self._core.write():
            if session_id is not None:
                self._core.one(ParkingSession, session_id, "session")
            if ticket_id is not None and not HelpTicket.select().where(HelpTicket.id == ticket_id).exists(self._core.db):
                log.warning("rating %d kept without its help call %s, which this database does not have", rating,
                            ticket_id)
                ticket_id = None
            Feedback.insert(rating=rating, session_id=session_id, ticket_id=ticket_id, created=now).execute(self._core.db)
            self._core.add_event("feedback", {"rating": rating, "session_id": session_id, "ticket": ticket_id}, now)

    def pending_payments(self) -> list[PaymentRecord]:
        """Payments still waiting for the terminal's result, oldest first."""
        with self._core.guard():
            return [to_record(PaymentRecord, row) for row in self._pending_rows()]

    def _pending_rows(self) -> list[Payment]:
        query = Payment.select().where(Payment.state == "pending").order_by(Payment.created)
        return list(query.execute(self._core.db))

    def _owed(self, payment_id: str) -> Payment:
        """The row of an approved payment the terminal has not confirmed; NotOwed otherwise."""
        row = self._core.one(Payment, payment_id, "payment")
        if row.state != "approved" or row.confirmed is not None:
            raise NotOwed(f"payment {payment_id} is {row.state}, confirmed {row.confirmed}: nothing to settle")
        return row

    def _pending(self, payment_id: str) -> Payment:
        row = self._core.one(Payment, payment_id, "payment")
        if row.state != "pending":
            raise WrongState(f"payment {payment_id} is {row.state}, not pending")
        return row

    def _insert_session(self, plate: str, zone: str, minutes: int, starts: datetime, expires: datetime,
                        now: datetime, **columns: Any) -> SessionRecord:
        session_id = str(uuid.uuid4())
        ParkingSession.insert(id=session_id, plate=plate, plate_key=plate_key(plate), zone=zone, minutes=minutes,
                              starts=starts, expires=expires, created=now, **columns).execute(self._core.db)
        return to_record(SessionRecord, self._core.one(ParkingSession, session_id, "session"))
