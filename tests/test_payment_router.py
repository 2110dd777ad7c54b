"""Payment routing over several payment methods: each payment on one usable method, its answers to that method."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from recording_method import RecordingMethod

from kiosk.app.faults import FaultBoard
from kiosk.app.payments import PaymentRouter, Settlements, method_catalogue
from kiosk.domain.events import Event, MethodHealth
from kiosk.domain.faults import FaultKind, ParkerImpact, Severity
from kiosk.domain.payment import Capability
from kiosk.storage.unavailable import UnavailableStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NO_DATABASE = UnavailableStore("io", Path("/nonexistent/kiosk.db"))  # faults stay in memory


@pytest.fixture
def parts() -> tuple[FaultBoard, RecordingMethod, RecordingMethod, PaymentRouter, list[Event]]:
    posted: list[Event] = []
    board = FaultBoard(NO_DATABASE, posted.append)
    card = RecordingMethod("card_terminal", frozenset({Capability.STATUS, Capability.END_OF_DAY}))
    coins = RecordingMethod("coin_acceptor")
    return board, card, coins, PaymentRouter((card, coins), board), posted


def test_a_payment_starts_on_the_first_method_and_its_answers_go_there(parts) -> None:
    _board, card, coins, router, _ = parts
    router.start_payment("p1", 250, "EUR")
    router.confirm_payment("p1", True)
    assert card.calls == [("start_payment", "p1", 250, "EUR"), ("confirm_payment", "p1", True)]
    assert coins.calls == []


def test_a_faulted_method_is_passed_over_and_the_payment_stays_with_the_one_that_took_it(parts) -> None:
    board, card, coins, router, _ = parts
    board.raise_fault("card_terminal", "offline", NOW)
    router.start_payment("p2", 100, "EUR")
    board.clear_fault("card_terminal", NOW)  # the card terminal is back while the parker pays with coins
    router.cancel_payment()
    router.confirm_payment("p2", False)
    assert coins.calls == [("start_payment", "p2", 100, "EUR"), ("cancel_payment",), ("confirm_payment", "p2", False)]
    assert card.calls == []


def test_with_every_method_faulted_the_first_one_is_asked_and_says_why_itself(parts) -> None:
    board, card, coins, router, _ = parts
    board.raise_fault("card_terminal", "offline", NOW)
    board.raise_fault("coin_acceptor", "jammed", NOW)
    router.start_payment("p3", 100, "EUR")
    assert card.calls == [("start_payment", "p3", 100, "EUR")] and coins.calls == []


def test_staff_requests_go_to_the_method_that_declares_them(parts) -> None:
    _board, card, coins, router, _ = parts
    assert router.capabilities == {Capability.STATUS, Capability.END_OF_DAY}
    router.request("end_of_day", "r1")
    assert card.calls == [("request", "end_of_day", "r1")] and coins.calls == []
    with pytest.raises(ValueError, match="no payment method has reconcile requests"):
        router.request("reconcile", "r2")


def test_start_and_close_reach_every_method(parts) -> None:
    _board, card, coins, router, _ = parts
    router.start()
    router.close()
    assert card.calls == coins.calls == [("start",), ("close",)]
    assert router.name == "card_terminal"


def test_a_method_reports_its_health_under_its_own_name(parts) -> None:
    board, _card, _coins, _router, posted = parts
    settlements = Settlements(NO_DATABASE, board, "card_terminal")
    settlements.health(MethodHealth("jammed", "coin path blocked", "coin_acceptor"), NOW)
    settlements.health(MethodHealth("offline"), NOW)  # a report that names no method is the first method's
    assert [(f.component, f.code) for f in board.active()] == [("coin_acceptor", "jammed"), ("card_terminal", "offline")]
    settlements.health(MethodHealth(None, method="coin_acceptor"), NOW)
    assert [f.component for f in board.active()] == ["card_terminal"] and len(posted) == 3


def test_a_station_needs_a_payment_method() -> None:
    with pytest.raises(ValueError, match="at least one payment method"):
        PaymentRouter((), FaultBoard(NO_DATABASE, lambda event: None))


@pytest.mark.parametrize(("names", "message"), [
    (("card_terminal", "card_terminal"), "two payment methods are named 'card_terminal'"),
    (("card_terminal", "coins/1"), "'coins/1': lower-case letters"),
    (("",), "'': lower-case letters"),
    (("Coins",), "'Coins': lower-case letters"),
    (("card_terminal", "payments"), "'payments' is a station component's"),
    (("storage",), "'storage' is a station component's"),
])
def test_method_names_are_unique_topic_levels_of_their_own(names, message) -> None:
    with pytest.raises(ValueError, match=message):
        PaymentRouter(tuple(RecordingMethod(n) for n in names), FaultBoard(NO_DATABASE, lambda event: None))


def test_a_method_declares_its_faults_under_its_own_name() -> None:
    misnamed = RecordingMethod("coin_acceptor", fault_kinds=(
        FaultKind("coins", "jammed", Severity.CRITICAL, ParkerImpact.NO_PAYMENT_METHOD, "Jammed."),))
    with pytest.raises(ValueError, match="'coin_acceptor' declares the fault coins/jammed, not under its own name"):
        method_catalogue((RecordingMethod("card_terminal"), misnamed))


def test_a_notice_does_not_stop_a_method_but_a_declared_stop_does() -> None:
    kinds = (FaultKind("card_terminal", "slow", Severity.WARNING, ParkerImpact.NOTICE, "Slow."),
             FaultKind("card_terminal", "down", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT, "Down."))
    card, coins = RecordingMethod("card_terminal", fault_kinds=kinds), RecordingMethod("coin_acceptor")
    board = FaultBoard(NO_DATABASE, lambda event: None, catalogue=method_catalogue((card, coins)))
    router = PaymentRouter((card, coins), board)
    board.raise_fault("card_terminal", "slow", NOW)
    assert router.choose() is card
    board.raise_fault("card_terminal", "down", NOW)
    assert router.choose() is coins
