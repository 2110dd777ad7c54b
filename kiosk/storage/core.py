"""The store's shared core: the database handle, its transactions, counters, and the outbox and event rows."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import peewee as pw

from kiosk.mqtt.contract import event_envelope, event_topic
from kiosk.storage.errors import StorageError, UnknownRecord, classify, release
from kiosk.storage.schema import Counter, MetaRow, Outbox, Retained, utc

__all__ = ["UNIX_EPOCH", "StoreCore"]

log = logging.getLogger("kiosk.storage.store")

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
M = TypeVar("M", bound=pw.Model)


class StoreCore:
    """What every part of the store shares: one database, its transactions, the boot and series, outbox rows.

    Owned by one thread (the loop), like the ``kiosk.storage.store.Store`` that puts the parts
    (payments, station state, help tickets, faults, outbox) behind one facade. Transactions
    are the callers': ``insert_outbox``, ``add_event``, ``bump`` and ``bump_boot`` run inside ``write``.
    """

    def __init__(self, db: pw.SqliteDatabase, path: Path, station_id: str) -> None:
        """Share ``db`` (the file ``path``) of station ``station_id``; boot and series are set when it is opened."""
        self.db = db
        self.path = path
        self.station_id = station_id
        self.boot = 0  # the boot number later events carry
        self.series = ""  # the random id of the database's event series
        self.outbox_writes = 0  # outbox rows queued by this process, rolled back ones included

    # --- transactions and errors ---------------------------------------------------------------------------

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn disk-level SQLite/OS errors into StorageError; let programming errors through."""
        try:
            yield
        except (pw.PeeweeException, sqlite3.Error, OSError) as exc:
            reason = classify(exc, self.path)
            if reason is None:
                raise
            release(exc)
            raise StorageError(reason, self.path, str(exc)) from exc

    @contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction: all of the body is committed, or none of it."""
        with self.guard():
            self.db.execute_sql("BEGIN IMMEDIATE")
            try:
                yield
                self.db.execute_sql("COMMIT")
            except BaseException:
                self._rollback()
                raise

    @contextmanager
    def synchronous(self, level: str) -> Iterator[None]:
        """Run the body with ``PRAGMA synchronous = level``; ``FULL`` is restored afterwards, also on error."""
        with self.guard():
            self.db.execute_sql(f"PRAGMA synchronous = {level}")
        try:
            yield
        finally:
            with self.guard():
                self.db.execute_sql("PRAGMA synchronous = FULL")

    def _rollback(self) -> None:
        if not self.db.connection().in_transaction:
            return  # SQLite already rolled back by itself (it may, e.g. on SQLITE_FULL)
        try:
            self.db.execute_sql("ROLLBACK")
        except pw.PeeweeException:
            log.exception("rollback failed on %s", self.path)

    # --- rows every part writes or reads (inside the caller's transaction) ----------------------------------

    def bump(self, name: str) -> int:
        """Count the durable counter ``name`` up by one and return it."""
        Counter.update(value=Counter.value + 1).where(Counter.name == name).execute(self.db)
        return int(Counter.select(Counter.value).where(Counter.name == name).scalar(self.db))

    def bump_boot(self, now: datetime) -> int:
        """One more boot: at least the last one + 1 and at least the Unix time in seconds (see docs/storage.md)."""
        floor = (utc(now, "now") - UNIX_EPOCH) // timedelta(seconds=1)
        Counter.update(value=pw.fn.MAX(Counter.value + 1, floor)).where(Counter.name == "boot").execute(self.db)
        return int(Counter.select(Counter.value).where(Counter.name == "boot").scalar(self.db))

    def meta(self, key: str) -> str | None:
        """The value of the meta row ``key``, None if there is none."""
        with self.guard():
            value: str | None = MetaRow.select(MetaRow.value).where(MetaRow.key == key).scalar(self.db)
            return value

    def insert_outbox(self, topic: str, payload: str, qos: int, retain: bool, seq: int | None, now: datetime,
                      expiry_s: int | None = None) -> int:
        """Queue one message; a retained one also becomes the topic's row in ``retained``."""
        row = dict(seq=seq, topic=topic, payload=payload, qos=qos, retain=retain, created=now)
        if expiry_s is not None:
            row["expiry_s"] = expiry_s
        row_id = int(Outbox.insert(**row).execute(self.db))
        if retain:
            Retained.replace(topic=topic, payload=payload, updated=now).execute(self.db)
        self.outbox_writes += 1
        return row_id

    def add_event(self, kind: str, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/{kind}`` with the next ``seq`` of the series."""
        seq = self.bump("seq")
        envelope = event_envelope(str(uuid.uuid4()), self.series, seq, self.boot, now, kind, data)
        self.insert_outbox(event_topic(kind), envelope, 1, False, seq, now)

    def one(self, model: type[M], key: str | int, what: str) -> M:
        """The row of ``model`` with primary key ``key``; UnknownRecord names it as ``what`` if there is none."""
        row: M | None = model.select().where(model._meta.primary_key == key).first(self.db)
        if row is None:
            raise UnknownRecord(f"unknown {what} {key!r}")
        return row
