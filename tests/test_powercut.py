"""The random power-cut matrix (tests/powercut.py): a seeded, bounded run, and its invariant checks on known damage."""
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from powercut import Tally, run_matrix
from powercut_checks import Journal, violations

from kiosk.domain.records import PaymentResultData
from kiosk.storage.store import Store

SEED = 20260105
# (set-up, pairing, kills): the terminal in its own process that survives the station (A), with loose and strict
# pairing, and the whole cabinet losing power with the simulator in-process (B). About 45 s on 2 cores; the soak
# (bench/powercut_soak.py, docs/power-cut.md) takes hundreds of kills.
PLAN = [("A", "loose", 5), ("A", "strict", 3), ("B", "loose", 5)]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.slow
def test_power_cuts_never_part_money_from_parking(tmp_path: Path) -> None:
    tally = Tally.total(list(run_matrix(tmp_path, SEED, PLAN).values()))
    assert tally.kills >= 12 and tally.restarts >= tally.kills, tally.summary()
    assert not tally.violations, "\n".join(str(v) for v in tally.violations)


# --- the checks themselves: each must see the damage it is for -------------------------------------------------


@pytest.fixture
def paid(tmp_path: Path) -> tuple[Path, Journal, str]:
    """A station database with one paid, confirmed session (receipt 0001, trace 000001, 2.00) and its journal."""
    db = tmp_path / "kiosk.db"
    with Store.open(db, "ST-1", T0) as store:
        payment = store.begin_payment(
            "B-1", "Z", 200, "EUR", 60, T0, T0 + timedelta(hours=1), None, T0, method="card_terminal")
        store.commit_paid_session(payment.id, PaymentResultData(0, "VISA", None, "ABC", "0001", "000001"), T0)
        store.mark_confirmed(payment.id, T0)
    journal = Journal(tmp_path / "pt.jsonl")
    write(journal, ("authorized", "0001", "000001", 200), ("booked", "0001", "000001", 200))
    return db, journal, payment.id


def write(journal: Journal, *entries: tuple[str, str, str, int]) -> None:
    with journal.path.open("a", encoding="utf-8") as f:
        for event, receipt, trace, amount in entries:
            f.write(json.dumps({"event": event, "receipt": receipt, "trace": trace, "amount": amount}) + "\n")


def tamper(db: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, args)
    conn.close()


def test_a_consistent_station_and_terminal_break_no_invariant(paid) -> None:
    db, journal, _ = paid
    assert violations(db, journal) == []


def test_money_booked_without_a_payment_is_found(paid) -> None:
    db, journal, _ = paid
    write(journal, ("authorized", "0002", "000002", 150), ("booked", "0002", "000002", 150))
    assert violations(db, journal) == [
        "receipt 0002 (trace 000002, amount 150) booked at the terminal, but no payment of the station has it"]


def test_a_paid_session_whose_money_was_reversed_is_found(paid) -> None:
    db, journal, payment_id = paid
    write(journal, ("reversed", "0001", "000001", 200))
    (found,) = violations(db, journal)
    assert found.endswith(f"(B-1, 200) of payment {payment_id}: its money is not booked: "
                          "receipt 0001 (trace 000001, amount 200) is reversed at the terminal")


def test_an_open_authorization_and_an_unconfirmed_payment_are_found(paid) -> None:
    db, journal, payment_id = paid
    write(journal, ("authorized", "0002", "000002", 150))
    tamper(db, "UPDATE payment SET confirmed = NULL")
    assert violations(db, journal) == [f"payment {payment_id} (B-1) left approved, unconfirmed",
                                       "receipt 0002 (trace 000002, amount 150) still authorized at the terminal "
                                       "(open authorization)"]


def test_a_state_without_its_event_and_a_lost_seq_are_found(paid) -> None:
    db, journal, payment_id = paid
    tamper(db, "UPDATE payment SET auth_code = 'XYZ' WHERE id = ?", payment_id)
    tamper(db, "DELETE FROM outbox WHERE topic = 'event/session'")
    found = violations(db, journal)
    assert found[0] == f"payment {payment_id}: its last event disagrees with the table: auth_code 'ABC' != 'XYZ'"
    assert found[1].startswith("session ") and found[1].endswith("(B-1) has no event in the outbox")
    assert found[2].startswith("the last event's seq is ") and len(found) == 3


def test_a_seq_gap_inside_the_series_is_found(paid) -> None:
    db, journal, _ = paid
    with Store.open(db, "ST-1", T0) as store:
        store.grant_courtesy_session("B-2", "Z", 30, T0, T0 + timedelta(minutes=30), "help desk", T0)
    tamper(db, "DELETE FROM outbox WHERE topic = 'event/session' AND payload LIKE '%\"kind\":\"paid\"%'")
    found = violations(db, journal)
    assert found[0].endswith("(B-1) has no event in the outbox")
    assert found[1].startswith("outbox seq gaps: 1 missing, after [") and len(found) == 2


def test_a_payment_left_to_staff_as_unreconciled_is_found(paid) -> None:
    db, journal, payment_id = paid
    tamper(db, "UPDATE payment SET confirmed = NULL, unreconciled = 'receipt 0001 refused'")
    assert violations(db, journal) == [
        f"payment {payment_id} (B-1) left approved, unconfirmed (unreconciled: receipt 0001 refused)"]


def test_a_rating_without_its_event_or_an_event_without_its_rating_is_found(paid) -> None:
    db, journal, _ = paid
    with Store.open(db, "ST-1", T0) as store:
        ticket = store.open_help_ticket({"screen": "paid", "faults": []}, T0)
        store.save_feedback(4, None, ticket, T0)
        store.save_feedback(2, None, None, T0)
    assert violations(db, journal) == []
    tamper(db, "DELETE FROM feedback WHERE rating = 2")
    tamper(db, "UPDATE outbox SET payload = replace(payload, '\"rating\":4', '\"rating\":5') "
               "WHERE topic = 'event/feedback'")
    assert violations(db, journal) == [f"rating (4, None, '{ticket}') stored 1 time(s) more than reported",
                                       f"rating (5, None, '{ticket}') reported 1 time(s) more than stored",
                                       "rating (2, None, None) reported 1 time(s) more than stored"]
