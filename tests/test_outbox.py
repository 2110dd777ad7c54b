"""Tests for kiosk.mqtt.publisher.OutboxPublisher with a recording fake link and a real Store."""

from __future__ import annotations

import json
import logging
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.mqtt.publisher import OutboxPublisher
from kiosk.storage.store import StorageError, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeLink:
    """The link's interface (connected, receive_maximum, publish, take_acks); the test plays the broker."""

    def __init__(self, receive_maximum: int = 65535) -> None:
        self.connected = True
        self.receive_maximum = receive_maximum
        self.accepting = True  # False: publish() refuses, as paho does when its queue is full
        self.connection = 1
        self.published: list[tuple[int, int]] = []  # (connection, row id) in publish order
        self.messages: list[tuple[str, str, int, bool, int | None]] = []
        self.unacked: list[int] = []  # row ids the broker has not acknowledged on this connection
        self.max_unacked = 0
        self.expiries: dict[str, int | None] = {}  # topic -> message expiry of its last publish
        self._acks: list[tuple[int, bool]] = []

    def publish(self, topic: str, payload: str, qos: int, retain: bool, row_id: int | None = None,
                expiry_s: int | None = None) -> bool:
        if not self.connected or not self.accepting:
            return False
        self.messages.append((topic, payload, qos, retain, row_id))
        self.expiries[topic] = expiry_s
        self.published.append((self.connection, row_id))
        self.unacked.append(row_id)
        self.max_unacked = max(self.max_unacked, len(self.unacked))
        return True

    def take_acks(self) -> list[tuple[int, bool]]:
        acks, self._acks = self._acks, []
        return acks

    # --- the broker's side -----------------------------------------------------------------

    def puback(self, row_id: int, ok: bool = True) -> None:
        self.unacked.remove(row_id)
        self._acks.append((row_id, ok))

    def puback_all(self) -> None:
        for row_id in list(self.unacked):
            self.puback(row_id)

    def drop(self) -> None:
        self.connected = False
        self.unacked.clear()

    def reconnect(self) -> None:
        self.connected = True
        self.connection += 1

    def ids(self, connection: int | None = None) -> list[int]:
        return [row_id for conn, row_id in self.published if connection in (None, conn)]


@pytest.fixture
def store(tmp_path: Path):
    opened = Store.open(tmp_path / "kiosk.db", "st-0001", T0)
    yield opened
    opened.close()


def fill(store: Store, n: int, now: datetime = T0) -> list[int]:
    """Queue ``n`` feedback events; returns their row ids."""
    for i in range(n):
        store.save_feedback(1 + i % 5, None, None, now)
    return [row["id"] for row in store.rows("outbox")][-n:]


def publisher(store: Store, link: FakeLink, window: int = 10, keep_days: int = 7,
              warn_rows: int = 1000) -> OutboxPublisher:
    return OutboxPublisher(store, link, window=window, keep_days=keep_days, warn_rows=warn_rows)


def sent_ids(store: Store) -> set[int]:
    return {row["id"] for row in store.rows("outbox") if row["sent"] is not None}


def test_window_is_the_smaller_of_ours_and_the_brokers_receive_maximum(store: Store) -> None:
    ids = fill(store, 30)
    link = FakeLink(receive_maximum=4)
    pub = publisher(store, link, window=10)
    assert pub.connected() == 4
    assert link.ids() == ids[:4] and pub.in_flight == 4
    assert pub.pump() == 0  # no room
    link.puback(ids[1])
    link.puback(ids[0])
    assert pub.acked(T0) == 2
    assert link.ids() == ids[:6] and pub.in_flight == 4
    while link.unacked:
        link.puback(link.unacked[0])
        pub.acked(T0)
    assert link.max_unacked == 4 and link.ids() == ids and store.outbox_depth() == 0

    wide = FakeLink()
    more = fill(store, 25)
    pub = publisher(store, wide, window=10)
    assert pub.connected() == 10
    assert wide.ids() == more[:10] and pub.in_flight == 10


def test_nothing_is_published_before_the_loop_learnt_of_the_connection(store: Store) -> None:
    fill(store, 3)
    link = FakeLink()  # the network thread already says connected; the loop has not handled LinkUp yet
    pub = publisher(store, link)
    assert pub.pump() == 0 and link.messages == [] and not pub.drained
    assert pub.connected() == 3
    pub.disconnected()
    link.puback_all()
    assert pub.pump() == 0, "after disconnected() only connected() starts publishing again"


def test_rows_are_published_as_stored_in_id_order(store: Store) -> None:
    store.raise_fault("printer", "paper_out", "warning", "Paper out", "no receipts", T0)
    ids = fill(store, 3)
    link = FakeLink()
    publisher(store, link).connected()
    rows = store.rows("outbox")
    assert link.messages == [(r["topic"], r["payload"], r["qos"], r["retain"], r["id"]) for r in rows]
    assert [m[4] for m in link.messages] == sorted(m[4] for m in link.messages)
    assert link.messages[0][:1] + link.messages[0][2:4] == ("fault/printer", 1, True)
    assert [m[4] for m in link.messages[-3:]] == ids


def test_only_acknowledged_rows_are_marked_sent(store: Store) -> None:
    ids = fill(store, 5)
    link = FakeLink()
    pub = publisher(store, link)
    pub.connected()
    link.puback(ids[3])
    link.puback(ids[1])
    assert pub.acked(T0 + timedelta(seconds=1)) == 2
    assert sent_ids(store) == {ids[1], ids[3]}
    assert store.rows("outbox", id=ids[3])[0]["sent"] == "2025-03-01T12:00:01.000000Z"
    assert pub.in_flight == 3 and store.outbox_depth() == 3
    assert pub.acked(T0) == 0  # nothing new


def test_refused_row_stays_unsent_is_logged_once_and_retried_after_reconnect(store: Store, caplog) -> None:
    ids = fill(store, 3)
    link = FakeLink()
    pub = publisher(store, link)
    pub.connected()
    link.puback(ids[0])
    link.puback(ids[1], ok=False)  # e.g. not authorised for this topic
    link.puback(ids[2])
    with caplog.at_level(logging.ERROR, logger="kiosk.mqtt.publisher"):
        assert pub.acked(T0) == 2
    assert sent_ids(store) == {ids[0], ids[2]} and pub.refused == 1 and pub.in_flight == 0
    [record] = caplog.records
    assert record.levelname == "ERROR" and "event/feedback" in record.getMessage()
    assert pub.pump() == 0 and link.ids() == ids  # not again on this connection

    link.drop()
    pub.disconnected()
    link.reconnect()
    assert pub.connected() == 1
    assert link.ids(connection=2) == [ids[1]]
    link.puback(ids[1], ok=False)
    pub.acked(T0)
    assert pub.refused == 1 and len(caplog.records) == 1  # the same row: logged and counted once
    link.drop()
    pub.disconnected()
    link.reconnect()
    pub.connected()
    link.puback(ids[1])
    assert pub.acked(T0) == 1 and store.outbox_depth() == 0


def test_reconnect_republishes_unacknowledged_rows_from_the_lowest_id(store: Store) -> None:
    ids = fill(store, 8)
    link = FakeLink()
    pub = publisher(store, link, window=5)
    pub.connected()
    link.puback(ids[1])
    link.puback(ids[3])
    pub.acked(T0)
    assert link.ids(connection=1) == ids[:7]
    link.puback(ids[0])  # acknowledged, but the connection drops before the loop takes it
    link.drop()
    pub.disconnected()
    assert pub.in_flight == 0 and pub.pump() == 0
    link.reconnect()
    assert pub.connected() == 5
    assert link.ids(connection=2) == [ids[0], ids[2], ids[4], ids[5], ids[6]]
    link.puback_all()
    pub.acked(T0)
    link.puback_all()
    pub.acked(T0)
    assert store.outbox_depth() == 0 and link.ids(connection=2) == [ids[0], ids[2], *ids[4:]]


def test_drained_once_every_queued_row_was_handed_to_the_link(store: Store) -> None:
    ids = fill(store, 7)
    link = FakeLink()
    pub = publisher(store, link, window=5)
    assert not pub.drained  # nothing read yet
    pub.connected()
    assert not pub.drained  # two rows wait for room
    link.puback(ids[0])
    pub.acked(T0)
    assert not pub.drained
    link.puback(ids[1])
    pub.acked(T0)
    assert pub.drained and pub.in_flight == 5  # handed over, not yet all acknowledged
    fill(store, 1)
    assert not pub.drained and pub.pump() == 0  # the window is full
    link.puback(ids[2])
    pub.acked(T0)
    assert pub.drained and link.ids() == [*ids, ids[-1] + 1]
    link.drop()
    pub.disconnected()
    assert not pub.drained


def test_a_publish_the_link_does_not_take_is_tried_again_in_order(store: Store) -> None:
    ids = fill(store, 4)
    link = FakeLink()
    link.accepting = False
    pub = publisher(store, link)
    assert pub.connected() == 0 and pub.in_flight == 0
    link.accepting = True
    assert pub.pump() == 4 and link.ids() == ids


def test_pump_makes_no_query_when_nothing_changed(store: Store, monkeypatch) -> None:
    fill(store, 3)
    link = FakeLink()
    pub = publisher(store, link, window=5)
    reads = []
    real = store.unsent_outbox
    monkeypatch.setattr(store, "unsent_outbox", lambda after, limit: reads.append(limit) or real(after, limit))
    sql: list[str] = []
    store.core.db.query_hooks.append(lambda event: sql.append(event.sql))

    pub.connected()
    assert reads == [6]  # one read (one row more than the window) found every unsent row
    sql.clear()
    for _ in range(100):
        assert pub.pump() == 0
    assert sql == [] and reads == [6]

    link.puback_all()
    pub.acked(T0)  # marking writes, but no new row: no read
    assert reads == [6] and not [q for q in sql if q.startswith("SELECT")]

    fill(store, 7)
    assert pub.pump() == 5 and reads == [6, 6]  # a new write: one read, which fills the window
    fill(store, 1)
    sql.clear()
    assert pub.pump() == 0 and sql == []  # the window is full: no read, whatever was written
    link.drop()
    pub.disconnected()
    assert pub.pump() == 0 and sql == []  # not connected: no read
    assert reads == [6, 6]


def test_a_store_read_error_is_logged_not_raised_but_marking_errors_propagate(store: Store, monkeypatch,
                                                                             caplog) -> None:
    ids = fill(store, 2)
    link = FakeLink()
    pub = publisher(store, link)

    def broken(after: int, limit: int):
        raise StorageError("io", Path("kiosk.db"), "disk I/O error")

    monkeypatch.setattr(store, "unsent_outbox", broken)
    assert pub.connected() == 0 and pub.pump() == 0
    assert [r.levelname for r in caplog.records] == ["ERROR"]  # once, not on every pump
    monkeypatch.undo()
    assert pub.pump() == 2
    monkeypatch.setattr(store, "mark_sent", lambda row_ids, now: broken(0, 0))
    link.puback_all()
    with pytest.raises(StorageError):
        pub.acked(T0)
    assert pub.in_flight == 0 and store.outbox_depth() == 2 and link.ids() == ids


def test_housekeeping_prunes_only_old_sent_rows_and_reports_the_backlog(store: Store) -> None:
    old = fill(store, 4)
    link = FakeLink()
    pub = publisher(store, link, keep_days=7, warn_rows=3)
    pub.connected()
    for row_id in old[:2]:
        link.puback(row_id)
    pub.acked(T0)  # sent at T0
    recent = fill(store, 2)
    pub.pump()
    link.puback(recent[0])
    pub.acked(T0 + timedelta(days=5))
    now = T0 + timedelta(days=7, seconds=1)
    assert pub.housekeeping(now) is False  # 3 unsent: not over 3
    remaining = [r["id"] for r in store.rows("outbox")]
    assert remaining == [*old[2:], *recent]  # only the rows sent more than 7 days ago are gone
    fill(store, 1)
    assert pub.housekeeping(now) is True  # 4 unsent
    assert pub.housekeeping(now + timedelta(days=100)) is True
    assert store.outbox_depth() == 4  # nothing unsent is ever deleted


def test_constructor_validates_its_limits(store: Store) -> None:
    for kwargs in ({"window": 0}, {"keep_days": -1}, {"warn_rows": -1}, {"window": True}):
        with pytest.raises(ValueError):
            publisher(store, FakeLink(), **kwargs)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), window=st.integers(1, 300), receive_maximum=st.integers(4, 400))
def test_five_thousand_rows_drain_fully_with_random_ack_order(seed: int, window: int, receive_maximum: int) -> None:
    rng = random.Random(seed)
    limit = min(window, receive_maximum)
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "kiosk.db", "st-0001", T0) as store:
        with store.core.write():  # a backlog after a long broker outage
            store.core.db.connection().executemany(
                "INSERT INTO outbox (topic, payload, qos, retain, created) VALUES ('event/test', ?, 1, 0, ?)",
                [(json.dumps({"i": i}), "2025-03-01T12:00:00.000000Z") for i in range(5000)])
        link = FakeLink(receive_maximum=receive_maximum)
        pub = publisher(store, link, window=window)
        pub.connected()
        while link.unacked:  # acked() publishes more as long as there is more
            for row_id in rng.sample(link.unacked, rng.randint(1, len(link.unacked))):
                link.puback(row_id)
            if rng.random() < 0.01:  # the connection drops, with PUBACKs not yet taken
                link.drop()
                pub.disconnected()
                link.reconnect()
                pub.connected()
            pub.acked(T0)
            assert pub.in_flight == len(link.unacked) <= limit
        assert store.outbox_depth() == 0 and link.unacked == [] and pub.in_flight == 0
        assert link.max_unacked <= limit
        for connection in range(1, link.connection + 1):
            published = link.ids(connection)
            assert published == sorted(published) and len(set(published)) == len(published)
        assert {row_id for _, row_id in link.published} == set(range(1, 5001))


def test_a_help_request_goes_out_with_its_message_expiry(store: Store) -> None:
    link = FakeLink()
    out = publisher(store, link)
    store.open_help_ticket({"screen": "welcome"}, T0)
    out.connected()
    out.pump()
    assert link.expiries == {"help/state": None, "help/request": 120, "event/help": None}
