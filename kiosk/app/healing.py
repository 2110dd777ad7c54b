"""Storage that heals itself: the database opened at start, and tried again with back-off while it is unusable."""
from __future__ import annotations

import logging
import os
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from kiosk.app.faults import FaultBoard
from kiosk.domain.records import FaultRecord
from kiosk.ports import REASONS, StorageError, Store, Uplink
from kiosk.storage.store import FULL_BELOW_BYTES, disk_is_full
from kiosk.storage.store import Store as Database

log = logging.getLogger(__name__)

FIRST_RETRY_S = 1
MAX_RETRY_S = 60
HEALS_WHILE_OPEN = ("full", "unwritable", "io")  # a corrupt file needs a technician (and a restart)
ONLY_IF_CHANGED = ("corrupt", "too_new")  # the station never changes such a file: it is checked again once it changed


class Station(Protocol):
    """What the healer needs from the loop (kiosk.app.loop.Loop)."""

    store: Store

    @property
    def uplink(self) -> Uplink | None:
        """The MQTT side, if the station has one."""

    def record_unstored(self, store: Store, now: datetime) -> None:
        """Write the payments settled and the fault changes made while the database failed (StorageError)."""

    def request_restart(self) -> None:
        """Stop, to be started again, once no parker is being served."""

    def idle(self) -> bool:
        """No parker is in the middle of something."""


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes when a technician repairs or replaces a file: inode, size, modification time."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class StorageHealer:
    """Tries an unusable database again, 1 s after the storage fault and then twice as long each time, up to 60 s.

    Runs on the loop's thread when its deadline is due; each try is short (a free-space
    check, then the writes of what was kept in memory, or an open). With the database open
    (a write failed: ``full``, ``unwritable``, ``io``), a try records every fault kept in
    memory and clears the storage fault: the station is back in service. Without one (it
    was unusable at start), a try opens it, records what was kept in memory, closes it and
    asks for a restart once no parker is being served, so that every start-up step runs with
    the database (docs/storage.md).
    """

    def __init__(self, station: Station, faults: FaultBoard, path: Path, station_id: str) -> None:
        self._station = station
        self._faults = faults
        self._path = Path(path)
        self._station_id = station_id
        self._delay = FIRST_RETRY_S
        self._due: datetime | None = None
        self._failed_file: tuple[int, int, int] | None = None  # the file as it last failed a check

    def deadline(self) -> datetime | None:
        """When the next try is due; None while the storage works (or only a technician can help)."""
        return self._due

    def fault_changed(self, fault: FaultRecord, active: bool, stored: bool, now: datetime) -> None:
        """A fault board listener: a storage fault was raised, so schedule a try, unless one is scheduled already."""
        if fault.component != "storage" or not active:
            return
        if fault.code in ONLY_IF_CHANGED:
            self._failed_file = _identity(self._path)
        if fault.code in REASONS and self._due is None:
            self._due = now + timedelta(seconds=self._delay)

    def on_due(self, now: datetime) -> None:
        """One try; on failure the storage fault follows the new reason and the next try waits twice as long."""
        self._due = None
        station = self._station
        fault = self._faults.get("storage")
        if fault is None or fault.code not in REASONS:
            self._delay = FIRST_RETRY_S
            return
        if station.store.usable and fault.code not in HEALS_WHILE_OPEN:
            log.error("storage %s while running: the file needs a technician, then a restart", fault.code)
            return
        if not station.store.usable and not station.idle():
            self._due = now + timedelta(seconds=self._delay)  # opening it leads to a restart: not during a journey
            return
        identity = _identity(self._path)
        if not station.store.usable and fault.code in ONLY_IF_CHANGED and identity == self._failed_file:
            self._again(now)  # the file that failed its check is unchanged: checking it again would only cost time
            return
        try:
            if disk_is_full(self._path):
                raise StorageError("full", self._path, f"less than {FULL_BELOW_BYTES // 1024} KiB free")
            if station.store.usable:
                self._recover(station.store, now)
            else:
                self._reopen(now)
        except StorageError as exc:
            if exc.reason in ONLY_IF_CHANGED:
                self._failed_file = identity
            log.warning("storage still unusable: %s", exc)
            self._faults.raise_fault("storage", exc.reason, now, str(exc))
            self._again(now)
        else:
            self._delay = FIRST_RETRY_S

    def _again(self, now: datetime) -> None:
        self._delay = min(self._delay * 2, MAX_RETRY_S)
        self._due = now + timedelta(seconds=self._delay)
        log.info("next storage try in %d s", self._delay)

    def _record(self, store: Store, now: datetime) -> None:
        """Write what was kept in memory while the database failed: the link's numbers, replies, notice, faults."""
        memory = self._station.uplink
        if memory is not None:
            memory.persist_unstored(store, now)
        self._station.record_unstored(store, now)

    def _recover(self, store: Store, now: datetime) -> None:
        self._record(store, now)
        self._faults.clear_fault("storage", now, must_store=True)
        memory = self._station.uplink
        if memory is not None:
            memory.storage_healed(now)
        log.warning("database %s usable again: storage fault cleared", self._path)

    def _reopen(self, now: datetime) -> None:
        store = Database.open(self._path, self._station_id, now)
        try:
            self._record(store, now)
        finally:
            with suppress(StorageError):
                store.close()
        log.warning("database %s usable again: restarting to start with it", self._path)
        self._station.request_restart()
