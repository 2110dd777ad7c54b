"""The console's local SQLite history of help calls, CSAT ratings and fault periods, built from the stations' events."""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from console.history_export import write_tables
from console.history_messages import HISTORY_TOPICS, FaultSeen, HelpAction, HelpStep, Malformed, Rating, Record, parse
from console.metrics import (
    CallFigures,
    CallRecord,
    FaultChange,
    FaultPeriod,
    Grouping,
    HelpMetrics,
    RatingFigures,
    RepairStats,
    VoiceFigures,
    help_metrics,
    repair_stats,
    replay,
)
from console.summarised import MalformedWarnings
from kiosk.sqlite_file import FileRefused, connect_versioned, transaction

__all__ = [
    "DEFAULT_RETENTION",
    "HISTORY_TOPICS",
    "SCHEMA_VERSION",
    "History",
    "HistoryUnusable",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # PRAGMA user_version of the file this code writes
APPLICATION_ID = 0x4B484953  # PRAGMA application_id: "KHIS", a kiosk console history
DEFAULT_RETENTION = timedelta(days=400)
PRUNE_EVERY = timedelta(hours=1)
WARN_EVERY = timedelta(minutes=1)  # malformed messages are summarised in at most one warning per minute
BUSY_TIMEOUT_S = 1.0  # another console on the same file holds the write lock

SCHEMA = """
CREATE TABLE calls (
    station TEXT NOT NULL, ticket TEXT NOT NULL, began INTEGER NOT NULL,
    open_id TEXT, opened INTEGER, plate TEXT, screen TEXT, zone TEXT,
    accept_id TEXT, accepted INTEGER, accepted_by TEXT,
    close_id TEXT, closed INTEGER, closed_by TEXT, outcome TEXT, presses INTEGER, time_to_accept_s REAL,
    time_to_resolve_s REAL, voice_calls INTEGER, voice_answer_s REAL, voice_talk_s REAL, voice_outcome TEXT,
    PRIMARY KEY (station, ticket)) WITHOUT ROWID;
CREATE INDEX calls_closed ON calls (closed);
CREATE INDEX calls_began ON calls (began);
CREATE INDEX calls_station ON calls (station, began);
CREATE TABLE ratings (id TEXT PRIMARY KEY, station TEXT NOT NULL, at INTEGER NOT NULL, rating INTEGER NOT NULL,
    ticket TEXT) WITHOUT ROWID;
CREATE INDEX ratings_at ON ratings (at);
CREATE INDEX ratings_call ON ratings (station, ticket);
CREATE TABLE fault_changes (id INTEGER PRIMARY KEY, station TEXT NOT NULL, component TEXT NOT NULL,
    at INTEGER NOT NULL, source INTEGER NOT NULL, seq INTEGER, active INTEGER NOT NULL, code TEXT NOT NULL,
    severity TEXT NOT NULL, message TEXT NOT NULL, parker_impact TEXT NOT NULL,
    UNIQUE (station, component, at, source, active, code));
CREATE TABLE fault_periods (id INTEGER PRIMARY KEY, station TEXT NOT NULL, component TEXT NOT NULL,
    code TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL, parker_impact TEXT NOT NULL,
    opened INTEGER NOT NULL, closed INTEGER);
CREATE INDEX fault_periods_key ON fault_periods (station, component, opened);
CREATE INDEX fault_periods_opened ON fault_periods (opened);
CREATE INDEX fault_periods_station ON fault_periods (station, opened);
"""


def _upgrade_1_rating_ticket(db: sqlite3.Connection) -> None:
    """A rating names the parker's help call (kept even if a console of this branch's making added it already)."""
    if "ticket" not in [row[1] for row in db.execute("PRAGMA table_info(ratings)")]:
        db.execute("ALTER TABLE ratings ADD COLUMN ticket TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS ratings_call ON ratings (station, ticket)")


# UPGRADES[n] takes a file from schema n to n + 1 (append only; a fresh file gets SCHEMA at once).
UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {1: _upgrade_1_rating_ticket}
EVENT, RETAINED = 0, 1  # fault_changes.source
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
EARLIEST = -(2**63)  # a lower bound below every time kept

# A help step fills its own columns of the call (any order of arrival gives the same row); the step's event id is
# kept with them, so the same event again changes nothing (and counts as not recorded).
UPSERT_CALL = ("INSERT INTO calls (station, ticket, began, {columns}) VALUES (?, ?, ?, {marks}) "
               "ON CONFLICT (station, ticket) DO UPDATE SET began = min(began, excluded.began), {updates} "
               "WHERE {key} IS NOT excluded.{key}")
CALL_COLUMNS: dict[HelpAction, tuple[str, ...]] = {
    HelpAction.OPEN: ("open_id", "opened", "plate", "screen", "zone"),
    HelpAction.ACCEPT: ("accept_id", "accepted", "accepted_by"),
    HelpAction.CLOSE: ("close_id", "closed", "closed_by", "outcome", "presses", "time_to_accept_s", "time_to_resolve_s",
                       "voice_calls", "voice_answer_s", "voice_talk_s", "voice_outcome"),
}
CALL_SQL = {action: UPSERT_CALL.format(columns=", ".join(columns), marks=", ".join("?" * len(columns)),
                                       updates=", ".join(f"{c} = excluded.{c}" for c in columns), key=columns[0])
            for action, columns in CALL_COLUMNS.items()}
CALL_RECORD = ("SELECT station, ticket, opened, accepted, closed, coalesce(closed_by, accepted_by), outcome, presses, "
               "time_to_accept_s, time_to_resolve_s, plate, screen, zone, voice_calls, voice_answer_s, voice_talk_s, "
               "voice_outcome FROM calls")
PERIOD = "SELECT station, component, code, severity, message, parker_impact, opened, closed FROM fault_periods"
PRUNE = (
    "DELETE FROM calls WHERE began < :cutoff AND NOT EXISTS (SELECT 1 FROM ratings AS r WHERE r.station = "
    "calls.station AND r.ticket = calls.ticket AND r.at >= :cutoff)",  # a kept rating keeps its call's agent
    "DELETE FROM ratings WHERE at < :cutoff",
    "DELETE FROM fault_periods WHERE closed < :cutoff",
    "DELETE FROM fault_changes WHERE at < :cutoff AND NOT EXISTS (SELECT 1 FROM fault_periods AS p WHERE "
    "p.station = fault_changes.station AND p.component = fault_changes.component AND p.opened <= fault_changes.at)",
)


class HistoryUnusable(Exception):
    """The history file cannot be used: not a console history, too new, damaged, or the disk failed."""


class History:
    """The console's local SQLite history: help calls, CSAT ratings and fault periods, from the stations' events.

    Not thread-safe: use it from one thread (the console's UI thread). See docs/help-desk.md (History and metrics).
    """

    def __init__(self, path: str | Path, retention: timedelta = DEFAULT_RETENTION) -> None:
        """Open (or create) the history at ``path`` (":memory:" for none on disk); HistoryUnusable if it cannot be."""
        self.path = str(path)
        self.retention = retention
        self._pruned: datetime | None = None
        self._warnings = MalformedWarnings("history", WARN_EVERY)
        self._touched: dict[tuple[str, str], datetime] = {}
        self._store: dict[type, Callable[[Any], bool]] = {HelpStep: self._help, Rating: self._rating,
                                                          FaultSeen: self._fault}
        try:
            self._db = connect_versioned(self.path, application_id=APPLICATION_ID, version=SCHEMA_VERSION, schema=SCHEMA,
                                         upgrades=UPGRADES, synchronous="NORMAL", busy_timeout_s=BUSY_TIMEOUT_S)
        except (FileRefused, OSError, sqlite3.Error) as exc:
            raise HistoryUnusable(f"console history {self.path}: cannot open: {exc}") from exc

    # ---- input ----

    def apply_many(self, messages: Iterable[tuple[str, bytes]], now: datetime) -> int:
        """Take a batch of (topic, payload) in one transaction; how many changed the history.

        Topics it does not use are ignored; malformed payloads are logged (summarised) and
        skipped; duplicates (the same event id, or the same fault change again) are dropped; events
        older than the retention are too. HistoryUnusable if the file fails (nothing of the batch kept).
        """
        cutoff = now - self.retention
        records: list[Record] = []
        for topic, payload in messages:
            try:
                record = parse(topic, payload)
            except Malformed as exc:
                self._warnings.note(topic, str(exc), now)
                continue
            except Exception:  # last resort: a console must outlive any station's bug
                log.exception("history: ignored %r: unexpected failure", topic[:200])
                continue
            if record is not None and (record.at >= cutoff or _lasting(record)):
                records.append(record)
        prune = self._pruned is None or now - self._pruned >= PRUNE_EVERY
        recorded = 0
        if records or prune:
            with self._guard("apply"), transaction(self._db):
                self._touched.clear()
                recorded = sum(self._store[type(record)](record) for record in records)
                for (station, component), since in self._touched.items():
                    self._rebuild(station, component, since)
                if prune:
                    self._prune(cutoff)
            if prune:
                self._pruned = now
        self._warnings.flush_if_due(now)
        return recorded

    def _help(self, step: HelpStep) -> bool:
        at = _micros(step.at)
        began = at
        values: tuple[Any, ...]
        if step.action is HelpAction.OPEN:
            values = (at, step.plate, step.screen, step.zone)
        elif step.action is HelpAction.ACCEPT:
            values = (at, step.agent)
        else:
            voice = step.voice or VoiceFigures(0, None, None, None)
            began = _micros(_before(step.at, step.time_to_resolve_s))
            values = (at, step.agent, step.outcome, step.presses, step.time_to_accept_s, step.time_to_resolve_s,
                      voice.calls if step.voice else None, voice.answer_s, voice.talk_s, voice.outcome)
        return self._db.execute(CALL_SQL[step.action], (step.station, step.ticket, began, step.event_id,
                                                        *values)).rowcount == 1

    def _rating(self, rating: Rating) -> bool:
        # the same event again changes nothing, unless it names the call a copy kept by an older console did not
        return self._db.execute("INSERT INTO ratings (id, station, at, rating, ticket) VALUES (?, ?, ?, ?, ?) "
                                "ON CONFLICT (id) DO UPDATE SET ticket = excluded.ticket "
                                "WHERE ticket IS NULL AND excluded.ticket IS NOT NULL",
                                (rating.event_id, rating.station, _micros(rating.at), rating.rating,
                                 rating.ticket)).rowcount == 1

    def _fault(self, seen: FaultSeen) -> bool:
        """Keep a fault change (the same change again, as an event or retained, is kept once)."""
        change, at = seen.change, _micros(seen.at)
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO fault_changes (station, component, at, source, seq, active, code, severity, message, "
            "parker_impact) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seen.station, seen.component, at, RETAINED if seen.event_id is None else EVENT, seen.seq, change.active,
             change.code, change.severity, change.message, change.parker_impact)).rowcount == 1
        if not inserted:
            return False
        if change.active or self._db.execute(  # a clear matters only if a period was open at that moment
                "SELECT 1 FROM fault_periods WHERE station = ? AND component = ? AND opened <= ? "
                "AND (closed IS NULL OR closed > ?) LIMIT 1", (seen.station, seen.component, at, at)).fetchone():
            key = (seen.station, seen.component)
            self._touched[key] = min(self._touched.get(key, seen.at), seen.at)
        return True

    def _rebuild(self, station: str, component: str, since: datetime) -> None:
        """Replay the component's changes from the earliest period that a change at ``since`` can alter."""
        affected = self._db.execute("SELECT id, opened FROM fault_periods WHERE station = ? AND component = ? "
                                    "AND (closed IS NULL OR closed >= ?)", (station, component, _micros(since))).fetchall()
        start = min([_micros(since), *(opened for _, opened in affected)])
        self._db.executemany("DELETE FROM fault_periods WHERE id = ?", [(row_id,) for row_id, _ in affected])
        rows = self._db.execute("SELECT at, active, code, severity, message, parker_impact FROM fault_changes "
                                "WHERE station = ? AND component = ? AND at >= ? ORDER BY at, source, seq, id",
                                (station, component, start))
        changes = (FaultChange(_moment(at), bool(active), code, severity, message, impact)
                   for at, active, code, severity, message, impact in rows)
        self._db.executemany(
            "INSERT INTO fault_periods (station, component, code, severity, message, parker_impact, opened, closed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(p.station, p.component, p.code, p.severity, p.message, p.parker_impact, _micros(p.opened),
              None if p.closed is None else _micros(p.closed)) for p in replay(station, component, list(changes))])

    def _prune(self, cutoff: datetime) -> None:
        for statement in PRUNE:
            self._db.execute(statement, {"cutoff": _micros(cutoff)})

    # ---- figures ----

    def help_metrics(self, group: Grouping, since: datetime | None = None) -> list[HelpMetrics]:
        """Help figures of the calls closed (and ratings given) at or after ``since``, per station, agent or all."""
        bound = EARLIEST if since is None else _micros(since)
        with self._guard("help metrics"):
            calls = [CallFigures(station, agent, outcome, bool(accepted), to_accept, to_resolve)
                     for station, agent, outcome, accepted, to_accept, to_resolve in self._db.execute(
                         "SELECT station, coalesce(closed_by, accepted_by), outcome, "
                         "time_to_accept_s IS NOT NULL OR accepted IS NOT NULL, time_to_accept_s, time_to_resolve_s "
                         "FROM calls WHERE closed >= ?", (bound,))]
            ratings = [RatingFigures(station, agent, rating) for station, agent, rating in self._db.execute(
                "SELECT r.station, coalesce(c.closed_by, c.accepted_by), r.rating FROM ratings AS r "
                "LEFT JOIN calls AS c ON c.station = r.station AND c.ticket = r.ticket WHERE r.at >= ?", (bound,))]
        return help_metrics(calls, ratings, group)

    def fault_periods(self, station: str | None = None, limit: int = 100) -> list[FaultPeriod]:
        """The fault periods of ``station`` (None: every station), newest first."""
        where, params = ("", ()) if station is None else (" WHERE station = ?", (station,))
        with self._guard("fault periods"):
            rows = self._db.execute(f"{PERIOD}{where} ORDER BY opened DESC, id DESC LIMIT ?", (*params, limit))
            return [_period(row) for row in rows]

    def repair_stats(self, since: datetime | None = None) -> list[RepairStats]:
        """Mean and median time to repair per component, of the periods opened at or after ``since``."""
        with self._guard("repair stats"):
            rows = self._db.execute(f"{PERIOD} WHERE opened >= ?", (EARLIEST if since is None else _micros(since),))
            return repair_stats(_period(row) for row in rows)

    def recent_calls(self, station: str, limit: int = 5) -> list[CallRecord]:
        """The station's latest help calls (open ones too), newest first."""
        with self._guard("recent calls"):
            rows = self._db.execute(f"{CALL_RECORD} WHERE station = ? ORDER BY began DESC, ticket DESC LIMIT ?",
                                    (station, limit))
            return [_call(row) for row in rows]

    # ---- export ----

    def export_csv(self, folder: Path, now: datetime) -> list[Path]:
        """Prune to the retention at ``now``, then write the CSV files into ``folder`` (each atomically); their paths.

        HistoryUnusable if the history fails; OSError if the folder cannot be written.
        """
        with self._guard("export"):
            with transaction(self._db):
                self._prune(now - self.retention)
            self._pruned = now
            with transaction(self._db):  # one snapshot for every file
                tables = {
                    "help-by-station.csv": ("station", self.help_metrics(Grouping.STATION)),
                    "help-by-agent.csv": ("agent", self.help_metrics(Grouping.AGENT)),
                    "help-total.csv": ("scope", self.help_metrics(Grouping.ALL)),
                }
                calls = (_call(row) for row in self._db.execute(f"{CALL_RECORD} ORDER BY began, station, ticket"))
                periods = (_period(row) for row in self._db.execute(f"{PERIOD} ORDER BY opened, station, component, id"))
                return write_tables(Path(folder), tables, calls, periods, self.repair_stats())

    def close(self) -> None:
        """Close the file (what was applied is already kept); later calls fail with HistoryUnusable."""
        self._db.close()

    def __enter__(self) -> History:
        """Use as a context manager: closed at the end."""
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Close the file."""
        self.close()

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise HistoryUnusable(f"console history {self.path}: {what}: {exc}") from exc


def _lasting(record: Record) -> bool:
    """A retained fault still active is kept however old its ``since``: it tells of a fault active now."""
    return isinstance(record, FaultSeen) and record.event_id is None and record.change.active


def _before(moment: datetime, seconds: float | None) -> datetime:
    """``seconds`` before ``moment`` (the moment itself without them, or where that is before the year 1)."""
    try:
        return moment if seconds is None else moment - timedelta(seconds=seconds)
    except OverflowError:
        return moment


def _micros(moment: datetime) -> int:
    """A time as the file keeps it: microseconds since 1970 (UTC)."""
    return (moment - EPOCH) // MICROSECOND


def _moment(micros: int) -> datetime:
    return EPOCH + micros * MICROSECOND


def _time(micros: int | None) -> datetime | None:
    return None if micros is None else _moment(micros)


def _period(row: tuple[Any, ...]) -> FaultPeriod:
    station, component, code, severity, message, impact, opened, closed = row
    return FaultPeriod(station, component, code, severity, message, impact, _moment(opened), _time(closed))


def _call(row: tuple[Any, ...]) -> CallRecord:
    (station, ticket, opened, accepted, closed, agent, outcome, presses, to_accept, to_resolve, plate, screen, zone,
     voice_calls, answer_s, talk_s, voice_outcome) = row
    voice = None if voice_calls is None else VoiceFigures(voice_calls, answer_s, talk_s, voice_outcome)
    return CallRecord(station, ticket, _time(opened), _time(accepted), _time(closed), agent, outcome, presses,
                      to_accept, to_resolve, plate, screen, zone, voice)
