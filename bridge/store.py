"""The bridge's SQLite state (stdlib sqlite3, WAL): stations, problems, alerts with their times, and the sends."""
from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from bridge.model import Alert, AlertState, Channel, Delivery, Problem, SendKind, Severity, Target
from bridge.problems import Case, Outcome, StationInfo
from kiosk.sqlite_file import FileRefused, Upgrade, connect_versioned, transaction

__all__ = ["SCHEMA_VERSION", "PendingSend", "Store", "StoreUnusable", "Unstorable"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # PRAGMA user_version of the file this code writes (2: sends keep the alert as queued)
APPLICATION_ID = 0x4B414C54  # PRAGMA application_id: "KALT", the kiosk alert bridge
BUSY_TIMEOUT_S = 5.0  # the sender's connection and the bridge's share the file

SCHEMA = """
CREATE TABLE stations (station TEXT PRIMARY KEY, zone TEXT, boot INTEGER) WITHOUT ROWID;
CREATE TABLE cases (station TEXT NOT NULL, subject TEXT NOT NULL, problem TEXT NOT NULL, active INTEGER NOT NULL,
    code TEXT, severity TEXT NOT NULL, message TEXT NOT NULL, parker_impact TEXT, since TEXT NOT NULL,
    raised TEXT NOT NULL, raises TEXT NOT NULL, cleared TEXT, alert_id TEXT,
    PRIMARY KEY (station, subject)) WITHOUT ROWID;
CREATE TABLE alerts (id TEXT PRIMARY KEY, problem TEXT NOT NULL, title TEXT NOT NULL, stations TEXT NOT NULL,
    zones TEXT NOT NULL, component TEXT, code TEXT, severity TEXT NOT NULL, message TEXT NOT NULL,
    parker_impact TEXT, since TEXT NOT NULL, opened TEXT NOT NULL, grp TEXT NOT NULL, escalate_at TEXT,
    state TEXT NOT NULL, level INTEGER NOT NULL, acked_by TEXT, acked_at TEXT, ack_note TEXT,
    changes INTEGER NOT NULL, notified TEXT NOT NULL, closed TEXT,
    ack_s REAL, repair_s REAL) WITHOUT ROWID;
CREATE INDEX alerts_closed ON alerts (closed);
CREATE TABLE sends (id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, level INTEGER NOT NULL, kind TEXT NOT NULL,
    channel TEXT NOT NULL, target TEXT NOT NULL, queued TEXT NOT NULL, next_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, sent_at TEXT, error TEXT, snapshot TEXT,
    UNIQUE (alert_id, level, kind, channel, target));
CREATE INDEX sends_due ON sends (next_at) WHERE sent_at IS NULL;
"""
ALERT_COLUMNS = ("id, problem, title, stations, zones, component, code, severity, message, parker_impact, since, "
                 "opened, grp, escalate_at, state, level, acked_by, acked_at, ack_note, changes, notified, closed, "
                 "ack_s, repair_s")
# UPGRADES[n] takes a file from version n to n + 1 (append only; a fresh file gets SCHEMA at once).
UPGRADES: dict[int, Upgrade] = {1: lambda db: db.execute("ALTER TABLE sends ADD COLUMN snapshot TEXT")}
SKIPPED = "skipped: "  # the start of the error of a send that was not made on purpose (sent_at set)
CASE_COLUMNS = ("station, subject, problem, active, code, severity, message, parker_impact, since, raised, raises, "
                "cleared, alert_id")


class StoreUnusable(Exception):
    """The database cannot be used: another program's file, a newer bridge's, damaged, or the disk failed."""


class Unstorable(ValueError):
    """A value SQLite cannot keep (a number out of its range, a wrong type): a bug with one step's data, not the disk's."""


DATA_ERRORS = (sqlite3.InterfaceError, sqlite3.DataError, sqlite3.IntegrityError, sqlite3.ProgrammingError,
               OverflowError)


@dataclass(frozen=True)
class PendingSend:
    """A queued message not yet delivered, with its ``attempts`` so far, when it was ``queued``, and ``snapshot``:
    the alert as it was when the message was queued (None for a send queued by a bridge before schema 2)."""

    id: int
    delivery: Delivery
    attempts: int
    queued: datetime
    snapshot: Alert | None


class Store:
    """One connection to the bridge's database, for one thread at a time: each thread opens its own (WAL shares)."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the database; StoreUnusable says why it cannot be used."""
        self.path = path
        try:  # shared: the service opens it, its thread works with it; FULL: a send recorded as done stays done
            self._db = connect_versioned(str(path), application_id=APPLICATION_ID, version=SCHEMA_VERSION,
                                         schema=SCHEMA, upgrades=UPGRADES, synchronous="FULL",
                                         busy_timeout_s=BUSY_TIMEOUT_S, shared=True)
        except (FileRefused, OSError, sqlite3.Error) as exc:
            raise StoreUnusable(f"alert database {path}: cannot open: {exc}") from exc

    # ---- the engine's state ----

    def load(self) -> tuple[list[Case], list[Alert], list[StationInfo]]:
        """The problems, the open alerts and the stations, as the last run left them."""
        with self._guard("load"):
            cases = [_case(row) for row in self._db.execute(f"SELECT {CASE_COLUMNS} FROM cases")]
            alerts = [_alert(row) for row in
                      self._db.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE closed IS NULL ORDER BY opened")]
            stations = [StationInfo(*row) for row in self._db.execute("SELECT station, zone, boot FROM stations")]
        return cases, alerts, stations

    def apply(self, outcome: Outcome, now: datetime) -> None:
        """Keep what one step of the engine changed, and queue its sends, in one transaction."""
        if not outcome:
            return
        with self._guard("save"), transaction(self._db, "BEGIN IMMEDIATE"):
            for info in outcome.stations.values():
                self._db.execute("INSERT OR REPLACE INTO stations VALUES (?, ?, ?)", (info.station, info.zone, info.boot))
            for key, case in outcome.cases.items():
                if case is None:
                    self._db.execute("DELETE FROM cases WHERE station = ? AND subject = ?", key)
                else:
                    self._db.execute(f"INSERT OR REPLACE INTO cases ({CASE_COLUMNS}) VALUES ({_marks(13)})",
                                     _case_row(case))
            for alert in outcome.alerts.values():
                self._db.execute(f"INSERT OR REPLACE INTO alerts ({ALERT_COLUMNS}) VALUES ({_marks(24)})",
                                 _alert_row(alert))
            snapshots = {alert_id: json.dumps(_alert_row(alert)) for alert_id, alert in outcome.alerts.items()}
            for delivery in outcome.deliveries:
                self._db.execute("INSERT OR IGNORE INTO sends (alert_id, level, kind, channel, target, queued, next_at, "
                                 "snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (delivery.alert_id, delivery.level, delivery.kind.value, delivery.target.channel.value,
                                  delivery.target.address, _text(now), _text(now), snapshots.get(delivery.alert_id)))

    def alert(self, alert_id: str) -> Alert | None:
        """One alert, open or closed."""
        with self._guard("read an alert"):
            row = self._db.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return _alert(row) if row else None

    # ---- sends ----

    def due_sends(self, now: datetime, channel: Channel, address: str | None = None,
                  limit: int = 100) -> list[PendingSend]:
        """Queued messages of one channel (and address, if given) whose time has come, oldest first."""
        with self._guard("read the sends"):
            rows = self._db.execute("SELECT id, alert_id, level, kind, channel, target, attempts, queued, snapshot "
                                    "FROM sends WHERE sent_at IS NULL AND next_at <= ? AND channel = ? "
                                    "AND (? IS NULL OR target = ?) ORDER BY id LIMIT ?",
                                    (_text(now), channel.value, address, address, limit)).fetchall()
        return [PendingSend(row[0], Delivery(row[1], row[2], SendKind(row[3]), Target(Channel(row[4]), row[5])),
                            row[6], _must(row[7]), _alert(tuple(json.loads(row[8]))) if row[8] else None)
                for row in rows]

    def skip(self, send_id: int, why: str, now: datetime) -> None:
        """A message that will not be sent (``why`` is kept as its error, after SKIPPED)."""
        with self._guard("mark a send"):
            self._db.execute("UPDATE sends SET sent_at = ?, error = ? WHERE id = ?",
                             (_text(now), (SKIPPED + why)[:500], send_id))

    def reached(self, alert_id: str, target: Target) -> bool:
        """Whether an alert's first message or an escalation of it was delivered to ``target``."""
        with self._guard("read the sends"):
            row = self._db.execute("SELECT 1 FROM sends WHERE alert_id = ? AND channel = ? AND target = ? "
                                   "AND kind != ? AND sent_at IS NOT NULL AND error IS NULL LIMIT 1",
                                   (alert_id, target.channel.value, target.address, SendKind.RESOLVED.value)).fetchone()
        return row is not None

    def unsent_webhooks(self) -> set[str]:
        """The webhook names that queued messages are waiting for."""
        with self._guard("read the sends"):
            rows = self._db.execute("SELECT DISTINCT target FROM sends WHERE sent_at IS NULL AND channel = ?",
                                    (Channel.WEBHOOK.value,)).fetchall()
        return {row[0] for row in rows}

    def skip_webhook(self, name: str, why: str, now: datetime) -> int:
        """Skip every queued message to webhook ``name``; how many there were."""
        with self._guard("mark the sends"):
            cursor = self._db.execute("UPDATE sends SET sent_at = ?, error = ? WHERE sent_at IS NULL AND channel = ? "
                                      "AND target = ?", (_text(now), (SKIPPED + why)[:500], Channel.WEBHOOK.value, name))
        return cursor.rowcount

    def sent(self, send_id: int, now: datetime) -> None:
        """A message was delivered."""
        with self._guard("mark a send"):
            self._db.execute("UPDATE sends SET sent_at = ?, attempts = attempts + 1, error = NULL WHERE id = ?",
                             (_text(now), send_id))

    def failed(self, send_id: int, error: str, retry_at: datetime) -> None:
        """A message could not be delivered: try again at ``retry_at``."""
        with self._guard("mark a send"):
            self._db.execute("UPDATE sends SET attempts = attempts + 1, error = ?, next_at = ? WHERE id = ?",
                             (error[:500], _text(retry_at), send_id))

    def sends(self, alert_id: str) -> list[tuple[Delivery, datetime | None]]:
        """Every message of an alert, in the order queued, with when it was delivered (None: not yet)."""
        with self._guard("read the sends"):
            rows = self._db.execute("SELECT alert_id, level, kind, channel, target, sent_at FROM sends "
                                    "WHERE alert_id = ? ORDER BY id", (alert_id,)).fetchall()
        return [(Delivery(row[0], row[1], SendKind(row[2]), Target(Channel(row[3]), row[4])), _time(row[5]))
                for row in rows]

    # ---- lifecycle ----

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except DATA_ERRORS as exc:
            raise Unstorable(f"alert database {self.path}: cannot {what}: {type(exc).__name__}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreUnusable(f"alert database {self.path}: cannot {what}: {exc}") from exc


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="microseconds") if moment is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _must(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _case_row(case: Case) -> tuple[Any, ...]:
    return (case.station, case.subject, case.problem.value, int(case.active), case.code, case.severity.value,
            case.message, case.parker_impact, _text(case.since), _text(case.raised),
            json.dumps([_text(moment) for moment in case.raises]), _text(case.cleared), case.alert_id)


def _case(row: tuple[Any, ...]) -> Case:
    return Case(row[0], row[1], Problem(row[2]), bool(row[3]), row[4], Severity(row[5]), row[6], row[7],
                _must(row[8]), _must(row[9]), [_must(text) for text in json.loads(row[10])], _time(row[11]), row[12])


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    ack_s = (alert.acked_at - alert.opened).total_seconds() if alert.acked_at else None
    repair_s = (alert.repaired - alert.since).total_seconds() if alert.repaired else None  # by the stations' clocks
    return (alert.id, alert.problem.value, alert.title, json.dumps(alert.stations), json.dumps(alert.zones),
            alert.component, alert.code, alert.severity.value, alert.message, alert.parker_impact, _text(alert.since),
            _text(alert.opened), alert.group, _text(alert.escalate_at), alert.state.value, alert.level,
            alert.acked_by, _text(alert.acked_at), alert.ack_note, alert.changes,
            json.dumps([[target.channel.value, target.address] for target in alert.notified]), _text(alert.closed),
            ack_s, repair_s)


def _alert(row: tuple[Any, ...]) -> Alert:
    return Alert(id=row[0], problem=Problem(row[1]), title=row[2], stations=json.loads(row[3]), zones=json.loads(row[4]),
                 component=row[5], code=row[6], severity=Severity(row[7]), message=row[8], parker_impact=row[9],
                 since=_must(row[10]), opened=_must(row[11]), group=row[12], escalate_at=_time(row[13]),
                 state=AlertState(row[14]), level=row[15], acked_by=row[16], acked_at=_time(row[17]),
                 ack_note=row[18], changes=row[19],
                 notified=[Target(Channel(channel), address) for channel, address in json.loads(row[20])],
                 closed=_time(row[21]),
                 repaired=_must(row[10]) + timedelta(seconds=row[23]) if row[23] is not None else None)
