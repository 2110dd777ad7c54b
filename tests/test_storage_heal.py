"""Storage that heals itself: a full disk on a real (tmpfs) file system, retries with back-off, lost databases."""
from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from broker import Mosquitto
from help_station import settle_until, station_publishes
from mqtt_client import Received, Staff
from station_process import PREFIX, REPLY_TOPIC, births, newest, on, station_config
from station_process import Station as StationProcess
from test_asyncapi import spec
from tiny_disk import TinyDisk, empty_wal, tiny_disk

from kiosk import config
from kiosk.app.recovery import open_store
from kiosk.cli.compose import Station, build_station
from kiosk.cli.scenario import ManualClock
from kiosk.domain import journey
from kiosk.domain.records import FaultRecord
from kiosk.storage.store import StorageError, Store

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # earlier than the machine's clock, which the link uses
TIMEOUT = 15


def write_something(store: Store, now: datetime) -> None:
    """A fact with events, so that the database holds pages and the outbox rows."""
    store.raise_fault("printer", "paper_out", "warning", "Paper out", "none", now)
    store.save_feedback(4, None, None, now)


def open_fails(database: Path) -> str:
    """Why Store.open refuses ``database``; the exception is dropped, as the station does (its traceback holds
    SQLite's last statement, and so the file, open)."""
    try:
        Store.open(database, "ST-1", START).close()
    except StorageError as exc:
        return exc.reason
    raise AssertionError(f"{database} opened")


def open_files(folder: Path) -> list[str]:
    """The files under ``folder`` this process has open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the fd of listdir itself is gone by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)):
                found.append(target)
    return found


def events(store: Store) -> list[dict]:
    """The event envelopes in the outbox, in order."""
    return [json.loads(row["payload"]) for row in store.rows("outbox") if row["seq"] is not None]


# ---- a full disk is "full" -------------------------------------------------------------------------------------


def test_a_full_disk_with_an_existing_database_is_full_not_io(disk: TinyDisk) -> None:
    with Store.open(disk.database, "ST-1", START) as store:
        write_something(store, START)
    before = disk.database.read_bytes()
    disk.fill()
    assert open_fails(disk.database) == "full"  # SQLite cannot make its WAL index: SQLITE_IOERR_SHMSIZE
    assert disk.database.read_bytes() == before
    disk.make_room()
    with Store.open(disk.database, "ST-1", START) as store:
        assert [f.code for f in store.active_faults()] == ["paper_out"]


def test_a_file_system_without_a_free_inode_is_full_not_unwritable(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "size=4m,nr_inodes=16") as small:
        Store.open(small.database, "ST-1", START).close()
        small.use_up_inodes()
        assert open_fails(small.database) == "full"  # no inode for the WAL index: SQLITE_CANTOPEN


def test_a_new_database_that_did_not_fit_leaves_no_empty_file(disk: TinyDisk) -> None:
    disk.fill()
    with pytest.raises(StorageError) as err:
        Store.open(disk.database, "ST-1", START)
    assert err.value.reason == "full"
    assert not disk.database.exists()  # else the next open would take it for a lost database
    assert open_files(disk.root) == []  # also while its error is kept (logging may keep it)
    disk.make_room()
    with Store.open(disk.database, "ST-1", START) as store:
        assert store.replaced_at is None


# ---- a lost or emptied database goes on in a new series, above the old one -------------------------------------


def test_an_empty_database_file_is_made_anew_above_the_old_series_and_staff_are_told(tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    with Store.open(database, "ST-1", START) as old:
        write_something(old, START)
        old_series, old_boot = old.series, old.boot
        old_seq = max(e["seq"] for e in events(old))
    database.write_bytes(b"")  # what fsck can leave of it
    later = START + timedelta(hours=2)

    store, faults = open_store(database, "ST-1", later)
    assert store is not None
    try:
        assert store.replaced_at == later
        assert store.series != old_series and uuid.UUID(store.series).version == 4
        assert store.boot > old_boot
        [replaced] = [f for f in faults if f.component == "storage"]
        assert (replaced.code, replaced.severity, replaced.parker_impact) == ("replaced", "warning", "none")
        assert store.series in replaced.message
        [event] = events(store)
        assert event["seq"] > old_seq and event["series"] == store.series
        assert (event["data"]["code"], event["data"]["active"]) == ("replaced", True)
    finally:
        store.close()

    store, faults = open_store(database, "ST-1", later + timedelta(minutes=5))  # the next start
    assert store is not None
    try:
        assert [f for f in faults if f.component == "storage"] == []
        assert [(e["data"]["code"], e["data"]["active"]) for e in events(store)] == [
            ("replaced", True), ("replaced", False)]  # cleared, and not raised again
        assert store.replaced_at == later
    finally:
        store.close()


def test_a_lost_database_goes_on_above_the_old_one_in_a_new_series(tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    with Store.open(database, "ST-1", START) as old:
        for _ in range(50):
            old.save_feedback(5, None, None, START)
        old.next_boot(START)
        old_series, old_boot, old_seq = old.series, old.boot, max(e["seq"] for e in events(old))
    database.unlink()  # a new SD card
    with Store.open(database, "ST-1", START + timedelta(minutes=1)) as new:
        new.save_feedback(3, None, None, START + timedelta(minutes=1))
        [event] = events(new)
        assert new.series != old_series and event["series"] == new.series
        assert event["seq"] > old_seq and event["boot"] == new.boot > old_boot
        assert new.replaced_at is None  # nothing says it was lost rather than new: the series tells consumers


def test_an_older_database_gets_a_series_and_keeps_its_counters(tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    with Store.open(database, "ST-1", START) as store:
        store.save_feedback(5, None, None, START)
    conn = sqlite3.connect(database)
    with conn:  # as a firmware before series wrote it
        conn.execute("DELETE FROM meta WHERE key = 'series'")
        conn.execute("UPDATE counter SET value = 41 WHERE name = 'seq'")
    conn.close()
    with Store.open(database, "ST-1", START) as store:
        assert uuid.UUID(store.series).version == 4
        store.save_feedback(4, None, None, START)
        assert events(store)[-1]["seq"] == 42 and events(store)[-1]["series"] == store.series
        series = store.series
    with Store.open(database, "ST-1", START) as store:
        assert store.series == series


def test_a_database_that_never_numbered_an_event_starts_seq_from_the_clock(tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    Store.open(database, "ST-1", START).close()
    conn = sqlite3.connect(database)
    with conn:  # as left by a first open that died after its schema, before its counters
        conn.execute("DELETE FROM meta WHERE key = 'series'")
        conn.execute("UPDATE counter SET value = 0 WHERE name = 'seq'")
    conn.close()
    later = START + timedelta(minutes=3)
    with Store.open(database, "ST-1", later) as store:
        store.save_feedback(4, None, None, later)
        assert events(store)[-1]["seq"] == int(later.timestamp()) * 1000 + 1
        assert store.replaced_at is None


# ---- a running station heals --------------------------------------------------------------------------------------


@pytest.fixture
def staff(broker: Mosquitto) -> Iterator[Staff]:
    crew = Staff(broker.port)
    crew.subscribe(PREFIX + "fault/#", PREFIX + "status", PREFIX + "event/#", REPLY_TOPIC)
    yield crew
    crew.close()


def fault_events(messages: list[Received]) -> list[tuple[str, bool]]:
    """(component, active) of every event/fault received so far, in arrival order."""
    return [(e["data"]["component"], e["data"]["active"]) for e in on("event/fault")(messages)]


def storage_events(messages: list[Received]) -> list[dict]:
    """The event/fault envelopes of the storage component received so far."""
    return [e for e in on("event/fault")(messages) if e["data"]["component"] == "storage"]


def station_on(disk: TinyDisk, folder: Path, port: int, clock: ManualClock) -> Station:
    """A simulated, headless station in-process whose database is on ``disk``, on a clock the test moves."""
    settings = config.load(station_config(folder, port))
    settings = replace(settings, storage=replace(settings.storage, database=str(disk.database)))
    station = build_station(settings, clock, simulate=True, headless=True)
    station.start()
    return station


def storage_fault(station: Station) -> FaultRecord | None:
    """The station's storage fault as it knows it (held in memory when the database cannot keep it)."""
    return next((f for f in station.loop.fault_board.active() if f.component == "storage"), None)


def retry_at(station: Station) -> datetime | None:
    """When the station tries its database next."""
    return station.loop.next_storage_try()


def ask(staff: Staff, name: str, payload: dict) -> bytes:
    """Send a command without waiting (the station's loop runs in the test's thread); its correlation data."""
    correlation = uuid.uuid4().bytes
    staff.publish(PREFIX + "cmd/" + name, json.dumps(payload), response_topic=REPLY_TOPIC, correlation=correlation)
    return correlation


@pytest.mark.slow
def test_a_running_station_retries_with_back_off_and_heals_once_the_disk_has_room(
        tmp_path: Path, disk: TinyDisk, broker: Mosquitto, staff: Staff) -> None:
    clock = ManualClock(START)
    station = station_on(disk, tmp_path / "station", broker.port, clock)
    try:
        loop = station.loop
        settle_until(station, lambda: station.link.connected, TIMEOUT, "the MQTT connection")
        loop.fault_board.raise_fault("help_button", "stuck", clock(), "held for 30 s")  # stored: its rows wait in the outbox
        empty_wal(disk.database)
        disk.fill()  # the broker's PUBACKs for them cannot be recorded
        fault = station_publishes(station, staff, newest("fault/storage", active=True), TIMEOUT, "fault/storage")
        assert fault["code"] == "full" and fault["since"] == "2026-01-05T09:00:00.000Z"
        settle_until(station, lambda: loop.state.screen is journey.Screen.OUT_OF_SERVICE, TIMEOUT, "out of service")
        loop.fault_board.raise_fault("payments", "unreconciled", clock(), "payment p-7: no answer")  # kept in memory only
        direct = station_publishes(station, staff, newest("fault/payments", active=True), TIMEOUT, "fault/payments")
        loop.fault_board.clear_fault("help_button", clock())  # the button came free: published directly too
        station_publishes(station, staff, newest("fault/help_button", active=False), TIMEOUT, "fault/help_button")

        waits = []
        for _ in range(8):  # the disk stays full: each try fails, the next one waits twice as long, up to 60 s
            due = retry_at(station)
            assert due is not None
            waits.append((due - clock()).total_seconds())
            clock.set(due - timedelta(milliseconds=1))
            loop.settle()
            assert retry_at(station) == due  # not before its time
            clock.set(due)
            loop.settle()
        assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
        assert storage_fault(station).code == "full"

        disk.make_room()
        disk.fill(leave=256 * 1024)  # room for a few writes, not enough to take payments again
        clock.set(retry_at(station))
        loop.settle()
        assert storage_fault(station).code == "full" and retry_at(station) - clock() == timedelta(seconds=60)
        disk.make_room()
        clock.set(retry_at(station))
        loop.settle()
        assert storage_fault(station) is None and retry_at(station) is None
        settle_until(station, lambda: loop.state.screen is journey.Screen.WELCOME, TIMEOUT, "back in service")
        cleared = station_publishes(station, staff, newest("fault/storage", active=False), TIMEOUT, "the clear")
        assert cleared["code"] == "full"

        # What was kept in memory is in the database now, as it was published, with its events.
        store = station.store
        active = {(f.component, f.code) for f in store.active_faults()}
        assert ("payments", "unreconciled") in active and "help_button" not in {c for c, _ in active}
        assert dict(store.retained_messages())["fault/payments"] == json.dumps(direct, separators=(",", ":"))
        [history] = store.rows("fault", component="storage")
        assert (history["code"], history["raised_at"], history["cleared_at"]) == (
            "full", "2026-01-05T09:00:00.000000Z", clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        healed = station_publishes(station, staff, lambda m: ("storage", False) in fault_events(m) and
                                   fault_events(m)[-4:], TIMEOUT, "the fault events of the heal")
        assert sorted(healed[:3]) == [("help_button", False), ("payments", True), ("storage", True)]
        assert healed[3] == ("storage", False)
        assert all(e["series"] == store.series for e in on("event/fault")(staff.messages))
        settle_until(station, lambda: store.outbox_depth() == 0, TIMEOUT, "the rows whose PUBACK was lost sent again")
    finally:
        station.close()


@pytest.mark.slow
def test_a_station_started_without_its_database_restarts_with_it_once_the_disk_has_room(
        tmp_path: Path, disk: TinyDisk, broker: Mosquitto, staff: Staff) -> None:
    with Store.open(disk.database, "ST-1", START - timedelta(days=1)) as store:
        write_something(store, START - timedelta(days=1))
    disk.fill()
    folder = tmp_path / "station"
    clock = ManualClock(START)
    station = station_on(disk, folder, broker.port, clock)
    try:
        loop = station.loop
        assert station.store is None and storage_fault(station).code == "full"
        first = station_publishes(station, staff, lambda m: births(m)[-1:], TIMEOUT, "the birth")[0]
        assert first["series"] is None
        loop.fault_board.raise_fault("operator", "out_of_service", clock(), "crew on site")  # held in memory only
        correlation = ask(staff, "notice", {"text": "Pay at the next station"})
        station_publishes(station, staff, lambda m: [x for x in m if x.correlation == correlation], TIMEOUT, "reply")

        clock.set(retry_at(station))
        loop.settle()
        assert not loop.restart_requested and retry_at(station) == clock() + timedelta(seconds=2)
        disk.make_room()
        clock.set(retry_at(station))
        loop.settle()
        assert loop.restart_requested and station.store is None
    finally:
        station.close()

    clock = ManualClock(START + timedelta(minutes=1))
    again = station_on(disk, folder, broker.port, clock)  # what systemd does after exit code 75
    try:
        assert again.store is not None and storage_fault(again) is None
        assert {(f.component, f.code) for f in again.store.active_faults()} >= {("operator", "out_of_service"),
                                                                                 ("printer", "paper_out")}
        assert again.loop.state.notice == "Pay at the next station"
        [history] = again.store.rows("fault", component="storage")
        assert (history["code"], history["raised_at"]) == ("full", "2026-01-05T09:00:00.000000Z")
        assert history["cleared_at"] == "2026-01-05T09:01:00.000000Z"
        cleared = station_publishes(again, staff, newest("fault/storage", active=False), TIMEOUT, "the clear")
        assert cleared["code"] == "full"
        second = station_publishes(again, staff, lambda m: births(m)[1:], TIMEOUT, "the second birth")[0]
        assert second["boot"] > first["boot"] and second["series"] == again.store.series
        [answered] = again.store.rows("command", key=correlation.hex())  # a duplicate gets this reply, is not run
        assert (answered["name"], answered["state"], json.loads(answered["reply"])["ok"]) == ("notice", "done", True)
    finally:
        again.close()


def test_a_corrupt_database_is_checked_again_only_once_the_file_changed(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "kiosk.db"
    database.write_bytes(b"this is not a database" * 100)
    settings = config.Settings(storage=config.StorageSettings(database=str(database)))
    clock = ManualClock(START)
    station = build_station(settings, clock, simulate=True, headless=True, online=False)
    station.start()
    opens: list[datetime] = []
    real_open = Store.open

    def counted(path: Path, station_id: str, now: datetime) -> Store:
        opens.append(now)
        return real_open(path, station_id, now)

    monkeypatch.setattr(Store, "open", counted)
    try:
        loop = station.loop
        assert station.store is None and storage_fault(station).code == "corrupt"
        for _ in range(4):
            clock.set(retry_at(station))
            loop.settle()
        assert opens == [] and retry_at(station) - clock() == timedelta(seconds=16)
        database.rename(tmp_path / "kiosk.db.damaged")  # a technician keeps it for recovery
        clock.set(retry_at(station))
        loop.settle()
        assert opens == [clock()] and loop.restart_requested
    finally:
        station.close()


# ---- the real service ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_service_heals_by_itself_when_the_disk_has_room_again(tmp_path: Path, disk: TinyDisk,
                                                                 broker: Mosquitto, staff: Staff) -> None:
    folder = tmp_path / "station"
    path = station_config(folder, broker.port)
    path.write_text(path.read_text(encoding="utf-8").replace(str(folder / "kiosk.db"), str(disk.database)),
                    encoding="utf-8")
    station = StationProcess(path).start()
    try:
        [birth] = staff.wait_for(births, TIMEOUT, "the birth")
        status = spec()["components"]["messages"]["status"]["payload"]
        # every documented field but `update`, which only a station installed as releases has (docs/updates.md)
        assert set(birth) == set(status["properties"]) - {"update"} and uuid.UUID(birth["series"]).version == 4
        empty_wal(disk.database)
        disk.fill()
        staff.publish(PREFIX + "cmd/notice", '{"text":"Card payment only"}', response_topic=REPLY_TOPIC,
                      correlation=b"c-1")
        fault = staff.wait_for(newest("fault/storage", active=True), TIMEOUT, "fault/storage")
        assert fault["code"] == "full"
        disk.make_room()
        staff.wait_for(newest("fault/storage", active=False), TIMEOUT, "the storage fault cleared by itself")
        [raised, cleared] = staff.wait_for(lambda m: storage_events(m)[1:] and storage_events(m), TIMEOUT,
                                           "the storage fault's events")
        event = spec()["components"]["messages"]["event"]["payload"]
        assert set(raised) == set(event["properties"]) == set(event["required"]) | {"series"}
        assert raised["series"] == cleared["series"] == birth["series"] and cleared["seq"] == raised["seq"] + 1
        assert (raised["data"]["active"], cleared["data"]["active"]) == (True, False)
        assert station.stop() == 0
    finally:
        station.kill()
    assert "Traceback" not in station.log()
