"""Kills at random moments of the switch, the trial, the commit and the rollback: afterwards one release is current,
complete, and starts; the database is whole and lost nothing."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import wait_for
from release_fakes import boots, installed_root, payments_in, station_database

from kiosk.releases import guard
from kiosk.releases.layout import CURRENT, STABLE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20
PAYMENTS = 20_000  # a database of about a megabyte, so that its copy takes a while


def test_a_kill_anywhere_in_the_switch_leaves_one_complete_release_that_boots(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    database = station_database(tmp_path / "kiosk.db", 8, PAYMENTS)
    seed = int(os.environ.get("KIOSK_KILL_SEED", "1701"))
    chance = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    seen = set()
    for kill in range(KILLS):
        worker = subprocess.Popen([sys.executable, str(ROOT / "tests" / "switch_worker.py"), str(releases.root),
                                   str(database), str(seed + kill)], env=env, stderr=subprocess.PIPE)
        # alive and past its imports (it has written the record at least once), then killed at a random moment
        wait_for(lambda: releases.record_file.exists() or worker.poll() is not None, 20, "the worker to start")
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        try:
            worker.wait(timeout=chance.uniform(0.05, 0.6))
        except subprocess.TimeoutExpired:
            worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert worker.returncode == -signal.SIGKILL, f"kill {kill}: the worker ended on its own"
        guard.started(releases, datetime.now(UTC))  # systemd's next start
        current = releases.target(CURRENT)
        assert current in ("1.0", "2.0"), f"kill {kill}: current names no complete release"
        assert releases.target(STABLE) in ("1.0", "2.0")
        assert boots(releases) == f"kiosk {current}"
        record = releases.record()
        assert record.trial is None or record.trial.version == current, f"kill {kill}: a trial of another release"
        assert current in releases.installed()
        for copy in (database, *database.parent.glob("kiosk.db.rolled-back-*[0-9Z]")):
            with sqlite3.connect(copy) as db:
                assert db.execute("PRAGMA quick_check").fetchone() == ("ok",), f"kill {kill}: {copy.name} damaged"
        assert payments_in(database) >= PAYMENTS, f"kill {kill}: payments lost"
        seen.add((current, record.trial is not None))
    assert len(seen) >= 3, f"the kills landed in too few states: {seen}"
