"""Database schema: peewee models for queries and the append-only migrations that create the tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import peewee as pw

from kiosk.domain.plates import plate_key
from kiosk.storage.errors import InvalidValue


def utc(value: datetime, name: str) -> datetime:
    """Return ``value`` in UTC; InvalidValue for anything but a timezone-aware datetime (``name`` says which)."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidValue(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def stamp(value: datetime) -> str:
    """Storage form: fixed-width ISO 8601 UTC with microseconds, so text order is time order."""
    return utc(value, "timestamp").replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def unstamp(value: str) -> datetime:
    """Parse the storage form back into an aware UTC datetime."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# --- models: used for queries only; the schema itself is created by MIGRATIONS ------------------------------


class UtcDateTimeField(pw.Field):
    """An aware datetime stored as UTC text (see ``stamp``) and read back as aware UTC."""

    field_type = "TEXT"

    def db_value(self, value: datetime | None) -> str | None:
        """Convert to the storage form; naive datetimes raise ValueError."""
        return None if value is None else stamp(value)

    def python_value(self, value: str | None) -> datetime | None:
        """Parse the storage form."""
        return None if value is None else unstamp(value)


class _Model(pw.Model):
    class Meta:
        database = None  # unbound: every query is executed on the Store's own database
        legacy_table_names = False  # ParkingSession -> parking_session


class MetaRow(_Model):
    """Key/value facts: ``schema_version``, ``series``, ``replaced``, ``last_boot``, ``last_connect``,
    ``remote_config``, ``notice``."""

    key = pw.TextField(primary_key=True)
    value = pw.TextField()

    class Meta:
        table_name = "meta"


class Counter(_Model):
    """Durable counters ``boot`` and ``seq``."""

    name = pw.TextField(primary_key=True)
    value = pw.IntegerField()


class ParkingSession(_Model):
    """A right to park, paid or courtesy."""

    id = pw.TextField(primary_key=True)
    plate = pw.TextField()
    zone = pw.TextField()
    starts = UtcDateTimeField()
    expires = UtcDateTimeField()
    minutes = pw.IntegerField()
    amount = pw.IntegerField()
    currency = pw.TextField()
    kind = pw.TextField()
    reason = pw.TextField(null=True)
    payment_id = pw.TextField(null=True)
    extends_id = pw.TextField(null=True)
    created = UtcDateTimeField()
    plate_key = pw.TextField()


class Payment(_Model):
    """A payment attempt, the payment method that took it and, for a card, its receipt data."""

    id = pw.TextField(primary_key=True)
    plate = pw.TextField()
    zone = pw.TextField()
    amount = pw.IntegerField()
    currency = pw.TextField()
    state = pw.TextField()
    minutes = pw.IntegerField()
    starts = UtcDateTimeField()
    expires = UtcDateTimeField()
    extends_id = pw.TextField(null=True)
    result_code = pw.IntegerField(null=True)
    brand = pw.TextField(null=True)
    masked_pan = pw.TextField(null=True)
    auth_code = pw.TextField(null=True)
    receipt_no = pw.TextField(null=True)
    trace_no = pw.TextField(null=True)
    created = UtcDateTimeField()
    updated = UtcDateTimeField()
    confirmed = UtcDateTimeField(null=True)
    unreconciled = pw.TextField(null=True)
    method = pw.TextField()


class Fault(_Model):
    """Fault history; a component's active fault has ``cleared_at`` NULL."""

    id = pw.AutoField()
    component = pw.TextField()
    code = pw.TextField()
    severity = pw.TextField()
    message = pw.TextField()
    parker_impact = pw.TextField()
    raised_at = UtcDateTimeField()
    cleared_at = UtcDateTimeField(null=True)


class RepairNote(_Model):
    """A crew member's "fixed" note on a component, with the fault it notes (migration 10)."""

    id = pw.AutoField()
    component = pw.TextField()
    code = pw.TextField(null=True)
    note = pw.TextField()
    by = pw.TextField()
    fault_id = pw.IntegerField(null=True)
    created = UtcDateTimeField()


class HelpTicket(_Model):
    """A parker's help request; ``context`` is JSON text."""

    id = pw.TextField(primary_key=True)
    state = pw.TextField()
    opened_at = UtcDateTimeField()
    accepted_at = UtcDateTimeField(null=True)
    closed_at = UtcDateTimeField(null=True)
    outcome = pw.TextField(null=True)
    context = pw.TextField()
    agent = pw.TextField(null=True)
    presses = pw.IntegerField(default=1)
    overdue = pw.BooleanField(default=False)
    voice = pw.TextField(null=True)  # JSON: the latest voice call and the ticket's voice metrics (kiosk.storage.help)


class HelpMessage(_Model):
    """One message of a help ticket's conversation."""

    id = pw.AutoField()
    ticket_id = pw.TextField()
    direction = pw.TextField()
    text = pw.TextField()
    created = UtcDateTimeField()
    agent = pw.TextField(null=True)


class Feedback(_Model):
    """A parker's rating, 1..5, of a parking session and the journey's help ticket (either may be missing)."""

    id = pw.AutoField()
    rating = pw.IntegerField()
    session_id = pw.TextField(null=True)
    created = UtcDateTimeField()
    ticket_id = pw.TextField(null=True)  # migration 9


class Outbox(_Model):
    """Messages for the MQTT publisher; ``sent`` is set when the broker acknowledged."""

    id = pw.AutoField()
    seq = pw.IntegerField(null=True)
    topic = pw.TextField()
    payload = pw.TextField()
    qos = pw.IntegerField()
    retain = pw.BooleanField()
    created = UtcDateTimeField()
    sent = UtcDateTimeField(null=True)
    expiry_s = pw.IntegerField(null=True)


class Retained(_Model):
    """The station's current retained MQTT view: the last payload of every retained topic (no prefix)."""

    topic = pw.TextField(primary_key=True)
    payload = pw.TextField()
    updated = UtcDateTimeField()


class Command(_Model):
    """An MQTT command remembered by its key, so that a duplicate is answered, not executed again."""

    key = pw.TextField(primary_key=True)
    name = pw.TextField()
    state = pw.TextField()
    reply = pw.TextField(null=True)
    created = UtcDateTimeField()
    updated = UtcDateTimeField()


MODELS = (MetaRow, Counter, ParkingSession, Payment, Fault, HelpTicket, HelpMessage, Feedback, Outbox, Retained,
          Command, RepairNote)

# --- migrations ------------------------------------------------------------------------------------------------

_SCHEMA_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO counter (name, value) VALUES ('boot', 0), ('seq', 0)",
    """CREATE TABLE parking_session (id TEXT PRIMARY KEY, plate TEXT NOT NULL, zone TEXT NOT NULL,
        starts TEXT NOT NULL, expires TEXT NOT NULL, minutes INTEGER NOT NULL CHECK (minutes > 0),
        amount INTEGER NOT NULL CHECK (amount >= 0), currency TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('paid', 'courtesy')), reason TEXT,
        payment_id TEXT UNIQUE REFERENCES payment (id), extends_id TEXT REFERENCES parking_session (id),
        created TEXT NOT NULL, CHECK ((kind = 'paid') = (payment_id IS NOT NULL)))""",
    "CREATE INDEX parking_session_plate_zone_expires ON parking_session (plate, zone, expires)",
    """CREATE TABLE payment (id TEXT PRIMARY KEY, plate TEXT NOT NULL, zone TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount > 0), currency TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'declined', 'reversed')),
        minutes INTEGER NOT NULL CHECK (minutes > 0), starts TEXT NOT NULL, expires TEXT NOT NULL,
        extends_id TEXT REFERENCES parking_session (id), result_code INTEGER, brand TEXT, masked_pan TEXT,
        auth_code TEXT, receipt_no TEXT, trace_no TEXT, created TEXT NOT NULL, updated TEXT NOT NULL)""",
    "CREATE INDEX payment_pending ON payment (created) WHERE state = 'pending'",
    """CREATE TABLE fault (id INTEGER PRIMARY KEY, component TEXT NOT NULL, code TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')), message TEXT NOT NULL,
        parker_impact TEXT NOT NULL, raised_at TEXT NOT NULL, cleared_at TEXT)""",
    "CREATE UNIQUE INDEX fault_active ON fault (component) WHERE cleared_at IS NULL",
    """CREATE TABLE help_ticket (id TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('waiting', 'connected', 'closed')), opened_at TEXT NOT NULL,
        accepted_at TEXT, closed_at TEXT, outcome TEXT, context TEXT NOT NULL CHECK (json_valid(context)))""",
    """CREATE TABLE help_message (id INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL REFERENCES help_ticket (id),
        direction TEXT NOT NULL CHECK (direction IN ('to_parker', 'from_parker')), text TEXT NOT NULL,
        created TEXT NOT NULL)""",
    "CREATE INDEX help_message_ticket ON help_message (ticket_id)",
    """CREATE TABLE feedback (id INTEGER PRIMARY KEY, rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
        session_id TEXT REFERENCES parking_session (id), created TEXT NOT NULL)""",
    """CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER UNIQUE, topic TEXT NOT NULL,
        payload TEXT NOT NULL, qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
        retain INTEGER NOT NULL CHECK (retain IN (0, 1)), created TEXT NOT NULL, sent TEXT)""",
    "CREATE INDEX outbox_unsent ON outbox (id) WHERE sent IS NULL",
    "CREATE INDEX outbox_sent ON outbox (sent) WHERE sent IS NOT NULL",
)


def _migration_1_initial(db: pw.SqliteDatabase) -> None:
    """Create the first schema. Frozen SQL, not the models: later changes are new migrations."""
    for statement in _SCHEMA_1:
        db.execute_sql(statement)


def _migration_2_payment_confirmed(db: pw.SqliteDatabase) -> None:
    """Record when the terminal received the station's vending answer for an approved payment."""
    db.execute_sql("ALTER TABLE payment ADD COLUMN confirmed TEXT")
    db.execute_sql("CREATE INDEX payment_unconfirmed ON payment (created) WHERE state = 'approved' AND confirmed IS NULL")


_SCHEMA_3 = (
    "CREATE TABLE retained (topic TEXT PRIMARY KEY, payload TEXT NOT NULL, updated TEXT NOT NULL)",
    """INSERT INTO retained (topic, payload, updated)
        SELECT topic, payload, created FROM outbox
        WHERE id IN (SELECT max(id) FROM outbox WHERE retain = 1 GROUP BY topic)""",
    """CREATE TABLE command (key TEXT PRIMARY KEY, name TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'done')), reply TEXT, created TEXT NOT NULL,
        updated TEXT NOT NULL)""",
    "CREATE INDEX command_created ON command (created)",
)


def _migration_3_link(db: pw.SqliteDatabase) -> None:
    """Add the retained view (backfilled from the newest retained outbox row per topic) and the command log."""
    for statement in _SCHEMA_3:
        db.execute_sql(statement)


_SCHEMA_4 = (
    "ALTER TABLE help_ticket ADD COLUMN agent TEXT",
    "ALTER TABLE help_ticket ADD COLUMN presses INTEGER NOT NULL DEFAULT 1 CHECK (presses > 0)",
    "ALTER TABLE help_ticket ADD COLUMN overdue INTEGER NOT NULL DEFAULT 0 CHECK (overdue IN (0, 1))",
    "CREATE INDEX help_ticket_open ON help_ticket (opened_at) WHERE state != 'closed'",
    "ALTER TABLE help_message ADD COLUMN agent TEXT",
    "ALTER TABLE outbox ADD COLUMN expiry_s INTEGER CHECK (expiry_s > 0)",
)


def _migration_4_help_desk(db: pw.SqliteDatabase) -> None:
    """Help tickets gain their agent, press count and overdue flag; messages their agent; outbox rows an expiry."""
    for statement in _SCHEMA_4:
        db.execute_sql(statement)


_SCHEMA_5 = (
    "ALTER TABLE payment ADD COLUMN unreconciled TEXT",
    "DROP INDEX payment_unconfirmed",
    """CREATE INDEX payment_unconfirmed ON payment (created)
        WHERE state = 'approved' AND confirmed IS NULL AND unreconciled IS NULL""",
)


def _migration_5_payment_unreconciled(db: pw.SqliteDatabase) -> None:
    """An owed payment the terminal could not settle keeps why, and is no longer owed (left to staff)."""
    for statement in _SCHEMA_5:
        db.execute_sql(statement)


FIRST_METHOD = "card_terminal"
"""The payment method of every payment stored before payments named theirs (schema version 5 and older)."""


def _migration_6_payment_method(db: pw.SqliteDatabase) -> None:
    """A payment names the payment method that took it; every earlier one was the card terminal's."""
    db.execute_sql(f"ALTER TABLE payment ADD COLUMN method TEXT NOT NULL DEFAULT '{FIRST_METHOD}'")


def _migration_7_plate_key(db: pw.SqliteDatabase) -> None:
    """Sessions are found by their plate's key, so that "AB-123" and "AB123" are one plate (kiosk.domain.plates)."""
    db.execute_sql("ALTER TABLE parking_session ADD COLUMN plate_key TEXT NOT NULL DEFAULT ''")
    rows = db.execute_sql("SELECT id, plate FROM parking_session").fetchall()
    for session_id, plate in rows:
        db.execute_sql("UPDATE parking_session SET plate_key = ? WHERE id = ?", (plate_key(plate), session_id))
    db.execute_sql("CREATE INDEX parking_session_plate_key ON parking_session (plate_key, zone, expires)")
    db.execute_sql("DROP INDEX parking_session_plate_zone_expires")  # sessions are no longer found by their spelling


def _migration_8_help_voice(db: pw.SqliteDatabase) -> None:
    """A help ticket keeps its voice call: the latest call's state and the ticket's voice metrics, as JSON."""
    db.execute_sql("ALTER TABLE help_ticket ADD COLUMN voice TEXT")


def _migration_9_feedback_ticket(db: pw.SqliteDatabase) -> None:
    """A rating names the help ticket of the journey it rates, so that it counts for the agent who took the call."""
    db.execute_sql("ALTER TABLE feedback ADD COLUMN ticket_id TEXT REFERENCES help_ticket (id)")


_SCHEMA_10 = (
    """CREATE TABLE repair_note (id INTEGER PRIMARY KEY, component TEXT NOT NULL, code TEXT,
        note TEXT NOT NULL CHECK (length(note) BETWEEN 1 AND 200), "by" TEXT NOT NULL CHECK (length("by") BETWEEN 1 AND 64),
        fault_id INTEGER REFERENCES fault (id), created TEXT NOT NULL)""",
    "CREATE INDEX repair_note_component ON repair_note (component, created)",
)


def _migration_10_repair_note(db: pw.SqliteDatabase) -> None:
    """The crew's "fixed" notes (cmd/fixed): each names the fault it notes, so time to repair is the station's own."""
    for statement in _SCHEMA_10:
        db.execute_sql(statement)


Migration = Callable[[pw.SqliteDatabase], None]
# Append only: MIGRATIONS[n - 1] takes the schema from version n - 1 to n, in one transaction
# together with the schema_version update.
MIGRATIONS: list[Migration] = [_migration_1_initial, _migration_2_payment_confirmed, _migration_3_link,
                               _migration_4_help_desk, _migration_5_payment_unreconciled, _migration_6_payment_method,
                               _migration_7_plate_key, _migration_8_help_voice, _migration_9_feedback_ticket,
                               _migration_10_repair_note]
