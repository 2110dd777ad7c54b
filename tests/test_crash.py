"""Power loss in the middle of a payment, with the terminal simulator outliving the station on a pty.

Whatever the crash point: never a payment the terminal keeps without a stored session, and
never a session marked paid for a payment the terminal reversed.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, run_kiosk, wait_for

from drivers.payment.zvt.simulator import PAIRINGS, Behaviour, Simulator, open_pty

PT_T2_S = 0.5  # the simulated terminal's repeat timer, short so that restarts are quick
LINE_QUIET_MS = 1500  # more than the terminal's T2 and its 1 s answer timeout
PAY = """
start 2026-01-05T10:00:00+01:00
tap start
type B-CR4SH
tap continue
duration 60
tap pay
expect screen paid
expect row payment plate=B-CR4SH confirmed=*
"""


def table(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(params=PAIRINGS)
def station(tmp_path: Path, request: pytest.FixtureRequest):
    """A station configuration on a pty whose other end is a simulator living in this test (both pairings)."""
    link = tmp_path / "pt"
    pty = open_pty(link)
    simulator = Simulator(pty.master_fd, tmp_path / "pt.jsonl", answer_timeout_s=1.0, t2_s=PT_T2_S,
                          pairing=request.param)
    simulator.start()
    config = tmp_path / "kiosk.toml"

    def configure(vending_window_s: int) -> Path:
        config.write_text(f'[storage]\ndatabase = "{tmp_path / "kiosk.db"}"\n[screen]\nfullscreen = false\n'
                          f'[terminal]\nport = "{link}"\nvending_window_s = {vending_window_s}\n'
                          f'line_quiet_ms = {LINE_QUIET_MS}\n', encoding="utf-8")
        return config

    yield configure, simulator, tmp_path / "kiosk.db"
    simulator.stop()
    pty.close()


def crash_at(point: str, config: Path, tmp_path: Path) -> None:
    (tmp_path / "pay.scn").write_text(PAY)
    crashed = run_kiosk("run", "--headless", "--config", str(config), "--scenario", str(tmp_path / "pay.scn"),
                        env={**os.environ, "KIOSK_CRASHPOINT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert f"crash point {point} reached" in crashed.stderr


class Station:
    """The restarted station, a real `kiosk run` process whose log is collected."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--headless", "--config", str(config)],
                                     cwd=ROOT, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self) -> None:
        """SIGTERM once the station is ready (it blocks stop signals from then on); it must exit cleanly."""
        wait_for(lambda: any("ready: waiting for parkers" in line for line in self.log), 20, "the station to start")
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(20) == 0, "".join(self.log)
        self._reader.join(5)


def ended(simulator: Simulator) -> str | None:
    events = [e["event"] for e in simulator.journal() if e["event"] not in ("started", "authorized")]
    return events[-1] if events else None


def check_invariants(db: Path, simulator: Simulator) -> None:
    """Nobody pays without parking, and no parking is marked paid for money the terminal gave back."""
    assert not table(db, "SELECT id FROM payment WHERE state = 'pending'")
    assert not table(db, "SELECT id FROM payment WHERE state = 'approved' AND confirmed IS NULL")
    booked = {e["receipt"]: e["amount"] for e in simulator.journal() if e["event"] == "booked"}
    paid = dict(table(db, "SELECT p.receipt_no, s.amount FROM parking_session s JOIN payment p ON s.payment_id = p.id "
                          "WHERE s.kind = 'paid' AND p.state = 'approved'"))
    assert booked == paid, f"booked at the terminal {booked}, paid sessions {paid}"


def pay_and_kill_once_the_terminal_has_it(config: Path, tmp_path: Path, simulator: Simulator) -> None:
    """Start a payment journey and SIGKILL the station as soon as the terminal has received its Authorization."""
    (tmp_path / "pay.scn").write_text(PAY)
    started = len(simulator.journal())
    process = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--headless", "--config", str(config),
                                "--scenario", str(tmp_path / "pay.scn")], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(e["event"] == "started" for e in simulator.journal()[started:]), 20,
                 "the terminal to receive the Authorization")
    finally:
        process.kill()
        process.wait(10)


def next_parker_pays(config: Path, tmp_path: Path) -> None:
    """Another parker's whole journey on the recovered station: paid and confirmed."""
    (tmp_path / "next.scn").write_text(PAY.replace("B-CR4SH", "B-NEXT1"))
    result = run_kiosk("run", "--headless", "--config", str(config), "--scenario", str(tmp_path / "next.scn"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The card terminal did not answer" not in result.stderr


@pytest.mark.slow
def test_kill_right_after_the_authorization_then_a_restart_killed_on_the_line_books_nothing(station,
                                                                                           tmp_path: Path) -> None:
    """Issue 12's reproduction: the terminal outlives two dead stations; its payment is never booked."""
    configure, simulator, db = station
    config = configure(5)
    simulator.script(Behaviour(pin_delay_s=2))
    pay_and_kill_once_the_terminal_has_it(config, tmp_path, simulator)
    heard = simulator.bytes_in
    restart = Station(config)
    wait_for(lambda: simulator.bytes_in > heard, 20, "the restarted station to answer on the line")
    restart.proc.kill()
    restart.proc.wait(10)
    station_process = Station(config)
    try:
        wait_for(lambda: ended(simulator) is not None, 30, "the terminal to end the payment")
    finally:
        station_process.stop()
    assert ended(simulator) in ("aborted", "reversed", "auto-reversed")
    assert table(db, "SELECT plate, state FROM payment") == [("B-CR4SH", "reversed")]
    assert table(db, "SELECT count(*) FROM parking_session") == [(0,)]
    next_parker_pays(config, tmp_path)
    check_invariants(db, simulator)
    assert [e["event"] for e in simulator.journal()][-2:] == ["authorized", "booked"]


@pytest.mark.slow
def test_terminal_still_waiting_for_a_card_refuses_registration_and_is_aborted(station, tmp_path: Path) -> None:
    """A PT still master of a dead station's payment, quietly waiting for a card, answers registration 84 83 00."""
    configure, simulator, db = station
    config = configure(30)
    simulator.script(Behaviour(kind="wait-card"))
    pay_and_kill_once_the_terminal_has_it(config, tmp_path, simulator)
    station_process = Station(config)
    try:
        wait_for(lambda: ended(simulator) == "aborted", 30, "the station to abort the orphaned payment")
        wait_for(lambda: any("registered at the card terminal" in line for line in station_process.log), 20,
                 "the registration after the abort")
    finally:
        station_process.stop()
    log = "".join(station_process.log)
    assert "registration refused by the terminal" in log and "card terminal unreachable" not in log
    assert table(db, "SELECT state FROM payment") == [("reversed",)]
    next_parker_pays(config, tmp_path)
    check_invariants(db, simulator)


@pytest.mark.slow
def test_crash_before_commit_refuses_the_payment_when_the_terminal_asks_again(station, tmp_path: Path) -> None:
    configure, simulator, db = station
    config = configure(30)
    crash_at("payment.approved", config, tmp_path)
    station_process = Station(config)
    try:
        wait_for(lambda: ended(simulator) is not None, 20, "the terminal to end the payment")
    finally:
        station_process.stop()
    assert ended(simulator) == "reversed", "the restarted station refused it (84 66 00)"
    assert table(db, "SELECT state FROM payment") == [("reversed",)]
    assert table(db, "SELECT count(*) FROM parking_session") == [(0,)]
    check_invariants(db, simulator)


@pytest.mark.slow
def test_crash_after_commit_books_the_payment_when_the_terminal_asks_again(station, tmp_path: Path) -> None:
    configure, simulator, db = station
    config = configure(30)
    crash_at("payment.committed", config, tmp_path)
    assert ended(simulator) is None, "the terminal still waits for the vending answer"
    station_process = Station(config)
    try:
        wait_for(lambda: table(db, "SELECT confirmed IS NOT NULL FROM payment") == [(1,)], 20,
                 "the station to confirm the committed payment")
    finally:
        station_process.stop()
    assert ended(simulator) == "booked"
    assert table(db, "SELECT state FROM payment") == [("approved",)]
    assert table(db, "SELECT kind FROM parking_session") == [("paid",)]
    check_invariants(db, simulator)


@pytest.mark.slow
def test_crash_after_commit_and_restart_too_late_keeps_parking_as_courtesy(station, tmp_path: Path) -> None:
    configure, simulator, db = station
    config = configure(5)
    crash_at("payment.committed", config, tmp_path)
    wait_for(lambda: ended(simulator) == "auto-reversed", 20, "the terminal's auto-reversal")
    station_process = Station(config)
    try:
        wait_for(lambda: table(db, "SELECT state FROM payment") == [("reversed",)], 30,
                 "the station to reconcile the reversed payment")
    finally:
        station_process.stop()
    (kind, amount, reason), = table(db, "SELECT kind, amount, reason FROM parking_session")
    assert (kind, amount) == ("courtesy", 0) and "already reversed" in reason
    check_invariants(db, simulator)


@pytest.mark.slow
def test_crash_after_confirmation_leaves_nothing_to_do(station, tmp_path: Path) -> None:
    configure, simulator, db = station
    config = configure(30)
    crash_at("payment.confirmed", config, tmp_path)
    wait_for(lambda: ended(simulator) == "booked", 10, "the terminal to book the payment")
    station_process = Station(config)
    try:
        wait_for(lambda: simulator.journal()[-1]["event"] == "booked", 5, "a quiet restart")
    finally:
        station_process.stop()
    assert table(db, "SELECT state, confirmed IS NOT NULL FROM payment") == [("approved", 1)]
    check_invariants(db, simulator)
