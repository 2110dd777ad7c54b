"""A SQLite file that belongs to one program: known by its application id and schema version, created or upgraded whole.

Standard library only: the console's history and the alert bridge's database use it (the station's own
database has its peewee migrations, kiosk/storage/schema.py).
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

__all__ = ["FileRefused", "Upgrade", "connect_versioned", "file_shape", "open_versioned", "transaction"]

Upgrade = Callable[[sqlite3.Connection], object]  # what it returns is not used


class FileRefused(Exception):
    """The file is another program's, or written by a newer version, or has tables but no version: not used."""


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """A transaction on an autocommit connection: committed at the end, rolled back on any exception."""
    db.execute(begin)
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have ended the transaction itself
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def file_shape(db: sqlite3.Connection, application_id: int, known: int) -> int:
    """The file's schema version (0: an empty file); FileRefused if it is another program's, a newer version's, or
    has tables without a version."""
    application = db.execute("PRAGMA application_id").fetchone()[0]
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = int(db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    if (tables or version) and application != application_id:
        raise FileRefused("another program's database")
    if version > known:
        raise FileRefused(f"written by a newer version (schema {version}, this one knows {known})")
    if tables and not version:
        raise FileRefused("tables without a schema version")
    return version


def open_versioned(db: sqlite3.Connection, *, application_id: int, version: int, schema: str,
                   upgrades: Mapping[int, Upgrade], synchronous: str) -> None:
    """Check what the file is before changing anything in it; create ``schema`` in an empty one, upgrade an older one.

    ``db`` is in autocommit mode (isolation_level None). ``upgrades[n]`` takes a file from version n to
    n + 1. The file is looked at again inside the write transaction: another process may have created or
    upgraded it meanwhile. FileRefused says why a file is not used; sqlite3.Error passes through, and a
    failed creation or upgrade leaves the file as it was.
    """
    found = file_shape(db, application_id, version)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    if found == version:
        return
    with transaction(db, "BEGIN IMMEDIATE"):
        found = file_shape(db, application_id, version)
        if found == 0:
            for statement in schema.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA application_id = {application_id}")
            found = version
        for step in range(found, version):
            upgrades[step](db)
        db.execute(f"PRAGMA user_version = {version}")


def connect_versioned(path: str, *, application_id: int, version: int, schema: str, upgrades: Mapping[int, Upgrade],
                      synchronous: str, busy_timeout_s: float, shared: bool = False) -> sqlite3.Connection:
    """Connect to ``path`` (its folder is made; ":memory:" for no file) and open_versioned() it.

    ``shared``: the connection may be handed to another thread (used by one at a time). The connection
    is closed again when the file cannot be used: FileRefused, sqlite3.Error or OSError say why.
    """
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=not shared)
    try:
        open_versioned(db, application_id=application_id, version=version, schema=schema, upgrades=upgrades,
                       synchronous=synchronous)
    except BaseException:
        db.close()
        raise
    return db
