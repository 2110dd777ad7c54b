"""The outbox publisher: feeds the MQTT link a bounded window of outbox rows and marks them sent on PUBACK."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from kiosk.domain.records import OutboxRow
from kiosk.ports import StorageError, Store

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the publisher needs of the MQTT link (``kiosk.mqtt.client``); topics are given without the prefix."""

    @property
    def connected(self) -> bool:
        """Whether the client is connected to the broker now."""

    @property
    def receive_maximum(self) -> int:
        """The broker's MQTT 5 Receive Maximum for this connection (65535 if it sent none)."""

    def publish(self, topic: str, payload: str, qos: int, retain: bool, row_id: int | None = None,
                expiry_s: int | None = None) -> bool:
        """Hand one message to the client; False if not connected or refused. ``row_id`` comes back in ``take_acks``."""

    def take_acks(self) -> list[tuple[int, bool]]:
        """(row_id, ok) of every PUBACK since the last call; ok is False for a reason code >= 0x80."""


def _at_least(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class OutboxPublisher:
    """Publishes unsent outbox rows in id order, at most a window of them unacknowledged; see docs/storage.md.

    The outbox table is the queue; paho only ever holds the window. A row is marked sent when
    the PUBACK for that row id arrives (never matched by paho's message id). Runs on the
    loop's thread; every method returns quickly.
    """

    def __init__(self, store: Store, link: Link, window: int, keep_days: int, warn_rows: int) -> None:
        """Publish through ``link`` from ``store``.

        ``window``: most rows unacknowledged at once (also bounded by the broker's Receive
        Maximum); ``keep_days``: how long sent rows are kept; ``warn_rows``: an unsent backlog
        above this is reported by ``housekeeping``.
        """
        self._store = store
        self._link = link
        self._window = _at_least("window", window, 1)
        self._keep = timedelta(days=_at_least("keep_days", keep_days, 0))
        self._warn_rows = _at_least("warn_rows", warn_rows, 0)
        self._in_flight: dict[int, str] = {}  # row id -> topic, published on this connection and not acked
        self._cursor = 0  # the highest row id published on this connection
        self._drained_at: int | None = None  # store.outbox_writes when a read last found every unsent row
        self._refused_rows: set[int] = set()
        self._refused = 0
        self._read_failing = False
        self._online = False  # between connected() and disconnected(), as the loop learnt it

    @property
    def in_flight(self) -> int:
        """How many published rows wait for their PUBACK."""
        return len(self._in_flight)

    @property
    def refused(self) -> int:
        """How many distinct rows the broker refused (PUBACK reason code >= 0x80) since this publisher was made."""
        return self._refused

    @property
    def drained(self) -> bool:
        """Connected, and every row queued so far was handed to the link on this connection (no SQL query).

        Some may still wait for their PUBACK; messages published after this come after all of them.
        """
        return self._online and self._link.connected and self._drained_at == self._store.outbox_writes

    def connected(self) -> int:
        """The link is (re)connected: every unsent row is eligible again, from the lowest id; then pump.

        PUBACKs still waiting in the link belong to the previous connection: they are dropped
        (their rows stay unsent and are published again, a duplicate at-least-once allows), so
        that the new window counts only this connection's messages. Returns how many rows
        were published.
        """
        stale = self._link.take_acks()
        if stale:
            log.debug("dropped %d PUBACKs of the previous connection; their rows are published again", len(stale))
        self._forget()
        self._online = True
        return self.pump()

    def disconnected(self) -> None:
        """The link is down: forget the window (its rows stay unsent and are published again)."""
        self._forget()
        self._online = False

    def pump(self) -> int:
        """Publish the next unsent rows while the window has room; returns how many were published.

        No SQL query is made when the window is full, or when the last read already found every
        unsent row and no outbox row was written since. A store error is logged, not raised.
        """
        if not (self._online and self._link.connected):
            return 0  # not before connected(): the birth goes first, and the window starts afresh
        room = min(self._window, self._link.receive_maximum) - len(self._in_flight)
        writes = self._store.outbox_writes
        if room <= 0 or self._drained_at == writes:
            return 0
        rows = self._read(room + 1)  # one more than there is room for: is this the end?
        if rows is None:
            return 0
        self._drained_at = writes if len(rows) <= room else None
        published = 0
        for row in rows[:room]:
            if not self._link.publish(row.topic, row.payload, row.qos, row.retain, row_id=row.id, expiry_s=row.expiry_s):
                log.debug("link did not take outbox row %d (%s); trying again later", row.id, row.topic)
                self._drained_at = None
                break
            self._in_flight[row.id] = row.topic
            self._cursor = row.id
            published += 1
        return published

    def acked(self, now: datetime) -> int:
        """Take the link's PUBACKs, mark the accepted rows sent, then pump; returns how many rows were marked.

        A refused row stays unsent (logged once at ERROR) and is retried after the next reconnect.
        StorageError from marking propagates; the rows stay unsent and are published again later.
        """
        accepted = []
        for row_id, ok in self._link.take_acks():
            topic = self._in_flight.pop(row_id, None)
            if ok:
                accepted.append(row_id)
                self._refused_rows.discard(row_id)
            elif row_id not in self._refused_rows:
                self._refused_rows.add(row_id)
                self._refused += 1
                log.error("broker refused outbox row %d (topic %s); it stays unsent until the next connection",
                          row_id, topic or "not in this connection's window")
        marked = self._store.mark_sent(accepted, now) if accepted else 0
        self.pump()
        return marked

    def housekeeping(self, now: datetime) -> bool:
        """Delete rows sent more than ``keep_days`` ago; True if the unsent backlog is over ``warn_rows``.

        Nothing unsent is ever deleted. StorageError propagates.
        """
        pruned = self._store.prune_sent(now - self._keep)
        if pruned:
            log.info("pruned %d sent outbox rows", pruned)
        return self._store.outbox_depth() > self._warn_rows

    def _forget(self) -> None:
        self._in_flight.clear()
        self._cursor = 0
        self._drained_at = None

    def _read(self, limit: int) -> list[OutboxRow] | None:
        try:
            rows = self._store.unsent_outbox(self._cursor, limit)
        except StorageError as exc:
            if not self._read_failing:
                log.error("cannot read the outbox: %s", exc)
            self._read_failing = True
            return None
        self._read_failing = False
        return rows
