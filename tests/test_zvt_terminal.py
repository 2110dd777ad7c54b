"""Whole transactions: the real loop, store, screens and ZVT driver against the simulator over a pty.

Tests that wait for the ZVT timers (T2, T3, a pulled cable) run the driver and the simulator on
one SkippingClock, so that a timer nobody can beat expires at once; one of them also runs on
real time, as the smoke test of the real clock's timeouts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import wait_for
from skipping_clock import SkippingClock

from drivers.payment.zvt import driver as zvt_driver
from drivers.payment.zvt.simulator import PAIRINGS, Simulator
from kiosk.app.loop import Loop
from kiosk.cli.compose import CardTerminal
from kiosk.cli.scenario import ManualClock, Runner, parse
from kiosk.config import Settings, StorageSettings, TerminalSettings
from kiosk.domain import journey
from kiosk.storage.store import Store
from screens.display import Display

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TO_PAY = """
tap start
type {plate}
tap continue
duration 60
"""


@dataclass
class Station:
    """The parts of one simulated station."""

    loop: Loop
    display: Display
    store: Store
    simulator: Simulator
    runner: Runner
    clock: SkippingClock | None = None

    def play(self, text: str) -> None:
        """Run scenario steps (docs/scenarios.md) against the station."""
        self.runner.run(parse(text, "test")[1])

    def journal(self, receipt: str | None = None) -> list[str]:
        """The simulated terminal's journal events (for one receipt number, or all)."""
        return [e["event"] for e in self.simulator.journal() if receipt is None or e.get("receipt") == receipt]

    def payment(self) -> dict:
        """The one payment row."""
        (row,) = self.store.rows("payment")
        return row

    def wait_for(self, condition, timeout: float = 10.0) -> None:
        """Handle events until `condition()` holds."""
        wait_for(condition, timeout, "the station to get there", between=self.loop.settle)


def make_station(tmp_path: Path, pairing: str, terminal_clock: SkippingClock | None):
    """The station (yielded), its card terminal on real time or on ``terminal_clock``; closed afterwards."""
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")),
                        terminal=TerminalSettings(status_interval_s=1))
    clock = ManualClock(START)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    post = lambda event: loop.post(event)
    devices = CardTerminal(settings, True, (), post, pairing=pairing, clock=terminal_clock)
    if terminal_clock is not None:
        simulator, terminal = devices.simulator, devices.terminal
        assert simulator is not None
        terminal_clock.watch(lambda: (terminal.bytes_in, terminal.bytes_out, simulator.bytes_in, simulator.bytes_out))
    loop = Loop(journey.initial(settings, clock()), store, devices.terminal, display, clock)
    devices.terminal.start()
    assert devices.simulator is not None
    yield Station(loop, display, store, devices.simulator, Runner(loop, display, devices.simulator, clock, tmp_path),
                  terminal_clock)
    devices.close()
    display.close()
    store.close()


@pytest.fixture(params=PAIRINGS)
def station(tmp_path: Path, request: pytest.FixtureRequest):
    """A station whose simulated terminal pairs answers loosely or strictly: it must work with both."""
    yield from make_station(tmp_path, request.param, None)


@pytest.fixture(params=PAIRINGS)
def fake_time_station(tmp_path: Path, request: pytest.FixtureRequest):
    """The same station with its card terminal and the simulator on a SkippingClock."""
    yield from make_station(tmp_path, request.param, SkippingClock())


@pytest.fixture
def real_time_station(tmp_path: Path):
    """The station on real time with the simulator's default pairing: for the one real-time smoke test."""
    yield from make_station(tmp_path, PAIRINGS[0], None)


def test_approved_payment_is_committed_then_booked(station: Station) -> None:
    station.play(TO_PAY.format(plate="B-OK1") + "tap pay\nexpect screen paid\nexpect row payment confirmed=*\n")
    payment = station.payment()
    assert (payment["state"], payment["amount"], payment["brand"]) == ("approved", 200, "VISA")
    assert payment["masked_pan"] == "411111******1111" and payment["receipt_no"] == "0001"
    assert [s["kind"] for s in station.store.rows("parking_session")] == ["paid"]
    station.wait_for(lambda: len(station.journal("0001")) >= 2)  # the terminal journals after its ACK
    assert station.journal("0001") == ["authorized", "booked"]


@pytest.mark.parametrize(("code", "reason"), [
    ("05", "Your card was declined by the bank."),
    ("64", "Your card could not be read."),
    ("78", "Your card has expired."),
])
def test_declined_payment_shows_the_reason_and_stores_no_session(station: Station, code: str, reason: str) -> None:
    station.play(TO_PAY.format(plate="B-NO1") + f"terminal decline {code} Abgelehnt\ntap pay\nexpect screen declined\n"
                 f'expect text "{reason}"\n')
    assert not any("Abgelehnt" in text for text in station.display.texts()), "a German terminal's word, not the parker's"
    assert (station.payment()["state"], station.payment()["result_code"]) == ("declined", int(code, 16))
    assert station.store.rows("parking_session") == []
    assert station.journal()[-1] == "declined"


def test_intermediate_texts_are_shown_word_for_word(station: Station) -> None:
    station.play(TO_PAY.format(plate="B-P1N") + 'terminal pin 1\ntap pay\nexpect text "Enter PIN"\n'
                 "expect screen paid\n")


def test_cancel_while_the_terminal_waits_for_the_card_aborts_it(station: Station) -> None:
    station.play(TO_PAY.format(plate="B-CNL") + 'terminal wait-card\ntap pay\n'
                 'expect text "The terminal is ready for your card."\ntap cancel\n'
                 'expect screen duration\nexpect text "Payment cancelled. You have not been charged."\n')
    assert (station.payment()["state"], station.payment()["result_code"]) == ("declined", 0x6C)
    station.wait_for(lambda: station.journal()[-1:] == ["aborted"])


def abort_swallowed_then_recovered(station: Station) -> None:
    """The parker cancels, the terminal swallows the abort: T3 ends the payment, the link recovers."""
    assert station.clock is not None
    with station.clock.hold():  # the parker cancels before T4 could end the payment
        station.play(TO_PAY.format(plate="B-SWL") + 'terminal wait-card\nterminal inject ignore-abort\ntap pay\n'
                     'expect text "The terminal is ready for your card."\ntap cancel\n')
    station.play("expect screen duration\n")
    assert station.payment()["state"] in ("declined", "reversed")
    assert station.store.rows("parking_session") == []
    station.wait_for(lambda: station.journal()[-1:] == ["aborted"], timeout=10)
    station.play("tap pay\nexpect screen paid\n")


def test_abort_the_terminal_swallows_ends_after_t3_and_the_link_recovers(fake_time_station: Station) -> None:
    abort_swallowed_then_recovered(fake_time_station)


def test_real_time_smoke_abort_the_terminal_swallows_ends_after_t3(real_time_station: Station) -> None:
    """The same on the real clock (T3 takes its 5 real seconds): the one real-time test of the ZVT timeouts."""
    real_time_station.play(TO_PAY.format(plate="B-SWL") + 'terminal wait-card\nterminal inject ignore-abort\n'
                           'tap pay\nexpect text "The terminal is ready for your card."\n'
                           'tap cancel\nexpect screen duration\n')
    assert real_time_station.payment()["state"] in ("declined", "reversed")
    assert real_time_station.store.rows("parking_session") == []
    real_time_station.wait_for(lambda: real_time_station.journal()[-1:] == ["aborted"], timeout=10)
    real_time_station.play("tap pay\nexpect screen paid\n")


@pytest.mark.parametrize("fault", ["nak", "bad-crc", "stall", "busy", "drop-ack"])
def test_link_faults_are_retried_and_the_payment_still_goes_through(fake_time_station: Station, fault: str) -> None:
    station = fake_time_station
    station.play(TO_PAY.format(plate="B-RTY") + f"terminal inject {fault}\ntap pay\nexpect screen paid\n"
                 "expect row payment confirmed=*\n")
    station.wait_for(lambda: len(station.journal("0001")) >= 2)  # the terminal journals after its ACK
    assert station.journal("0001") == ["authorized", "booked"]
    assert not any(f.component == "card_terminal" for f in station.loop.state.faults)


def test_a_payment_the_terminal_did_not_finish_in_time_warns_the_next_parkers(fake_time_station: Station) -> None:
    """T4 ends a payment stuck after the card (here in a PIN entry the terminal never ends): Welcome says card payment
    may fail until a payment goes through again."""
    station = fake_time_station
    station.play(TO_PAY.format(plate="B-T4X") + "terminal pin 400\ntap pay\nexpect screen declined\n")
    station.wait_for(lambda: [(f.component, f.code) for f in station.loop.state.faults]
                     == [("card_terminal", "payment_timeout")])
    (fault,) = station.loop.state.faults
    assert (fault.severity, fault.parker_impact) == ("warning", "notice")
    station.play('tap done\nexpect screen welcome\nexpect text "Card payment may be slow or fail at the moment."\n')
    station.play(TO_PAY.format(plate="B-T4Y") + "tap pay\nexpect screen paid\n")
    station.wait_for(lambda: station.loop.state.faults == ())
    (row,) = station.store.rows("fault", component="card_terminal")
    assert row["code"] == "payment_timeout" and row["cleared_at"] is not None


def test_the_notice_ends_after_a_while_of_a_ready_terminal_without_payments(fake_time_station: Station,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A free weekend brings no payment to end it: a ready terminal does, after TIMEOUT_NOTICE_S (15 min; 20 s here)."""
    monkeypatch.setattr(zvt_driver, "TIMEOUT_NOTICE_S", 20.0)
    station = fake_time_station
    station.play(TO_PAY.format(plate="B-T4Z") + "terminal pin 400\ntap pay\nexpect screen declined\n")
    station.wait_for(lambda: any(f.code == "payment_timeout" for f in station.loop.state.faults))
    station.play("tap done\n")
    station.wait_for(lambda: station.loop.state.faults == (), timeout=60)
    assert station.store.rows("payment", plate="B-T4Z")[0]["state"] == "declined"


def test_a_parker_who_walks_away_from_the_card_prompt_raises_no_notice(fake_time_station: Station) -> None:
    """T4 ends a payment whose terminal still asks for the card: nothing is wrong with the terminal."""
    station = fake_time_station
    station.play(TO_PAY.format(plate="B-W4LK") + "terminal wait-card\ntap pay\nexpect screen declined\n")
    station.wait_for(lambda: station.journal()[-1:] == ["aborted"])  # the line is recovered after the outcome
    station.loop.settle()
    assert station.loop.state.faults == ()
    assert station.store.rows("fault", component="card_terminal") == []


def test_silent_terminal_declines_after_the_link_gives_up(fake_time_station: Station) -> None:
    station = fake_time_station
    station.play(TO_PAY.format(plate="B-DED") + "terminal silent\ntap pay\n")
    station.wait_for(lambda: station.loop.state.screen is journey.Screen.DECLINED, timeout=25)
    assert "The card terminal did not answer. You have not been charged." in station.display.texts()
    assert (station.payment()["state"], station.payment()["result_code"]) == ("declined", 0x7D)
    assert station.journal() == [], "the terminal never even took the Authorization"


@pytest.mark.parametrize(("status", "code", "message"), [
    ("51", "not_ready", "initialisation required"),
    ("DF", "out_of_order", "out of order"),
])
def test_terminal_status_fault_stops_card_payment_until_it_recovers(station: Station, status: str, code: str,
                                                                   message: str) -> None:
    station.play(f"terminal status {status}\nexpect screen out_of_service\n"
                 f"expect row fault component=card_terminal code={code}\n")
    (fault,) = station.loop.state.faults
    assert message in fault.message and f"terminal status {status}" in fault.message
    station.play("terminal status 00\nexpect screen welcome\n")
    assert station.loop.state.faults == ()
    (row,) = station.store.rows("fault", component="card_terminal")
    assert row["cleared_at"] is not None


def test_cable_pull_makes_the_terminal_unreachable_then_recovers(fake_time_station: Station) -> None:
    station = fake_time_station
    station.simulator.inject("disconnect", 16)
    station.wait_for(lambda: station.loop.state.screen is journey.Screen.OUT_OF_SERVICE, timeout=25)
    assert [f.code for f in station.loop.state.faults] == ["unreachable"]
    station.wait_for(lambda: station.loop.state.screen is journey.Screen.WELCOME, timeout=30)
    station.play(TO_PAY.format(plate="B-BCK") + "tap pay\nexpect screen paid\n")
