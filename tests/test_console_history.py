"""The console's history: exact help figures and fault periods from known events, CSV bytes, damage, kills, fuzz."""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import command as console_command
from console.history import HISTORY_TOPICS, SCHEMA_VERSION, History, HistoryUnusable
from console.metrics import CallRecord, FaultPeriod, Grouping, HelpMetrics, RepairStats, VoiceFigures, p90
from kiosk import sqlite_file

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
ST1, ST2 = "ST-1", "ST-2"
Message = tuple[str, bytes]


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    """A time as stations write it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(station: str, kind: str, seconds: float, data: dict[str, Any], event_id: str | None = None,
          seq: int = 1) -> Message:
    """An ``event/{kind}`` of ``station`` at T0 + ``seconds``; its id is derived from its content unless given."""
    content = f"{station} {kind} {seconds} {json.dumps(data, sort_keys=True)}"
    envelope = {"id": event_id or hashlib.sha256(content.encode()).hexdigest()[:32],
                "series": "series-1", "seq": seq, "boot": 1, "ts": iso(at(seconds)), "kind": kind, "data": data}
    return f"paystation/v1/{station}/event/{kind}", json.dumps(envelope).encode()


def help_event(station: str, seconds: float, ticket: str, action: str, **data: Any) -> Message:
    """An ``event/help`` step."""
    return event(station, "help", seconds, {"ticket": ticket, "action": action, **data})


def close(station: str, seconds: float, ticket: str, outcome: str, agent: str | None, to_accept: float | None,
          to_resolve: float, **more: Any) -> Message:
    """A ``close`` step with the ticket's figures, as the station writes it."""
    return help_event(station, seconds, ticket, "close", state="closed", outcome=outcome, agent=agent, text="",
                      presses=1, time_to_accept_s=to_accept, time_to_resolve_s=to_resolve, **more)


def feedback(station: str, seconds: float, rating: int, session: str, ticket: str | None = None) -> Message:
    """An ``event/feedback``; without ``ticket`` as a station from before ratings named the journey's help call."""
    return event(station, "feedback", seconds,
                 {"rating": rating, "session_id": session, **({} if ticket is None else {"ticket": ticket})})


def fault_event(station: str, seconds: float, component: str, code: str, active: bool, message: str = "m",
                severity: str = "critical", impact: str = "none") -> Message:
    """An ``event/fault``."""
    return event(station, "fault", seconds, {"component": component, "code": code, "severity": severity,
                                             "message": message, "parker_impact": impact, "active": active})


def retained_fault(station: str, component: str, code: str, active: bool, since: datetime, message: str = "m",
                   severity: str = "critical", impact: str = "none") -> Message:
    """A retained ``fault/{component}``."""
    payload = {"active": active, "code": code, "severity": severity, "since": iso(since), "message": message,
               "parker_impact": impact}
    return f"paystation/v1/{station}/fault/{component}", json.dumps(payload).encode()


# ---- the known sequence -----------------------------------------------------------------------------------------

SEQUENCE: list[Message] = [
    # ST-1: t1 solved by ana, t2 courtesy by ana, t3 abandoned unaccepted, t4 cancelled unaccepted (abandoned),
    # t5 accepted by ben then cancelled by the parker (neither resolved nor abandoned)
    help_event(ST1, 0, "t1", "open", state="waiting", context={"plate": "B-AB-1", "screen": "payment", "zone": "Nord"}),
    help_event(ST1, 20, "t1", "accept", state="connected", agent="ana"),
    close(ST1, 200, "t1", "solved", "ana", 20, 200),
    help_event(ST1, 1000, "t2", "open", state="waiting", context={}),
    help_event(ST1, 1040, "t2", "accept", state="connected", agent="ana"),
    close(ST1, 1300, "t2", "courtesy", "ana", 40, 300),
    help_event(ST1, 2000, "t3", "open", state="waiting"),
    close(ST1, 2600, "t3", "abandoned", None, None, 600),
    help_event(ST1, 3000, "t4", "open", state="waiting"),
    close(ST1, 3030, "t4", "cancelled_by_parker", "", None, 30),
    help_event(ST1, 4000, "t5", "open", state="waiting"),
    help_event(ST1, 4010, "t5", "accept", state="connected", agent="ben"),
    close(ST1, 4090, "t5", "cancelled_by_parker", "ben", 10, 90),
    # ST-2: t6 technician by ben, t7 no_answer by ana without accepting, t8 accepted by ana and closed at a
    # restart (no figures in that close), t9 still open
    help_event(ST2, 100, "t6", "accept", state="connected", agent="ben"),
    close(ST2, 440, "t6", "technician", "ben", 60, 400,
          voice={"calls": 1, "answer_s": 12, "talk_s": 80, "outcome": "answered"}),
    close(ST2, 1120, "t7", "no_answer", "ana", None, 120),
    help_event(ST2, 2000, "t8", "open", state="waiting"),
    help_event(ST2, 2030, "t8", "accept", state="connected", agent="ana"),
    help_event(ST2, 9000, "t8", "close", outcome="superseded_at_restart"),
    help_event(ST2, 9500, "t9", "open", state="waiting", context={"plate": "M-X-9"}),
    # ratings: ST-1 5 (after t1: ana), 4 (after t2: ana), 4 (after t5: ben); ST-2 1 (after t6: ben), 3 (a station
    # from before ratings named their call)
    feedback(ST1, 500, 5, "s1", "t1"), feedback(ST1, 1500, 4, "s2", "t2"), feedback(ST1, 4200, 4, "s3", "t5"),
    feedback(ST2, 600, 1, "s4", "t6"), feedback(ST2, 1200, 3, "s5"),
]
EXPECTED_STATIONS = [
    HelpMetrics(ST1, calls=5, accepted=3, resolved=2, abandoned=2, resolution_rate=0.4, accept_median_s=20.0,
                accept_p90_s=40.0, resolve_median_s=250.0, resolve_p90_s=300.0, ratings=(0, 0, 0, 2, 1),
                csat_average=13 / 3),
    HelpMetrics(ST2, calls=3, accepted=2, resolved=2, abandoned=0, resolution_rate=2 / 3, accept_median_s=60.0,
                accept_p90_s=60.0, resolve_median_s=260.0, resolve_p90_s=400.0, ratings=(1, 0, 1, 0, 0),
                csat_average=2.0),
]
EXPECTED_AGENTS = [
    HelpMetrics("ana", calls=4, accepted=3, resolved=3, abandoned=0, resolution_rate=0.75, accept_median_s=30.0,
                accept_p90_s=40.0, resolve_median_s=200.0, resolve_p90_s=300.0, ratings=(0, 0, 0, 1, 1),
                csat_average=4.5),
    HelpMetrics("ben", calls=2, accepted=2, resolved=1, abandoned=0, resolution_rate=0.5, accept_median_s=35.0,
                accept_p90_s=60.0, resolve_median_s=400.0, resolve_p90_s=400.0, ratings=(1, 0, 0, 1, 0),
                csat_average=2.5),
]
EXPECTED_ALL = [
    HelpMetrics(None, calls=8, accepted=5, resolved=4, abandoned=2, resolution_rate=0.5, accept_median_s=30.0,
                accept_p90_s=60.0, resolve_median_s=250.0, resolve_p90_s=400.0, ratings=(1, 0, 1, 2, 1),
                csat_average=3.4),
]
MALFORMED: list[Message] = [
    ("paystation/v1/ST-1/event/help", b"not json"),
    ("paystation/v1/ST-1/event/help", json.dumps({"id": "x1", "ts": iso(T0), "kind": "feedback", "data": {}}).encode()),
    event(ST1, "feedback", 10, {"rating": 6, "session_id": "s"}),
    event(ST1, "feedback", 10, {"rating": True, "session_id": "s"}),
    close(ST1, 10, "tx", "solved", "ana", -1, 10),
    help_event(ST1, 10, "", "open"),
    event(ST1, "fault", 10, {"component": "door", "code": "open", "active": "yes"}),
    ("paystation/v1/ST-1/event/help", json.dumps({"id": "x2", "ts": "2026-01-05T09:00:00", "kind": "help",
                                                  "data": {"ticket": "t", "action": "open"}}).encode()),
]


def assert_figures(history: History) -> None:
    """The known sequence's figures, exactly."""
    assert history.help_metrics(Grouping.STATION) == EXPECTED_STATIONS
    assert history.help_metrics(Grouping.AGENT) == EXPECTED_AGENTS
    assert history.help_metrics(Grouping.ALL) == EXPECTED_ALL


def test_the_figures_of_a_known_sequence_are_exact_in_any_order_with_duplicates_and_garbage(tmp_path: Path) -> None:
    shuffled = SEQUENCE + SEQUENCE[:7] + MALFORMED  # duplicates by envelope id, and malformed payloads
    random.Random(18).shuffle(shuffled)  # out of order: closes before opens, clears before raises
    noise = [("paystation/v1/ST-1/status", b'{"state":"online"}'), ("paystation/v1/ST-1/help/state", b"{}"),
             ("other/topic", b"x"), ("paystation/v1/ST-1/event/payment", b"{}"), ("paystation/v1/ST-1/event", b"{}")]
    path = tmp_path / "history.db"
    with History(path) as history:
        assert history.apply_many(shuffled[:15] + noise, T0) + history.apply_many(shuffled[15:], T0) == len(SEQUENCE)
        assert_figures(history)
    with History(path) as again:  # a restart: everything delivered again is recognised
        assert again.apply_many(SEQUENCE, NOW) == 0
        assert_figures(again)


def test_figures_since_a_moment_count_the_calls_closed_and_ratings_given_from_then() -> None:
    with History(":memory:") as history:
        history.apply_many(SEQUENCE, T0)
        assert history.help_metrics(Grouping.STATION, since=at(3030)) == [
            HelpMetrics(ST1, calls=2, accepted=1, resolved=0, abandoned=1, resolution_rate=0.0, accept_median_s=10.0,
                        accept_p90_s=10.0, resolve_median_s=None, resolve_p90_s=None, ratings=(0, 0, 0, 1, 0),
                        csat_average=4.0),
            HelpMetrics(ST2, calls=1, accepted=1, resolved=0, abandoned=0, resolution_rate=0.0, accept_median_s=None,
                        accept_p90_s=None, resolve_median_s=None, resolve_p90_s=None, ratings=(0, 0, 0, 0, 0),
                        csat_average=None)]
        assert history.help_metrics(Grouping.AGENT, since=at(10_000)) == []
        assert history.help_metrics(Grouping.ALL, since=at(10_000)) == [
            HelpMetrics(None, 0, 0, 0, 0, None, None, None, None, None, (0, 0, 0, 0, 0), None)]


def test_a_rating_counts_for_the_agent_of_its_call_on_its_own_station_whenever_the_call_arrives() -> None:
    with History(":memory:") as history:
        history.apply_many([feedback(ST2, 900, 2, "s7", "t1"),  # ST-1's ticket name, on another station
                            feedback(ST1, 2700, 3, "s8", "t3"),  # a call nobody accepted
                            feedback(ST1, 9000, 5, "s9", "t10")], T0)  # its call is not in the history yet
        assert history.help_metrics(Grouping.AGENT) == []
        history.apply_many(SEQUENCE[:3] + [help_event(ST1, 8000, "t10", "accept", state="connected", agent="cy")], T0)
        assert [(m.key, m.ratings, m.csat_average) for m in history.help_metrics(Grouping.AGENT)] == [
            ("ana", (0, 0, 0, 0, 0), None), ("cy", (0, 0, 0, 0, 1), 5.0)]
        assert history.help_metrics(Grouping.ALL)[0].ratings == (0, 1, 1, 0, 1)


def test_a_history_from_before_ratings_named_their_call_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with History(path) as history:
        history.apply_many(SEQUENCE[:3] + [feedback(ST1, 500, 5, "s1")], T0)
    with sqlite3.connect(path) as db:  # as the first console wrote it: schema 1, ratings without their call
        db.execute("DROP INDEX ratings_call")
        db.execute("ALTER TABLE ratings DROP COLUMN ticket")
        db.execute("PRAGMA user_version = 1")
    with History(path) as upgraded:
        assert upgraded.apply_many([feedback(ST1, 600, 4, "s2", "t1")], T0) == 1
        assert [(m.key, m.ratings) for m in upgraded.help_metrics(Grouping.AGENT)] == [("ana", (0, 0, 0, 1, 0))]
        assert upgraded.help_metrics(Grouping.STATION)[0].ratings == (0, 0, 0, 1, 1)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        db.execute("PRAGMA user_version = 1")  # as if a build that had added the column had not said so
    with History(path) as again:
        assert [(m.key, m.ratings) for m in again.help_metrics(Grouping.AGENT)] == [("ana", (0, 0, 0, 1, 0))]


def test_a_file_a_newer_console_upgraded_meanwhile_is_refused_not_marked_older(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "history.db"
    History(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")  # the newer console's upgrade ...
    shape = sqlite_file.file_shape
    looks: list[int] = []

    def first_look_before_the_upgrade(db: sqlite3.Connection, application_id: int, known: int) -> int:
        looks.append(1)  # ... came between the first look and the lock
        return 1 if len(looks) == 1 else shape(db, application_id, known)

    monkeypatch.setattr(sqlite_file, "file_shape", first_look_before_the_upgrade)
    with pytest.raises(HistoryUnusable, match="newer version"):
        History(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)


def test_a_rating_kept_by_an_older_console_without_its_call_gets_it_from_a_newer_ones_copy() -> None:
    old_copy = event(ST1, "feedback", 500, {"rating": 5, "session_id": "s1"}, event_id="e-rating")
    new_copy = event(ST1, "feedback", 500, {"rating": 5, "session_id": "s1", "ticket": "t1"}, event_id="e-rating")
    with History(":memory:") as history:
        assert history.apply_many(SEQUENCE[:3] + [old_copy], T0) == 4
        assert history.apply_many([new_copy, old_copy], T0) == 1, "the call is filled in once, never taken away"
        assert [(m.key, m.ratings) for m in history.help_metrics(Grouping.AGENT)] == [("ana", (0, 0, 0, 0, 1))]
        assert history.help_metrics(Grouping.ALL)[0].ratings == (0, 0, 0, 0, 1)


def test_p90_is_the_nearest_rank() -> None:
    assert [p90(list(range(1, n + 1))) for n in (1, 2, 9, 10, 11, 20)] == [1, 2, 9, 9, 10, 18]
    assert p90([]) is None


def test_the_recent_calls_of_a_station_are_newest_first_with_what_the_events_said() -> None:
    with History(":memory:") as history:
        history.apply_many(SEQUENCE, T0)
        calls = history.recent_calls(ST2, limit=3)
        assert calls == [
            CallRecord(ST2, "t9", at(9500), None, None, None, None, None, None, None, "M-X-9", None, None, None),
            CallRecord(ST2, "t8", at(2000), at(2030), at(9000), "ana", "superseded_at_restart", None, None, None,
                       None, None, None, None),
            CallRecord(ST2, "t7", None, None, at(1120), "ana", "no_answer", 1, None, 120.0, None, None, None, None)]
        assert history.recent_calls(ST2, limit=4)[3] == CallRecord(
            ST2, "t6", None, at(100), at(440), "ben", "technician", 1, 60.0, 400.0, None, None, None,
            VoiceFigures(1, 12.0, 80.0, "answered"))
        assert history.recent_calls("ST-unknown") == []


def test_malformed_messages_are_summarised_in_one_warning_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="console.history")
    with History(":memory:") as history:
        assert history.apply_many(MALFORMED, T0) == 0
        assert history.apply_many(MALFORMED[:2], T0 + timedelta(seconds=30)) == 0
        assert history.apply_many([], T0 + timedelta(seconds=61)) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "history: skipped a malformed message: paystation/v1/ST-1/event/help: not JSON: "
        "Expecting value: line 1 column 1 (char 0)",
        "history: skipped 9 malformed messages, the first: paystation/v1/ST-1/event/help: kind is not help"]


# ---- faults -------------------------------------------------------------------------------------------------------

FAULTS: list[Message] = [
    # ST-1 card terminal: unreachable (said twice, the message changing), then not_ready in its place, then cleared
    fault_event(ST1, 0, "card_terminal", "unreachable", True, "no answer", impact="no_card_payment"),
    retained_fault(ST1, "card_terminal", "unreachable", True, at(0), "no answer", impact="no_card_payment"),
    fault_event(ST1, 10, "card_terminal", "unreachable", True, "no answer after 3 tries", impact="no_card_payment"),
    fault_event(ST1, 60, "card_terminal", "not_ready", True, "not ready", impact="no_card_payment"),
    fault_event(ST1, 180, "card_terminal", "not_ready", False, "not ready", impact="no_card_payment"),
    retained_fault(ST1, "card_terminal", "not_ready", False, at(180), "not ready", impact="no_card_payment"),
    # ST-1 door: its clear arrives before its raise
    fault_event(ST1, 90, "door", "open", False, "door open"),
    fault_event(ST1, 30, "door", "open", True, "door open"),
    # ST-2 storage: active since before the console ran (retained), cleared by an event
    retained_fault(ST2, "storage", "corrupt", True, at(-3600), "corrupt", impact="out_of_service"),
    fault_event(ST2, 100, "storage", "corrupt", False, "corrupt", impact="out_of_service"),
    # ST-2 help button: a warning still active; a clear older than any raise changes nothing
    retained_fault(ST2, "gpio", "unavailable", False, at(-100), "no gpio", "warning", "notice"),
    fault_event(ST2, 500, "help_button", "stuck", True, "stuck", "warning", "notice"),
]
EXPECTED_PERIODS = [
    FaultPeriod(ST2, "help_button", "stuck", "warning", "stuck", "notice", at(500), None),
    FaultPeriod(ST1, "card_terminal", "not_ready", "critical", "not ready", "no_card_payment", at(60), at(180)),
    FaultPeriod(ST1, "door", "open", "critical", "door open", "none", at(30), at(90)),
    FaultPeriod(ST1, "card_terminal", "unreachable", "critical", "no answer after 3 tries", "no_card_payment", at(0),
                at(60)),
    FaultPeriod(ST2, "storage", "corrupt", "critical", "corrupt", "out_of_service", at(-3600), at(100)),
]


def test_fault_periods_and_time_to_repair_from_events_and_retained_faults(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with History(path) as history:
        for message in FAULTS:  # one batch per message: the order of arrival matters here
            history.apply_many([message], T0)
        assert history.fault_periods() == EXPECTED_PERIODS
        assert history.fault_periods(ST1, limit=2) == EXPECTED_PERIODS[1:3]
        assert [p.time_to_repair for p in EXPECTED_PERIODS] == [None, *(timedelta(seconds=s) for s in (120, 60, 60,
                                                                                                      3700))]
        assert history.repair_stats() == [RepairStats("card_terminal", 2, 0, 90.0, 90.0),
                                          RepairStats("door", 1, 0, 60.0, 60.0),
                                          RepairStats("help_button", 0, 1, None, None),
                                          RepairStats("storage", 1, 0, 3700.0, 3700.0)]
        assert history.repair_stats(since=at(0)) == [RepairStats("card_terminal", 2, 0, 90.0, 90.0),
                                                     RepairStats("door", 1, 0, 60.0, 60.0),
                                                     RepairStats("help_button", 0, 1, None, None)]
    with History(path) as again:  # a restart: the retained faults and the events come again, nothing doubles
        assert again.apply_many(list(reversed(FAULTS)), T0 + timedelta(hours=2)) == 0
        assert again.fault_periods() == EXPECTED_PERIODS


def test_any_order_of_the_fault_changes_gives_the_same_periods() -> None:
    for seed in range(5):
        shuffled = FAULTS[:]
        random.Random(seed).shuffle(shuffled)
        with History(":memory:") as history:
            history.apply_many(shuffled[:5], T0)
            history.apply_many(shuffled[5:], T0)
            assert history.fault_periods() == EXPECTED_PERIODS, seed


# ---- retention, export, damage -------------------------------------------------------------------------------------

def test_rows_older_than_the_retention_are_pruned_and_old_events_ignored() -> None:
    day = 86_400
    with History(":memory:", retention=timedelta(days=10)) as history:
        assert history.apply_many(SEQUENCE + FAULTS, T0) == len(SEQUENCE) + len(FAULTS)
        later = T0 + timedelta(days=11)  # a prune is due (an hour since the last), the cut at T0 + 1 day
        assert history.apply_many([close(ST1, day - 1, "old", "solved", "ana", 1, 2),
                                   feedback(ST1, 11 * day, 5, "s9")], later) == 1
        assert history.help_metrics(Grouping.ALL) == [
            HelpMetrics(None, 0, 0, 0, 0, None, None, None, None, None, (0, 0, 0, 0, 1), 5.0)]
        assert history.recent_calls(ST2) == []
        # the still active help button fault stays, and so does what it needs to be replayed
        assert history.fault_periods() == EXPECTED_PERIODS[:1]
        history.apply_many([fault_event(ST2, 11 * day, "help_button", "stuck", False, "stuck")], later)
        assert history.fault_periods() == [FaultPeriod(ST2, "help_button", "stuck", "warning", "stuck", "notice",
                                                       at(500), at(11 * day))]
    with History(":memory:", retention=timedelta(days=10)) as history:  # a kept rating keeps its call's agent
        history.apply_many(SEQUENCE[:3] + [feedback(ST1, 10 * day, 4, "s1", "t1")], T0)
        history.apply_many([], T0 + timedelta(days=10, hours=1))  # the call began before the cut, its rating after
        assert [(m.key, m.calls, m.ratings) for m in history.help_metrics(Grouping.AGENT)] == [
            ("ana", 1, (0, 0, 0, 1, 0))]


CSV_HEADER = ("calls,accepted,resolved,abandoned,resolution_rate,accept_median_s,accept_p90_s,resolve_median_s,"
              "resolve_p90_s,ratings,csat_average,rating_1,rating_2,rating_3,rating_4,rating_5\r\n")
EXPECTED_CSV = {
    "help-by-station.csv": "station," + CSV_HEADER + "ST-1,1,1,1,0,1,20,20,200,200,1,4,0,0,0,1,0\r\n",
    "help-by-agent.csv": "agent," + CSV_HEADER + "ana,1,1,1,0,1,20,20,200,200,1,4,0,0,0,1,0\r\n",
    "help-total.csv": "scope," + CSV_HEADER + "all,1,1,1,0,1,20,20,200,200,1,4,0,0,0,1,0\r\n",
    "calls.csv": "station,ticket,opened,accepted,closed,agent,outcome,presses,time_to_accept_s,time_to_resolve_s,"
                 "voice_calls,voice_answer_s,voice_talk_s,voice_outcome,screen,zone\r\n"
                 "ST-1,t1,2026-01-05T09:00:00.000Z,2026-01-05T09:00:20.000Z,2026-01-05T09:03:20.000Z,ana,solved,2,20,"
                 "200,1,5,95.25,answered,payment,Altstadt Nord\r\n",
    "faults.csv": "station,component,code,severity,parker_impact,opened,closed,time_to_repair_s,message\r\n"
                  "ST-1,card_terminal,unreachable,critical,no_card_payment,2026-01-05T09:00:00.000Z,"
                  "2026-01-05T09:01:30.500Z,90.5,\"The terminal does not answer, \"\"no answer\"\"\"\r\n"
                  "ST-1,door,open,critical,none,2026-01-05T09:01:40.000Z,,,Cabinet door open\r\n",
    "repair-by-component.csv": "component,repaired,still_open,mean_time_to_repair_s,median_time_to_repair_s\r\n"
                               "card_terminal,1,0,90.5,90.5\r\ndoor,0,1,,\r\n",
}
SMALL: list[Message] = [
    help_event(ST1, 0, "t1", "open", state="waiting",
               context={"plate": "B-AB-1", "screen": "payment", "zone": "Altstadt Nord"}),
    help_event(ST1, 20, "t1", "accept", state="connected", agent="ana"),
    help_event(ST1, 200, "t1", "close", state="closed", outcome="solved", agent="ana", text="", presses=2,
               time_to_accept_s=20, time_to_resolve_s=200,
               voice={"calls": 1, "answer_s": 5, "talk_s": 95.25, "outcome": "answered"}),
    feedback(ST1, 300, 4, "s1", "t1"),
    fault_event(ST1, 0, "card_terminal", "unreachable", True, 'The terminal does not answer, "no answer"',
                impact="no_card_payment"),
    fault_event(ST1, 90.5, "card_terminal", "unreachable", False, 'The terminal does not answer, "no answer"',
                impact="no_card_payment"),
    fault_event(ST1, 100, "door", "open", True, "Cabinet door open"),
]


def test_the_csv_export_is_exact_and_replaces_files_whole(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with History(tmp_path / "history.db") as history:
        history.apply_many(SMALL, T0)
        written = history.export_csv(folder, NOW)
        assert [p.name for p in written] == list(EXPECTED_CSV)
        assert {p.name: p.read_bytes().decode() for p in written} == EXPECTED_CSV
        (folder / "calls.csv").write_text("stale")
        history.export_csv(folder, NOW)
    assert sorted(os.listdir(folder)) == sorted(EXPECTED_CSV)  # no temporary file left
    assert (folder / "calls.csv").read_bytes().decode() == EXPECTED_CSV["calls.csv"]


def test_a_damaged_foreign_or_too_new_file_is_refused_clearly(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE parking (id INTEGER)")
    newer = tmp_path / "newer.db"
    History(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    refused = {"garbage": (garbage, "file is not a database"), "foreign": (foreign, "another program's database"),
               "newer": (newer, f"newer version (schema {SCHEMA_VERSION + 1}"), "folder": (tmp_path, "cannot open")}
    for path, why in refused.values():
        with pytest.raises(HistoryUnusable, match=why.replace("(", r"\(")):
            History(path)
    assert garbage.read_bytes() == b"this is not a database at all" * 100  # left as it was
    with History(tmp_path / "empty.db") as empty:  # a new file is a new history
        assert empty.fault_periods() == []


def test_damage_found_later_is_reported_as_unusable_not_as_an_sqlite_error(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with History(path) as history:
        history.apply_many(SEQUENCE + FAULTS, T0)
    page = 4096
    data = bytearray(path.read_bytes())
    assert len(data) > 2 * page
    data[page:] = b"\xa5" * (len(data) - page)  # every page but the first (the schema) overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryUnusable, match="malformed"):
        with History(path) as damaged:
            damaged.help_metrics(Grouping.STATION)


def test_kill_at_a_random_moment_keeps_the_file_whole_and_every_batch_whole_or_absent(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    calls = 150  # tests/history_writer.py CALLS
    first = 0
    for _ in range(3):
        child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "history_writer.py"), str(path), str(first)],
                                 stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert child.stdout is not None
        committed: list[int] = []

        def read(lines: Any = child.stdout, into: list[int] = committed) -> None:
            for line in lines:
                into.append(int(line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        goal = random.randint(2, 12)
        try:
            wait_for(lambda: len(committed) >= goal, 30, f"{goal} batches")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            reader.join(10)
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            per_batch = db.execute("SELECT substr(ticket, 2, 6) AS b, count(*) FROM calls GROUP BY b ORDER BY b")
            counts = [(int(b), n) for b, n in per_batch]
        assert counts == [(b, calls) for b in range(len(counts))]  # whole batches, none missing, none partial
        assert len(counts) - 1 >= committed[-1]  # each batch reported as committed is kept
        first = len(counts)
    with History(path) as history:  # and it opens as a history again
        assert history.help_metrics(Grouping.ALL)[0].calls == first * calls


# ---- fuzz ---------------------------------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)
TIMES = st.sampled_from(["2026-01-05T09:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00",
                         "2026-01-05T09:00:00", "2026-13-05T09:00:00Z"]) | JSON
FIELDS = st.fixed_dictionaries({}, optional={
    "ticket": st.sampled_from(["t1", ""]) | JSON, "action": st.sampled_from(["open", "accept", "close", "call"]) | JSON,
    "outcome": st.sampled_from(["solved", "abandoned"]) | JSON, "agent": st.sampled_from(["ana", ""]) | JSON,
    "time_to_accept_s": JSON, "time_to_resolve_s": JSON, "presses": JSON, "voice": JSON, "context": JSON,
    "rating": st.integers(0, 6) | JSON, "component": st.just("door") | JSON, "code": st.just("open") | JSON,
    "active": st.booleans() | JSON, "message": JSON, "severity": JSON, "since": TIMES})


def envelope_message(station: str, kind: str, event_id: Any, ts: Any, data: Any) -> Message:
    """An event envelope around whatever was drawn."""
    payload = {"id": event_id, "ts": ts, "kind": kind, "seq": 1, "data": data}
    return f"paystation/v1/{station}/event/{kind}", json.dumps(payload).encode()


@st.composite
def mutated(draw: st.DrawFn) -> Message:
    """A message of the known sequences with up to three of its fields (of the envelope or its data) replaced by
    garbage or removed, or its bytes cut short."""
    topic, payload = draw(st.sampled_from(SEQUENCE + FAULTS + SMALL))
    value = json.loads(payload)
    for _ in range(draw(st.integers(1, 3))):
        data = value.get("data")
        target = data if isinstance(data, dict) and data and draw(st.booleans()) else value
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            target[key] = draw(JSON)
        else:
            del target[key]
    mangled = json.dumps(value).encode()
    return topic, mangled[:draw(st.integers(0, len(mangled)))] if draw(st.integers(0, 9)) == 0 else mangled


STATIONS = st.sampled_from(["ST-1", "", "a\tb", "x" * 101])
MESSAGES = (mutated() | st.builds(envelope_message, STATIONS, st.sampled_from(["help", "feedback", "fault"]),
                      st.sampled_from(["e1", "e2", ""]) | JSON, TIMES, FIELDS | JSON)
            | st.builds(lambda station, data: (f"paystation/v1/{station}/fault/door", json.dumps(data).encode()),
                        STATIONS, FIELDS | JSON)
            | st.tuples(st.sampled_from(["paystation/v1/ST-1/event/help", "paystation/v1/ST-1/fault/door", "x"])
                        | st.text(max_size=20), st.binary(max_size=20)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(MESSAGES, max_size=8))
def test_apply_many_never_raises_on_garbage(batch: list[Message]) -> None:
    failures = Failures()
    logging.getLogger("console.history").addHandler(failures)
    try:
        with History(":memory:") as history:
            assert history.apply_many(batch + SMALL, T0) >= 0
            history.help_metrics(Grouping.STATION)
            history.fault_periods()
            history.recent_calls(ST1)
            history.repair_stats()
    finally:
        logging.getLogger("console.history").removeHandler(failures)
    assert failures.seen == []  # no message reached the last resort: each was taken or refused as malformed


class Failures(logging.Handler):
    """Errors logged (the last resort for a message that fails unexpectedly)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep it."""
        self.seen.append(record.getMessage())


# ---- the command line ---------------------------------------------------------------------------------------------

def options(*argv: str) -> argparse.Namespace:
    """``kiosk console`` options as argparse makes them."""
    parser = argparse.ArgumentParser()
    console_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_command_line_exports_without_a_broker_and_refuses_what_it_cannot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with History(console_command.default_history()) as history:
        history.apply_many(SMALL, T0)
    assert console_command.default_history() == tmp_path / "state" / "kiosk" / "console-history.db"
    assert console_command.run(options("--export-csv", str(tmp_path / "out"))) == 0
    assert capsys.readouterr().out == "".join(f"{tmp_path / 'out' / name}\n" for name in EXPECTED_CSV)
    assert (tmp_path / "out" / "faults.csv").read_bytes().decode() == EXPECTED_CSV["faults.csv"]
    missing = tmp_path / "none.db"
    assert console_command.run(options("--history", str(missing), "--export-csv", str(tmp_path / "x"))) == 1
    assert capsys.readouterr().err == f"kiosk console: no history at {missing}\n"
    assert not missing.exists()
    (tmp_path / "bad.db").write_bytes(b"x" * 1000)
    assert console_command.run(options("--history", str(tmp_path / "bad.db"), "--export-csv", str(tmp_path))) == 1
    assert "file is not a database" in capsys.readouterr().err
    assert console_command.run(options()) == 2
    assert capsys.readouterr().err == "kiosk console: --broker is required (unless --export-csv)\n"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert console_command.default_history() == tmp_path / "home" / ".local" / "state" / "kiosk" / "console-history.db"


def test_the_history_topics_cover_what_it_reads() -> None:
    assert HISTORY_TOPICS == ("paystation/v1/+/event/help", "paystation/v1/+/event/feedback",
                              "paystation/v1/+/event/fault", "paystation/v1/+/fault/+")
