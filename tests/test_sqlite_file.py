"""kiosk/sqlite_file.py: a program's own versioned SQLite file (the console's history, the alert bridge's database)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge.store import Store, StoreUnusable
from kiosk.sqlite_file import FileRefused, open_versioned

APP = 0x54455354  # "TEST"
SCHEMA = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"


def opened(path: Path, version: int = 1, upgrades: dict | None = None) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    open_versioned(db, application_id=APP, version=version, schema=SCHEMA, upgrades=upgrades or {}, synchronous="FULL")
    return db


def shape(path: Path) -> tuple[int, int, list[str]]:
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(items)")]
        return db.execute("PRAGMA application_id").fetchone()[0], db.execute("PRAGMA user_version").fetchone()[0], columns


def test_an_empty_file_gets_the_schema_and_an_older_one_its_upgrades_once(tmp_path: Path) -> None:
    path = tmp_path / "own.db"
    opened(path).close()
    assert shape(path) == (APP, 1, ["id", "name"])
    upgrades = {1: lambda db: db.execute("ALTER TABLE items ADD COLUMN note TEXT")}
    opened(path, 2, upgrades).close()
    opened(path, 2, upgrades).close()  # at its version: nothing runs again
    assert shape(path) == (APP, 2, ["id", "name", "note"])


def test_a_failing_upgrade_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "own.db"
    opened(path).close()

    def broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE items ADD COLUMN note TEXT")
        raise RuntimeError("a bug in the upgrade")

    with pytest.raises(RuntimeError, match="a bug"):
        opened(path, 2, {1: broken})
    assert shape(path) == (APP, 1, ["id", "name"])


@pytest.mark.parametrize(("prepare", "why"), [
    ("CREATE TABLE parking (id INTEGER)", "another program's database"),
    (f"PRAGMA application_id = {APP}; PRAGMA user_version = 7", "written by a newer version (schema 7, this one knows 1)"),
    (f"PRAGMA application_id = {APP}; CREATE TABLE items (id INTEGER)", "tables without a schema version"),
])
def test_files_it_cannot_use_are_refused_and_left_alone(tmp_path: Path, prepare: str, why: str) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.executescript(prepare)
    before = path.read_bytes()
    with pytest.raises(FileRefused, match=why.replace("(", r"\(").replace(")", r"\)")):
        opened(path)
    assert path.read_bytes() == before


def test_the_alert_bridge_refuses_another_programs_file_and_a_newer_bridges(tmp_path: Path) -> None:
    foreign, newer = tmp_path / "foreign.db", tmp_path / "newer.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE parking (id INTEGER)")
    Store(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    for path, why in ((foreign, "another program's database"), (newer, "newer version")):
        with pytest.raises(StoreUnusable, match=why):
            Store(path)
