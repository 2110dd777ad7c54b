"""Hostile MQTT messages never stop the alert bridge: each is refused (Malformed) or judged, and its texts stay sendable."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from alerts_kit import START, rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.messages import AckSeen, Malformed, parse
from bridge.model import Channel, Delivery, SendKind, Target
from bridge.problems import AckIgnored, Engine
from bridge.senders import compose, email_message

RULES = rules(Path("/nonexistent/alerts.db"), grace_s=0, lost_grace_s=0, fleet_threshold=2)
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
                                     "2026-12-07T09:00:00.000Z", "9999-12-31T23:59:59+14:00", "\ud800", "\x00"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
KEYS = st.sampled_from(["state", "boot", "zone", "active", "code", "severity", "since", "message", "parker_impact",
                        "ticket", "overdue", "context", "note"])
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=8)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


TEXT = st.one_of(st.text(max_size=20), st.sampled_from(["\ud800", "\x00\n\r", "ü" * 600, "=?utf-8?q?x?=", "a\r\nBcc: x"]))
FAULTS = st.fixed_dictionaries({"active": st.booleans(), "code": TEXT, "severity": st.sampled_from(["critical", "info"]),
                                "message": TEXT, "parker_impact": st.one_of(st.none(), TEXT), "since": TEXT})
STATUSES = st.fixed_dictionaries({"state": st.sampled_from(["online", "lost", "offline"]), "boot": st.integers(),
                                  "zone": st.one_of(st.none(), TEXT)})
PAYLOADS = st.one_of(st.binary(max_size=64), OBJECTS.map(encoded), VALUES.map(encoded))
STATIONS = st.sampled_from(["ST-1", "ST-2", "ST-3"])
MESSAGES = st.one_of(
    st.tuples(TOPICS, PAYLOADS, st.booleans()),
    st.tuples(STATIONS.map(lambda station: f"{PREFIX}/{station}/fault/door"), FAULTS.map(encoded), st.just(True)),
    st.tuples(STATIONS.map(lambda station: f"{PREFIX}/{station}/status"), STATUSES.map(encoded), st.just(True)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSAGES, min_size=1, max_size=12))
def test_hostile_messages_are_refused_or_judged_and_never_break_the_bridge(
        messages: list[tuple[str, bytes, bool]]) -> None:
    engine = Engine(RULES)
    now = START
    for topic, payload, retained in messages:
        now += timedelta(seconds=30)
        try:
            seen = parse(topic, payload, retained)
        except Malformed:
            continue
        if seen is None:
            continue
        try:
            if isinstance(seen, AckSeen):
                engine.acknowledge(seen, now)
            elif type(seen).__name__ != "AlertSeen":
                engine.observe(seen, now)
        except AckIgnored:
            pass
        outcome = engine.tick(now)
        for alert in outcome.alerts.values():
            json.loads(alert.encoded())
            for kind in SendKind:
                text = compose(alert, kind, RULES)
                assert text.title.isprintable() and text.title == text.title.strip()
                assert RULES.smtp is not None
                email_message(RULES.smtp, "anna@example.org", text, Delivery(alert.id, 0, kind, ANNA)).as_bytes()
