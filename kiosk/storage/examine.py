"""The doctor's look at a database file: integrity, schema version and unsent messages, on a read-only connection."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from kiosk.storage.schema import MIGRATIONS

__all__ = ["examine"]

EXAMINE_TIMEOUT_S = 5.0


def examine(path: Path) -> tuple[bool, str]:
    """(sound, what was found) for the database at ``path``, e.g. ``(True, "integrity ok, schema 9, 3 unsent")``.

    Read-only and beside a running station (SQLite's WAL lets a reader in while it writes);
    ``PRAGMA quick_check`` reads every page but skips the index cross-checks of the full check
    the station makes when it opens the file.
    """
    if not path.is_file():
        return False, f"no database at {path}"
    try:
        conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, timeout=EXAMINE_TIMEOUT_S)
    except sqlite3.Error as exc:
        return False, f"cannot open {path}: {exc}"
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            return False, "integrity check failed: " + "; ".join(str(row[0]) for row in rows[:3])
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        unsent = conn.execute("SELECT count(*) FROM outbox WHERE sent IS NULL").fetchone()[0]
    except sqlite3.Error as exc:
        return False, f"cannot read {path}: {exc}"
    finally:
        conn.close()
    known = len(MIGRATIONS)
    if version is None or not str(version[0]).isdigit() or int(version[0]) > known:
        return False, f"schema version {version and version[0]!r} is not one this firmware knows (up to {known})"
    return True, f"integrity ok, schema {version[0]}, {unsent} message(s) for staff unsent"
