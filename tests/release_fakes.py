"""Releases for tests of the switch, the guard and the updater: release folders whose `kiosk` prints its version."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

from kiosk.releases.layout import CURRENT, MARKER, STABLE, Releases


def fake_release(releases: Releases, version: str, *, complete: bool = True) -> Path:
    """Release ``version`` under ``releases``: its .venv/bin/kiosk prints ``kiosk VERSION``; the marker if complete."""
    folder = releases.release(version)
    command = folder / ".venv" / "bin" / "kiosk"
    command.parent.mkdir(parents=True, exist_ok=True)
    command.write_text(f"#!/bin/sh\necho kiosk {version}\n")
    command.chmod(0o755)
    if complete:
        (folder / MARKER).write_text(json.dumps({"version": version}))
    return folder


def installed_root(root: Path, *versions: str) -> Releases:
    """A root with these releases complete, the first one current and stable."""
    releases = Releases(root)
    root.mkdir(parents=True, exist_ok=True)
    for version in versions:
        fake_release(releases, version)
    releases.point(CURRENT, versions[0])
    releases.point(STABLE, versions[0])
    return releases


def station_database(path: Path, schema: int, payments: int = 0) -> Path:
    """A database with the station's meta table at ``schema`` and ``payments`` rows in a payment table."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(schema),))
        db.execute("CREATE TABLE IF NOT EXISTS payment (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("INSERT OR IGNORE INTO counter VALUES ('seq', 1796526000000)")
        db.executemany("INSERT INTO payment DEFAULT VALUES", [()] * payments)
    return path


def payments_in(path: Path) -> int:
    """How many payment rows the database at ``path`` holds."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM payment").fetchone()[0])


def boots(releases: Releases) -> str:
    """What the current release's kiosk prints (the release systemd would start), or raises if none would start."""
    command = releases.root / os.readlink(releases.root / CURRENT) / ".venv" / "bin" / "kiosk"
    return subprocess.run([str(command)], capture_output=True, text=True, check=True).stdout.strip()
