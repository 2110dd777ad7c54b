"""The ECR's command sequences (drivers/payment/zvt/ecr.py) against the simulator over a pty, without the station."""
from __future__ import annotations

from pathlib import Path

import pytest

from drivers.payment.zvt.driver import serial_opener
from drivers.payment.zvt.ecr import EcrSession
from drivers.payment.zvt.link import Link
from drivers.payment.zvt.simulator import Behaviour, Simulator, open_pty


@pytest.fixture
def pair(tmp_path: Path):
    pty = open_pty()
    simulator = Simulator(pty.master_fd, tmp_path / "pt.jsonl", ask_again_s=0.2)
    simulator.start()
    port = serial_opener(pty.slave_path, 9600)()
    yield EcrSession(Link(port), "000000"), simulator
    port.close()
    simulator.stop()
    pty.close()


def events(simulator: Simulator) -> list[str]:
    return [e["event"] for e in simulator.journal()]


def test_registration_and_status(pair) -> None:
    session, simulator = pair
    registered = session.register()
    assert (registered.status, registered.terminal_id, registered.currency) == (0, "52500001", 978)
    state = session.status()
    assert (state.status, state.version) == (0, "SIM 1.0")
    simulator.set_status(0x51)
    assert session.status().status == 0x51


def test_wait_answers_keep_the_terminal_asking_until_the_station_decides(pair) -> None:
    session, simulator = pair
    answers = iter([None, None, True])
    asked: list[str] = []

    def decide(info) -> bool | None:
        asked.append(info.receipt_no)
        return next(answers)

    outcome = session.pay(1000, on_status=lambda text: None, decide=decide)
    assert outcome.ending == "booked" and outcome.approval is not None
    assert asked == ["0001", "0001", "0001"], "the same 04 0F asked three times (84 9C 00 twice)"
    assert events(simulator) == ["started", "authorized", "booked"]


def test_refused_payment_is_reversed_by_the_terminal(pair) -> None:
    session, simulator = pair
    outcome = session.pay(250, on_status=lambda text: None, decide=lambda info: False)
    assert (outcome.ending, outcome.result_code) == ("refused", 0x6C)
    assert events(simulator) == ["started", "authorized", "reversed"]


def test_reversal_then_already_reversed(pair) -> None:
    session, _simulator = pair
    booked = session.pay(190, on_status=lambda text: None, decide=lambda info: True)
    receipt = int(booked.approval.receipt_no)
    first = session.reverse(receipt)
    assert first.reversed and first.info is not None and first.info.amount == 190
    again = session.reverse(receipt)
    assert (again.reversed, again.result_code) == (False, 0xB4)
    assert session.reverse(9999).result_code == 0xB5


def test_end_of_day_totals_and_log_off(pair) -> None:
    session, simulator = pair
    simulator.script(Behaviour(brand="girocard"))
    for amount in (190, 250):
        assert session.pay(amount, on_status=lambda text: None, decide=lambda info: True).ending == "booked"
    day = session.end_of_day()
    assert day.result_code == 0 and day.info is not None and day.info.totals is not None
    assert (day.info.totals.count, day.info.totals.amount, day.info.amount) == (2, 440, 440)
    cards = {card.name: (card.count, card.amount) for card in day.info.totals.cards if card.count}
    assert len(cards) == 2 and sorted(cards.values()) == [(1, 190), (1, 250)]
    session.log_off()
    assert session.end_of_day().info.totals.count == 0, "the day starts over"
