"""The console's alerts: coalescing, acknowledgement, night repeats, escalation and bounds (console.alerts)."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.alerts import (
    KEPT_SUMMARIES,
    AlertDesk,
    AlertKind,
    AlertSettings,
    AlertSettingsError,
    CallState,
    Notice,
    Severity,
    Signal,
)

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)  # 11:00 in Berlin: day
FAULT, CALL, LOST, ESCALATED = (AlertKind.CRITICAL_FAULT, AlertKind.NEW_CALL, AlertKind.STATION_LOST,
                                AlertKind.CALL_ESCALATED)
UNREACHABLE, DOOR = "card_terminal/unreachable", "door/open"


def s(seconds: float) -> timedelta:
    """A duration in seconds."""
    return timedelta(seconds=seconds)


def berlin(year: int, month: int, day: int, hour: int, minute: int, second: int = 0, fold: int = 0) -> datetime:
    """A wall-clock time in Berlin (``fold=1``: the second of a time the autumn shows twice)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN, fold=fold)


def signal(kind: AlertKind, station: str, subject: str | None = None, at: datetime = T0, detail: str = "") -> Signal:
    """A signal, by default a critical fault at T0."""
    return Signal(kind, station, subject, detail, at)


def one(notices: list[Notice]) -> Notice:
    """The only notice."""
    assert len(notices) == 1, notices
    return notices[0]


# ---- coalescing ----

def test_the_issues_burst_becomes_one_notice_with_exact_figures() -> None:
    desk = AlertDesk(tz=BERLIN)
    stations = [f"ST-{n}" for n in range(1, 10)]
    for n, station in enumerate(stations):
        desk.add(signal(FAULT, station, UNREACHABLE, T0 + s(0.1 * n), f"terminal at {station} silent"))
    for station in stations[:3]:  # three of them clear and raise it again within the window
        assert desk.resolve(FAULT, station, UNREACHABLE)
        desk.add(signal(FAULT, station, UNREACHABLE, T0 + s(1.5)))
    assert desk.due(T0 + s(1.999)) == []
    notice = one(desk.due(T0 + s(2)))
    assert notice == Notice(
        id="A1", kind=FAULT, title="12 new critical faults: card_terminal/unreachable at 9 stations",
        message="ST-1, ST-2, ST-3, ST-4, ST-5 and 4 more", stations=tuple(stations), count=12, active=9, rings=True,
        severity=Severity.ERROR, first_at=T0, last_at=T0 + s(1.5))
    assert desk.unacknowledged == 1
    assert desk.due(T0 + s(600)) == []  # by day nothing repeats


def test_two_hundred_fault_changes_in_a_second_become_two_notices() -> None:
    desk = AlertDesk(tz=BERLIN)
    for change in range(200):  # 20 rounds of 10 stations; each round flips every station's fault
        rnd, n = divmod(change, 10)
        station, subject = (f"ST-{n + 1}", UNREACHABLE) if n < 9 else ("ST-10", DOOR)
        if rnd % 2:
            desk.add(signal(FAULT, station, subject, T0 + s(0.005 * change), f"{subject} at {station}"))
        else:
            desk.resolve(FAULT, station, subject)
    assert desk.due(T0 + s(2.049)) == []  # the first raise came at 0.05 s (round 1)
    terminal, door = desk.due(T0 + s(2.095))  # door/open at ST-10 first came at 0.095 s
    assert (terminal.title, terminal.count, terminal.active, terminal.rings) == (
        "90 new critical faults: card_terminal/unreachable at 9 stations", 90, 9, True)
    assert (door.title, door.message, door.stations, door.count) == (
        "10 new critical faults: door/open at ST-10", "door/open at ST-10", ("ST-10",), 10)
    assert desk.due(T0 + s(10)) == []


def test_past_the_cap_the_rest_is_one_summary_that_acknowledges_them_all() -> None:
    desk = AlertDesk(tz=BERLIN)
    subjects = [f"storage/code{n:02}" for n in range(11)]
    for n, subject in enumerate(subjects):
        desk.add(signal(FAULT, "ST-1", subject, T0 + s(0.01 * n)))
    desk.add(signal(LOST, "ST-7", None, T0 + s(0.5), "ST-7 lost its connection to the broker."))
    desk.add(signal(CALL, "ST-3", "T-1", T0 + s(0.7), "A parker at ST-3 asks for help."))
    notices = desk.due(T0 + s(3))
    assert [(n.id, n.title) for n in notices] == [
        ("A13", "1 new call at ST-3"),
        ("A12", "Station ST-7 lost"),
        ("A1", "1 new critical fault: storage/code00 at ST-1"),
        ("A2", "1 new critical fault: storage/code01 at ST-1"),
        ("S14", "9 more alerts"),
    ]
    summary = notices[-1]
    assert summary.message == ("1 new critical fault: storage/code02 at ST-1; 1 new critical fault: storage/code03 at "
                               "ST-1; 1 new critical fault: storage/code04 at ST-1; 1 new critical fault: storage/code05"
                               " at ST-1; 1 new critical fault: storage/code06 at ST-1; and 4 more")
    assert (summary.kind, summary.stations, summary.count, summary.active, summary.rings, summary.severity) == (
        None, ("ST-1",), 9, 9, True, Severity.ERROR)
    assert notices[0].message == "A parker at ST-3 asks for help." and notices[0].severity == Severity.WARNING
    assert desk.unacknowledged == 13
    assert desk.acknowledge(summary.id) == 9
    assert desk.acknowledge(summary.id) == 0
    assert [n.id for n in desk.open_notices()] == ["A13", "A12", "A2", "A1"]


def test_a_window_gathers_until_due_sees_it_closed_and_new_stations_open_the_next() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR, T0, "Door opened outside service mode"))
    desk.add(signal(FAULT, "ST-2", DOOR, T0 + s(5), "Door opened outside service mode"))  # due() not called meanwhile
    first = one(desk.due(T0 + s(6)))
    assert (first.title, first.message, first.rings) == (
        "2 new critical faults: door/open at 2 stations", "ST-1, ST-2", True)
    desk.add(signal(FAULT, "ST-1", DOOR, T0 + s(7)))  # a duplicate: counted, not rung
    assert desk.due(T0 + s(20)) == []
    assert one(desk.open_notices()).count == 3
    desk.add(signal(FAULT, "ST-3", DOOR, T0 + s(30), "Door opened outside service mode"))
    assert desk.due(T0 + s(31.9)) == []
    third = one(desk.due(T0 + s(32)))
    assert (third.id, third.title, third.message, third.count, third.rings) == (
        "A1", "4 new critical faults: door/open at 3 stations", "ST-1, ST-2, ST-3", 4, True)


def test_raised_and_cleared_within_the_window_is_told_without_ringing() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR, T0, "Door opened outside service mode"))
    desk.resolve(FAULT, "ST-1", DOOR)
    notice = one(desk.due(T0 + s(2)))
    assert (notice.title, notice.message, notice.rings, notice.severity, notice.active) == (
        "1 new critical fault: door/open at ST-1", "Door opened outside service mode (cleared)", False,
        Severity.INFORMATION, 0)
    assert desk.unacknowledged == 0
    assert [n.id for n in desk.open_notices()] == ["A1"]  # listed until acknowledged


def test_a_newcomer_cleared_in_its_window_does_not_ring_for_the_older_station() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR))
    assert one(desk.due(T0 + s(2))).rings
    desk.add(signal(FAULT, "ST-2", DOOR, T0 + s(10)))
    desk.resolve(FAULT, "ST-2", DOOR)
    notice = one(desk.due(T0 + s(12)))
    assert (notice.message, notice.rings, notice.severity) == ("ST-1, ST-2 (1 cleared)", False, Severity.ERROR)


def test_the_clock_stepping_back_closes_the_window() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(LOST, "ST-1"))
    assert one(desk.due(T0 - timedelta(hours=1))).title == "Station ST-1 lost"
    night = AlertDesk(tz=BERLIN)
    night.add(signal(LOST, "ST-1", None, berlin(2026, 1, 14, 23, 0)))
    night.due(berlin(2026, 1, 14, 23, 0, 2))
    assert night.due(berlin(2026, 1, 14, 22, 30)) == []  # stepped back: repeats count from here
    assert night.due(berlin(2026, 1, 14, 22, 34, 59)) == []
    assert one(night.due(berlin(2026, 1, 14, 22, 35))).repeat


def test_refusals_and_lost_races_are_shown_once_at_the_next_due_without_ringing() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(AlertKind.ACCEPT_TAKEN, "ST-1", "T-1", T0, "ben took the ticket at ST-1."))
    desk.add(signal(AlertKind.REFUSED, "ST-2", "T-2", T0, "busy"))
    refused, taken = desk.due(T0)
    assert (refused.title, refused.message, refused.rings, refused.severity) == (
        "1 request refused at ST-2", "busy", False, Severity.WARNING)
    assert taken.title == "1 call taken by a colleague at ST-1"
    assert desk.unacknowledged == 0 and desk.open_notices() == [] and desk.due(T0 + s(1)) == []


def test_calls_and_lost_stations_read_as_agents_speak() -> None:
    desk = AlertDesk(tz=BERLIN)
    for n in range(3):
        desk.add(signal(CALL, f"ST-{n + 1}", f"T-{n}", T0))
        desk.add(signal(LOST, f"ST-{n + 4}", None, T0))
    desk.add(signal(CALL, "ST-1", "T-9", T0 + s(1)))  # a second ticket at ST-1 is a new call
    calls, lost = desk.due(T0 + s(2))
    assert (calls.title, calls.message, calls.count) == ("4 new calls at 3 stations", "ST-1, ST-2, ST-3", 4)
    assert (lost.title, lost.severity) == ("3 stations lost", Severity.ERROR)
    desk.resolve(LOST, "ST-4", None)
    desk.add(signal(LOST, "ST-4", None, T0 + s(5)))  # lost again, unacknowledged: a duplicate
    assert desk.due(T0 + s(9)) == []
    assert [(n.title, n.message) for n in desk.open_notices()] == [  # newest first: the lost alert opened second
        ("3 stations lost", "ST-4, ST-5, ST-6"), ("4 new calls at 3 stations", "ST-1, ST-2, ST-3")]


# ---- acknowledgement ----

def test_acknowledge_one_or_all_and_the_counter() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR))
    desk.add(signal(LOST, "ST-2"))
    lost, door = desk.due(T0 + s(2))
    assert (lost.id, door.id) == ("A2", "A1")
    desk.add(signal(FAULT, "ST-3", UNREACHABLE, T0 + s(3)))  # still gathering
    assert desk.unacknowledged == 3
    assert desk.acknowledge("A99") == 0
    assert desk.acknowledge(door.id) == 1 and desk.unacknowledged == 2
    assert desk.acknowledge(door.id) == 0
    assert desk.acknowledge(None) == 1  # the lost station; the gathering one is not seen yet
    assert [n.title for n in desk.open_notices()] == ["1 new critical fault: card_terminal/unreachable at ST-3"]
    assert one(desk.due(T0 + s(5))).rings
    assert desk.acknowledge(None) == 1 and desk.unacknowledged == 0 and desk.open_notices() == []
    desk.add(signal(FAULT, "ST-1", DOOR, T0 + s(10)))  # after acknowledgement the same fault rings anew
    assert one(desk.due(T0 + s(12))).rings


def test_resolving_everything_leaves_the_counter_but_not_the_list() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(LOST, "ST-1", None, T0, "ST-1 lost its connection to the broker."))
    desk.due(T0 + s(2))
    assert desk.resolve(LOST, "ST-1", None) and not desk.resolve(LOST, "ST-1", None)
    assert not desk.resolve(LOST, "ST-9", None) and not desk.resolve(FAULT, "ST-1", DOOR)
    assert desk.unacknowledged == 0
    listed = one(desk.open_notices())
    assert (listed.message, listed.severity, listed.active, listed.rings) == (
        "ST-1 lost its connection to the broker. (back online)", Severity.INFORMATION, 0, False)
    assert desk.acknowledge(None) == 1


# ---- night repeats ----

def test_night_repeats_cross_midnight_until_acknowledged() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR, berlin(2026, 1, 14, 23, 57, 58), "Door opened outside service mode"))
    assert one(desk.due(berlin(2026, 1, 14, 23, 58))).repeat is False
    assert desk.due(berlin(2026, 1, 15, 0, 2, 59)) == []
    again = one(desk.due(berlin(2026, 1, 15, 0, 3)))
    assert (again.id, again.repeat, again.rings, again.message) == (
        "A1", True, True, "Unacknowledged since 23:57. Door opened outside service mode")
    assert desk.due(berlin(2026, 1, 15, 0, 7, 59)) == []  # at most one per repeat_s
    assert one(desk.due(berlin(2026, 1, 15, 0, 8))).repeat
    assert one(desk.due(berlin(2026, 1, 15, 5, 59, 59))).repeat
    assert desk.due(berlin(2026, 1, 15, 6, 0)) == []  # day
    assert desk.due(berlin(2026, 1, 15, 21, 59, 59)) == []
    assert one(desk.due(berlin(2026, 1, 15, 22, 0))).repeat  # the next night, at once
    assert desk.acknowledge("A1") == 1
    assert desk.due(berlin(2026, 1, 15, 23, 0)) == []


def test_resolve_stops_the_repeats() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR, berlin(2026, 1, 14, 23, 0)))
    desk.add(signal(FAULT, "ST-2", DOOR, berlin(2026, 1, 14, 23, 0)))
    assert one(desk.due(berlin(2026, 1, 14, 23, 0, 2))).rings
    desk.resolve(FAULT, "ST-1", DOOR)
    assert one(desk.due(berlin(2026, 1, 14, 23, 5, 2))).message == "Unacknowledged since 23:00. ST-1, ST-2 (1 cleared)"
    desk.resolve(FAULT, "ST-2", DOOR)
    assert desk.due(berlin(2026, 1, 14, 23, 30)) == []
    desk.add(signal(FAULT, "ST-2", DOOR, berlin(2026, 1, 14, 23, 31)))  # back: a duplicate, rung as a repeat
    assert one(desk.due(berlin(2026, 1, 14, 23, 31, 1))).repeat  # last shown 23:05:02, over repeat_s ago
    assert desk.due(berlin(2026, 1, 14, 23, 36, 0)) == []
    assert one(desk.due(berlin(2026, 1, 14, 23, 36, 1))).repeat


def test_no_repeats_when_turned_off_or_for_shown_once_kinds() -> None:
    desk = AlertDesk(AlertSettings(repeat_s=None), tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR, berlin(2026, 1, 14, 23, 0)))
    desk.due(berlin(2026, 1, 14, 23, 0, 2))
    assert desk.due(berlin(2026, 1, 15, 1, 0)) == []


@pytest.mark.parametrize("shown, quiet, rung", [
    # spring forward: 02:00 CET becomes 03:00 CEST; 01:58 -> 03:01 is 3 minutes, not 63
    (berlin(2026, 3, 29, 1, 58), berlin(2026, 3, 29, 3, 2, 59), berlin(2026, 3, 29, 3, 3)),
    # fall back: 03:00 CEST becomes 02:00 CET; 02:58 CEST -> 02:02 CET is 4 minutes, not -56
    (berlin(2026, 10, 25, 2, 58), berlin(2026, 10, 25, 2, 2, 59, fold=1), berlin(2026, 10, 25, 2, 3, fold=1)),
])
def test_repeats_count_real_seconds_across_daylight_saving(shown: datetime, quiet: datetime, rung: datetime) -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(LOST, "ST-1", None, shown - s(2)))
    assert one(desk.due(shown)).rings
    assert desk.due(quiet) == []
    assert one(desk.due(rung)).repeat


def test_night_is_local_wall_time_in_winter_and_in_summer() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(LOST, "ST-1", None, datetime(2026, 1, 14, 3, 0, tzinfo=UTC)))
    desk.add(signal(LOST, "ST-2", None, datetime(2026, 7, 14, 3, 0, tzinfo=UTC)))
    desk.due(datetime(2026, 1, 14, 3, 0, 2, tzinfo=UTC))
    assert one(desk.due(datetime(2026, 1, 14, 4, 30, tzinfo=UTC))).repeat  # 05:30 CET: night
    desk.due(datetime(2026, 7, 14, 3, 0, 2, tzinfo=UTC))
    assert desk.due(datetime(2026, 7, 14, 4, 30, tzinfo=UTC)) == []  # 06:30 CEST: day


def test_a_night_that_does_not_cross_midnight() -> None:
    desk = AlertDesk(AlertSettings(night_start=time(0, 30), night_end=time(5, 0)), tz=BERLIN)
    desk.add(signal(LOST, "ST-1", None, berlin(2026, 1, 14, 23, 0)))
    desk.due(berlin(2026, 1, 14, 23, 0, 2))
    assert desk.due(berlin(2026, 1, 15, 0, 29)) == []
    assert one(desk.due(berlin(2026, 1, 15, 0, 30))).repeat
    assert desk.due(berlin(2026, 1, 15, 5, 0)) == []


# ---- escalation ----

def waiting(ticket: str = "T-1", station: str = "ST-1", opened: datetime = T0, overdue: bool = False) -> CallState:
    """A ticket nobody accepted yet."""
    return CallState(ticket, station, opened, True, overdue)


def test_a_call_nobody_accepts_escalates_once() -> None:
    desk = AlertDesk(tz=BERLIN)
    assert desk.escalations([waiting()], T0 + s(59.9)) == []
    assert desk.escalations([waiting()], T0 + s(60)) == [
        Signal(ESCALATED, "ST-1", "T-1", "Nobody accepted the call at ST-1 within 60 s.", T0 + s(60))]
    assert desk.escalations([waiting()], T0 + s(61)) == []
    assert desk.escalations([waiting()], T0 + s(3600)) == []


def test_an_overdue_call_escalates_at_once_and_every_console_escalates() -> None:
    consoles = [AlertDesk(tz=BERLIN), AlertDesk(tz=BERLIN)]
    calls = [waiting("T-1", overdue=True), waiting("T-2", "ST-2", T0 + s(5)),
             CallState("T-3", "ST-3", T0 - s(600), False, True)]  # connected: nothing to escalate
    for desk in consoles:
        [escalation] = desk.escalations(calls, T0 + s(10))
        assert escalation == Signal(ESCALATED, "ST-1", "T-1", "The call at ST-1 is overdue: the station told the "
                                    "parker nobody answered in time.", T0 + s(10))
        desk.add(escalation)
        assert one(desk.due(T0 + s(12))).title == "1 call waiting too long at ST-1"


def test_waiting_time_is_real_time_across_daylight_saving() -> None:
    desk = AlertDesk(AlertSettings(escalate_after_s=150), tz=BERLIN)
    opened = berlin(2026, 3, 29, 1, 59)
    assert desk.escalations([waiting(opened=opened)], berlin(2026, 3, 29, 3, 1, 29)) == []
    assert desk.escalations([waiting(opened=opened)], berlin(2026, 3, 29, 3, 1, 30))[0].detail == (
        "Nobody accepted the call at ST-1 within 2 min 30 s.")


def test_an_answered_or_vanished_call_resolves_its_alerts() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(CALL, "ST-1", "T-1", T0))
    desk.add(signal(CALL, "ST-2", "T-2", T0))
    for escalation in desk.escalations([waiting(), waiting("T-2", "ST-2")], T0 + s(60)):
        desk.add(escalation)
    assert len(desk.due(T0 + s(62))) == 2 and desk.unacknowledged == 2
    desk.escalations([CallState("T-1", "ST-1", T0, False, False)], T0 + s(63))  # T-1 accepted, T-2 gone
    assert desk.unacknowledged == 0
    assert [(n.title, n.message) for n in desk.open_notices()] == [
        ("2 calls waiting too long at 2 stations", "ST-1, ST-2 (2 answered)"),
        ("2 new calls at 2 stations", "ST-1, ST-2 (2 answered)")]


# ---- bounds ----

def test_a_station_flapping_forever_holds_no_more_memory() -> None:
    desk = AlertDesk(tz=BERLIN)
    desk.add(signal(FAULT, "ST-1", DOOR))
    desk.due(T0 + s(2))
    held = desk.held
    for n in range(5000):
        desk.resolve(FAULT, "ST-1", DOOR)
        desk.add(signal(FAULT, "ST-1", DOOR, T0 + s(3 + n)))
        assert desk.due(T0 + s(3.5 + n)) == []
    assert desk.held == held
    assert one(desk.open_notices()).count == 5001


def test_parts_and_open_alerts_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    desk = AlertDesk(AlertSettings(max_parts=3, max_open=2), tz=BERLIN)
    for n in range(5):
        desk.add(signal(CALL, f"ST-{n}", f"T-{n}", T0))
        if n == 1:
            desk.resolve(CALL, "ST-1", "T-1")
    assert one(desk.open_notices()).stations == ("ST-2", "ST-3", "ST-4")  # the answered call went first, then ST-0
    desk.add(signal(LOST, "ST-9"))
    desk.add(signal(FAULT, "ST-9", DOOR))  # a third alert: the least pressing goes
    assert desk.evicted == 1
    with caplog.at_level(logging.WARNING, logger="console.alerts"):
        desk.due(T0 + s(2))
        desk.due(T0 + s(3))
    assert caplog.messages == ["1 alerts dropped: more than 2 were open (acknowledge some)"]


def test_a_fleet_wide_fault_is_one_notice() -> None:
    desk = AlertDesk(tz=BERLIN)
    for n in range(20_000):
        desk.add(signal(FAULT, f"ST-{n % 5000:04}", UNREACHABLE, T0 + s(n / 20_000)))
    notice = one(desk.due(T0 + s(2)))
    assert (notice.title, len(notice.stations), notice.message) == (
        "20000 new critical faults: card_terminal/unreachable at 5000 stations", 5000,
        "ST-0000, ST-0001, ST-0002, ST-0003, ST-0004 and 4995 more")


SMALL = AlertSettings(coalesce_s=2, repeat_s=5, night_start=time(0, 0), night_end=time(23, 59), max_open=4,
                      max_notices=3, named=2, max_parts=3)
STATIONS = st.sampled_from(["ST-1", "ST-2", "ST-3", "ST-4", "ST-5"])
SUBJECTS = st.sampled_from([None, DOOR, UNREACHABLE, "T-1", "T-2", "storage/full"])
OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.sampled_from(list(AlertKind)), STATIONS, SUBJECTS),
    st.tuples(st.just("resolve"), st.sampled_from(list(AlertKind)), STATIONS, SUBJECTS),
    st.tuples(st.just("due"), st.floats(-10, 400)),
    st.tuples(st.just("ack"), st.none() | st.sampled_from(["A1", "A2", "A3", "A5", "S4", "S6"])),
    st.tuples(st.just("calls"), st.lists(st.tuples(st.sampled_from(["T-1", "T-2", "T-3"]), STATIONS, st.booleans(),
                                                   st.booleans()), max_size=3)),
), max_size=80)


@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_any_stream_keeps_the_counters_and_the_bounds(ops: list[tuple[Any, ...]]) -> None:
    desk = AlertDesk(SMALL, tz=BERLIN)
    now = T0
    for op, *args in ops:
        if op == "add":
            desk.add(signal(args[0], args[1], args[2], now))
        elif op == "resolve":
            desk.resolve(args[0], args[1], args[2])
        elif op == "due":
            now += s(args[0])
            notices = desk.due(now)
            assert len(notices) <= SMALL.max_notices
            assert all(n.kind is None or n.rings <= (n.kind in (FAULT, CALL, LOST, ESCALATED)) for n in notices)
        elif op == "ack":
            assert desk.acknowledge(args[0]) >= 0
        else:
            for escalation in desk.escalations([CallState(t, station, T0, w, o) for t, station, w, o in args[0]], now):
                desk.add(escalation)
        listed = desk.open_notices()
        assert desk.unacknowledged <= len(listed) <= SMALL.max_open
        assert desk.unacknowledged == sum(1 for n in listed if n.active)
        assert all(1 <= len(n.stations) <= SMALL.max_parts and n.active <= SMALL.max_parts for n in listed)
        assert desk.held <= SMALL.max_open * (1 + 4 * SMALL.max_parts) + KEPT_SUMMARIES + 2 * 3


# ---- settings and inputs ----

def test_bad_settings_are_refused_with_every_reason() -> None:
    with pytest.raises(AlertSettingsError) as refused:
        AlertSettings(coalesce_s=-1, repeat_s=0, escalate_after_s=float("nan"), night_start=time(6, 0),
                      night_end=time(6, 0), max_open=0, max_notices=1, named=True, max_parts=2.5)  # type: ignore[arg-type]
    assert str(refused.value) == (
        "coalesce_s must be 0 to 60 seconds, got -1; repeat_s must be None or 1 to 86400 seconds, got 0; "
        "escalate_after_s must be 1 to 86400 seconds, got nan; night_start and night_end must differ "
        "(repeat_s=None turns repeats off); max_open must be a whole number of at least 1, got 0; max_notices must be "
        "a whole number of at least 2, got 1; named must be a whole number of at least 1, got True; max_parts must be a"
        " whole number of at least 1, got 2.5")


@pytest.mark.parametrize("options, reason", [
    ({"coalesce_s": "2"}, "coalesce_s"),
    ({"repeat_s": float("inf")}, "repeat_s"),
    ({"night_end": "06:00"}, "night_end must be a local datetime.time"),
    ({"night_start": time(22, 0, tzinfo=UTC)}, "night_start must be a local datetime.time"),
])
def test_each_bad_setting_is_named(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(AlertSettingsError, match=reason):
        AlertSettings(**options)


def test_naive_times_and_bad_signals_are_programming_errors() -> None:
    desk = AlertDesk(tz=BERLIN)
    with pytest.raises(ValueError, match="at must be a timezone-aware datetime"):
        signal(FAULT, "ST-1", DOOR, datetime(2026, 1, 14, 10, 0))
    with pytest.raises(ValueError, match="station must be a non-empty string"):
        signal(FAULT, "", DOOR)
    with pytest.raises(ValueError, match="kind must be an AlertKind"):
        Signal("critical_fault", "ST-1", DOOR, "", T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        desk.due(datetime(2026, 1, 14, 10, 0))
    with pytest.raises(ValueError, match="opened must be a timezone-aware datetime"):
        waiting(opened=datetime(2026, 1, 14, 10, 0))
