"""The station's SQLite database: opening, checking and migrating it, and the Store facade over its parts."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import peewee as pw

from kiosk.domain.outage import Outage
from kiosk.domain.records import (
    CommandRecord,
    FaultRecord,
    HelpTicketRecord,
    OutboxRow,
    PaymentRecord,
    PaymentResultData,
    RepairNoteRecord,
    SessionRecord,
)
from kiosk.domain.voice import Call
from kiosk.storage.core import UNIX_EPOCH, StoreCore
from kiosk.storage.errors import FULL_BELOW_BYTES, REASONS, InvalidValue, StorageError, classify, disk_is_full
from kiosk.storage.faults import SEVERITIES, FaultLog
from kiosk.storage.help import HelpTickets
from kiosk.storage.outbox import OutboxQueue
from kiosk.storage.payments import PaymentBook
from kiosk.storage.retained import StationState
from kiosk.storage.rows import check_text
from kiosk.storage.schema import MIGRATIONS, MODELS, Counter, MetaRow, stamp, unstamp, utc

__all__ = ["BUSY_TIMEOUT_MS", "FULL_BELOW_BYTES", "REASONS", "REPLACED_KEY", "SERIES_KEY", "SEVERITIES",
           "StorageError", "Store", "disk_is_full"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
SERIES_KEY = "series"
REPLACED_KEY = "replaced"
_TABLES: dict[str, type[pw.Model]] = {model._meta.table_name: model for model in MODELS}


class Store:
    """The station's SQLite database, owned by one thread (the loop); see docs/storage.md.

    A facade: the work is done by its parts (payments, station state, help tickets, faults,
    outbox), which share one StoreCore (the database, its transactions and outbox rows).
    """

    def __init__(self, db: pw.SqliteDatabase, path: Path, station_id: str) -> None:
        """Wrap a not yet connected database; use ``Store.open``."""
        self._core = core = StoreCore(db, path, station_id)
        self._version = 0  # the schema version of the file, as far as this open has migrated it
        self._replaced_at: datetime | None = None
        self._payments = PaymentBook(core)
        self._state = StationState(core)
        self._help = HelpTickets(core)
        self._faults = FaultLog(core)
        self._outbox = OutboxQueue(core)

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
        utc(now, "now")
        check_text("station_id", station_id)
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(classify(exc, path) or "io", path, str(exc)) from exc
        existed = path.exists()
        pragmas = [("busy_timeout", BUSY_TIMEOUT_MS), ("foreign_keys", "ON"), ("synchronous", "FULL")]
        db = pw.SqliteDatabase(str(path), pragmas=pragmas, timeout=BUSY_TIMEOUT_MS / 1000, autoconnect=False)
        store = cls(db, path, station_id)
        core = store._core
        try:
            with core.guard():
                store._version = version = store._inspect()
                db.connect()
                store._enable_wal()
                store._migrate(version)
                with core.write():
                    store._start_series(now, version, existed)
                    core.boot = core.bump_boot(now)
                    MetaRow.replace(key="last_boot", value=stamp(now)).execute(db)
                core.series = core.meta(SERIES_KEY) or ""
                replaced = core.meta(REPLACED_KEY)
                store._replaced_at = None if replaced is None else unstamp(replaced)
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
        log.info("database %s open for station %s, boot %d, series %s", path, station_id, core.boot, core.series)
        return store

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL). Safe to call twice."""
        with self._core.guard():
            self._core.db.close()

    def __enter__(self) -> Store:
        """Use as a context manager that closes the store."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the store."""
        self.close()

    @property
    def core(self) -> StoreCore:
        """The core the parts share (database, transactions, outbox rows): for tests and tools below this API."""
        return self._core

    @property
    def usable(self) -> bool:
        """Always: this store has its database open (kiosk.storage.unavailable is the stand-in without one)."""
        return True

    @property
    def boot(self) -> int:
        """The boot number later events carry: this open's, then the newest from ``next_boot`` or ``adopt_boot``."""
        return self._core.boot

    @property
    def series(self) -> str:
        """The random id of this database's event series (every event carries it with its ``seq``)."""
        return self._core.series

    @property
    def replaced_at(self) -> datetime | None:
        """When this database was made in place of a file that held none (lost data); None if never."""
        return self._replaced_at

    @property
    def station_id(self) -> str:
        """The station id given to ``open``."""
        return self._core.station_id

    @property
    def outbox_writes(self) -> int:
        """How many outbox rows this process has queued (rolled back ones included): unchanged means nothing new."""
        return self._core.outbox_writes

    def _inspect(self) -> int:
        """Check integrity and return the schema version, on a read-only connection.

        Read-only, so that a file that fails is not even checkpointed into when closed.
        """
        path = self._core.path
        if not path.exists():
            return 0
        if not path.is_file():
            raise StorageError("unwritable", path, "not a regular file")
        uri = path.absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            if rows != [("ok",)]:
                detail = "; ".join(str(row[0]) for row in rows[:5])
                raise StorageError("corrupt", path, f"integrity_check: {detail}")
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "meta" not in names:
                if {name for name in names if not name.startswith("sqlite_")}:
                    raise StorageError("corrupt", path, "tables present but no kiosk schema")
                return 0
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
        if row is None or not row[0].isdigit():
            raise StorageError("corrupt", path, f"bad schema_version {row and row[0]!r}")
        version = int(row[0])
        if version > len(MIGRATIONS):
            detail = f"schema version {version}, this firmware knows up to {len(MIGRATIONS)}"
            raise StorageError("too_new", path, detail)
        return version

    def _enable_wal(self) -> None:
        mode = self._core.db.execute_sql("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError("io", self._core.path, f"cannot use WAL journal mode, got {mode!r}")

    def _migrate(self, version: int) -> None:
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._core.write():
                migration(self._core.db)
                MetaRow.replace(key="schema_version", value=str(number)).execute(self._core.db)
            self._version = number
            log.info("schema migrated to version %d by %s", number, migration.__name__)

    def _start_series(self, now: datetime, version: int, existed: bool) -> None:
        """A random series id if there is none yet, and ``seq`` from the clock while no event was ever numbered.

        So the events of a new database go on above those of any database before it. A new
        database in a file that ``existed`` (and held none) is recorded as ``replaced``.
        """
        if version == 0 and existed:
            MetaRow.replace(key=REPLACED_KEY, value=stamp(now)).execute(self._core.db)
        if Counter.select(Counter.value).where(Counter.name == "seq").scalar(self._core.db) == 0:
            floor = (utc(now, "now") - UNIX_EPOCH) // timedelta(milliseconds=1)
            Counter.update(value=floor).where(Counter.name == "seq").execute(self._core.db)
        if self._core.meta(SERIES_KEY) is None:  # a new database, or one from a firmware before series
            MetaRow.insert(key=SERIES_KEY, value=str(uuid.uuid4())).execute(self._core.db)

    # --- payments, sessions and feedback (PaymentBook) -------------------------------------------------------------

    def begin_payment(self, plate: str, zone: str, amount: int, currency: str, minutes: int, starts: datetime,
                      expires: datetime, extends_id: str | None, now: datetime, *, method: str) -> PaymentRecord:
        """Record a payment about to be asked of the payment method ``method`` (state pending, no event yet)."""
        return self._payments.begin_payment(plate, zone, amount, currency, minutes, starts, expires, extends_id, now,
                                            method=method)

    def commit_paid_session(self, payment_id: str, result: PaymentResultData, now: datetime) -> SessionRecord:
        """Approve a pending payment and create its session, with both events, in one transaction."""
        return self._payments.commit_paid_session(payment_id, result, now)

    def fail_payment(self, payment_id: str, state: str, result_code: int | None, now: datetime) -> PaymentRecord:
        """Mark a pending payment ``declined`` or ``reversed`` and report it."""
        return self._payments.fail_payment(payment_id, state, result_code, now)

    def grant_courtesy_session(self, plate: str, zone: str, minutes: int, starts: datetime, expires: datetime,
                               reason: str, now: datetime) -> SessionRecord:
        """Create a free session (amount 0, currency XXX, no payment) and report it."""
        return self._payments.grant_courtesy_session(plate, zone, minutes, starts, expires, reason, now)

    def active_session(self, plate: str, zone: str, now: datetime, *, look_alikes: bool = True) -> SessionRecord | None:
        """The session of ``plate`` (however spelled) in ``zone`` with the latest expiry after ``now``, if any."""
        return self._payments.active_session(plate, zone, now, look_alikes=look_alikes)

    def resolve_pending_payments(self, now: datetime) -> list[PaymentRecord]:
        """At start-up, settle every pending payment: reversed, or approved if a session for it exists."""
        return self._payments.resolve_pending_payments(now)

    def mark_confirmed(self, payment_id: str, now: datetime) -> PaymentRecord:
        """Record that the terminal received the positive vending answer for an approved payment."""
        return self._payments.mark_confirmed(payment_id, now)

    def unconfirmed_payments(self) -> list[PaymentRecord]:
        """Approved payments (their session is stored) whose vending answer their payment method may not have had."""
        return self._payments.unconfirmed_payments()

    def mark_unreconciled(self, payment_id: str, detail: str, now: datetime) -> PaymentRecord:
        """Record that an approved, unconfirmed payment could not be settled with its payment method, and why."""
        return self._payments.mark_unreconciled(payment_id, detail, now)

    def reverse_unconfirmed_payment(self, payment_id: str, reason: str, now: datetime) -> SessionRecord:
        """The terminal reversed an approved payment: mark it reversed and make its session a courtesy one."""
        return self._payments.reverse_unconfirmed_payment(payment_id, reason, now)

    def save_feedback(self, rating: int, session_id: str | None, ticket_id: str | None, now: datetime) -> None:
        """Store a parker's rating (1..5), of a session and of the parker's help call if they had them, and report it."""
        self._payments.save_feedback(rating, session_id, ticket_id, now)

    def pending_payments(self) -> list[PaymentRecord]:
        """Payments still waiting for the terminal's result, oldest first."""
        return self._payments.pending_payments()

    # --- the station's state: retained view, boot, remote config, notice, commands (StationState) ------------------

    def retained_messages(self) -> list[tuple[str, str]]:
        """(topic, payload) of every retained topic's current message, ordered by topic (for a rebirth)."""
        return self._state.retained_messages()

    def next_boot(self, now: datetime) -> int:
        """Count one more boot for a new MQTT connection, durably, and return it."""
        return self._state.next_boot(now)

    def adopt_boot(self, boot: int) -> None:
        """The link used ``boot`` while the database could not count: keep the counter at least there, durably."""
        self._state.adopt_boot(boot)

    def save_remote_config(self, desired: dict[str, Any], reported: dict[str, Any], now: datetime) -> None:
        """Store the applied remote config and queue the retained ``cfg/reported``, together."""
        self._state.save_remote_config(desired, reported, now)

    def report_config(self, reported: dict[str, Any], now: datetime) -> None:
        """Queue the retained ``cfg/reported`` only (a rejected desired config leaves the applied one)."""
        self._state.report_config(reported, now)

    def remote_config(self) -> dict[str, Any] | None:
        """The stored remote config; None if there is none or it is not a JSON object (logged as an error)."""
        return self._state.remote_config()

    def set_notice(self, text: str | None, now: datetime) -> None:
        """Set the operator's message shown to parkers; None clears it."""
        self._state.set_notice(text, now)

    def notice(self) -> str | None:
        """The operator's message shown to parkers, None if there is none."""
        return self._state.notice()

    def set_outage(self, outage: Outage | None, now: datetime) -> None:
        """Keep what the `mode` command said about parking meanwhile and the return to service; None forgets it."""
        self._state.set_outage(outage, now)

    def outage(self) -> Outage | None:
        """What the `mode` command said for this outage; None if nothing."""
        return self._state.outage()

    def begin_command(self, key: str, name: str, now: datetime) -> CommandRecord | None:
        """Remember a command about to run: None if ``key`` is new (stored as running)."""
        return self._state.begin_command(key, name, now)

    def finish_command(self, key: str, reply: str, now: datetime) -> None:
        """Store the reply (compact JSON text) of a running command and mark it done."""
        self._state.finish_command(key, reply, now)

    def prune_commands(self, older_than: datetime) -> int:
        """Forget commands created before ``older_than`` (running or done); returns how many."""
        return self._state.prune_commands(older_than)

    def record_terminal_report(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/terminal`` event, e.g. the end-of-day totals."""
        self._state.record_terminal_report(data, now)

    def record_service(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/service`` event: the service menu opened or closed, or an action taken in it."""
        self._state.record_service(data, now)

    def record_update(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/update`` event: a step of a remote update."""
        self._state.record_update(data, now)

    # --- help tickets (HelpTickets) --------------------------------------------------------------------------------

    def open_help_ticket(self, context: dict[str, Any], now: datetime) -> str:
        """Open a ticket in state ``waiting``: help/state, help/request (for the agents' queue) and the event."""
        return self._help.open_help_ticket(context, now)

    def record_help(self, ticket_id: str, action: str, now: datetime, *, agent: str = "", text: str = "",
                    outcome: str = "", choice: str = "", presses: int = 0, call: Call | None = None) -> bool:
        """Commit one step of an open ticket with its outbox rows; False if nothing was written."""
        return self._help.record_help(ticket_id, action, now, agent=agent, text=text, outcome=outcome, choice=choice,
                                      presses=presses, call=call)

    def open_help_ticket_record(self, now: datetime) -> HelpTicketRecord | None:
        """The ticket that was open when the station stopped, to show it again; older open ones are closed."""
        return self._help.open_help_ticket_record(now)

    # --- faults (FaultLog) -----------------------------------------------------------------------------------------

    def raise_fault(self, component: str, code: str, severity: str, message: str, parker_impact: str,
                    now: datetime) -> FaultRecord:
        """Make ``code`` the active fault of ``component``, replacing another code."""
        return self._faults.raise_fault(component, code, severity, message, parker_impact, now)

    def clear_fault(self, component: str, now: datetime) -> bool:
        """Clear the active fault of ``component``; False (and nothing written) if there is none."""
        return self._faults.clear_fault(component, now)

    def sync_faults(self, active: Iterable[FaultRecord], cleared: Iterable[str], now: datetime) -> int:
        """Record the faults kept in memory while the database failed, in one transaction; returns how many changed."""
        return self._faults.sync_faults(active, cleared, now)

    def raised_since(self, component: str, code: str, since: datetime) -> bool:
        """Whether the fault ``component``/``code`` was raised at or after ``since`` (active or cleared)."""
        return self._faults.raised_since(component, code, since)

    def active_faults(self) -> list[FaultRecord]:
        """Every active fault, ordered by component."""
        return self._faults.active_faults()

    def note_repair(self, component: str, note: str, by: str, now: datetime) -> RepairNoteRecord:
        """Store a crew member's "fixed" note on ``component`` (with the fault it notes) and its ``event/repair``."""
        return self._faults.note_repair(component, note, by, now)

    # --- the outbox, for the MQTT publisher (OutboxQueue) ----------------------------------------------------------

    def unsent_outbox(self, after_id: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows with id > ``after_id``, in id (= commit) order."""
        return self._outbox.unsent_outbox(after_id, limit)

    def mark_sent(self, ids: Sequence[int], now: datetime) -> int:
        """Mark rows as delivered (PUBACK received); returns how many were newly marked."""
        return self._outbox.mark_sent(ids, now)

    def outbox_depth(self) -> int:
        """How many rows wait to be sent."""
        return self._outbox.outbox_depth()

    def prune_sent(self, older_than: datetime) -> int:
        """Delete rows sent before ``older_than``; returns how many. Unsent rows are never pruned."""
        return self._outbox.prune_sent(older_than)

    # --- inspection --------------------------------------------------------------------------------------------

    def rows(self, table: str, **equals: Any) -> list[dict[str, Any]]:
        """Read-only: rows of ``table`` whose columns equal ``equals``, in insertion order.

        Datetimes come back as their stored text (ISO 8601 UTC, microseconds, ``Z``). An
        unknown table or column raises InvalidValue naming the valid ones.
        """
        model = _TABLES.get(table)
        if model is None:
            raise InvalidValue(f"unknown table {table!r}; valid: {', '.join(_TABLES)}")
        columns = model._meta.fields
        unknown = sorted(set(equals) - set(columns))
        if unknown:
            raise InvalidValue(f"unknown column {', '.join(unknown)} in {table}; valid: {', '.join(columns)}")
        query = model.select().order_by(pw.SQL("rowid")).dicts()
        if equals:
            query = query.where(*(columns[name] == value for name, value in equals.items()))
        with self._core.guard():
            result = list(query.execute(self._core.db))
        return [{k: stamp(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in result]
