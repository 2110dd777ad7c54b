"""`kiosk terminal`: the simulator and the maintenance commands, run as a technician runs them, in subprocesses."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_kiosk, wait_for

from kiosk.domain.records import PaymentResultData
from kiosk.storage.store import Store

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class SimulatorProcess:
    """`kiosk terminal simulate` in the background, its link and journal in the test's folder."""

    def __init__(self, folder: Path, *options: str) -> None:
        self.link = folder / "pt"
        self.journal_path = folder / "pt.jsonl"
        self.log_path = folder / "simulator.log"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli", "terminal", "simulate", "--link", str(self.link),
                 "--journal", str(self.journal_path), *options],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.link.is_symlink() or self.proc.poll() is not None, START_TIMEOUT_S, "the link")
        assert self.proc.poll() is None, self.log()

    def log(self) -> str:
        """What the simulator printed so far."""
        return self.log_path.read_text()

    def journal(self) -> list[dict[str, Any]]:
        """The simulated terminal's journal entries."""
        return [json.loads(line) for line in self.journal_path.read_text().splitlines()]

    def events(self) -> list[str]:
        """The journal's event names, in order."""
        return [entry["event"] for entry in self.journal()]

    def stop(self) -> int:
        """SIGTERM, as systemd or Ctrl-C would stop it; its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(STOP_TIMEOUT_S)


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Callable[..., SimulatorProcess]]:
    """Start a simulator with the given options; whatever a test leaves running is killed afterwards."""
    started: list[SimulatorProcess] = []

    def start(*options: str) -> SimulatorProcess:
        started.append(SimulatorProcess(tmp_path, *options))
        return started[-1]

    yield start
    for simulator in started:
        if simulator.proc.poll() is None:
            simulator.proc.kill()
            simulator.proc.wait(STOP_TIMEOUT_S)


def terminal(*args: str) -> subprocess.CompletedProcess[str]:
    """`kiosk terminal ARGS...`; maintenance actions wait only 0.2 s for a quiet line (the simulator starts quiet)."""
    quiet = () if args[0] == "simulate" else ("--quiet-ms", "200")
    return run_kiosk("terminal", *args, *quiet, timeout=30)


def terminal_json(*args: str) -> tuple[int, dict[str, Any]]:
    """`kiosk terminal ARGS... --json`: exit code and the printed object."""
    result = terminal(*args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def shows_at_most_first_six_and_last_four(masked: str) -> bool:
    """True if no digit of the PAN is visible between its first six and its last four characters."""
    middle = masked[6:-4]
    return len(masked) > 10 and bool(middle) and not any(char.isdigit() for char in middle)


def test_status_of_a_ready_terminal_names_the_status_and_version(simulate) -> None:
    simulator = simulate()
    result = terminal("status", "--port", str(simulator.link))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["status: 00", "ready: True", "version: SIM 1.0"]
    assert simulator.stop() == 0, simulator.log()


def test_decline_approval_reversal_and_end_of_day_match_the_terminals_journal(simulate) -> None:
    simulator = simulate("--next", "decline 05")
    port = ("--port", str(simulator.link))

    code, declined = terminal_json("pay", "1.90", *port)
    assert code == 1
    assert declined["ok"] is False
    assert (declined["result"], declined["result_code"], declined["amount"]) == ("declined", "05", 190)

    code, paid = terminal_json("pay", "1.90", *port)
    assert code == 0, paid
    assert (paid["ok"], paid["result"], paid["result_code"], paid["amount"], paid["currency"]) == (
        True, "booked", "00", 190, "EUR")
    assert shows_at_most_first_six_and_last_four(paid["masked_pan"]), paid["masked_pan"]
    authorized = next(entry for entry in simulator.journal() if entry["event"] == "authorized")
    assert (paid["brand"], paid["masked_pan"], paid["auth_code"], paid["receipt_no"], paid["trace_no"]) == (
        authorized["brand"], authorized["pan"], authorized["auth_code"], authorized["receipt"], authorized["trace"])
    assert authorized["amount"] == 190

    code, reversal = terminal_json("reverse", str(int(paid["receipt_no"])), *port)
    assert code == 0, reversal
    assert (reversal["reversed"], reversal["result_code"], reversal["receipt_no"]) == (True, "00", paid["receipt_no"])
    code, again = terminal_json("reverse", str(int(paid["receipt_no"])), *port)
    assert code == 1
    assert (again["reversed"], again["result_code"]) == (False, "B4")

    code, kept = terminal_json("pay", "2.50", *port)
    assert code == 0, kept
    assert kept["receipt_no"] != paid["receipt_no"]

    code, day = terminal_json("end-of-day", *port)
    assert code == 0, day
    assert (day["count"], day["amount"]) == (1, 250), "the reversed 1.90 is not settled, the declined one never was"
    assert day["receipts"] == [kept["receipt_no"], kept["receipt_no"]]
    assert day["cards"] == [{"name": "Visa", "count": 1, "amount": 250}]
    code, next_day = terminal_json("end-of-day", *port)
    assert code == 0, next_day
    assert (next_day["count"], next_day["amount"]) == (0, 0), "settled payments are not settled twice"

    assert simulator.stop() == 0, simulator.log()
    assert not simulator.link.is_symlink() and not simulator.link.exists(), "the link is removed on exit"
    assert simulator.events() == ["started", "declined", "started", "authorized", "booked", "reversed",
                                  "started", "authorized", "booked", "end-of-day", "end-of-day"]
    journal = simulator.journal()
    assert (journal[1]["result_code"], journal[1]["amount"]) == (0x05, 190)
    assert (journal[5]["receipt"], journal[5]["by"]) == (paid["receipt_no"], "reversal")
    assert journal[8]["receipt"] == kept["receipt_no"]
    settled = journal[9]
    assert (settled["count"], settled["amount"], settled["receipt_from"], settled["receipt_to"]) == (
        1, 250, kept["receipt_no"], kept["receipt_no"])
    assert settled["totals"]["visa"] == {"count": 1, "amount": 250}
    assert (journal[10]["count"], journal[10]["amount"]) == (0, 0)


def test_scripted_status_51_makes_status_fail_and_say_51(simulate, tmp_path: Path) -> None:
    script = tmp_path / "pt.script"
    script.write_text("# the terminal lost its configuration\nstatus 51\n")
    simulator = simulate("--script", str(script))
    result = terminal("status", "--port", str(simulator.link))
    assert result.returncode == 1, result.stderr
    assert "status: 51" in result.stdout.splitlines()
    assert "ready: False" in result.stdout.splitlines()
    assert simulator.stop() == 0, simulator.log()


def test_amount_with_three_decimals_is_a_usage_error() -> None:
    result = terminal("pay", "1.999", "--port", "X")
    assert result.returncode == 2
    assert result.stderr.strip() == "kiosk terminal pay: '1.999' has more than 2 decimals for EUR"
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["pay", "inf"], "not an amount: 'inf'"),
    (["pay", "0"], "the amount must be more than 0"),
    (["pay", "-1.90"], "the amount must be more than 0"),
    (["pay", "10000000000.00"], "at most 999999999999 minor units"),
    (["reverse", "123456"], "a receipt number is 1 to 9999, got 123456"),
    (["reverse", "0"], "a receipt number is 1 to 9999, got 0"),
])
def test_impossible_amounts_and_receipts_are_usage_errors_before_the_port_is_opened(args: list[str],
                                                                                   message: str) -> None:
    result = terminal(*args, "--port", "/nonexistent")
    assert result.returncode == 2 and message in result.stderr and "/nonexistent" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("quiet", ["5", "60001"])
def test_a_quiet_time_out_of_range_is_a_usage_error(quiet: str) -> None:
    result = run_kiosk("terminal", "status", "--port", "/nonexistent", "--quiet-ms", quiet)
    assert result.returncode == 2 and f"--quiet-ms must be 100 to 60000, got {quiet}" in result.stderr


@pytest.mark.parametrize("action", [["status"], ["pay", "1.90"], ["reverse", "1"], ["end-of-day"]])
def test_a_missing_port_is_a_usage_error_naming_the_port(action: list[str]) -> None:
    result = terminal(*action, "--port", "/nonexistent")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("/nonexistent: ")
    assert "No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_behaviour_in_a_script_names_the_file_and_line(tmp_path: Path) -> None:
    script = tmp_path / "pt.script"
    script.write_text("# first a decline, then nonsense\n\ndecline 05\nfrobnicate\n")
    link = tmp_path / "pt"
    result = terminal("simulate", "--link", str(link), "--script", str(script))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{script}:4: "), result.stderr
    assert "'frobnicate'" in result.stderr
    assert not link.is_symlink() and not link.exists(), "no link is left to a terminal that never ran"


@pytest.mark.parametrize("action", [["pay", "1.90"], ["end-of-day"]])
def test_pay_and_end_of_day_wait_while_the_station_owes_the_terminal_a_payment(tmp_path: Path,
                                                                               action: list[str]) -> None:
    """Made without the station, they could give an owed payment's receipt number to another payment."""
    database = tmp_path / "kiosk.db"
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text(f'[storage]\ndatabase = "{database}"\n', encoding="utf-8")
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    with Store.open(database, "ST-1", start) as store:
        pending = store.begin_payment(
            "B-OW 1", "Z1", 200, "EUR", 60, start, start + timedelta(hours=1), None, start, method="card_terminal")
        store.commit_paid_session(pending.id, PaymentResultData(0, "VISA", None, "1", "0001", "000001"), start)
    refused = terminal(*action, "--port", "/nonexistent", "--config", str(config_file))
    assert refused.returncode == 2 and "owes the terminal 1 payment(s)" in refused.stderr, refused.stderr
    forced = terminal(*action, "--port", "/nonexistent", "--config", str(config_file), "--force")
    assert forced.returncode == 2 and forced.stderr.startswith("/nonexistent: "), "--force goes on to the port"
    with Store.open(database, "ST-1", start) as store:
        store.mark_confirmed(pending.id, start)
    settled = terminal(*action, "--port", "/nonexistent", "--config", str(config_file))
    assert settled.returncode == 2 and settled.stderr.startswith("/nonexistent: "), "nothing owed: goes on"
