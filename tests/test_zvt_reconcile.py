"""Owed payments after a restart: booked or reversed only when receipt, trace and amount all match the terminal's.

The simulator and the restarted station's driver run on one SkippingClock: the line's quiet
time, T2 and the terminal's repeats expire at once when nothing else can happen first.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_for
from skipping_clock import SkippingClock

from drivers.payment.zvt.driver import OwedPayment, SerialPort, ZvtTerminal, serial_opener
from drivers.payment.zvt.ecr import EcrSession
from drivers.payment.zvt.link import Link
from drivers.payment.zvt.simulator import PAIRINGS, Behaviour, Simulator, open_pty
from kiosk.domain.events import Event, MethodHealth, PaymentAuthorized, PaymentConfirmed, PaymentDeclined, PaymentReconciled

QUIET_S = 1.0  # more than the simulator's T2 and answer timeout below


class StationDied(Exception):
    """Raised in the vending decision: the first station dies with the terminal waiting for its answer."""


class Bench:
    """A simulated terminal on a pty, and the station's ZVT driver started on demand with owed payments.

    Both run on ``clock``; the first station, which dies, runs on real time.
    """

    def __init__(self, tmp_path: Path, pairing: str) -> None:
        self.journal = tmp_path / "pt.jsonl"
        self.pty = open_pty()
        self.pairing = pairing
        self.clock = SkippingClock()
        self.simulator: Simulator | None = None
        self.terminal: ZvtTerminal | None = None
        self.events: list[Event] = []

    def start_simulator(self) -> Simulator:
        """The terminal, remembering what its journal holds."""
        self.simulator = Simulator(self.pty.master_fd, self.journal, answer_timeout_s=0.5, ask_again_s=0.2, t2_s=0.3,
                                   pairing=self.pairing, clock=self.clock)
        self.simulator.start()
        return self.simulator

    def station_dies_awaiting_the_vending_answer(self, amount: int) -> None:
        """A first station asks for ``amount``, and dies when the terminal asks for its vending answer."""
        port = serial_opener(self.pty.slave_path, 9600)()
        session = EcrSession(Link(port), "000000", vending_window_s=20)

        def die(info: object) -> bool:
            raise StationDied

        try:
            with pytest.raises(StationDied):
                session.pay(amount, on_status=lambda text: None, decide=die)
        finally:
            port.close()

    def start_station(self, *owed: OwedPayment) -> None:
        """The restarted station's driver, owing ``owed``."""
        self.terminal = ZvtTerminal(serial_opener(self.pty.slave_path, 9600), self.events.append, password="000000",
                                    currency="EUR", line_quiet_s=QUIET_S, vending_window_s=20, owed=owed,
                                    clock=self.clock)
        terminal, simulator = self.terminal, self.simulator
        assert simulator is not None
        self.clock.watch(lambda: (terminal.bytes_in, terminal.bytes_out, simulator.bytes_in, simulator.bytes_out))
        self.terminal.start()

    def next_parker_pays(self) -> None:
        """The next parker's payment, asked for as soon as the station started: booked, never declined."""
        assert self.terminal is not None
        self.terminal.start_payment("p2", 300, "EUR")
        wait_for(lambda: any(isinstance(e, PaymentAuthorized) for e in list(self.events)), 30, "the next payment")
        self.terminal.confirm_payment("p2", True)
        wait_for(lambda: any(isinstance(e, PaymentConfirmed) for e in list(self.events)), 10, "its confirmation")
        assert not [e for e in self.events if isinstance(e, PaymentDeclined)]

    def reconciled(self) -> list[PaymentReconciled]:
        """What the driver reported about owed payments."""
        return [event for event in list(self.events) if isinstance(event, PaymentReconciled)]

    def close(self) -> None:
        """Stop everything."""
        if self.terminal is not None:
            self.terminal.close()
        if self.simulator is not None:
            self.simulator.stop()
        self.pty.close()


@pytest.fixture(params=PAIRINGS)
def bench(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bench]:
    made = Bench(tmp_path, request.param)
    yield made
    made.close()


def journal_events(simulator: Simulator, receipt: str = "0001") -> list[str]:
    return [entry["event"] for entry in simulator.journal() if entry.get("receipt") == receipt]


def write_journal(path: Path, *entries: dict[str, object]) -> None:
    """A terminal's memory from an earlier day."""
    path.write_text("".join(json.dumps({"ts": "2026-01-05T09:00:00.000+00:00", **e}) + "\n" for e in entries))


def booking(receipt: str, trace: str, amount: int) -> list[dict[str, object]]:
    """The journal lines of a booked payment."""
    fields = {"receipt": receipt, "trace": trace, "amount": amount, "currency": 978}
    return [{"event": "authorized", **fields, "turnover": int(trace), "brand": "VISA"}, {"event": "booked", **fields}]


def test_terminal_asking_again_for_the_owed_payment_gets_it_booked(bench: Bench) -> None:
    simulator = bench.start_simulator()
    bench.station_dies_awaiting_the_vending_answer(200)
    bench.start_station(OwedPayment("p1", "0001", "000001", 200))
    wait_for(lambda: bench.reconciled(), 15, "the owed payment to be settled")
    assert [(e.payment_id, e.outcome) for e in bench.reconciled()] == [("p1", "booked")]
    assert journal_events(simulator) == ["authorized", "booked"]


@pytest.mark.parametrize("owed", [OwedPayment("p1", "0001", "000001", 250), OwedPayment("p1", "0001", "000002", 200)],
                         ids=["other-amount", "other-trace"])
def test_terminal_asking_about_a_payment_that_matches_only_by_receipt_gets_it_refused(bench: Bench,
                                                                                      owed: OwedPayment) -> None:
    simulator = bench.start_simulator()
    bench.station_dies_awaiting_the_vending_answer(200)
    bench.start_station(owed)
    wait_for(lambda: bench.reconciled(), 15, "the owed payment to be settled")
    assert journal_events(simulator) == ["authorized", "reversed"], "refused (84 66 00), never booked"
    (settled,) = bench.reconciled()
    assert (settled.outcome, settled.detail) == ("reversed", "the terminal had already reversed it")


def test_a_reversal_that_reports_another_payment_is_unreconciled(bench: Bench) -> None:
    """Receipts reset at end of day: receipt 0001 is now somebody else's 1.50, not the station's 2.00."""
    write_journal(bench.journal, *booking("0001", "000001", 200), {"event": "end-of-day"},
                  *booking("0001", "000002", 150))
    bench.start_simulator()
    bench.start_station(OwedPayment("p1", "0001", "000001", 200))
    wait_for(lambda: bench.reconciled(), 15, "the owed payment to be settled")
    (settled,) = bench.reconciled()
    assert settled.outcome == "unknown"
    assert "trace 000002, amount 150" in settled.detail and "trace 000001, amount 200" in settled.detail


def test_an_owed_receipt_the_terminal_no_longer_knows_is_unreconciled(bench: Bench) -> None:
    write_journal(bench.journal, *booking("0001", "000001", 200), {"event": "end-of-day"})
    bench.start_simulator()
    bench.start_station(OwedPayment("p1", "0001", "000001", 200))
    wait_for(lambda: bench.reconciled(), 15, "the owed payment to be settled")
    (settled,) = bench.reconciled()
    assert settled.outcome == "unknown" and "refused" in settled.detail


def test_owed_payments_are_settled_before_the_terminal_is_declared_ready(bench: Bench) -> None:
    simulator = bench.start_simulator()
    bench.station_dies_awaiting_the_vending_answer(200)
    bench.start_station(OwedPayment("p1", "0001", "000001", 200))
    wait_for(lambda: any(isinstance(e, MethodHealth) and e.code is None for e in list(bench.events)), 15,
             "the terminal to be ready")
    ready_at = next(i for i, e in enumerate(bench.events) if isinstance(e, MethodHealth) and e.code is None)
    settled_at = next(i for i, e in enumerate(bench.events) if isinstance(e, PaymentReconciled))
    assert settled_at < ready_at
    assert journal_events(simulator)[-1] == "booked"


def test_a_payment_asked_for_while_the_terminal_is_recovered_waits_and_goes_through(bench: Bench) -> None:
    """The parker after an interrupted payment: the terminal still waits for the dead station's card."""
    simulator = bench.start_simulator()
    simulator.script(Behaviour(kind="wait-card"))
    port = serial_opener(bench.pty.slave_path, 9600)()

    def die(text: str) -> None:
        raise StationDied

    try:
        with pytest.raises(StationDied):
            EcrSession(Link(port), "000000").pay(200, on_status=die, decide=lambda info: True)
    finally:
        port.close()
    bench.start_station()
    bench.next_parker_pays()
    assert [e["event"] for e in simulator.journal()] == ["started", "aborted", "started", "authorized", "booked"]


def test_a_payment_cancelled_while_the_line_is_recovered_ends_at_once(bench: Bench) -> None:
    bench.start_simulator()
    bench.start_station()
    assert bench.terminal is not None
    bench.terminal.start_payment("p1", 300, "EUR")
    bench.terminal.cancel_payment()
    wait_for(lambda: any(isinstance(e, MethodHealth) and e.code is None for e in list(bench.events)), 15,
             "the terminal to be ready")
    kinds = [type(e).__name__ for e in bench.events]
    assert kinds.index("PaymentDeclined") < kinds.index("MethodHealth"), "declined while the line was recovered"
    (declined,) = [e for e in bench.events if isinstance(e, PaymentDeclined)]
    assert (declined.payment_id, declined.result_code) == ("p1", 0x6C)


def test_closing_while_the_line_is_recovered_does_not_wait_out_the_quiet_time(
        bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    bench.start_simulator()
    opened = threading.Event()

    def open_port() -> SerialPort:
        port = serial_opener(bench.pty.slave_path, 9600)()
        opened.set()
        return port

    terminal = ZvtTerminal(open_port, bench.events.append, password="000000", currency="EUR", line_quiet_s=60)
    terminal.start()
    wait_for(opened.is_set, 5, "the driver to open the port and start draining the line")
    terminal.close()
    assert "still busy at close" not in caplog.text
    assert not any(isinstance(e, MethodHealth) for e in bench.events), "no fault for a station that closes"


def test_an_answer_the_terminal_does_not_acknowledge_while_the_line_is_recovered_is_no_fault(bench: Bench) -> None:
    """The PT talks, only its ACK for the station's 84 66 00 is lost: the line is recovered again, nobody is turned away."""
    simulator = bench.start_simulator()
    bench.station_dies_awaiting_the_vending_answer(200)
    simulator.inject("drop-ack")
    bench.start_station()
    bench.next_parker_pays()
    assert [e.code for e in bench.events if isinstance(e, MethodHealth)] == [None], "ready, never unreachable"
    assert [e["event"] for e in simulator.journal()][1:3] == ["authorized", "reversed"]
