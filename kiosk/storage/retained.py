"""The store's side of the MQTT link: retained view, boot per connection, remote config, notice, commands."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import peewee as pw

from kiosk.domain.records import CommandRecord
from kiosk.storage.schema import Command, Counter, MetaRow, Retained, _stamp, _utc
from kiosk.storage.rows import _int, _json, _record, _text

log = logging.getLogger("kiosk.storage.store")

REMOTE_CONFIG_KEY = "remote_config"
NOTICE_KEY = "notice"
CONNECT_KEY = "last_connect"


def _json_object(name: str, value: Any) -> str:
    """Compact JSON of a dict; anything else, or a dict that is not JSON-serialisable, raises ValueError."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        return _json(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not JSON-serialisable: {exc}") from exc


class LinkStore:
    """MQTT link methods of ``kiosk.storage.store.Store`` (which provides the transactions and the outbox)."""

    def retained_messages(self) -> list[tuple[str, str]]:
        """(topic, payload) of every retained topic's current message, ordered by topic (for a rebirth)."""
        query = Retained.select(Retained.topic, Retained.payload).order_by(Retained.topic).tuples()
        with self._guard():
            return list(query.execute(self._db))

    def next_boot(self, now: datetime) -> int:
        """Count one more boot for a new MQTT connection, durably, and return it.

        Later events carry the new number. The first connection of a process uses ``boot``
        from ``open`` instead. Also records the time in meta ``last_connect``.
        """
        _utc(now, "now")
        with self._write():
            boot = self._bump_boot(now)
            MetaRow.replace(key=CONNECT_KEY, value=_stamp(now)).execute(self._db)
        self._boot = boot
        log.info("boot %d for a new MQTT connection", boot)
        return boot

    def adopt_boot(self, boot: int) -> None:
        """The link used ``boot`` while the database could not count: keep the counter at least there, durably.

        Later events carry ``boot`` (the number in force), and ``next_boot`` goes on above it.
        """
        _int("boot", boot, 1)
        with self._write():
            Counter.update(value=pw.fn.MAX(Counter.value, boot)).where(Counter.name == "boot").execute(self._db)
        self._boot = boot

    # --- remote configuration ------------------------------------------------------------------------------

    def save_remote_config(self, desired: dict[str, Any], reported: dict[str, Any], now: datetime) -> None:
        """Store the applied remote config and queue the retained ``cfg/reported``, together."""
        desired_json = _json_object("desired", desired)
        reported_json = _json_object("reported", reported)
        _utc(now, "now")
        with self._write():
            MetaRow.replace(key=REMOTE_CONFIG_KEY, value=desired_json).execute(self._db)
            self._insert_outbox("cfg/reported", reported_json, 1, True, None, now)

    def report_config(self, reported: dict[str, Any], now: datetime) -> None:
        """Queue the retained ``cfg/reported`` only (a rejected desired config leaves the applied one)."""
        reported_json = _json_object("reported", reported)
        _utc(now, "now")
        with self._write():
            self._insert_outbox("cfg/reported", reported_json, 1, True, None, now)

    def remote_config(self) -> dict[str, Any] | None:
        """The stored remote config; None if there is none or it is not a JSON object (logged as an error)."""
        text = self._meta(REMOTE_CONFIG_KEY)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            log.error("stored remote config is not valid JSON, ignored: %s", exc)
            return None
        if not isinstance(value, dict):
            log.error("stored remote config is a JSON %s, not an object, ignored", type(value).__name__)
            return None
        return value

    # --- notice to parkers ---------------------------------------------------------------------------------

    def set_notice(self, text: str | None, now: datetime) -> None:
        """Set the operator's message shown to parkers; None clears it."""
        if text is not None:
            _text("text", text)
        _utc(now, "now")
        with self._write():
            if text is None:
                MetaRow.delete().where(MetaRow.key == NOTICE_KEY).execute(self._db)
            else:
                MetaRow.replace(key=NOTICE_KEY, value=text).execute(self._db)
        log.info("notice %s", "cleared" if text is None else "set")

    def notice(self) -> str | None:
        """The operator's message shown to parkers, None if there is none."""
        return self._meta(NOTICE_KEY)

    # --- commands ------------------------------------------------------------------------------------------

    def begin_command(self, key: str, name: str, now: datetime) -> CommandRecord | None:
        """Remember a command about to run: None if ``key`` is new (stored as running).

        A known key returns its record and writes nothing: the caller answers with the
        stored reply (or says it is still running) and does not execute it again. ``name``
        is recorded as received (it may be empty or unknown: judging it is the caller's job).
        """
        _text("key", key)
        if not isinstance(name, str):
            raise ValueError(f"name must be a string, got {name!r}")
        _utc(now, "now")
        with self._write():
            row = Command.select().where(Command.key == key).first(self._db)
            if row is not None:
                return _record(CommandRecord, row)
            Command.insert(key=key, name=name, state="running", created=now, updated=now).execute(self._db)
        return None

    def finish_command(self, key: str, reply: str, now: datetime) -> None:
        """Store the reply (compact JSON text) of a running command and mark it done."""
        _text("reply", reply)
        try:
            json.loads(reply)
        except ValueError as exc:
            raise ValueError(f"reply must be JSON text: {exc}") from exc
        _utc(now, "now")
        with self._write():
            row = self._one(Command, key, "command")
            if row.state != "running":
                raise ValueError(f"command {key!r} is {row.state}, not running")
            Command.update(state="done", reply=reply, updated=now).where(Command.key == key).execute(self._db)

    def prune_commands(self, older_than: datetime) -> int:
        """Forget commands created before ``older_than`` (running or done); returns how many."""
        _utc(older_than, "older_than")
        with self._write():
            return Command.delete().where(Command.created < older_than).execute(self._db)

    # --- terminal reports ----------------------------------------------------------------------------------

    def record_terminal_report(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/terminal`` event, e.g. the end-of-day totals."""
        _json_object("data", data)
        _utc(now, "now")
        with self._write():
            self._event("terminal", data, now)

    def _meta(self, key: str) -> str | None:
        with self._guard():
            return MetaRow.select(MetaRow.value).where(MetaRow.key == key).scalar(self._db)
