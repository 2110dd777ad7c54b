"""Switches between two releases for ever, as the station and the guard do, until killed (tests/test_update_kills.py).

Each round: the other release installed again if a rollback removed it, a job prepared
for it, the switch (database copied, trial recorded, link changed), the guard's start, then
either a clean commit or a failed stop and a rollback.
Run as ``python switch_worker.py ROOT DATABASE SEED``.
"""
from __future__ import annotations

import random
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from release_fakes import fake_release

from kiosk.releases import guard
from kiosk.releases.layout import CURRENT, Releases
from kiosk.releases.record import Job


def main() -> None:
    root, database, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    releases = Releases(root)
    chance = random.Random(seed)
    while True:
        now = datetime.now(UTC)
        guard.started(releases, now)  # what systemd does first after a kill
        record = releases.record()
        if record.trial is not None:
            guard.stopped(releases, "exit-code", "1", now)
            continue
        other = "2.0" if releases.target(CURRENT) == "1.0" else "1.0"
        if not releases.complete(other):  # a rollback removed it: installed again (a kill may land in the middle)
            fake_release(releases, other)
        record.job = Job(f"job-{chance.random()}", "/media/kiosk.tar", "ab" * 32, now.isoformat(), phase="prepared",
                         version=other)
        record.failed.clear()
        releases.save(record)
        guard.switch(releases, record, other, database, broker_required=False, now=now)
        guard.started(releases, now)
        if chance.random() < 0.5:  # the new release migrates the schema and takes a payment: a rollback restores
            with sqlite3.connect(database) as db:
                db.execute("UPDATE meta SET value = value + 1 WHERE key = 'schema_version'")
                db.execute("INSERT INTO payment DEFAULT VALUES")
        if chance.random() < 0.5:
            guard.commit(releases, releases.record(), "healthy", now)
        else:
            guard.stopped(releases, "watchdog", "6", now)


if __name__ == "__main__":
    main()
