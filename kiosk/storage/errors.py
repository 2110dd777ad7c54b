"""The store's errors: which reason a failing disk or SQLite error is, and the refusals it answers bad requests with."""

from __future__ import annotations

import errno
import os
import sqlite3
import traceback
from pathlib import Path

from kiosk.domain.refusals import InvalidValue, NotOwed, Refused, TicketNotOpen, UnknownRecord, WrongState
from kiosk.ports import REASONS, StorageError

__all__ = [
    "FULL_BELOW_BYTES", "REASONS", "InvalidValue", "NotOwed", "Refused", "StorageError", "TicketNotOpen",
    "UnknownRecord", "WrongState", "classify", "disk_is_full", "release",
]

FULL_BELOW_BYTES = 1 << 20  # less free space than this on the database's file system counts as a full disk
_SQLITE_REASONS = {
    sqlite3.SQLITE_CORRUPT: "corrupt", sqlite3.SQLITE_NOTADB: "corrupt", sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_CANTOPEN: "unwritable", sqlite3.SQLITE_READONLY: "unwritable",
    sqlite3.SQLITE_PERM: "unwritable", sqlite3.SQLITE_AUTH: "unwritable",
    sqlite3.SQLITE_IOERR: "io", sqlite3.SQLITE_BUSY: "io", sqlite3.SQLITE_LOCKED: "io",
    sqlite3.SQLITE_NOMEM: "io", sqlite3.SQLITE_PROTOCOL: "io", sqlite3.SQLITE_NOLFS: "io",
}
_NO_ERRNO = (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN)  # may hide ENOSPC: see disk_is_full
_OS_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.ENOTDIR)


def disk_is_full(path: Path) -> bool:
    """The file system of ``path``'s folder has less than FULL_BELOW_BYTES free, or no free inode.

    SQLite reports ENOSPC as SQLITE_FULL only for its own writes to the database and the WAL;
    running out while it creates or extends the WAL index (``-shm``) or creates the WAL comes
    back as SQLITE_IOERR or SQLITE_CANTOPEN, without the errno. False when nothing is known.
    """
    try:
        fs = os.statvfs(Path(path).parent)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < FULL_BELOW_BYTES or (fs.f_files > 0 and fs.f_favail == 0)


def classify(exc: BaseException, path: Path) -> str | None:
    """Map a sqlite3/peewee/OS error on ``path`` to a StorageError reason; None means a bug, not the disk."""
    err = getattr(exc, "orig", exc)
    if isinstance(err, sqlite3.Error):
        code = getattr(err, "sqlite_errorcode", None)
        if code is None:
            return None
        return "full" if code & 0xFF in _NO_ERRNO and disk_is_full(path) else _SQLITE_REASONS.get(code & 0xFF)
    if isinstance(err, OSError):
        if err.errno == errno.ENOSPC:
            return "full"
        return "unwritable" if err.errno in _OS_UNWRITABLE else "io"
    return None


def release(exc: BaseException | None) -> None:
    """Drop the locals of the finished frames behind ``exc``, so that keeping the error keeps no file open.

    The statement that failed stays alive with the cursor in its frame, and SQLite closes a
    connection with a live statement only once that statement is gone: whoever keeps the
    StorageError (a log handler that keeps records, a test) would keep the database open
    after ``close``, and with it the space of a file that was deleted meanwhile.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
