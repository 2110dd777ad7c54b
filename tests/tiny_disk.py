"""A real, tiny file system (tmpfs) for storage tests: filled to the last byte, out of inodes, emptied again."""
from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest


class TinyDisk:
    """A real file system of a few MiB (tmpfs) that a test fills to the last byte and empties again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.database = root / "kiosk.db"
        self._filler = root / "filler"

    def fill(self, leave: int = 0) -> None:
        """Take every free byte but ``leave``: without any, SQLite has no room for a page, its WAL or its WAL index."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (1 << 16, 1 << 12, 1):
                with suppress(OSError):  # ENOSPC
                    while True:
                        os.write(fd, b"\0" * chunk)
            os.ftruncate(fd, os.fstat(fd).st_size - leave)
        finally:
            os.close(fd)
        fs = os.statvfs(self.root)
        assert leave <= fs.f_bavail * fs.f_frsize < leave + fs.f_frsize

    def use_up_inodes(self) -> None:
        """Create empty files until the file system has no inode left (bytes are still free)."""
        for number in range(1_000_000):
            try:
                (self.root / f"inode-{number}").touch()
            except OSError:
                return

    def make_room(self) -> None:
        """A technician deletes what filled the disk."""
        self._filler.unlink()


@contextmanager
def tiny_disk(folder: Path, options: str = "size=4m") -> Iterator[TinyDisk]:
    """Mount a tmpfs with ``options`` at ``folder`` for the test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir(parents=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                                 text=True, check=False)
    except FileNotFoundError:
        pytest.skip("no mount program here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield TinyDisk(folder)
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)  # still busy: detach it now, free it later
            raise AssertionError(f"a file on {folder} was still open after the test")


def empty_wal(database: Path) -> None:
    """Checkpoint the WAL into the database and truncate it: the next commit must grow the WAL file."""
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # not busy
    finally:
        conn.close()
