"""The whole station against a real mosquitto: birth and will, outages, retained state, commands, config, telemetry."""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from broker import Mosquitto
from conftest import run_kiosk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_client import Received, Staff
from station_process import PREFIX, REPLY_TOPIC, STATION, Station, births, command, newest, station_config

from kiosk.domain.doctor import Part
from kiosk.storage.store import Store

pytestmark = pytest.mark.slow

KEEPALIVE_S = 5
START_S = 60


def start_station(folder: Path, broker: Mosquitto, staff: Staff, **mqtt: object) -> Station:
    """Start a station and wait for its birth."""
    before = len(births(staff.messages))
    station = Station(station_config(folder, broker.port, **mqtt)).start()
    try:
        staff.wait_for(lambda m: len(births(m)) > before, START_S, "the station's birth")
    except AssertionError:
        station.kill()
        raise AssertionError(station.log()) from None
    return station


def first_arrivals(messages: list[Received]) -> list[dict]:
    """Event envelopes in the order they first arrived (duplicates of at-least-once dropped)."""
    seen: set[str] = set()
    result = []
    for m in messages:
        if m.topic.startswith(PREFIX + "event/"):
            envelope = m.json()
            if envelope["id"] not in seen:
                seen.add(envelope["id"])
                result.append(envelope)
    return result


def all_arrived(expected: set[str]) -> Callable[[list[Received]], bool]:
    """A wait condition: every id in ``expected`` arrived; each call reads only the messages new since the last."""
    arrived: set[str] = set()
    read = 0

    def condition(messages: list[Received]) -> bool:
        nonlocal read
        for m in messages[read:]:
            if m.topic.startswith(PREFIX + "event/"):
                arrived.add(m.json()["id"])
        read = len(messages)
        return expected <= arrived

    return condition


def committed_event_ids(database: Path) -> set[str]:
    """The id of every event the station's database ever committed to the outbox."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT payload FROM outbox WHERE seq IS NOT NULL").fetchall()
    return {json.loads(payload)["id"] for (payload,) in rows}


def write_events(database: Path, count: int) -> None:
    """Commit ``count`` feedback events into a station's outbox from outside, in a few transactions."""
    now = datetime.now(UTC)
    store = Store.open(database, STATION, now)
    try:
        for start in range(0, count, 1000):
            with store.core.write():
                for i in range(start, min(count, start + 1000)):
                    store.core.add_event("feedback", {"rating": 1 + i % 5, "session_id": None, "n": i}, now)
    finally:
        store.close()


@pytest.fixture
def staff(broker: Mosquitto) -> Iterator[Staff]:
    """An operator subscribed to everything of the station."""
    client = Staff(broker.port)
    client.subscribe(PREFIX + "#")
    yield client
    client.close()


# ---- birth, offline, will ----


def test_birth_offline_and_will_with_boot(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = start_station(tmp_path / "station", broker, staff)
    [birth] = births(staff.messages)
    assert birth["state"] == "online" and birth["config_version"] == 0 and birth["zone"] == "Demo Zone"
    assert birth["firmware"] and birth["ts"].endswith("Z")
    late = Staff(broker.port)
    late.subscribe(PREFIX + "status")
    assert late.wait_for(lambda m: m and m[0].retain and m[0].json()["state"] == "online", 10, "retained birth")
    late.close()

    assert station.stop() == 0
    offline = staff.wait_for(lambda m: [x.json() for x in m if x.topic == PREFIX + "status"
                                        and x.json()["state"] == "offline"], 10, "offline")
    assert offline[-1]["boot"] == birth["boot"]

    station = start_station(tmp_path / "station", broker, staff)
    second = births(staff.messages)[-1]
    assert second["boot"] > birth["boot"]
    station.kill()
    killed = time.monotonic()
    lost = staff.wait_for(lambda m: [x.json() for x in m if x.topic == PREFIX + "status"
                                     and x.json()["state"] == "lost"], 3 * KEEPALIVE_S, "the will")
    assert time.monotonic() - killed <= 1.5 * KEEPALIVE_S + 1.0
    assert lost[-1] == {"state": "lost", "boot": second["boot"]}

    station = start_station(tmp_path / "station", broker, staff)
    third = births(staff.messages)[-1]
    assert third["boot"] > lost[-1]["boot"], "a will that arrives late is older than the newest birth"
    station.stop()


# ---- outages: every committed event arrives, in seq order ----


@pytest.mark.parametrize("kill_station", [False, True], ids=["broker_outage", "broker_outage_and_station_kill"])
def test_outage_of_5000_events(tmp_path: Path, kill_station: bool) -> None:
    broker = Mosquitto(tmp_path / "broker", extra="max_queued_messages 0\nmax_inflight_messages 0\n").start()
    consumer = Staff(broker.port, "back-office", session_expiry=3600)
    consumer.subscribe(PREFIX + "#")
    station = start_station(tmp_path / "station", broker, consumer, window=4 if kill_station else 100)
    database = tmp_path / "station" / "kiosk.db"
    try:
        broker.stop()
        write_events(database, 5000)
        expected = committed_event_ids(database)
        assert len(expected) >= 5000
        broker.start()
        if kill_station:
            consumer.wait_for(lambda m: len(first_arrivals(m)) >= 200, 60, "the drain to start")
            station.kill()
            assert len(first_arrivals(consumer.messages)) < len(expected), "killed after the drain; test nothing"
            station.start()
        consumer.wait_for(all_arrived(expected), 180, "every committed event")
        seqs = [e["seq"] for e in first_arrivals(consumer.messages)]
        assert all(a < b for a, b in zip(seqs, seqs[1:])), "seq must increase in arrival order"
    finally:
        station.kill()
        consumer.close()
        broker.stop()


# ---- retained state ----


def test_retained_faults_survive_a_broker_crash_and_rebirth(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    staff = Staff(broker.port)
    staff.subscribe(PREFIX + "#")
    station = start_station(tmp_path / "station", broker, staff)
    try:
        answer = command(staff, "mode", '{"mode": "out_of_service", "reason": "street cleaning"}')
        assert answer["ok"] is True
        staff.wait_for(lambda m: any(x.topic == PREFIX + "fault/operator" for x in m), 10, "fault/operator")
        broker.kill()  # loses every retained message it had not saved
        staff.close()
        broker.start()
        staff = Staff(broker.port)
        staff.subscribe(PREFIX + "#")
        fault = staff.wait_for(lambda m: [x for x in m if x.topic == PREFIX + "fault/operator"], 30,
                               "fault/operator republished after the reconnect")
        assert fault[0].json()["active"] is True and "street cleaning" in fault[0].json()["message"]

        staff.publish(PREFIX + "fault/operator", b"", retain=True)  # someone wiped it
        assert command(staff, "rebirth", "{}")["ok"] is True
        late = Staff(broker.port)
        late.subscribe(PREFIX + "fault/#")
        retained = late.wait_for(lambda m: [x for x in m if x.topic == PREFIX + "fault/operator"], 10, "rebirth")
        assert retained[0].retain and retained[0].json()["active"] is True
        late.close()
        assert command(staff, "mode", '{"mode": "normal"}')["ok"] is True
        cleared = staff.wait_for(lambda m: [x.json() for x in m if x.topic == PREFIX + "fault/operator"
                                            and x.payload and not x.json()["active"]], 10, "cleared fault")
        assert cleared[-1]["code"] == "out_of_service"
    finally:
        station.kill()
        staff.close()
        broker.stop()


# ---- commands ----


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, Staff, Station]]:
    """One broker, one operator and one station shared by the command tests."""
    folder = tmp_path_factory.mktemp("commands")
    broker = Mosquitto(folder / "broker").start()
    staff = Staff(broker.port)
    staff.subscribe(PREFIX + "#")
    station = start_station(folder / "station", broker, staff, telemetry_interval_s=5)
    yield broker, staff, station
    station.kill()
    staff.close()
    broker.stop()


def events_of(staff: Staff, kind: str) -> list[dict]:
    """Event envelopes of one kind received so far."""
    return [m.json() for m in staff.on(PREFIX + f"event/{kind}")]


def test_courtesy_command_and_duplicate_correlation(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, _ = running
    before = len(events_of(staff, "session"))
    correlation = uuid.uuid4().bytes
    payload = '{"plate": "B-AB-123", "minutes": 30, "reason": "card reader broken"}'
    first = command(staff, "courtesy", payload, correlation)
    second = command(staff, "courtesy", payload, correlation)
    assert first == second and first["ok"] is True and first["code"] == "ok"
    session = staff.wait_for(lambda m: events_of(staff, "session")[before:], 10, "event/session")
    time_for_a_second = command(staff, "rebirth", "{}")
    assert time_for_a_second["ok"]
    sessions = events_of(staff, "session")[before:]
    assert len(sessions) == 1, "a duplicate correlation id must not run the command again"
    data = session[0]["data"]
    assert data["plate"] == "B-AB-123" and data["kind"] == "courtesy" and data["amount"] == 0
    assert data["session_id"] == first["session"]


@pytest.mark.parametrize(("name", "payload", "code"), [
    ("courtesy", '{"plate": "b ab", "minutes": 30, "reason": "x"}', "bad_arguments"),
    ("courtesy", '{"plate": "B-1", "minutes": 0, "reason": "x"}', "bad_arguments"),
    ("courtesy", '{"plate": "B-1", "minutes": 30}', "bad_arguments"),
    ("mode", '{"mode": "closed"}', "bad_arguments"),
    ("mode", '{"mode": "out_of_service"}', "bad_arguments"),
    ("notice", '{"text": 5}', "bad_arguments"),
    ("rebirth", '{"now": true}', "bad_arguments"),
    ("rebirth", "[]", "bad_arguments"),
    ("rebirth", "{not json", "bad_json"),
    ("launch-missiles", "{}", "unknown_command"),
    ("rebirth", "x" * 20000, "too_large"),
])
def test_bad_commands_are_refused(running: tuple[Mosquitto, Staff, Station], name: str, payload: str,
                                  code: str) -> None:
    _, staff, _ = running
    answer = command(staff, name, payload)
    assert answer["ok"] is False and answer["code"] == code, answer
    assert answer["detail"]


def test_notice_and_mode(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, station = running
    assert command(staff, "notice", '{"text": "Closed on Sunday for the market"}')["ok"]
    database = station.config.parent / "kiosk.db"
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'notice'").fetchone() == ("Closed on Sunday for the market",)
    assert command(staff, "notice", "{}")["ok"]
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'notice'").fetchone() is None
    assert command(staff, "mode", '{"mode": "out_of_service", "reason": "maintenance"}')["mode"] == "out_of_service"
    fault = staff.wait_for(lambda m: [x.json() for x in m if x.topic == PREFIX + "fault/operator"], 10, "fault")
    assert fault[-1]["active"] and fault[-1]["parker_impact"] == "out_of_service"
    assert command(staff, "mode", '{"mode": "normal"}')["ok"]
    staff.wait_for(lambda m: not [x for x in m if x.topic == PREFIX + "fault/operator"][-1].json()["active"], 10,
                   "the fault cleared")


def test_mode_tells_parkers_about_parking_meanwhile_and_the_return(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, station = running
    database = station.config.parent / "kiosk.db"
    told = '{"mode": "out_of_service", "reason": "works", "parking": "free", "back_at": "2026-12-06T14:00:00+01:00"}'
    assert command(staff, "mode", told)["ok"]
    with sqlite3.connect(database) as conn:
        stored = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'outage'").fetchone()[0])
    assert stored == {"parking": "free", "back_at": "2026-12-06T14:00:00+01:00"}
    refused = command(staff, "mode", '{"mode": "normal", "parking": "free"}')
    assert refused["code"] == "bad_arguments", "nothing changed"
    assert command(staff, "mode", '{"mode": "normal"}')["ok"]
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'outage'").fetchone() is None


def test_terminal_commands(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, _ = running
    status = command(staff, "terminal/status", "{}", timeout=40)
    assert status["ok"] is True and status["ready"] is True and status["status"] == "00"
    before = len(events_of(staff, "terminal"))
    day = command(staff, "terminal/end-of-day", "{}", timeout=60)
    assert day["ok"] is True and day["result_code"] == "00" and "count" in day
    report = staff.wait_for(lambda m: events_of(staff, "terminal")[before:], 10, "event/terminal")
    assert report[0]["data"]["kind"] == "end_of_day" and report[0]["data"]["count"] == day["count"]


def test_commands_without_a_usable_response_topic_do_not_run(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, _ = running
    before = len(events_of(staff, "session"))
    payload = '{"plate": "NO-REPLY-1", "minutes": 15, "reason": "test"}'
    staff.publish(PREFIX + "cmd/courtesy", payload)
    staff.publish(PREFIX + "cmd/courtesy", payload, response_topic="elsewhere/reply", correlation=b"1")
    assert command(staff, "rebirth", "{}")["ok"]  # handled after the two above: the station has seen them
    assert [e for e in events_of(staff, "session")[before:] if e["data"]["plate"] == "NO-REPLY-1"] == []


def test_telemetry(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, _ = running
    figures = staff.wait_for(lambda m: [x.json() for x in m if x.topic == PREFIX + "telemetry"], 15, "telemetry")[-1]
    assert figures["link"]["state"] == "connected" and figures["terminal"] in ("ready", "unknown")
    assert isinstance(figures["outbox_depth"], int) and figures["uptime_s"] >= 0
    assert figures["disk_free_bytes"] > 0 and "cpu_temp_c" in figures and figures["boot"] >= 1


COMMAND_NAMES = ["rebirth", "notice", "mode", "courtesy", "terminal/status", "restart", "doctor", "x", "cmd/../x", ""]
HOSTILE = [b"[" * 10_000, b'{"version": 9, "tariff": {"bands": [null]}}', b'{"\\ud800": 1}',
           b'{"text": "\\ud800"}', b'{"version": 9, "plate": {"pattern": "a{99999999999}"}}', b"\x00\xff"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=st.sampled_from([f"cmd/{n}" for n in COMMAND_NAMES] + ["cfg/desired"]),
       retain=st.booleans(),
       payload=st.one_of(st.sampled_from(HOSTILE), st.binary(max_size=300), st.builds(
           lambda v: json.dumps(v).encode(), st.recursive(
               st.none() | st.booleans() | st.integers() | st.text(max_size=20),
               lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                 max_size=4),
               max_leaves=10))))
def test_fuzzed_payloads_leave_the_station_running(running: tuple[Mosquitto, Staff, Station], topic: str,
                                                    retain: bool, payload: bytes) -> None:
    _, staff, station = running
    if topic == "cmd/restart":
        payload = b"{not json"  # a valid restart would end this shared station
    staff.publish(PREFIX + topic, payload, retain=retain, response_topic=REPLY_TOPIC, correlation=uuid.uuid4().bytes)
    # The station handles messages in order: once it answers this, it has been through the fuzzed one.
    assert command(staff, "rebirth", "{}")["ok"], station.log()
    assert station.process is not None and station.process.poll() is None, station.log()
    if retain:
        staff.publish(PREFIX + topic, b"", retain=True)  # leave no retained garbage for the next example


def test_still_alive_after_fuzzing(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, station = running
    assert command(staff, "rebirth", "{}")["ok"]
    assert station.process is not None and station.process.poll() is None, station.log()


# ---- remote configuration ----


def test_remote_configuration_applies_persists_and_rejects(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    desired = {"version": 2, "tariff": {"increment_minutes": 30, "minimum_minutes": 30, "quick_picks_minutes": [30,
                                                                                                                60, 120]},
               "links": {"help_phone": "+49 30 1234567"}}
    staff.publish(PREFIX + "cfg/desired", json.dumps(desired), retain=True)
    station = start_station(tmp_path / "station", broker, staff)
    try:
        reported = staff.wait_for(lambda m: [x.json() for x in m if x.topic == PREFIX + "cfg/reported"], 20, "report")
        assert reported[-1]["version"] == 2 and reported[-1]["applied"] is True and reported[-1]["error"] is None
        assert station.stop() == 0
        station = start_station(tmp_path / "station", broker, staff)
        assert births(staff.messages)[-1]["config_version"] == 2, "the applied configuration survives a restart"

        bad = {"version": 3, "tariff": {"increment_minutes": 7}, "mqtt": {"host": "evil.example"}}
        staff.publish(PREFIX + "cfg/desired", json.dumps(bad), retain=True)
        rejected = staff.wait_for(lambda m: [x.json() for x in staff.on(PREFIX + "cfg/reported")
                                             if x.json()["version"] == 3], 20, "the rejection")[-1]
        assert rejected["version"] == 3 and rejected["applied"] is False and rejected["active_version"] == 2
        assert any(p.startswith("mqtt") for p in rejected["problems"]) and "tariff" in rejected["error"]
        assert command(staff, "rebirth", "{}")["ok"]
        assert births(staff.messages)[-1]["config_version"] == 2
    finally:
        station.kill()


def test_restart_command_exits_for_the_service_manager(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = start_station(tmp_path / "station", broker, staff)
    seen = len(staff.messages)  # the birth is among them
    try:
        answer = command(staff, "restart", "{}")
        assert answer["ok"] is True
        assert station.process is not None and station.process.wait(30) == 75
    finally:
        station.kill()

    def stopped(messages: list[Received]) -> list[dict]:
        """The statuses other than `online` that arrived after the birth."""
        return [s for s in (m.json() for m in messages[seen:] if m.topic == PREFIX + "status" and m.payload)
                if s["state"] != "online"]

    # The broker may pass the station's last word on to this subscriber after the process has exited.
    assert staff.wait_for(stopped, 20, "the station's status after the restart")[0]["state"] == "offline"


def test_backlog_warning(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    folder = tmp_path / "station"
    folder.mkdir()
    write_events(folder / "kiosk.db", 150)
    station = start_station(folder, broker, staff, outbox_warn_rows=100)
    try:
        # The fault's row is queued behind the 150 events it announces: it arrives once they are sent.
        fault = staff.wait_for(lambda m: [x.json() for x in m if x.topic == PREFIX + "fault/outbox"], 60, "backlog")
        assert fault[0]["active"] is True and fault[0]["severity"] == "warning" and fault[0]["code"] == "backlog"
        staff.wait_for(lambda m: len(first_arrivals(m)) >= 150, 60, "the backlog drained")
    finally:
        station.kill()


def test_doctor_command_and_kiosk_doctor_agree(running: tuple[Mosquitto, Staff, Station]) -> None:
    _, staff, station = running
    answer = command(staff, "doctor", "{}", timeout=40)
    parts = {f["part"]: f for f in answer["findings"]}
    assert answer["ok"] is True and set(parts) == {str(p) for p in Part}
    assert parts["broker"]["health"] == "ok" and "connected to 127.0.0.1" in parts["broker"]["detail"]
    assert parts["terminal"]["health"] == "ok" and parts["service"]["health"] == "ok"
    assert parts["database"]["health"] == "ok" and "integrity ok" in parts["database"]["detail"]
    assert answer["healthy"] is all(f["health"] != "fail" for f in answer["findings"])
    # The technician's command asks the same running station over its socket.
    local = run_kiosk("doctor", "--config", str(station.config), "--json")
    report = json.loads(local.stdout)
    assert local.returncode == (0 if report["healthy"] else 1), local.stderr
    assert [f["part"] for f in report["findings"]] == [f["part"] for f in answer["findings"]]
    assert {f["part"]: f["health"] for f in report["findings"]}["broker"] == "ok"


def test_fixed_note_is_recorded_published_and_answered(running: tuple[Mosquitto, Staff, Station]) -> None:
    """cmd/fixed/{account} (docs/mqtt.md): the reply's exact bytes, event/repair naming the fault, and refusals."""
    _, staff, station = running

    def fixed(payload: str, name: str = "fixed/crew-anna") -> Received:
        correlation, before = uuid.uuid4().bytes, len(staff.messages)
        staff.publish(PREFIX + "cmd/" + name, payload, response_topic=REPLY_TOPIC, correlation=correlation)
        replies = (lambda m: next((x for x in m[before:] if x.topic == REPLY_TOPIC and x.correlation == correlation),
                                  None))
        return staff.wait_for(replies, 20, "the reply to cmd/fixed")

    assert command(staff, "mode", '{"mode": "service", "reason": "crew crew-anna at the station"}')["ok"]
    raised = staff.wait_for(newest("fault/operator", active=True, code="service"), 10, "fault/operator service")
    before = len(events_of(staff, "repair"))
    answer = fixed('{"component": "operator", "note": "Door seal replaced"}')
    [event] = staff.wait_for(lambda m: events_of(staff, "repair")[before:], 10, "event/repair")
    assert event["data"] == {"component": "operator", "code": "service", "fault_raised_at": raised["since"],
                             "fault_active": True, "note": "Door seal replaced", "by": "crew-anna"}
    assert answer.payload == (b'{"ok":true,"code":"ok","detail":"note recorded on operator/service, still active",'
                              b'"fault_active":true,"recorded_at":"' + event["ts"].encode() + b'"}')
    with sqlite3.connect(station.config.parent / "kiosk.db") as conn:
        assert conn.execute('SELECT component, code, note, "by" FROM repair_note').fetchall() == [
            ("operator", "service", "Door seal replaced", "crew-anna")]

    assert command(staff, "mode", '{"mode": "normal"}')["ok"]
    after = fixed('{"component": "operator", "note": "Tested, back in service"}').json()
    assert (after["ok"], after["detail"], after["fault_active"]) == (True, "note recorded on operator/service, cleared",
                                                                     False)
    signed_twice = fixed('{"component": "operator", "note": "x", "by": "crew-ben"}')
    assert signed_twice.payload == (b'{"ok":false,"code":"bad_arguments",'
                                    b'"detail":"by: unknown key; valid keys here: component, note"}')
    unknown = fixed('{"component": "printer", "note": "x"}')
    assert unknown.payload == (b'{"ok":false,"code":"bad_arguments",'
                               b'"detail":"component: \'printer\' is no fault component of this station"}')
    unsigned = fixed('{"component": "operator", "note": "x"}', "fixed").json()
    assert (unsigned["code"], unsigned["detail"].split(";")[0]) == ("unknown_command", "unknown command 'fixed'")
    reserved = fixed('{"component": "operator", "note": "x"}', "fixed/fault").json()
    assert (reserved["code"], reserved["detail"]) == ("bad_arguments", "the topic's last level 'fault' is no account "
                                                      "name: letters, digits, '_', '.', '-' (1-64), not a word of the "
                                                      "station's topics")
    with sqlite3.connect(station.config.parent / "kiosk.db") as conn:
        assert conn.execute("SELECT count(*) FROM repair_note").fetchone() == (2,)


def test_a_crew_starts_and_ends_service_mode_but_not_staffs_outage(running: tuple[Mosquitto, Staff, Station]) -> None:
    """cmd/service/{account}: mode service with the crew's name, back to normal only from service mode."""
    _, staff, _ = running
    assert command(staff, "mode", '{"mode": "normal"}')["ok"]
    assert command(staff, "service/crew-anna", '{"on": true}') == {
        "ok": True, "code": "ok", "detail": "mode service", "mode": "service"}
    fault = staff.wait_for(newest("fault/operator", active=True, code="service"), 10, "fault/operator service")
    assert fault["message"] == "In service mode: a crew is working on the station: service by crew crew-anna"
    assert command(staff, "service/crew-ben", '{"on": true}') == {
        "ok": True, "code": "ok", "detail": "already in service mode; what parkers were told stays", "mode": "service"}
    assert command(staff, "service/crew-anna", '{"on": false}') == {
        "ok": True, "code": "ok", "detail": "mode normal", "mode": "normal"}
    staff.wait_for(newest("fault/operator", active=False), 10, "fault/operator cleared")
    assert command(staff, "service/crew-anna", '{"on": false}') == {
        "ok": False, "code": "wrong_mode", "detail": "the station is not in service mode"}
    assert command(staff, "mode", '{"mode": "out_of_service", "reason": "vandalised", "parking": "free"}')["ok"]
    staff.wait_for(newest("fault/operator", active=True, code="out_of_service"), 10, "fault/operator out_of_service")
    staffs = {"ok": False, "code": "wrong_mode",
              "detail": "the station is out of service by staff; only staff can change that"}
    assert command(staff, "service/crew-anna", '{"on": true}') == staffs
    assert command(staff, "service/crew-anna", '{"on": false}') == staffs
    assert command(staff, "service/crew-anna", '{"on": false, "mode": "normal"}')["code"] == "bad_arguments"
    assert command(staff, "mode", '{"mode": "normal"}')["ok"]
