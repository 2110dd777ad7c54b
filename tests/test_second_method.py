"""A second payment method beside the card terminal: its own faults, its own payments, and the station paying on."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import wait_for
from recording_method import RecordingMethod

from drivers.payment.zvt.faults import FAULT_KINDS
from kiosk.app import recovery
from kiosk.app.loop import Loop
from kiosk.cli.compose import CardTerminal, build_station
from kiosk.cli.scenario import ManualClock
from kiosk.config import Settings, StorageSettings
from kiosk.domain import journey
from kiosk.domain.events import Event, MethodHealth, PaymentAuthorized, PaymentReconciled, Tap
from kiosk.domain.faults import FaultKind, ParkerImpact, Severity
from kiosk.domain.records import PaymentResultData
from kiosk.storage import store as store_module
from kiosk.storage.payments import count_owed
from kiosk.storage.schema import MIGRATIONS
from kiosk.storage.store import StorageError, Store
from screens.display import Display
from screens.welcome import notice_lines

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
COINS_TAKEN = PaymentResultData(result_code=0, brand=None, masked_pan=None, auth_code=None, receipt_no=None,
                                trace_no=None)


COIN_FAULTS = (
    FaultKind("coin_acceptor", "jammed", Severity.CRITICAL, ParkerImpact.NO_PAYMENT_METHOD, "The coin slot is jammed."),
    FaultKind("coin_acceptor", "cash_box_full", Severity.WARNING, ParkerImpact.NOTICE, "The cash box is nearly full."),
)


@pytest.fixture
def station(tmp_path: Path):
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(START)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    card = RecordingMethod("card_terminal", fault_kinds=FAULT_KINDS)
    coins = RecordingMethod("coin_acceptor", fault_kinds=COIN_FAULTS)
    loop = Loop(journey.initial(settings, clock()), store, card, display, clock, more_methods=(coins,))
    yield loop, store, card, coins
    display.close()
    store.close()


def pay_for_an_hour(loop: Loop) -> str:
    """A parker's taps from Welcome to Paying; the payment id."""
    for event in (Tap("start"), *[Tap(f"key:{c}") for c in "B-CO 1"], Tap("continue"), Tap("plus"), Tap("pay")):
        loop.post(event)
        loop.settle()
    payment = loop.state.payment
    assert loop.state.screen is journey.Screen.PAYING and payment is not None and payment.payment_id is not None
    return payment.payment_id


def test_its_declared_faults_are_described_as_it_says_not_as_unknown_ones(station) -> None:
    loop, store, _card, _coins = station
    loop.post(MethodHealth("cash_box_full", "90 %", "coin_acceptor"))
    loop.settle()
    (fault,) = store.active_faults()
    assert (fault.component, fault.code, fault.severity, fault.parker_impact) == (
        "coin_acceptor", "cash_box_full", "warning", "notice")
    assert fault.message == "The cash box is nearly full. 90 %"
    assert loop.state.screen is journey.Screen.WELCOME


def test_with_the_card_terminal_down_parkers_pay_with_the_other_method_and_the_row_names_it(station) -> None:
    loop, store, card, coins = station
    loop.post(MethodHealth("unreachable", "no answer after 3 tries", "card_terminal"))
    loop.settle()
    assert loop.state.screen is journey.Screen.WELCOME, "one method stopped is not out of service"
    assert "Card payment is not available" in notice_lines(loop.state)
    payment_id = pay_for_an_hour(loop)
    assert [c[0] for c in coins.calls] == ["start_payment"] and card.calls == []
    assert store.rows("payment", id=payment_id)[0]["method"] == "coin_acceptor"
    loop.post(PaymentAuthorized(payment_id, COINS_TAKEN))
    loop.settle()
    assert loop.state.screen is journey.Screen.PAID
    assert coins.calls[-1] == ("confirm_payment", payment_id, True)
    (row,) = store.rows("payment", id=payment_id)
    assert (row["state"], row["brand"], row["masked_pan"], row["receipt_no"]) == ("approved", None, None, None)
    (event,) = [e for e in store.rows("outbox") if e["topic"] == "event/payment"]
    assert '"method":"coin_acceptor"' in event["payload"]


def test_the_station_is_out_of_service_only_once_every_method_is_stopped(station) -> None:
    loop, _store, _card, _coins = station
    loop.post(MethodHealth("jammed", "", "coin_acceptor"))
    loop.settle()
    assert loop.state.screen is journey.Screen.WELCOME
    loop.post(MethodHealth("out_of_order", "status 9C", "card_terminal"))
    loop.settle()
    assert loop.state.screen is journey.Screen.OUT_OF_SERVICE
    assert journey.blocking_impact(loop.state) is ParkerImpact.NO_PAYMENT_METHOD, "not 'card payment': no way to pay is left"
    loop.post(MethodHealth(None, "", "coin_acceptor"))
    loop.settle()
    assert loop.state.screen is journey.Screen.WELCOME


def test_a_payment_starts_on_the_card_terminal_while_it_works(station) -> None:
    loop, store, card, coins = station
    loop.post(MethodHealth("payment_timeout", "", "card_terminal"))  # a notice does not stop a method
    loop.settle()
    payment_id = pay_for_an_hour(loop)
    assert [c[0] for c in card.calls] == ["start_payment"] and coins.calls == []
    assert store.rows("payment", id=payment_id)[0]["method"] == "card_terminal"


def owe(store: Store, plate: str, method: str) -> str:
    """An approved payment of ``method`` with its session stored and no confirmation: owed to that method."""
    payment = store.begin_payment(plate, "Z1", 200, "EUR", 60, START, START + timedelta(hours=1), None, START,
                                  method=method)
    store.commit_paid_session(payment.id, COINS_TAKEN, START)
    return payment.id


def test_owed_payments_are_counted_and_settled_per_method(tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    with Store.open(database, "st-1", START) as store:
        card_owed, coins_owed = owe(store, "B-CA 1", "card_terminal"), owe(store, "B-CO 2", "coin_acceptor")
        owed = store.unconfirmed_payments()
        assert {p.id: p.method for p in owed} == {card_owed: "card_terminal", coins_owed: "coin_acceptor"}
    assert (count_owed(database, "card_terminal"), count_owed(database, "coin_acceptor")) == (1, 1)
    with Store.open(database, "st-1", START) as store:  # the coin acceptor was removed: nobody can settle its payment
        faults = recovery.removed_methods(store, store.unconfirmed_payments(), ["card_terminal"], (), START)
        assert [p.id for p in store.unconfirmed_payments()] == [card_owed], "the card terminal's stays owed to it"
        (row,) = store.rows("payment", id=coins_owed)
        assert row["unreconciled"] == "its payment method coin_acceptor is not configured"
        assert [(f.component, f.code) for f in faults] == [("payments", "unreconciled")] and coins_owed in faults[0].message
        assert [(f.component, f.code) for f in store.active_faults()] == [("payments", "unreconciled")]
        assert recovery.removed_methods(store, store.unconfirmed_payments(), ["card_terminal"], faults, START) == faults


def test_a_removed_methods_payment_stays_owed_and_its_fault_known_when_the_database_fails(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    with Store.open(tmp_path / "kiosk.db", "st-1", START) as store:
        coins_owed = owe(store, "B-CO 2", "coin_acceptor")

        def failing(payment_id: str, detail: str, now: datetime) -> None:
            raise StorageError("io", tmp_path / "kiosk.db", "disk I/O error")

        monkeypatch.setattr(store, "mark_unreconciled", failing)
        faults = recovery.removed_methods(store, store.unconfirmed_payments(), ["card_terminal"], (), START)
        assert {(f.component, f.code) for f in faults} == {("payments", "unreconciled"), ("storage", "io")}
        assert [p.id for p in store.unconfirmed_payments()] == [coins_owed], "found again at the next start"


def test_a_started_station_clears_a_removed_methods_fault_and_leaves_its_payments_to_staff(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    with Store.open(tmp_path / "kiosk.db", settings.station.id, START) as store:
        coins_owed = owe(store, "B-CO 2", "coin_acceptor")
        store.raise_fault("coin_acceptor", "jammed", "critical", "The coin slot is jammed.", "payment_method_unavailable",
                          START)
    station = build_station(settings, ManualClock(START), simulate=True, headless=True, online=False)
    try:
        assert [(f.component, f.code) for f in station.loop.fault_board.active()] == [("payments", "unreconciled")]
        assert station.store is not None and station.store.unconfirmed_payments() == []
        assert coins_owed in station.loop.fault_board.active()[0].message
    finally:
        station.close()


def test_a_database_from_before_payments_named_their_method_owes_the_card_terminal(tmp_path: Path, monkeypatch) -> None:
    database = tmp_path / "kiosk.db"
    with monkeypatch.context() as patch:  # a version-5 database, as the firmware before this one left it
        patch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:5])
        with Store.open(database, "st-1", START) as store:
            at = "2026-01-05T09:00:00.000000Z"
            store.core.db.execute_sql(
                "INSERT INTO payment (id, plate, zone, amount, currency, state, minutes, starts, expires, created, "
                "updated) VALUES ('p5', 'B-OL 5', 'Z1', 200, 'EUR', 'approved', 60, ?, ?, ?, ?)", (at, at, at, at))
    assert (count_owed(database, "card_terminal"), count_owed(database, "coin_acceptor")) == (1, 0)


def test_the_card_terminal_is_given_only_the_owed_payments_that_name_it(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    with Store.open(tmp_path / "kiosk.db", "st-1", START) as store:
        coins_owed, card_owed = owe(store, "B-CO 1", "coin_acceptor"), owe(store, "B-CA 2", "card_terminal")
        owed = tuple(store.unconfirmed_payments())
    assert [p.id for p in owed] == [coins_owed, card_owed], "the coin acceptor's would be settled first"
    posted: list[Event] = []
    devices = CardTerminal(settings, True, owed, posted.append)
    try:
        devices.terminal.start()
        wait_for(lambda: any(isinstance(e, PaymentReconciled) for e in list(posted)), 15, "the owed payment settled")
    finally:
        devices.close()
    assert [e.payment_id for e in posted if isinstance(e, PaymentReconciled)] == [card_owed]
