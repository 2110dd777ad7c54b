"""A payment the terminal could not settle is kept for staff, durably, and never reconciled again by receipt alone."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tiny_disk import TinyDisk, empty_wal

from kiosk.app.loop import Loop
from kiosk.cli.scenario import ManualClock
from kiosk.config import Settings, StorageSettings
from kiosk.domain import journey
from kiosk.domain.events import PaymentConfirmed, PaymentReconciled
from kiosk.domain.records import PaymentResultData
from kiosk.storage.payments import NotOwed
from kiosk.storage.store import StorageError, Store
from screens.display import Display

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RESULT = PaymentResultData(result_code=0, brand="VISA", masked_pan="411111******1111", auth_code="00AB12",
                           receipt_no="0001", trace_no="000001")
DETAIL = "reversal of receipt 0001 refused: reversal not possible"


class IdleTerminal:
    """A card terminal that is never asked anything in these tests."""

    name = "card_terminal"
    capabilities: frozenset[str] = frozenset()
    fault_kinds = ()

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None:
        raise AssertionError("no payment here")

    def cancel_payment(self) -> None:
        raise AssertionError("no payment here")

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        raise AssertionError("no payment here")

    def request(self, kind: str, request_id: str) -> None:
        raise AssertionError("no request here")


def owed_payment(store: Store) -> str:
    """An approved payment with its session stored and no confirmation from the terminal."""
    pending = store.begin_payment(
        "B-UN 1", "Z1", 200, "EUR", 60, START, START + timedelta(hours=1), None, START, method="card_terminal")
    store.commit_paid_session(pending.id, RESULT, START)
    assert pending.id in [p.id for p in store.unconfirmed_payments()]
    return pending.id


def test_the_loop_marks_an_unreconciled_payment_and_raises_the_fault(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(START)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    payment_id = owed_payment(store)
    display = Display(settings, headless=True)
    loop = Loop(journey.initial(settings, clock()), store, IdleTerminal(), display, clock)
    try:
        loop.post(PaymentReconciled(payment_id, "unknown", DETAIL))
        loop.settle()
        (fault,) = [f for f in loop.state.faults if f.component == "payments"]
        assert fault.code == "unreconciled" and payment_id in fault.message and DETAIL in fault.message
        assert store.unconfirmed_payments() == [], "not owed again: the next start must not reverse it by receipt"
    finally:
        display.close()
        store.close()
    with Store.open(tmp_path / "kiosk.db", settings.station.id, START + timedelta(minutes=5)) as reopened:
        assert reopened.unconfirmed_payments() == []
        (row,) = reopened.rows("payment")
        assert (row["state"], row["unreconciled"], row["confirmed"]) == ("approved", DETAIL, None)


def test_marking_is_idempotent_and_only_for_an_owed_payment(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kiosk.db", "st-1", START) as store:
        payment_id = owed_payment(store)
        first = store.mark_unreconciled(payment_id, DETAIL, START)
        again = store.mark_unreconciled(payment_id, "another reason", START + timedelta(minutes=1))
        assert first.unreconciled == again.unreconciled == DETAIL
        confirmed = store.begin_payment("B-OK 2", "Z1", 300, "EUR", 60, START, START + timedelta(hours=1), None,
                                        START, method="card_terminal")
        store.commit_paid_session(confirmed.id, RESULT, START)
        store.mark_confirmed(confirmed.id, START)
        with pytest.raises(NotOwed, match="nothing to settle"):
            store.mark_unreconciled(confirmed.id, DETAIL, START)


def test_what_the_terminal_settled_while_the_disk_was_full_is_recorded_once_it_heals(disk: TinyDisk) -> None:
    """A booked payment met a full disk: it must not be owed (and reversed) at the next start."""
    settings = Settings(storage=StorageSettings(database=str(disk.database)))
    clock = ManualClock(START)
    store = Store.open(disk.database, settings.station.id, clock())
    booked, unsettled = owed_payment(store), owed_payment(store)
    display = Display(settings, headless=True)
    loop = Loop(journey.initial(settings, clock()), store, IdleTerminal(), display, clock)
    try:
        empty_wal(disk.database)
        disk.fill()
        loop.post(PaymentConfirmed(booked))
        loop.post(PaymentReconciled(unsettled, "unknown", DETAIL))
        loop.settle()
        assert {f.component: f.code for f in loop.state.faults} == {"storage": "full", "payments": "unreconciled"}
        disk.make_room()
        for _ in range(10):  # the healer's first tries come after 1, 2, 4 ... s
            if not any(f.component == "storage" for f in loop.state.faults):
                break
            clock.set(clock() + timedelta(seconds=2))
            loop.settle()
        assert [f.component for f in loop.state.faults] == ["payments"]
        assert store.unconfirmed_payments() == []
        rows = {row["id"]: row for row in store.rows("payment")}
        assert rows[booked]["confirmed"] is not None and rows[unsettled]["unreconciled"] == DETAIL
        assert {(f.component, f.code) for f in store.active_faults()} == {("payments", "unreconciled")}
    finally:
        display.close()
        store.close()


def test_the_storage_fault_stays_until_its_clearing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A heal whose last write fails is no heal: the station stays out of service and tries again."""
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(START)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    loop = Loop(journey.initial(settings, clock()), store, IdleTerminal(), display, clock)
    try:
        loop.fault_board.raise_fault("storage", "io", clock(), "disk I/O error")
        with monkeypatch.context() as patch:
            def failing(component: str, now: datetime) -> bool:
                raise StorageError("io", tmp_path / "kiosk.db", "disk I/O error")

            patch.setattr(store, "clear_fault", failing)
            clock.set(clock() + timedelta(seconds=1))
            loop.settle()
            assert [(f.component, f.code) for f in loop.fault_board.active()] == [("storage", "io")]
            assert [(f.component, f.code) for f in store.active_faults()] == [("storage", "io")]
        clock.set(clock() + timedelta(seconds=2))
        loop.settle()
        assert loop.fault_board.active() == () and store.active_faults() == []
    finally:
        display.close()
        store.close()


def test_an_unknown_outcome_for_a_payment_with_nothing_to_settle_raises_no_fault(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(START)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    payment_id = owed_payment(store)
    store.mark_confirmed(payment_id, START)
    display = Display(settings, headless=True)
    loop = Loop(journey.initial(settings, clock()), store, IdleTerminal(), display, clock)
    try:
        loop.post(PaymentReconciled(payment_id, "unknown", DETAIL))
        loop.settle()
        assert loop.fault_board.active() == () and store.rows("payment")[0]["unreconciled"] is None
    finally:
        display.close()
        store.close()
