"""What the alert bridge takes from MQTT (bridge/messages.py): times, numbers, accounts and acknowledgements, checked."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bridge.messages import AckSeen, FaultSeen, LinkState, Malformed, StatusSeen, parse, station_time

PREFIX = "paystation/v1"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-07T09:00:00.000Z", datetime(2026, 12, 7, 9, tzinfo=UTC)),
    ("2026-12-07T10:00:00+01:00", datetime(2026, 12, 7, 9, tzinfo=UTC)),
    ("0001-01-01T00:00:00+01:00", None),  # fromisoformat takes it, astimezone overflows
    ("9999-12-31T23:59:59-05:00", None),
    ("1999-12-31T23:59:59Z", None),
    ("2100-01-01T00:00:00Z", None),
    ("2026-12-07T09:00:00", None),  # no offset
    (17, None),
])
def test_station_times_outside_2000_to_2100_are_none(text: object, expected: datetime | None) -> None:
    assert station_time(text) == expected


def test_a_fault_with_a_far_off_since_is_taken_without_it() -> None:
    payload = json.dumps({"active": True, "code": "open", "severity": "critical", "since": "0001-01-01T00:00:00+01:00",
                          "message": "Door open.", "parker_impact": None}).encode()
    seen = parse(f"{PREFIX}/ST-1/fault/door", payload, True)
    assert isinstance(seen, FaultSeen) and seen.since is None


@pytest.mark.parametrize(("boot", "accepted"), [(0, True), (2**63 - 1, True), (2**63, False), (10**20, False),
                                                (-1, False), (1.5, False), (True, False)])
def test_a_boot_number_must_fit_sqlite(boot: object, accepted: bool) -> None:
    payload = json.dumps({"state": "lost", "boot": boot}).encode()
    if accepted:
        assert parse(f"{PREFIX}/ST-1/status", payload, True) == StatusSeen("ST-1", LinkState.LOST, boot, None)
    else:
        with pytest.raises(Malformed) as refused:
            parse(f"{PREFIX}/ST-1/status", payload, True)
        assert str(refused.value) == "status boot: a whole number from 0 to 9223372036854775807"


@pytest.mark.parametrize("user", ["crew-anna", "_svc", ".ops", "-x", "a" * 64])
def test_acknowledgements_come_from_every_name_the_broker_tool_accepts(user: str) -> None:
    assert parse(f"{PREFIX}/_ack/{user}/a-1", b'{"note":"on my way"}', False) == AckSeen(user, "a-1", "on my way")


@pytest.mark.parametrize(("topic", "payload", "why"), [
    ("_ack/crew-anna/a-1", b"", "an empty acknowledgement"),
    ("_ack/crew-anna/a-1", b'{"note":null}', "acknowledgement note: 1 to 200 characters"),
    ("_ack/crew-anna/a-1", b'{"note":""}', "acknowledgement note: 1 to 200 characters"),
    ("_ack/" + "a" * 65 + "/a-1", b"{}", "user 'aaaa"),
    ("_ack/crew anna/a-1", b"{}", "user 'crew anna' is not valid"),
])
def test_bad_acknowledgements_are_refused(topic: str, payload: bytes, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        parse(f"{PREFIX}/{topic}", payload, False)
