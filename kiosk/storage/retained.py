"""The station's state kept for its MQTT side: retained view, boots, remote config, notice, outage, commands."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import peewee as pw

from kiosk.domain.outage import Outage
from kiosk.domain.records import CommandRecord
from kiosk.mqtt.contract import CFG_REPORTED
from kiosk.storage.core import StoreCore
from kiosk.storage.errors import InvalidValue, WrongState
from kiosk.storage.rows import check_int, check_json_object, check_json_text, check_text, to_record
from kiosk.storage.schema import Command, Counter, MetaRow, Retained, stamp, utc

__all__ = ["CONNECT_KEY", "NOTICE_KEY", "OUTAGE_KEY", "REMOTE_CONFIG_KEY", "StationState"]

log = logging.getLogger("kiosk.storage.store")

REMOTE_CONFIG_KEY = "remote_config"
NOTICE_KEY = "notice"
OUTAGE_KEY = "outage"
CONNECT_KEY = "last_connect"


class StationState:
    """What the station keeps for staff and the broker, beyond payments and help: each change durable."""

    def __init__(self, core: StoreCore) -> None:
        """Keep the station's state in ``core``'s database."""
        self._core = core

    def retained_messages(self) -> list[tuple[str, str]]:
        """(topic, payload) of every retained topic's current message, ordered by topic (for a rebirth)."""
        query = Retained.select(Retained.topic, Retained.payload).order_by(Retained.topic).tuples()
        with self._core.guard():
            return list(query.execute(self._core.db))

    def next_boot(self, now: datetime) -> int:
        """Count one more boot for a new MQTT connection, durably, and return it.

        Later events carry the new number. The first connection of a process uses ``boot``
        from ``open`` instead. Also records the time in meta ``last_connect``.
        """
        utc(now, "now")
        with self._core.write():
            boot = self._core.bump_boot(now)
            MetaRow.replace(key=CONNECT_KEY, value=stamp(now)).execute(self._core.db)
        self._core.boot = boot
        log.info("boot %d for a new MQTT connection", boot)
        return boot

    def adopt_boot(self, boot: int) -> None:
        """The link used ``boot`` while the database could not count: keep the counter at least there, durably.

        Later events carry ``boot`` (the number in force), and ``next_boot`` goes on above it.
        """
        check_int("boot", boot, 1)
        with self._core.write():
            Counter.update(value=pw.fn.MAX(Counter.value, boot)).where(Counter.name == "boot").execute(self._core.db)
        self._core.boot = boot

    # --- remote configuration ------------------------------------------------------------------------------

    def save_remote_config(self, desired: dict[str, Any], reported: dict[str, Any], now: datetime) -> None:
        """Store the applied remote config and queue the retained ``cfg/reported``, together."""
        desired_json = check_json_object("desired", desired)
        reported_json = check_json_object("reported", reported)
        utc(now, "now")
        with self._core.write():
            MetaRow.replace(key=REMOTE_CONFIG_KEY, value=desired_json).execute(self._core.db)
            self._core.insert_outbox(CFG_REPORTED, reported_json, 1, True, None, now)

    def report_config(self, reported: dict[str, Any], now: datetime) -> None:
        """Queue the retained ``cfg/reported`` only (a rejected desired config leaves the applied one)."""
        reported_json = check_json_object("reported", reported)
        utc(now, "now")
        with self._core.write():
            self._core.insert_outbox(CFG_REPORTED, reported_json, 1, True, None, now)

    def remote_config(self) -> dict[str, Any] | None:
        """The stored remote config; None if there is none or it is not a JSON object (logged as an error)."""
        text = self._core.meta(REMOTE_CONFIG_KEY)
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
            check_text("text", text)
        utc(now, "now")
        with self._core.write():
            if text is None:
                MetaRow.delete().where(MetaRow.key == NOTICE_KEY).execute(self._core.db)
            else:
                MetaRow.replace(key=NOTICE_KEY, value=text).execute(self._core.db)
        log.info("notice %s", "cleared" if text is None else "set")

    def notice(self) -> str | None:
        """The operator's message shown to parkers, None if there is none."""
        return self._core.meta(NOTICE_KEY)

    # --- what parkers are told while the station is out of service -------------------------------------------

    def set_outage(self, outage: Outage | None, now: datetime) -> None:
        """Keep what the `mode` command said about parking meanwhile and the return to service; None forgets it."""
        utc(now, "now")
        with self._core.write():
            if outage is None:
                MetaRow.delete().where(MetaRow.key == OUTAGE_KEY).execute(self._core.db)
            else:
                MetaRow.replace(key=OUTAGE_KEY, value=json.dumps(outage.to_json())).execute(self._core.db)
        log.info("outage %s", "cleared" if outage is None else "set")

    def outage(self) -> Outage | None:
        """What the `mode` command said for this outage; None if nothing (or unreadable, logged as an error)."""
        text = self._core.meta(OUTAGE_KEY)
        if text is None:
            return None
        try:
            data = json.loads(text)
            return Outage.from_json(data) if isinstance(data, dict) else None
        except ValueError:
            log.error("stored outage is unreadable; ignored: %r", text[:200])
            return None

    # --- commands ------------------------------------------------------------------------------------------

    def begin_command(self, key: str, name: str, now: datetime) -> CommandRecord | None:
        """Remember a command about to run: None if ``key`` is new (stored as running).

        A known key returns its record and writes nothing: the caller answers with the
        stored reply (or says it is still running) and does not execute it again. ``name``
        is recorded as received (it may be empty or unknown: judging it is the caller's job).
        """
        check_text("key", key)
        if not isinstance(name, str):
            raise InvalidValue(f"name must be a string, got {name!r}")
        utc(now, "now")
        with self._core.write():
            row = Command.select().where(Command.key == key).first(self._core.db)
            if row is not None:
                return to_record(CommandRecord, row)
            Command.insert(key=key, name=name, state="running", created=now, updated=now).execute(self._core.db)
        return None

    def finish_command(self, key: str, reply: str, now: datetime) -> None:
        """Store the reply (compact JSON text) of a running command and mark it done."""
        check_json_text("reply", reply)
        utc(now, "now")
        with self._core.write():
            row = self._core.one(Command, key, "command")
            if row.state != "running":
                raise WrongState(f"command {key!r} is {row.state}, not running")
            Command.update(state="done", reply=reply, updated=now).where(Command.key == key).execute(self._core.db)

    def prune_commands(self, older_than: datetime) -> int:
        """Forget commands created before ``older_than`` (running or done); returns how many."""
        utc(older_than, "older_than")
        with self._core.write():
            return Command.delete().where(Command.created < older_than).execute(self._core.db)

    # --- terminal reports ----------------------------------------------------------------------------------

    def record_terminal_report(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/terminal`` event, e.g. the end-of-day totals."""
        check_json_object("data", data)
        utc(now, "now")
        with self._core.write():
            self._core.add_event("terminal", data, now)

    def record_service(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/service`` event: the service menu opened or closed, or an action taken in it."""
        check_json_object("data", data)
        utc(now, "now")
        with self._core.write():
            self._core.add_event("service", data, now)

    def record_update(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/update`` event: a step of a remote update (kiosk.domain.update.UpdateStatus)."""
        check_json_object("data", data)
        utc(now, "now")
        with self._core.write():
            self._core.add_event("update", data, now)
