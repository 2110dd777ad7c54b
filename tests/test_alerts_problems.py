"""The alert bridge's judgement, pure (bridge/problems.py): grace, routing, coalescing, flapping, fleets, escalation."""
from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alerts_kit import START, rules

from bridge.messages import AckSeen, FaultSeen, HelpSeen, LinkState, StatusSeen
from bridge.model import AlertState, Channel, Delivery, Problem, RepairSeen, SendKind, Severity, Target
from bridge.problems import AckIgnored, Engine
from bridge.store import Store

ANNA, BEN = Target(Channel.EMAIL, "anna@example.org"), Target(Channel.EMAIL, "ben@example.org")
PHONES, CLARA = Target(Channel.WEBHOOK, "phones"), Target(Channel.EMAIL, "clara@example.org")
DESK = Target(Channel.WEBHOOK, "desk")
CREW = [ANNA, PHONES, BEN]


def engine(**bridge: Any) -> Engine:
    counter = itertools.count(1)
    return Engine(rules(Path("/nonexistent/alerts.db"), **bridge), new_id=lambda: f"a-{next(counter)}")


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def terminal(station: str, active: bool, code: str = "unreachable", message: str = "no answer",
             severity: Severity = Severity.CRITICAL, since: datetime = START) -> FaultSeen:
    return FaultSeen(station, "card_terminal", active, code, severity, message, "no_card_payment", since)


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


def test_the_grace_time_counts_from_when_the_bridge_saw_the_fault_whatever_the_station_s_clock_says() -> None:
    bridge = engine()
    late = FaultSeen("ST-9", "door", True, "open", Severity.CRITICAL, "door open", None, at(-3600))  # drained late
    ahead = FaultSeen("ST-8", "door", True, "open", Severity.CRITICAL, "door open", None, at(3600))  # clock ahead
    bridge.observe(late, at(0))
    bridge.observe(ahead, at(0))
    assert not bridge.tick(at(119)).deliveries and not bridge.alerts
    assert sends(bridge.tick(at(120)).deliveries) == [("a-1", SendKind.ALERT, CLARA), ("a-2", SendKind.ALERT, CLARA)]
    assert [(alert.stations, alert.since) for alert in bridge.alerts.values()] == [
        (["ST-8"], at(3600)), (["ST-9"], at(-3600))]  # the alert keeps the station's since (no zone: the leads)


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
    born(bridge, "ST-98", "Altstadt Süd")
    bridge.observe(terminal("ST-98", True), at(200))
    outcome = bridge.tick(at(400))
    assert not outcome.deliveries and fleet.stations == [*stations, "ST-98"] and fleet.zone is None
    assert fleet.title == "card_terminal unreachable at 13 stations" and len(bridge.alerts) == 1
    born(bridge, "ST-99", "Hafen")  # the harbour's route gives it to the leads: not the fleet's group, its own alert
    bridge.observe(terminal("ST-99", True), at(400))
    assert sends(bridge.tick(at(520)).deliveries) == [("a-2", SendKind.ALERT, CLARA)]
    assert bridge.alerts["a-2"].stations == ["ST-99"] and len(fleet.stations) == 13
    for station in stations[:6]:
        bridge.observe(terminal(station, False), at(500))
    assert not bridge.tick(at(619)).deliveries and len(fleet.stations) == 13
    outcome = bridge.tick(at(620))  # cleared for the grace: they leave it, it stays active at 7 stations
    assert not outcome.deliveries and fleet.stations == [*stations[6:], "ST-98"]
    assert fleet.title == "card_terminal unreachable at 7 stations" and "a-1" in bridge.alerts


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


def test_a_slowly_spreading_fault_becomes_one_fleet_alert_folding_the_early_station_s_own() -> None:
    bridge, deliveries = engine(fleet_threshold=5), []
    stations = [f"ST-{n:02}" for n in range(20)]
    for station in stations:
        born(bridge, station, "Altstadt Nord")
    for second in range(20 * 31 + 200):  # a station every 31 s; the bridge looks every second
        if second % 31 == 0 and second // 31 < 20:
            bridge.observe(terminal(stations[second // 31], True), at(second))
        deliveries += bridge.tick(at(second)).deliveries
    # ST-00 is due at 120 s with only 4 stations raised (0, 31, 62, 93 s): its own alert. At 151 s ST-01 is due and
    # 5 stations were raised within the fleet window (ST-04 at 124 s): one fleet alert that takes ST-00's alert over
    # (closed quietly: no resolved message); every later station joins it.
    assert sends(deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW] + [("a-2", SendKind.ALERT, t) for t in CREW]
    assert list(bridge.alerts) == ["a-2"]
    fleet = bridge.alerts["a-2"]
    assert (fleet.problem, fleet.stations, fleet.title, fleet.opened, fleet.changes) == (
        Problem.FLEET_FAULT, stations, "card_terminal unreachable at 20 stations", at(151), 1)
    assert fleet.message == "no answer It replaces the alerts a-1 (ST-00)."


def test_a_fleet_alert_takes_no_station_once_acknowledged_or_past_its_window() -> None:
    bridge = engine(fleet_threshold=3)
    for n in range(4):
        born(bridge, f"ST-{n}", "Altstadt Nord")
    for n in range(3):
        bridge.observe(terminal(f"ST-{n}", True), at(0))
    bridge.tick(at(120))
    bridge.acknowledge(AckSeen("crew-anna", "a-1", None), at(130))
    bridge.observe(terminal("ST-3", True), at(140))
    assert sends(bridge.tick(at(260)).deliveries) == [("a-2", SendKind.ALERT, t) for t in CREW]  # its own
    assert bridge.alerts["a-1"].stations == ["ST-0", "ST-1", "ST-2"]
    late = engine(fleet_threshold=3)
    for n in range(4):
        born(late, f"ST-{n}", "Altstadt Nord")
    for n in range(3):
        late.observe(terminal(f"ST-{n}", True), at(0))
    late.tick(at(120))
    late.observe(terminal("ST-3", True), at(601))  # 601 s after the fleet's last member was raised
    assert sends(late.tick(at(721)).deliveries) == [("a-2", SendKind.ALERT, t) for t in CREW]
    assert late.alerts["a-2"].stations == ["ST-3"] and late.alerts["a-1"].stations == ["ST-0", "ST-1", "ST-2"]


def test_flapping_is_per_station_a_fleet_of_single_raises_closes_after_the_grace() -> None:
    bridge = engine(fleet_threshold=5)
    for n in range(5):
        born(bridge, f"ST-{n}", "Altstadt Nord")
        bridge.observe(terminal(f"ST-{n}", True), at(0))
    bridge.tick(at(120))
    assert bridge.alerts["a-1"].changes == 1
    for n in range(5):
        bridge.observe(terminal(f"ST-{n}", False), at(200))
    assert not bridge.tick(at(319)).deliveries
    assert sends(bridge.tick(at(320)).deliveries) == [("a-1", SendKind.RESOLVED, t) for t in CREW]


def test_a_link_that_drops_and_returns_within_the_lost_grace_sends_nothing_however_often() -> None:
    bridge = engine()
    born(bridge, "ST-1", "Altstadt Nord", boot=7)
    for minute in range(0, 50, 5):  # lost for 4 minutes of every 5, ten times
        bridge.observe(StatusSeen("ST-1", LinkState.LOST, 7, None), at(60 * minute))
        assert not bridge.tick(at(60 * minute + 239)).deliveries
        bridge.observe(StatusSeen("ST-1", LinkState.ONLINE, 7, "Altstadt Nord"), at(60 * minute + 240))
    bridge.observe(StatusSeen("ST-1", LinkState.LOST, 7, None), at(3000))
    assert not bridge.tick(at(3299)).deliveries
    assert sends(bridge.tick(at(3300)).deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    assert bridge.alerts["a-1"].changes == 1


def test_a_fleet_member_whose_fault_changes_leaves_and_the_last_one_leaving_resolves_it() -> None:
    bridge = engine(fleet_threshold=3)
    for n in range(4):
        born(bridge, f"ST-{n}", "Altstadt Nord")
        bridge.observe(terminal(f"ST-{n}", True, severity=Severity.WARNING), at(0))
    bridge.tick(at(120))
    fleet = bridge.alerts["a-1"]
    outcome = bridge.observe(terminal("ST-0", True, "not_ready", severity=Severity.WARNING), at(200))
    assert not outcome.deliveries and fleet.stations == ["ST-1", "ST-2", "ST-3"]
    bridge.observe(terminal("ST-1", True, severity=Severity.CRITICAL), at(200))  # worse than the fleet: leaves
    bridge.observe(terminal("ST-2", True, severity=Severity.INFO, message="slow"), at(200))  # milder: stays
    assert fleet.stations == ["ST-2", "ST-3"] and fleet.title == "card_terminal unreachable at 2 stations"
    assert sends(bridge.tick(at(320)).deliveries) == [("a-2", SendKind.ALERT, t) for t in CREW] + [
        ("a-3", SendKind.ALERT, t) for t in CREW]  # each its own case again, alerted after the grace
    assert [(bridge.alerts[a].stations, bridge.alerts[a].code) for a in ("a-2", "a-3")] == [
        (["ST-0"], "not_ready"), (["ST-1"], "unreachable")]
    bridge.observe(terminal("ST-2", True, "not_ready", severity=Severity.INFO), at(400))
    assert fleet.stations == ["ST-3"]
    outcome = bridge.observe(terminal("ST-3", True, "not_ready", severity=Severity.WARNING), at(400))
    assert sends(outcome.deliveries) == [("a-1", SendKind.RESOLVED, t) for t in CREW]
    assert outcome.alerts["a-1"].closed == at(400) and outcome.alerts["a-1"].stations == ["ST-3"]


def test_a_re_imaged_station_s_lower_boot_counts_from_its_latest_birth() -> None:
    bridge = engine(lost_grace_s=0)
    born(bridge, "ST-1", "Altstadt Nord", boot=200)
    born(bridge, "ST-1", "Altstadt Nord", boot=5)  # re-imaged: its clock starts again
    bridge.observe(StatusSeen("ST-1", LinkState.LOST, 4, None), at(0))  # older than the latest birth: stale
    assert not bridge.cases
    bridge.observe(StatusSeen("ST-1", LinkState.LOST, 5, None), at(0))
    assert sends(bridge.tick(at(0)).deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    assert bridge.stations["ST-1"].boot == 5


def test_time_to_repair_is_by_the_station_s_clock_from_the_raise_to_its_clear_or_an_earlier_note(
        tmp_path: Path) -> None:
    bridge = engine()
    for station in ("ST-1", "ST-2"):
        born(bridge, station, "Altstadt Nord")
        bridge.observe(FaultSeen(station, "printer", True, "jam", Severity.WARNING, "jam", None, at(-60)), at(0))
    bridge.tick(at(120))
    bridge.observe(RepairSeen("ST-1", "printer", at(400), False), at(410))  # the crew's note, then the clear
    for station in ("ST-1", "ST-2"):
        bridge.observe(FaultSeen(station, "printer", False, None, Severity.WARNING, "", None, at(500)), at(700))
    outcome = bridge.tick(at(820))  # closed after the grace, by the bridge's clock
    assert [(a.stations, a.closed, a.repaired) for a in outcome.alerts.values()] == [
        (["ST-1"], at(820), at(400)), (["ST-2"], at(820), at(500))]
    with Store(tmp_path / "alerts.db") as store:
        store.apply(outcome, at(820))
        kept = [store.alert(alert_id) for alert_id in ("a-1", "a-2")]
    assert [(a.repaired, a.since) for a in kept if a] == [(at(400), at(-60)), (at(500), at(-60))]
    with closing(sqlite3.connect(tmp_path / "alerts.db")) as db:
        assert db.execute("SELECT repair_s FROM alerts ORDER BY id").fetchall() == [(460.0,), (560.0,)]


def test_a_regional_outage_is_one_fleet_lost_alert_and_a_station_s_own_faults_are_capped() -> None:
    bridge = engine(lost_grace_s=300, fleet_threshold=5)
    stations = [f"ST-{n}" for n in range(7)]
    for n, station in enumerate(stations):
        born(bridge, station, "Altstadt Nord")
        bridge.observe(StatusSeen(station, LinkState.LOST, 100, None), at(n))
    assert not bridge.tick(at(299)).deliveries
    assert sends(bridge.tick(at(306)).deliveries) == [("a-1", SendKind.ALERT, t) for t in CREW]
    outage = bridge.alerts["a-1"]
    assert (outage.problem, outage.title, outage.stations, outage.message) == (
        Problem.FLEET_LOST, "7 stations lost", stations,
        "Stations have no connection to the broker, the first since 2026-12-07 10:00 CET.")
    capped = engine(grace_s=0)
    born(capped, "ST-1", "Altstadt Nord")
    for component in ("a", "b", "c", "d", "e", "f", "g"):
        capped.observe(FaultSeen("ST-1", component, True, "broken", Severity.WARNING, "x", None, at(0)), at(0))
    assert len(capped.tick(at(0)).deliveries) == 6 * 3
    summary = capped.alerts["a-6"]
    assert (summary.title, summary.component, summary.code, summary.message) == (
        "ST-1: 2 more faults", None, None,
        "ST-1 has more than 5 faults at once; these have no alert of their own: f broken; g broken.")
    capped.observe(FaultSeen("ST-1", "f", False, None, Severity.WARNING, "", None, at(10)), at(10))
    capped.tick(at(10))
    assert capped.alerts["a-6"].title == "ST-1: 1 more faults"
