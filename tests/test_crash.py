"""Power loss in the middle of a payment: never a booked payment without a stored session."""
import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from conftest import run_kiosk

PAY = """
start 2026-01-05T10:00:00+01:00
tap start
type B-CR4SH
tap continue
duration 60
tap pay
expect screen paid
"""
RESTART = """
start 2026-01-05T10:05:00+01:00
expect screen welcome
"""


def journal(db: Path) -> list[dict[str, str]]:
    path = db.with_suffix(".terminal.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def table(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
@pytest.mark.parametrize(("point", "db_state", "has_session", "terminal_end"), [
    ("payment.approved", "reversed", False, "auto-reversed"),
    ("payment.committed", "approved", True, "auto-reversed"),
    ("payment.confirmed", "approved", True, "booked"),
])
def test_kill_during_payment(tmp_path: Path, station_config: Path, point: str, db_state: str,
                             has_session: bool, terminal_end: str) -> None:
    db = tmp_path / "kiosk.db"
    (tmp_path / "pay.scn").write_text(PAY)
    (tmp_path / "restart.scn").write_text(RESTART)
    env = {**os.environ, "KIOSK_CRASHPOINT": point}
    crashed = run_kiosk("run", "--simulate", "--headless", "--config", str(station_config),
                        "--scenario", str(tmp_path / "pay.scn"), env=env)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert f"crash point {point} reached" in crashed.stderr

    restarted = run_kiosk("run", "--simulate", "--headless", "--config", str(station_config),
                          "--scenario", str(tmp_path / "restart.scn"))
    assert restarted.returncode == 0, restarted.stderr

    (payment_id, state), = table(db, "SELECT id, state FROM payment")
    sessions = table(db, f"SELECT payment_id FROM parking_session WHERE payment_id = '{payment_id}'")
    assert state == db_state
    assert bool(sessions) == has_session
    events = [e["event"] for e in journal(db) if e["payment"] == payment_id]
    assert events == ["started", "authorized", terminal_end]
    # The invariant, whatever the crash point: money kept by the terminal implies a stored session.
    if "booked" in events:
        assert sessions
    assert not table(db, "SELECT id FROM payment WHERE state = 'pending'")
