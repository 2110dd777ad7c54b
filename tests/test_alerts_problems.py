"""The alert bridge's judgement, pure (bridge/problems.py): grace, routing, coalescing, flapping, fleets, escalation."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alerts_kit import START, rules

from bridge.messages import AckSeen, FaultSeen, HelpSeen, LinkState, StatusSeen
from bridge.model import AlertState, Channel, Delivery, Problem, SendKind, Severity, Target
from bridge.problems import AckIgnored, Engine

ANNA, BEN = Target(Channel.EMAIL, "anna@example.org"), Target(Channel.EMAIL, "ben@example.org")
PHONES, CLARA = Target(Channel.WEBHOOK, "phones"), Target(Channel.EMAIL, "clara@example.org")
DESK = Target(Channel.WEBHOOK, "desk")
CREW = [ANNA, PHONES, BEN]


def engine(**bridge: Any) -> Engine:
    counter = itertools.count(1)
    return Engine(rules(Path("/nonexistent/alerts.db"), **bridge), new_id=lambda: f"a-{next(counter)}")


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def terminal(station: str, active: bool, code: str = "unreachable", message: str = "no answer") -> FaultSeen:
    return FaultSeen(station, "card_terminal", active, code, Severity.CRITICAL, message, "no_card_payment", START)


def born(bridge: Engine, station: str, zone: str, boot: int = 100) -> None:
    bridge.observe(StatusSeen(station, LinkState.ONLINE, boot, zone), START)


def sends(deliveries: list[Delivery]) -> list[tuple[str, SendKind, Target]]:
    return [(d.alert_id, d.kind, d.target) for d in deliveries]


def test_a_fault_that_clears_within_the_grace_time_sends_nothing_and_one_that_stays_sends_once() -> None:
    bridge = engine()
    born(bridge, "ST-1", "Altstadt Nord")
    bridge.observe(terminal("ST-1", True), at(0))
    bridge.observe(terminal("ST-1", False), at(119))
    assert not bridge.tick(at(121)).deliveries and not bridge.alerts
    bridge.observe(FaultSeen("ST-1", "card_terminal", True, "unreachable", Severity.CRITICAL, "no answer",
                             "no_card_payment", at(300)), at(300))
    assert not bridge.tick(at(419)).deliveries
    outcome = bridge.tick(at(420))
    assert sends(outcome.deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    alert = bridge.alerts["a-1"]
    assert alert.payload() == {
        "id": "a-1", "problem": "fault", "state": "open", "title": "ST-1: card_terminal unreachable",
        "stations": ["ST-1"], "zone": "Altstadt Nord", "component": "card_terminal", "code": "unreachable",
        "severity": "critical", "message": "no answer", "parker_impact": "no_card_payment",
        "since": "2026-12-07T09:05:00.000Z", "opened": "2026-12-07T09:07:00.000Z", "level": 0, "group": "crew-nord",
        "acked_by": None, "acked_at": None, "changes": 2}
    assert not bridge.tick(at(421)).deliveries and list(bridge.alerts) == ["a-1"]


def test_the_grace_time_counts_from_the_station_s_since_when_it_is_older() -> None:
    bridge = engine()
    old = FaultSeen("ST-9", "door", True, "open", Severity.CRITICAL, "door open", None, at(-600))
    bridge.observe(old, at(0))
    assert sends(bridge.tick(at(0)).deliveries) == [("a-1", SendKind.ALERT, CLARA)]  # no zone: the fallback (leads)


@pytest.mark.parametrize(("zone", "moment", "severity", "group"), [
    ("Altstadt Nord", at(0), Severity.CRITICAL, "crew-nord"),  # Monday 10:00 Berlin: day
    ("Altstadt Nord", datetime.fromisoformat("2026-12-07T21:30:00+00:00"), Severity.CRITICAL, "night"),  # 22:30
    ("Altstadt Nord", datetime.fromisoformat("2026-12-07T21:30:00+00:00"), Severity.WARNING, "crew-nord"),
    ("Altstadt Nord", datetime.fromisoformat("2026-12-08T04:59:00+00:00"), Severity.CRITICAL, "night"),  # 05:59
    ("Altstadt Nord", datetime.fromisoformat("2026-12-08T05:00:00+00:00"), Severity.CRITICAL, "crew-nord"),  # 06:00
    ("Hafen", at(0), Severity.WARNING, "leads"),
])
def test_routing_by_zone_severity_and_time_of_night(zone: str, moment: datetime, severity: Severity,
                                                    group: str) -> None:
    bridge = engine(grace_s=0)
    born(bridge, "ST-1", zone)
    bridge.observe(FaultSeen("ST-1", "printer", True, "jam", severity, "jam", "notice", moment), moment)
    bridge.tick(moment)
    assert [alert.group for alert in bridge.alerts.values()] == [group]


def test_weekend_and_weekday_windows_are_local() -> None:
    settings = rules(Path("/x.db"))
    from bridge.rules import When
    saturday_berlin = datetime.fromisoformat("2026-12-11T23:30:00+00:00")  # Saturday 00:30 in Berlin, Friday in UTC
    assert settings.window_holds(When.WEEKEND, saturday_berlin) and not settings.window_holds(When.WEEKDAY,
                                                                                               saturday_berlin)
    assert settings.window_holds(When.WEEKDAY, at(0)) and settings.window_holds(When.DAY, at(0))


def test_one_alert_per_problem_a_code_change_updates_it_without_a_send() -> None:
    bridge = engine()
    born(bridge, "ST-1", "Altstadt Nord")
    for _ in range(5):
        bridge.observe(terminal("ST-1", True), at(0))
    assert len(bridge.tick(at(120)).deliveries) == 3
    outcome = bridge.observe(terminal("ST-1", True, "not_ready", "not ready"), at(130))
    assert not outcome.deliveries and outcome.alerts["a-1"].title == "ST-1: card_terminal not_ready"
    assert bridge.alerts["a-1"].changes == 1 and not bridge.tick(at(131)).deliveries


def test_a_flapping_fault_is_one_alert_counting_its_raises_closed_after_a_quiet_window() -> None:
    bridge = engine()
    born(bridge, "ST-1", "Altstadt Nord")
    for minute in range(2):  # twice up for 10 s: inside the grace, nothing
        bridge.observe(terminal("ST-1", True), at(60 * minute))
        bridge.observe(terminal("ST-1", False), at(60 * minute + 10))
        assert not bridge.tick(at(60 * minute + 11)).deliveries
    bridge.observe(terminal("ST-1", True), at(120))  # the third raise in the window: alerted at once
    assert sends(bridge.tick(at(120)).deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    for minute in range(3, 10):
        bridge.observe(terminal("ST-1", False), at(60 * minute - 50))
        bridge.observe(terminal("ST-1", True), at(60 * minute))
        assert not bridge.tick(at(60 * minute + 1)).deliveries
    assert bridge.alerts["a-1"].changes == 10
    bridge.acknowledge(AckSeen("crew-ben", "a-1", None), at(590))
    bridge.observe(terminal("ST-1", False), at(600))
    assert not bridge.tick(at(600 + 899)).deliveries  # flapping: closed only after the whole quiet window
    outcome = bridge.tick(at(1500))
    assert sends(outcome.deliveries) == [("a-1", SendKind.RESOLVED, t) for t in CREW]
    assert outcome.alerts["a-1"].closed == at(1500) and not bridge.alerts


def test_a_fleet_wide_fault_is_one_alert_naming_its_stations_and_later_ones_join_it() -> None:
    bridge = engine()
    stations = [f"ST-{n:02}" for n in range(12)]
    for station in stations:
        born(bridge, station, "Altstadt Nord")
        bridge.observe(terminal(station, True), at(10))
    outcome = bridge.tick(at(130))
    assert sends(outcome.deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    fleet = bridge.alerts["a-1"]
    assert (fleet.problem, fleet.title, fleet.stations, fleet.zone) == (
        Problem.FLEET_FAULT, "card_terminal unreachable at 12 stations", stations, "Altstadt Nord")
    born(bridge, "ST-99", "Hafen")
    bridge.observe(terminal("ST-99", True), at(200))
    outcome = bridge.tick(at(400))
    assert not outcome.deliveries and fleet.stations == [*stations, "ST-99"] and fleet.zone is None
    assert fleet.title == "card_terminal unreachable at 13 stations" and len(bridge.alerts) == 1
    for station in stations[:6]:
        bridge.observe(terminal(station, False), at(500))
    assert not bridge.tick(at(1000)).deliveries and len(bridge.alerts) == 1  # still active at 7 stations


def test_escalation_once_per_level_and_acknowledgement_stops_it() -> None:
    bridge = engine()
    for station in ("ST-1", "ST-2"):
        born(bridge, station, "Altstadt Nord")
        bridge.observe(FaultSeen(station, "door", True, "open", Severity.CRITICAL, "door", None, at(0)), at(0))
    bridge.tick(at(120))
    bridge.acknowledge(AckSeen("crew-anna", "a-2", "on my way"), at(300))
    outcome = bridge.tick(at(120 + 900))
    assert sends(outcome.deliveries) == [("a-1", SendKind.ESCALATION, CLARA)]
    assert (bridge.alerts["a-1"].level, bridge.alerts["a-1"].group, bridge.alerts["a-1"].escalate_at) == (1, "leads", None)
    assert not bridge.tick(at(120 + 1800)).deliveries  # leads escalate to nobody
    acked = bridge.alerts["a-2"]
    assert (acked.state, acked.acked_by, acked.acked_at, acked.ack_note, acked.level) == (
        AlertState.ACKNOWLEDGED, "crew-anna", at(300), "on my way", 0)
    with pytest.raises(AckIgnored, match="crew-anna acknowledged already"):
        bridge.acknowledge(AckSeen("lead-clara", "a-2", None), at(301))
    with pytest.raises(AckIgnored, match="unknown or closed"):
        bridge.acknowledge(AckSeen("lead-clara", "a-404", None), at(301))
    bridge.observe(FaultSeen("ST-1", "door", False, None, Severity.WARNING, "", None, None), at(2000))
    outcome = bridge.tick(at(2120))  # the resolved message goes to everyone who got it, the escalation's group too
    assert sends(outcome.deliveries) == [("a-1", SendKind.RESOLVED, t) for t in [*CREW, CLARA]]


def test_a_lost_station_is_alerted_after_its_grace_naming_zone_and_since_and_stale_wills_are_ignored() -> None:
    bridge = engine()
    born(bridge, "ST-1", "Altstadt Nord", boot=200)
    bridge.observe(StatusSeen("ST-1", LinkState.LOST, 199, None), at(0))  # a will of an older connection
    assert not bridge.cases
    bridge.observe(StatusSeen("ST-1", LinkState.LOST, 200, None), at(10))
    assert not bridge.tick(at(309)).deliveries
    assert sends(bridge.tick(at(310)).deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    alert = bridge.alerts["a-1"]
    assert (alert.title, alert.message, alert.severity, alert.zone) == (
        "Station ST-1 lost", "Station ST-1 in zone Altstadt Nord has no connection to the broker since "
        "2026-12-07 10:00 CET.", Severity.CRITICAL, "Altstadt Nord")
    bridge.observe(StatusSeen("ST-1", LinkState.ONLINE, 201, "Altstadt Nord"), at(400))
    assert not bridge.tick(at(519)).deliveries
    assert sends(bridge.tick(at(520)).deliveries) == [("a-1", SendKind.RESOLVED, t) for t in CREW]


def test_an_unanswered_help_call_is_alerted_at_once_and_closes_when_taken() -> None:
    bridge = engine()
    bridge.observe(HelpSeen("ST-1", "t-1", True, False, "Altstadt Nord"), at(0))
    assert not bridge.tick(at(100)).deliveries
    bridge.observe(HelpSeen("ST-1", "t-1", True, True, "Altstadt Nord"), at(120))
    assert sends(bridge.tick(at(120)).deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    assert bridge.alerts["a-1"].payload()["code"] is None
    bridge.observe(HelpSeen("ST-1", "t-1", False, False, None), at(130))
    assert sends(bridge.tick(at(130)).deliveries) == [("a-1", SendKind.RESOLVED, t) for t in CREW]
