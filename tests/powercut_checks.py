"""The power-cut matrix's invariants between the station's database and the card terminal's journal."""
from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SETTLED = ("booked", "reversed", "auto-reversed")
# Payment and session columns that their last outbox event must repeat (docs/storage.md, the event payloads).
PAYMENT_FIELDS = ("state", "plate", "zone", "amount", "currency", "minutes", "result_code", "brand", "auth_code",
                  "receipt_no", "trace_no")
SESSION_FIELDS = ("kind", "plate", "zone", "minutes", "amount", "currency", "payment_id", "extends_id")


@dataclass
class Booking:
    """One authorization in the terminal's journal and what became of it (authorized, booked, reversed, ...)."""

    receipt: str
    trace: str
    amount: int
    state: str = "authorized"

    def __str__(self) -> str:
        return f"receipt {self.receipt} (trace {self.trace}, amount {self.amount})"


class Journal:
    """The terminal simulator's journal (JSON lines), read incrementally: only whole lines, each line once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._entries: list[dict[str, Any]] = []

    def entries(self) -> list[dict[str, Any]]:
        """Every entry written so far; a line that is not JSON is skipped as the simulator skips it."""
        if not self.path.exists():
            return self._entries
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        whole = chunk[:chunk.rfind(b"\n") + 1]
        self._offset += len(whole)
        for line in whole.decode("utf-8", errors="replace").splitlines():
            try:
                self._entries.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("journal %s: line skipped: %r", self.path, line)
        return self._entries

    def bookings(self) -> list[Booking]:
        """Every authorization with its latest state (a settlement goes to the latest authorization of its receipt)."""
        bookings: list[Booking] = []
        latest: dict[str, Booking] = {}
        for entry in self.entries():
            event, receipt = entry.get("event"), str(entry.get("receipt", ""))
            if event == "authorized":
                latest[receipt] = Booking(receipt, str(entry["trace"]), int(entry["amount"]))
                bookings.append(latest[receipt])
            elif event in SETTLED and receipt in latest:
                latest[receipt].state = event
        return bookings

    def open_authorizations(self) -> list[Booking]:
        """Authorizations neither booked nor reversed yet: the terminal still holds the card holder's money."""
        return [b for b in self.bookings() if b.state == "authorized"]


def read_only(db: Path) -> sqlite3.Connection:
    """A read-only connection to the station's database (it may be running: WAL lets us read alongside)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def unsettled_payments(db: Path) -> list[str]:
    """Payments left pending, or approved but not confirmed to the terminal, one line each."""
    if not db.exists():
        return []
    conn = read_only(db)
    try:
        rows = conn.execute("SELECT * FROM payment "
                            "WHERE state = 'pending' OR (state = 'approved' AND confirmed IS NULL)").fetchall()
    finally:
        conn.close()
    return _unsettled([dict(row) for row in rows])


def violations(db: Path, journal: Journal) -> list[str]:
    """Every broken invariant between the stopped station's database and the terminal's journal, one line each."""
    conn = read_only(db)
    try:
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        payments = {row["id"]: dict(row) for row in conn.execute("SELECT * FROM payment")}
        sessions = {row["id"]: dict(row) for row in conn.execute("SELECT * FROM parking_session")}
        events = conn.execute("SELECT seq, topic, payload FROM outbox WHERE seq IS NOT NULL ORDER BY seq").fetchall()
        ratings = conn.execute("SELECT rating, session_id, ticket_id FROM feedback").fetchall()
        counter = conn.execute("SELECT value FROM counter WHERE name = 'seq'").fetchone()[0]
    finally:
        conn.close()
    found = [] if integrity == ["ok"] else [f"PRAGMA integrity_check: {'; '.join(integrity)}"]
    bookings = journal.bookings()
    found += _money(payments, sessions, bookings)
    found += _unsettled(list(payments.values()))
    found += [f"{b} still authorized at the terminal (open authorization)" for b in bookings
              if b.state == "authorized"]
    found += _events(payments, sessions, events)
    found += _ratings([tuple(row) for row in ratings], events)
    found += _sequence([(row["seq"], row["payload"]) for row in events], counter)
    return found


def _money(payments: dict[str, dict], sessions: dict[str, dict], bookings: list[Booking]) -> list[str]:
    """Booked money has a paid session for the same amount, and every paid session's money is booked."""
    found = []
    by_receipt = {(p["receipt_no"], p["trace_no"]): p for p in payments.values() if p["receipt_no"] is not None}
    paid = {s["payment_id"]: s for s in sessions.values() if s["kind"] == "paid"}
    for booking in bookings:
        if booking.state != "booked":
            continue
        payment = by_receipt.get((booking.receipt, booking.trace))
        session = paid.get(payment["id"]) if payment is not None else None
        if payment is None:
            found.append(f"{booking} booked at the terminal, but no payment of the station has it")
        elif payment["state"] != "approved" or session is None:
            found.append(f"{booking} booked at the terminal, but payment {payment['id']} is {payment['state']} "
                         f"with {'no paid session' if session is None else 'paid session ' + session['id']}")
        elif not booking.amount == payment["amount"] == session["amount"]:
            found.append(f"{booking} booked, but payment {payment['id']} is {payment['amount']} "
                         f"and its session {session['amount']}")
    settled = {(b.receipt, b.trace): b for b in bookings}
    for session in paid.values():
        payment = payments.get(session["payment_id"])
        booked = settled.get((payment["receipt_no"], payment["trace_no"])) if payment is not None else None
        if payment is None or payment["state"] != "approved":
            found.append(f"paid session {session['id']} ({session['plate']}) has payment {session['payment_id']} "
                         f"{'missing' if payment is None else payment['state']}")
        elif booked is None or booked.state != "booked" or booked.amount != session["amount"]:
            at_terminal = (f"receipt {payment['receipt_no']} (trace {payment['trace_no']}) is unknown to the terminal"
                           if booked is None else f"{booked} is {booked.state} at the terminal")
            found.append(f"paid session {session['id']} ({session['plate']}, {session['amount']}) of payment "
                         f"{payment['id']}: its money is not booked: {at_terminal}")
    return found


def _unsettled(payments: list[dict]) -> list[str]:
    """Pending or approved-but-unconfirmed payments, with the station's note if it left one to staff as unreconciled."""
    return [f"payment {p['id']} ({p['plate']}) left {p['state']}"
            + ("" if p["state"] == "pending" else ", unconfirmed")
            + (f" (unreconciled: {p['unreconciled']})" if p.get("unreconciled") else "")
            for p in payments if p["state"] == "pending" or (p["state"] == "approved" and p["confirmed"] is None)]


def _events(payments: dict[str, dict], sessions: dict[str, dict], events: list[sqlite3.Row]) -> list[str]:
    """The last event of every payment and session repeats its current state; no event names an unknown one."""
    last: dict[tuple[str, str], dict] = {}
    for row in events:
        kind = row["topic"].removeprefix("event/")
        if kind in ("payment", "session"):
            data = json.loads(row["payload"])["data"]
            last[(kind, data[f"{kind}_id"])] = data
    found = []
    for kind, rows, fields in (("payment", payments, PAYMENT_FIELDS), ("session", sessions, SESSION_FIELDS)):
        for key, stored in rows.items():
            data = last.pop((kind, key), None)
            if data is None:
                if stored.get("state") != "pending":  # a pending payment has no event yet (docs/storage.md)
                    found.append(f"{kind} {key} ({stored['plate']}) has no event in the outbox")
                continue
            wrong = [f"{name} {data.get(name)!r} != {stored[name]!r}" for name in fields if data.get(name) != stored[name]]
            if wrong:
                found.append(f"{kind} {key}: its last event disagrees with the table: {', '.join(wrong)}")
    return found + [f"event for {kind} {key}, which the database does not have" for kind, key in last]


def _ratings(rows: list[tuple[object, ...]], events: list[sqlite3.Row]) -> list[str]:
    """Every stored rating has its event/feedback, and every event/feedback its stored rating, once."""
    reported = Counter(tuple(json.loads(row["payload"])["data"].get(name) for name in ("rating", "session_id", "ticket"))
                       for row in events if row["topic"] == "event/feedback")
    stored = Counter(rows)
    return ([f"rating {key} stored {count - reported[key]} time(s) more than reported" for key, count in stored.items()
             if count > reported[key]]
            + [f"rating {key} reported {count - stored[key]} time(s) more than stored" for key, count in reported.items()
               if count > stored[key]])


def _sequence(events: list[tuple[int, str]], counter: int) -> list[str]:
    """Event seq numbers run on without a gap or duplicate up to the seq counter, and each payload repeats its seq.

    Where the series starts is the store's business (docs/storage.md); from its first event on, no number is lost.
    """
    found = []
    seqs = [seq for seq, _ in events]
    duplicates = sorted(seq for seq, count in Counter(seqs).items() if count > 1)
    if duplicates:
        found.append(f"outbox seq duplicated: {duplicates[:10]}")
    gaps = [(before, after) for before, after in zip(seqs, seqs[1:]) if after - before > 1]
    if gaps:
        found.append(f"outbox seq gaps: {sum(after - before - 1 for before, after in gaps)} missing, "
                     f"after {[before for before, _ in gaps[:10]]}")
    if seqs and seqs[-1] != counter:
        found.append(f"the last event's seq is {seqs[-1]} but the seq counter is {counter}")
    mismatched = [seq for seq, payload in events if json.loads(payload).get("seq") != seq]
    if mismatched:
        found.append(f"outbox rows whose payload seq differs from the row: {mismatched[:10]}")
    return found
