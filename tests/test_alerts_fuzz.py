"""Hostile MQTT messages never stop the alert bridge: each is refused or judged and saved, and its texts stay sendable."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from alerts_kit import START, ManualClock, rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.model import Channel, SendKind, Target
from bridge.senders import compose, email_message
from bridge.service import LinkEvent, Received, Service
from bridge.store import Store

PREFIX = "paystation/v1"
ANNA = Target(Channel.EMAIL, "anna@example.org")
LEVEL = st.sampled_from(["ST-1", "ST-2", "_ack", "_alerts", "", "+", "a-1", "crew-anna", "door", "ŝ", "x" * 70])
TOPICS = st.one_of(
    st.sampled_from([f"{PREFIX}/ST-1/status", f"{PREFIX}/ST-2/fault/card_terminal", f"{PREFIX}/ST-1/help/state",
                     f"{PREFIX}/ST-2/help/request", f"{PREFIX}/_ack/crew-anna/a-1", f"{PREFIX}/_alerts/a-1",
                     f"{PREFIX}/ST-1/fault/door"]),
    st.lists(LEVEL, min_size=1, max_size=5).map(lambda levels: "/".join([PREFIX, *levels])),
    st.text(max_size=40))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["online", "lost", "offline", "critical", "warning", "waiting", "unreachable",
                                     "2026-12-07T09:00:00.000Z", "9999-12-31T23:59:59+14:00", "\ud800", "\x00",
                                     "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00-05:00", "2001-01-01T00:00:00Z"]),
                    st.sampled_from([10**20, -(10**20), 2**63, 2**63 - 1]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
KEYS = st.sampled_from(["state", "boot", "zone", "active", "code", "severity", "since", "message", "parker_impact",
                        "ticket", "overdue", "context", "note"])
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=8)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


TEXT = st.one_of(st.text(max_size=20), st.sampled_from(["\ud800", "\x00\n\r", "ü" * 600, "=?utf-8?q?x?=", "a\r\nBcc: x",
                                                     "0001-01-01T00:00:00+01:00", "2001-01-01T00:00:00-12:00"]))
FAULTS = st.fixed_dictionaries({"active": st.booleans(), "code": TEXT, "severity": st.sampled_from(["critical", "info"]),
                                "message": TEXT, "parker_impact": st.one_of(st.none(), TEXT), "since": TEXT})
STATUSES = st.fixed_dictionaries({"state": st.sampled_from(["online", "lost", "offline"]),
                                  "boot": st.one_of(st.integers(), st.sampled_from([10**20, 2**63, -1])),
                                  "zone": st.one_of(st.none(), TEXT)})
PAYLOADS = st.one_of(st.binary(max_size=64), OBJECTS.map(encoded), VALUES.map(encoded))
STATIONS = st.sampled_from(["ST-1", "ST-2", "ST-3"])
MESSAGES = st.one_of(
    st.builds(Received, TOPICS, PAYLOADS, st.booleans()),
    st.builds(Received, STATIONS.map(lambda station: f"{PREFIX}/{station}/fault/door"), FAULTS.map(encoded),
              st.just(True)),
    st.builds(Received, STATIONS.map(lambda station: f"{PREFIX}/{station}/status"), STATUSES.map(encoded),
              st.just(True)),
    st.sampled_from([LinkEvent.DISCONNECTED, LinkEvent.CONNECTED, LinkEvent.SUBSCRIBED]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSAGES, min_size=1, max_size=12))
def test_hostile_messages_are_refused_or_judged_saved_and_never_break_the_bridge(
        messages: list[Received | LinkEvent]) -> None:
    """Through the service's own step and a real database: nothing escapes, every step is saved, texts compose."""
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "alerts.db"
        config = rules(database, grace_s=0, lost_grace_s=0, fleet_threshold=2, settle_s=0)
        clock = ManualClock(START)
        service = Service(config, clock=clock)
        try:
            service.step([LinkEvent.CONNECTED, LinkEvent.SUBSCRIBED])
            for item in messages:
                clock.advance(30)
                service.step([item])
                assert service.failure is None
                for alert in service.snapshot().alerts.values():
                    json.loads(alert.encoded())
                    for kind in SendKind:
                        text = compose(alert, kind, config)
                        assert text.title.isprintable() and text.title == text.title.strip()
                        assert config.smtp is not None
                        email_message(config.smtp, ANNA.address, text, f"{alert.id}.0.{kind.value}",
                                      clock()).as_bytes()
            open_alerts = set(service.snapshot().alerts)
        finally:
            service.stop()
        with Store(database) as store:  # what the service judged is what the database holds
            assert {alert.id for alert in store.load()[1]} == open_alerts
