"""The store's outbox as the MQTT publisher reads it: unsent rows in commit order, marked sent, pruned."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kiosk.domain.records import OutboxRow
from kiosk.storage.core import StoreCore
from kiosk.storage.rows import check_int
from kiosk.storage.schema import Outbox, utc

__all__ = ["MARK_CHUNK", "OutboxQueue"]

MARK_CHUNK = 500  # ids per UPDATE ... IN (...), well under SQLite's variable limit


class OutboxQueue:
    """The publisher's side of the outbox; the rows themselves are queued by ``StoreCore.insert_outbox``."""

    def __init__(self, core: StoreCore) -> None:
        """Read and mark the outbox of ``core``'s database."""
        self._core = core

    def unsent_outbox(self, after_id: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows with id > ``after_id``, in id (= commit) order."""
        check_int("after_id", after_id, 0)
        check_int("limit", limit, 1)
        query = (Outbox.select(Outbox.id, Outbox.seq, Outbox.topic, Outbox.payload, Outbox.qos, Outbox.retain,
                               Outbox.expiry_s)
                 .where(Outbox.sent.is_null(), Outbox.id > after_id).order_by(Outbox.id).limit(limit).tuples())
        with self._core.guard():  # plain tuples: model instances cost a fifth of a backlog drain (docs/performance.md)
            return [OutboxRow(i, seq, topic, payload, qos, bool(retain), expiry)
                    for i, seq, topic, payload, qos, retain, expiry in query.execute(self._core.db)]

    def mark_sent(self, ids: Sequence[int], now: datetime) -> int:
        """Mark rows as delivered (PUBACK received); returns how many were newly marked.

        The hottest write of a backlog drain, so its transaction commits with ``synchronous =
        NORMAL`` (``FULL`` is restored afterwards, also on error): losing a "sent" mark on power
        failure only causes a duplicate delivery, which at-least-once delivery allows anyway,
        and the next ``FULL`` commit syncs the WAL, this transaction included.
        """
        utc(now, "now")
        ids = list(ids)
        marked = 0
        with self._core.synchronous("NORMAL"), self._core.write():
            for start in range(0, len(ids), MARK_CHUNK):
                chunk = ids[start:start + MARK_CHUNK]
                query = Outbox.update(sent=now).where(Outbox.id.in_(chunk), Outbox.sent.is_null())
                marked += query.execute(self._core.db)
        return marked

    def outbox_depth(self) -> int:
        """How many rows wait to be sent."""
        with self._core.guard():
            return int(Outbox.select().where(Outbox.sent.is_null()).count(self._core.db))

    def prune_sent(self, older_than: datetime) -> int:
        """Delete rows sent before ``older_than``; returns how many. Unsent rows are never pruned."""
        utc(older_than, "older_than")
        with self._core.write():
            return int(Outbox.delete().where(Outbox.sent < older_than).execute(self._core.db))
