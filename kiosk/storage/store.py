"""SQLite storage: opening and migrating the database, durable counters, faults, help and the outbox."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import traceback
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import peewee as pw

from kiosk.domain.faults import Severity
from kiosk.domain.records import FaultRecord, OutboxRow
from kiosk.ports import StorageError
from kiosk.storage.schema import (
    MIGRATIONS, MODELS, Counter, Fault, Feedback, MetaRow, Outbox, ParkingSession, Retained,
    _stamp, _unstamp, _utc,
)
from kiosk.storage.help import HelpStore
from kiosk.storage.retained import LinkStore
from kiosk.storage.payments import PaymentStore
from kiosk.storage.rows import _choice, _int, _json, _record, _text, _ts, fault_state

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
FULL_BELOW_BYTES = 1 << 20  # less free space than this on the database's file system counts as a full disk
SERIES_KEY = "series"
REPLACED_KEY = "replaced"
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SEVERITIES = tuple(Severity)
_MARK_CHUNK = 500  # ids per UPDATE ... IN (...), well under SQLite's variable limit
_SQLITE_REASONS = {
    sqlite3.SQLITE_CORRUPT: "corrupt", sqlite3.SQLITE_NOTADB: "corrupt", sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_CANTOPEN: "unwritable", sqlite3.SQLITE_READONLY: "unwritable",
    sqlite3.SQLITE_PERM: "unwritable", sqlite3.SQLITE_AUTH: "unwritable",
    sqlite3.SQLITE_IOERR: "io", sqlite3.SQLITE_BUSY: "io", sqlite3.SQLITE_LOCKED: "io",
    sqlite3.SQLITE_NOMEM: "io", sqlite3.SQLITE_PROTOCOL: "io", sqlite3.SQLITE_NOLFS: "io",
}
_NO_ERRNO = (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN)  # may hide ENOSPC: see disk_is_full
_OS_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.ENOTDIR)
M = TypeVar("M", bound=pw.Model)
_TABLES: dict[str, type[pw.Model]] = {model._meta.table_name: model for model in MODELS}


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


def _fault_record(component: str, code: str, severity: str, message: str, parker_impact: str,
                  since: datetime) -> FaultRecord:
    """A validated fault about to be stored."""
    for name, value in (("component", component), ("code", code), ("message", message),
                        ("parker_impact", parker_impact)):
        _text(name, value)
    _choice("severity", severity, SEVERITIES)
    return FaultRecord(component, code, severity, message, parker_impact, _utc(since, "since"))


def _release(exc: BaseException | None) -> None:
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


def _classify(exc: BaseException, path: Path) -> str | None:
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


class Store(PaymentStore, LinkStore, HelpStore):
    """The station's SQLite database, owned by one thread (the loop); see docs/storage.md."""

    def __init__(self, db: pw.SqliteDatabase, path: Path, station_id: str) -> None:
        """Wrap a not yet connected database; use ``Store.open``."""
        self._db = db
        self._path = path
        self._station_id = station_id
        self._boot = 0
        self._outbox_writes = 0
        self._version = 0  # the schema version of the file, as far as this open has migrated it
        self._series = ""
        self._replaced_at: datetime | None = None

    @classmethod
    def open(cls, path: Path, station_id: str, now: datetime) -> Store:
        """Open (create, check, migrate) the database and count one boot.

        A new database starts ``seq`` at the Unix time in milliseconds and gets a random
        ``series``; one made in a file that existed but held no database (an empty file, as
        fsck can leave one) also records ``replaced_at`` (docs/storage.md). Raises
        StorageError with reason corrupt, unwritable, full, too_new or io. A file that fails
        the checks is never deleted or rewritten; only an empty file this call created itself
        is removed again when it fails, so that it is not taken for a lost database later.
        """
        _utc(now, "now")
        _text("station_id", station_id)
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(_classify(exc, path) or "io", path, str(exc)) from exc
        existed = path.exists()
        pragmas = [("busy_timeout", BUSY_TIMEOUT_MS), ("foreign_keys", "ON"), ("synchronous", "FULL")]
        db = pw.SqliteDatabase(str(path), pragmas=pragmas, timeout=BUSY_TIMEOUT_MS / 1000, autoconnect=False)
        store = cls(db, path, station_id)
        try:
            with store._guard():
                store._version = version = store._inspect()
                db.connect()
                store._enable_wal()
                store._migrate(version)
                with store._write():
                    store._start_series(now, version, existed)
                    store._boot = store._bump_boot(now)
                    MetaRow.replace(key="last_boot", value=_stamp(now)).execute(db)
                store._series = store._meta(SERIES_KEY) or ""
                replaced = store._meta(REPLACED_KEY)
                store._replaced_at = None if replaced is None else _unstamp(replaced)
        except BaseException as exc:
            db.close()
            if not existed and store._version == 0:
                with suppress(OSError):  # nothing was ever committed to it: leave no empty file behind
                    path.unlink(missing_ok=True)
            if isinstance(exc, StorageError):
                log.error("cannot open database: %s", exc)
            raise
        if version == 0 and existed:
            log.warning("database %s was a file without a database (lost data?): made anew", path)
        log.info("database %s open for station %s, boot %d, series %s", path, station_id, store._boot, store._series)
        return store

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL). Safe to call twice."""
        with self._guard():
            self._db.close()

    def __enter__(self) -> Store:
        """Use as a context manager that closes the store."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the store."""
        self.close()

    @property
    def boot(self) -> int:
        """The boot number later events carry: this open's, then the newest from ``next_boot`` or ``adopt_boot``."""
        return self._boot

    @property
    def series(self) -> str:
        """The random id of this database's event series (every event carries it with its ``seq``)."""
        return self._series

    @property
    def replaced_at(self) -> datetime | None:
        """When this database was made in place of a file that held none (lost data); None if never."""
        return self._replaced_at

    @property
    def station_id(self) -> str:
        """The station id given to ``open``."""
        return self._station_id

    def _inspect(self) -> int:
        """Check integrity and return the schema version, on a read-only connection.

        Read-only, so that a file that fails is not even checkpointed into when closed.
        """
        if not self._path.exists():
            return 0
        if not self._path.is_file():
            raise StorageError("unwritable", self._path, "not a regular file")
        uri = self._path.absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            if rows != [("ok",)]:
                detail = "; ".join(str(row[0]) for row in rows[:5])
                raise StorageError("corrupt", self._path, f"integrity_check: {detail}")
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "meta" not in names:
                if {name for name in names if not name.startswith("sqlite_")}:
                    raise StorageError("corrupt", self._path, "tables present but no kiosk schema")
                return 0
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
        if row is None or not row[0].isdigit():
            raise StorageError("corrupt", self._path, f"bad schema_version {row and row[0]!r}")
        version = int(row[0])
        if version > len(MIGRATIONS):
            detail = f"schema version {version}, this firmware knows up to {len(MIGRATIONS)}"
            raise StorageError("too_new", self._path, detail)
        return version

    def _enable_wal(self) -> None:
        mode = self._db.execute_sql("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError("io", self._path, f"cannot use WAL journal mode, got {mode!r}")

    def _migrate(self, version: int) -> None:
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._write():
                migration(self._db)
                MetaRow.replace(key="schema_version", value=str(number)).execute(self._db)
            self._version = number
            log.info("schema migrated to version %d by %s", number, migration.__name__)

    def _start_series(self, now: datetime, version: int, existed: bool) -> None:
        """A random series id if there is none yet, and ``seq`` from the clock while no event was ever numbered.

        So the events of a new database go on above those of any database before it. A new
        database in a file that ``existed`` (and held none) is recorded as ``replaced``.
        """
        if version == 0 and existed:
            MetaRow.replace(key=REPLACED_KEY, value=_stamp(now)).execute(self._db)
        if Counter.select(Counter.value).where(Counter.name == "seq").scalar(self._db) == 0:
            floor = (_utc(now, "now") - _UNIX_EPOCH) // timedelta(milliseconds=1)
            Counter.update(value=floor).where(Counter.name == "seq").execute(self._db)
        if self._meta(SERIES_KEY) is None:  # a new database, or one from a firmware before series
            MetaRow.insert(key=SERIES_KEY, value=str(uuid.uuid4())).execute(self._db)

    # --- transactions, errors, counters, outbox rows ---------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn disk-level SQLite/OS errors into StorageError; let programming errors through."""
        try:
            yield
        except (pw.PeeweeException, sqlite3.Error, OSError) as exc:
            reason = _classify(exc, self._path)
            if reason is None:
                raise
            _release(exc)
            raise StorageError(reason, self._path, str(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction: all of the body is committed, or none of it."""
        with self._guard():
            self._db.execute_sql("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute_sql("COMMIT")
            except BaseException:
                self._rollback()
                raise

    @contextmanager
    def _synchronous(self, level: str) -> Iterator[None]:
        """Run the body with ``PRAGMA synchronous = level``; ``FULL`` is restored afterwards, also on error."""
        with self._guard():
            self._db.execute_sql(f"PRAGMA synchronous = {level}")
        try:
            yield
        finally:
            with self._guard():
                self._db.execute_sql("PRAGMA synchronous = FULL")

    def _rollback(self) -> None:
        if not self._db.connection().in_transaction:
            return  # SQLite already rolled back by itself (it may, e.g. on SQLITE_FULL)
        try:
            self._db.execute_sql("ROLLBACK")
        except pw.PeeweeException:
            log.exception("rollback failed on %s", self._path)

    def _bump(self, name: str) -> int:
        Counter.update(value=Counter.value + 1).where(Counter.name == name).execute(self._db)
        return Counter.select(Counter.value).where(Counter.name == name).scalar(self._db)

    def _bump_boot(self, now: datetime) -> int:
        """One more boot: at least the last one + 1 and at least the Unix time in seconds (see docs/storage.md)."""
        floor = (_utc(now, "now") - _UNIX_EPOCH) // timedelta(seconds=1)
        Counter.update(value=pw.fn.MAX(Counter.value + 1, floor)).where(Counter.name == "boot").execute(self._db)
        return Counter.select(Counter.value).where(Counter.name == "boot").scalar(self._db)

    def _insert_outbox(self, topic: str, payload: str, qos: int, retain: bool, seq: int | None, now: datetime,
                       expiry_s: int | None = None) -> int:
        """Queue one message; a retained one also becomes the topic's row in ``retained``."""
        row = dict(seq=seq, topic=topic, payload=payload, qos=qos, retain=retain, created=now)
        if expiry_s is not None:
            row["expiry_s"] = expiry_s
        row_id = Outbox.insert(**row).execute(self._db)
        if retain:
            Retained.replace(topic=topic, payload=payload, updated=now).execute(self._db)
        self._outbox_writes += 1
        return row_id

    def _event(self, kind: str, data: dict[str, Any], now: datetime) -> None:
        seq = self._bump("seq")
        envelope = {"id": str(uuid.uuid4()), "series": self._series, "seq": seq, "boot": self._boot, "ts": _ts(now),
                    "kind": kind, "data": data}
        self._insert_outbox(f"event/{kind}", _json(envelope), 1, False, seq, now)

    def _one(self, model: type[M], key: str | int, what: str) -> M:
        row = model.select().where(model._meta.primary_key == key).first(self._db)
        if row is None:
            raise ValueError(f"unknown {what} {key!r}")
        return row

    # --- faults ------------------------------------------------------------------------------------------------

    def raise_fault(self, component: str, code: str, severity: str, message: str, parker_impact: str,
                    now: datetime) -> FaultRecord:
        """Make ``code`` the active fault of ``component``, replacing another code.

        Idempotent: raising the code that is already active writes nothing and returns it.
        """
        fault = _fault_record(component, code, severity, message, parker_impact, _utc(now, "now"))
        with self._write():
            current = self._active_fault(component)
            if current is not None and current.code == code:
                return _record(FaultRecord, current, since=current.raised_at)
            fault = self._raise(fault, current, now)
        log.warning("fault %s/%s (%s): %s", component, code, severity, message)
        return fault

    def clear_fault(self, component: str, now: datetime) -> bool:
        """Clear the active fault of ``component``; False (and nothing written) if there is none."""
        _utc(now, "now")
        with self._write():
            current = self._active_fault(component)
            if current is None:
                return False
            self._clear(current, now)
        log.info("fault %s/%s cleared", component, current.code)
        return True

    def sync_faults(self, active: Iterable[FaultRecord], cleared: Iterable[str], now: datetime) -> int:
        """Record the faults kept in memory while the database failed, in one transaction; returns how many changed.

        Each of ``active`` that is not active here with its code is raised with its own
        ``since``; the active fault of each component in ``cleared`` (and not in ``active``) is
        cleared now. Each change is reported as ``raise_fault`` and ``clear_fault`` report it.
        """
        wanted = {f.component: _fault_record(f.component, f.code, f.severity, f.message, f.parker_impact, f.since)
                  for f in active}
        _utc(now, "now")
        changed = 0
        with self._write():
            for component in set(cleared) - set(wanted):
                current = self._active_fault(component)
                if current is not None:
                    self._clear(current, now)
                    changed += 1
            for fault in wanted.values():
                current = self._active_fault(fault.component)
                if current is None or current.code != fault.code:
                    self._raise(fault, current, now)
                    changed += 1
        if changed:
            log.info("%d fault changes kept in memory recorded in the database", changed)
        return changed

    def raised_since(self, component: str, code: str, since: datetime) -> bool:
        """Whether the fault ``component``/``code`` was raised at or after ``since`` (active or cleared)."""
        query = Fault.select().where(Fault.component == component, Fault.code == code, Fault.raised_at >= since)
        with self._guard():
            return query.exists(self._db)

    def active_faults(self) -> list[FaultRecord]:
        """Every active fault, ordered by component."""
        query = Fault.select().where(Fault.cleared_at.is_null()).order_by(Fault.component)
        with self._guard():
            return [_record(FaultRecord, row, since=row.raised_at) for row in query.execute(self._db)]

    def _active_fault(self, component: str) -> Fault | None:
        return Fault.select().where(Fault.component == component, Fault.cleared_at.is_null()).first(self._db)

    def _raise(self, fault: FaultRecord, current: Fault | None, now: datetime) -> FaultRecord:
        """Inside a transaction: close ``current`` (another code) in the history, insert ``fault``, report it."""
        if current is not None:
            Fault.update(cleared_at=now).where(Fault.id == current.id).execute(self._db)
        fault_id = Fault.insert(component=fault.component, code=fault.code, severity=fault.severity,
                                message=fault.message, parker_impact=fault.parker_impact,
                                raised_at=fault.since).execute(self._db)
        row = self._one(Fault, fault_id, "fault")
        fault = _record(FaultRecord, row, since=row.raised_at)
        self._report_fault(fault, True, now)
        return fault

    def _clear(self, current: Fault, now: datetime) -> None:
        """Inside a transaction: clear the active fault ``current`` and report it."""
        Fault.update(cleared_at=now).where(Fault.id == current.id).execute(self._db)
        self._report_fault(_record(FaultRecord, current, since=current.raised_at), False, now)

    def _report_fault(self, fault: FaultRecord, active: bool, now: datetime) -> None:
        self._insert_outbox(f"fault/{fault.component}", fault_state(fault, active, now), 1, True, None, now)
        self._event("fault", {"component": fault.component, "code": fault.code, "severity": fault.severity,
                              "message": fault.message, "parker_impact": fault.parker_impact, "active": active}, now)

    # --- feedback and help -------------------------------------------------------------------------------------

    def save_feedback(self, rating: int, session_id: str | None, now: datetime) -> None:
        """Store a parker's rating (1..5), optionally for a session, and report it."""
        _int("rating", rating, 1, 5)
        _utc(now, "now")
        with self._write():
            if session_id is not None:
                self._one(ParkingSession, session_id, "session")
            Feedback.insert(rating=rating, session_id=session_id, created=now).execute(self._db)
            self._event("feedback", {"rating": rating, "session_id": session_id}, now)

    # --- outbox, for the MQTT publisher ------------------------------------------------------------------------

    def unsent_outbox(self, after_id: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows with id > ``after_id``, in id (= commit) order."""
        _int("after_id", after_id, 0)
        _int("limit", limit, 1)
        query = (Outbox.select(Outbox.id, Outbox.seq, Outbox.topic, Outbox.payload, Outbox.qos, Outbox.retain,
                               Outbox.expiry_s)
                 .where(Outbox.sent.is_null(), Outbox.id > after_id).order_by(Outbox.id).limit(limit).tuples())
        with self._guard():  # plain tuples: model instances cost a fifth of a backlog drain (docs/performance.md)
            return [OutboxRow(i, seq, topic, payload, qos, bool(retain), expiry)
                    for i, seq, topic, payload, qos, retain, expiry in query.execute(self._db)]

    @property
    def outbox_writes(self) -> int:
        """How many outbox rows this process has queued (rolled back ones included): unchanged means nothing new."""
        return self._outbox_writes

    def mark_sent(self, ids: Sequence[int], now: datetime) -> int:
        """Mark rows as delivered (PUBACK received); returns how many were newly marked.

        The hottest write of a backlog drain, so its transaction commits with ``synchronous =
        NORMAL`` (``FULL`` is restored afterwards, also on error): losing a "sent" mark on power
        failure only causes a duplicate delivery, which at-least-once delivery allows anyway,
        and the next ``FULL`` commit syncs the WAL, this transaction included.
        """
        _utc(now, "now")
        ids = list(ids)
        marked = 0
        with self._synchronous("NORMAL"), self._write():
            for start in range(0, len(ids), _MARK_CHUNK):
                chunk = ids[start:start + _MARK_CHUNK]
                query = Outbox.update(sent=now).where(Outbox.id.in_(chunk), Outbox.sent.is_null())
                marked += query.execute(self._db)
        return marked

    def outbox_depth(self) -> int:
        """How many rows wait to be sent."""
        with self._guard():
            return Outbox.select().where(Outbox.sent.is_null()).count(self._db)

    def prune_sent(self, older_than: datetime) -> int:
        """Delete rows sent before ``older_than``; returns how many. Unsent rows are never pruned."""
        _utc(older_than, "older_than")
        with self._write():
            return Outbox.delete().where(Outbox.sent < older_than).execute(self._db)

    # --- inspection --------------------------------------------------------------------------------------------

    def rows(self, table: str, **equals: Any) -> list[dict[str, Any]]:
        """Read-only: rows of ``table`` whose columns equal ``equals``, in insertion order.

        Datetimes come back as their stored text (ISO 8601 UTC, microseconds, ``Z``). An
        unknown table or column raises ValueError naming the valid ones.
        """
        model = _TABLES.get(table)
        if model is None:
            raise ValueError(f"unknown table {table!r}; valid: {', '.join(_TABLES)}")
        columns = model._meta.fields
        unknown = sorted(set(equals) - set(columns))
        if unknown:
            raise ValueError(f"unknown column {', '.join(unknown)} in {table}; valid: {', '.join(columns)}")
        query = model.select().order_by(pw.SQL("rowid")).dicts()
        if equals:
            query = query.where(*(columns[name] == value for name, value in equals.items()))
        with self._guard():
            result = list(query.execute(self._db))
        return [{k: _stamp(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in result]
