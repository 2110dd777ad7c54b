"""The doctor: its judgements, the computer's readings, the database check, a whole station examined, `kiosk doctor`."""
from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygame
import pytest
from conftest import run_kiosk, station_config, wait_for  # noqa: F401  (station_config is a fixture)
from recording_method import RecordingMethod

from drivers.host import LinuxHost
from kiosk import config
from kiosk.app.doctor import STATUS_WAIT_S, Doctor, UnknownHost, system_findings
from kiosk.app.loop import Loop
from kiosk.cli import doctor as doctor_cli
from kiosk.cli.compose import build_station
from kiosk.cli.doctor import DoctorSocket, StationUnreachable, ask_station
from kiosk.cli.scenario import ManualClock
from kiosk.config import Settings, StorageSettings
from kiosk.domain import journey
from kiosk.domain.doctor import (
    DISK_FAIL_BYTES,
    DISK_WARN_BYTES,
    Finding,
    Health,
    Part,
    Report,
    judge_clock,
    judge_disk,
    judge_temperature,
)
from kiosk.domain.events import MessageIn
from kiosk.mqtt.contract import station_prefix
from kiosk.mqtt.offline import OfflineClient
from kiosk.mqtt.uplink import DOCTOR_ANSWER_S, Uplink
from kiosk.storage.examine import examine
from kiosk.storage.schema import MIGRATIONS
from kiosk.storage.store import Store
from screens.display import Display

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


# ---- judgements (pure) ----


@pytest.mark.parametrize("celsius, throttling, health", [
    (45.0, 0, Health.OK),
    (None, None, Health.OK),
    (72.5, 0, Health.WARN),
    (81.0, 0, Health.FAIL),
    (50.0, 0x50000, Health.WARN),  # under-voltage and throttling since boot, not now
    (50.0, 0x4, Health.WARN),  # throttled now
    (50.0, 0x1, Health.FAIL),  # under-voltage now: the power supply is failing
    (85.0, 0x50000, Health.FAIL),
])
def test_temperature_and_throttling(celsius: float | None, throttling: int | None, health: Health) -> None:
    finding = judge_temperature(celsius, throttling)
    assert finding.part is Part.TEMPERATURE and finding.health is health


def test_throttling_is_named() -> None:
    detail = judge_temperature(50.0, 0x50005).detail
    assert detail == "50.0 °C; under voltage, throttled, under voltage since boot, throttled since boot"
    assert judge_temperature(None, 0).detail == "temperature not reported; never throttled"


@pytest.mark.parametrize("free, sound, health", [
    (DISK_WARN_BYTES, True, Health.OK),
    (DISK_WARN_BYTES - 1, True, Health.WARN),
    (DISK_FAIL_BYTES - 1, True, Health.FAIL),
    (None, True, Health.WARN),
    (10 * DISK_WARN_BYTES, False, Health.FAIL),
])
def test_disk(free: int | None, sound: bool, health: Health) -> None:
    assert judge_disk(free, "db", sound).health is health


def test_clock() -> None:
    assert judge_clock(True, "timedatectl").health is Health.OK
    assert judge_clock(False, "timedatectl").health is Health.FAIL
    assert judge_clock(None, "nobody").health is Health.WARN


def test_report_is_in_part_order_and_survives_json() -> None:
    findings = [Finding(Part.SERVICE, Health.OK, "s"), Finding(Part.CONFIGURATION, Health.FAIL, "c")]
    report = Report.of(findings)
    assert [f.part for f in report.findings] == [Part.CONFIGURATION, Part.SERVICE] and not report.healthy
    assert Report.from_json(json.loads(json.dumps(report.as_json()))) == report
    assert report.lines()[0] == "fail  configuration  c"
    for garbage in (None, [], {"findings": [{"part": "heart"}]}, {"findings": [{"part": "gpio", "health": "meh",
                                                                                 "detail": ""}]}):
        with pytest.raises(ValueError):
            Report.from_json(garbage)


# ---- the computer ----


def test_linux_host_reads_its_files(tmp_path: Path) -> None:
    (tmp_path / "temp").write_text("48312\n")
    (tmp_path / "throttled").write_text("50005\n")
    (tmp_path / "synchronized").write_text("")
    host = LinuxHost(tmp_path / "temp", tmp_path / "throttled", tmp_path / "synchronized")
    assert host.cpu_temperature_c() == 48.3 and host.throttling() == 0x50005
    assert host.disk_free_bytes(tmp_path / "not" / "yet" / "there.db") is not None
    synchronised, source = host.clock_synchronised()
    assert synchronised is True or source == "timedatectl"  # timedatectl answers first where systemd runs
    absent = LinuxHost(tmp_path / "none", tmp_path / "none", tmp_path / "none")
    assert absent.cpu_temperature_c() is None and absent.throttling() is None
    (tmp_path / "temp").write_text("hot\n")
    assert host.cpu_temperature_c() is None


# ---- the database ----


def test_examine_a_sound_database(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "kiosk.db", "ST-1", NOW)
    store.raise_fault("door", "open", "critical", "m", "none", NOW)
    try:
        sound, detail = examine(tmp_path / "kiosk.db")  # beside the open store, as beside a running station
        unsent = store.outbox_depth()
    finally:
        store.close()
    assert unsent == 2
    assert sound and detail == f"integrity ok, schema {len(MIGRATIONS)}, {unsent} message(s) for staff unsent"


def test_examine_refuses_what_is_not_a_sound_kiosk_database(tmp_path: Path) -> None:
    assert examine(tmp_path / "missing.db") == (False, f"no database at {tmp_path / 'missing.db'}")
    (tmp_path / "garbage.db").write_bytes(b"\x00" * 100 + b"not sqlite" * 500)
    sound, detail = examine(tmp_path / "garbage.db")
    assert not sound and "garbage.db" in detail
    Store.open(tmp_path / "newer.db", "ST-1", NOW).close()
    with sqlite3.connect(tmp_path / "newer.db") as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    sound, detail = examine(tmp_path / "newer.db")
    assert not sound and "schema version '999'" in detail


def test_examine_finds_a_damaged_page(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    store = Store.open(path, "ST-1", NOW)
    for minute in range(300):
        store.raise_fault("door", "open" if minute % 2 else "closed", "critical", "m" * 200, "none",
                          NOW + timedelta(minutes=minute))
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page: 4 * page] = b"\xff" * page  # a whole b-tree page scribbled over; the file header intact
    path.write_bytes(bytes(data))
    sound, detail = examine(path)
    assert not sound and ("integrity" in detail or "malformed" in detail), detail


# ---- system findings ----


def test_system_findings_name_a_broken_configuration(tmp_path: Path) -> None:
    bad = tmp_path / "kiosk.toml"
    bad.write_text('[tariff]\nincrement_minutes = "fifteen"\n')
    findings = {f.part: f for f in system_findings(UnknownHost(), examine, tmp_path / "kiosk.db", bad)}
    assert findings[Part.CONFIGURATION].health is Health.FAIL
    assert "increment_minutes" in findings[Part.CONFIGURATION].detail
    assert findings[Part.DATABASE].health is Health.FAIL  # no database there
    assert findings[Part.SERVICE].health is Health.FAIL  # no station runs: nobody applied a version
    assert set(findings) == {Part.CONFIGURATION, Part.DATABASE, Part.CLOCK, Part.TEMPERATURE, Part.SERVICE}


# ---- a whole station examined ----


def examined(loop) -> Report:
    """Ask the loop's doctor and settle until the report comes (its worker examines the computer)."""
    reports: list[Report] = []
    loop.examine(lambda report, now: reports.append(report))
    wait_for(lambda: bool(reports), 20, "the doctor's report", between=loop.settle)
    return reports[0]


def test_a_station_examined_live(tmp_path: Path, station_config: Path) -> None:  # noqa: F811
    settings = config.load(station_config)
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True,
                            config_file=station_config)
    try:
        station.start()
        loop = station.loop
        wait_for(lambda: not loop.fault_board.active(), 20, "the terminal ready", between=loop.settle)
        report = examined(loop)
        parts = {f.part: f for f in report.findings}
        assert list(parts) == list(Part)
        assert parts[Part.CONFIGURATION].health is Health.OK and "version 0 applied" in parts[Part.CONFIGURATION].detail
        assert parts[Part.DATABASE].health is Health.OK
        assert parts[Part.TERMINAL].health is Health.OK and parts[Part.GPIO].detail.endswith("door closed")
        assert parts[Part.TERMINAL].detail == "answered a status enquiry just now: status 00, ready"
        assert parts[Part.DISPLAY].health is Health.WARN  # headless
        assert parts[Part.SERVICE].health in (Health.OK, Health.WARN)
        now = datetime.now(UTC)
        loop.fault_board.raise_fault(loop.payment.name, "unreachable", now - timedelta(minutes=3), "no answer")
        loop.fault_board.raise_fault("help_button", "stuck", now, "held for 60 s")
        report = examined(loop)
        parts = {f.part: f for f in report.findings}
        assert not report.healthy
        assert parts[Part.TERMINAL].health is Health.FAIL and "unreachable for 3 min" in parts[Part.TERMINAL].detail
        assert parts[Part.GPIO].health is Health.FAIL and "help_button/stuck" in parts[Part.GPIO].detail
    finally:
        station.close()


# ---- the display ----


@pytest.mark.parametrize("driver", [None, "kmsdrm"])
def test_no_display_is_said_and_becomes_a_fault(tmp_path: Path, station_config: Path,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch, driver: str | None) -> None:
    """Asked for nothing without a screen, SDL draws into memory where nobody sees it; kmsdrm fails without a panel.

    Both are 'no display'.
    """
    for variable in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(variable, raising=False)
    if driver is None:
        monkeypatch.delenv("SDL_VIDEODRIVER")
    else:
        monkeypatch.setenv("SDL_VIDEODRIVER", driver)
    pygame.display.quit()
    settings = config.load(station_config)
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=False)
    try:
        assert station.display.problem is not None
        finding = station.display.examine()
        assert finding.health is Health.FAIL and finding.detail.startswith("no display: ")
        faults = {f.component: f for f in station.loop.fault_board.active()}
        assert faults["display"].code == "unavailable" and faults["display"].parker_impact == "out_of_service"
        station.loop.settle()  # it still draws, into memory, and serves staff
    finally:
        station.close()
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True)
    try:  # with a screen again the fault of the earlier start is cleared, in the database too
        assert "display" not in {f.component for f in station.loop.fault_board.active()}
        assert "display" not in {f.component for f in station.store.active_faults()}  # type: ignore[union-attr]
    finally:
        station.close()


class FailingDisplay(Display):
    """The real headless display whose drawing fails while ``failing`` is set."""

    failing = True

    def render(self, state, now) -> None:  # type: ignore[no-untyped-def]
        if self.failing:
            raise pygame.error("DRM master lost")
        super().render(state, now)


def test_a_drawing_failure_is_a_fault_not_a_crash(tmp_path: Path, station_config: Path) -> None:  # noqa: F811
    settings = config.load(station_config)
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True)
    display = FailingDisplay(settings, headless=True)
    station.loop.display = display
    try:
        station.loop.settle()
        fault = station.loop.fault_board.get("display")
        assert fault is not None and fault.code == "render_failed" and "DRM master lost" in fault.message
        station.loop.settle()  # tried again, still failing: the same fault, the loop goes on
        display.failing = False
        station.loop.settle()  # the frame that failed is drawn at the next pass
        assert station.loop.fault_board.get("display") is None
        station.loop.settle()  # the journey hears that the fault cleared
        assert station.loop.status_line() == "waiting for parkers"
    finally:
        station.close()


# ---- kiosk doctor ----


@pytest.mark.slow
def test_kiosk_doctor_without_a_running_station(tmp_path: Path, station_config: Path) -> None:  # noqa: F811
    result = run_kiosk("doctor", "--config", str(station_config))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    configuration  ")
    assert any(line.startswith("fail  service        the station does not run") for line in lines)
    assert any(line.startswith("warn  terminal       not examined: the station does not run") for line in lines)
    assert lines[-1] == "NOT healthy: see the lines marked fail"
    with pytest.raises(StationUnreachable, match="does not run"):
        ask_station(tmp_path / "doctor.sock")


def test_a_stale_or_silent_socket_is_unreachable(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "doctor.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        with pytest.raises(StationUnreachable, match="did not answer"):
            ask_station(path, timeout=0.2)  # listening, never answering: a hung station
    finally:
        server.close()
    with pytest.raises(StationUnreachable, match="does not run"):
        ask_station(path)  # the file is left, nobody listens



# ---- found by review: a slow doctor, a hung or second station, a stop while a client waits ----


class Replies(OfflineClient):
    """A link that only keeps the replies it is asked to send."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[str] = []

    def reply(self, response_topic: str, correlation: bytes | None, payload: str) -> bool:
        self.replies.append(payload)
        return True


def test_a_doctor_slower_than_its_command_neither_misleads_nor_crashes(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(NOW)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    link = Replies()
    uplink = Uplink(settings, settings, link, None, "0", 1, store)
    release = threading.Event()

    def stuck_disk(path: Path) -> tuple[bool, str]:
        release.wait(20)  # a failing SD card, or the clock stepped by NTP meanwhile
        return True, "ok"

    loop = Loop(journey.initial(settings, clock()), store, RecordingMethod("card_terminal"), display, clock,
                uplink=uplink)
    loop.doctor = Doctor(UnknownHost(), stuck_disk, tmp_path / "kiosk.db", None, loop.post)
    try:
        loop.settle()
        loop.post(MessageIn("cmd/doctor", b"{}", station_prefix(settings.station.id) + "reply/x", b"\x01"))
        loop.settle()
        clock.set(clock() + timedelta(seconds=DOCTOR_ANSWER_S + 61))
        loop.settle()
        assert [json.loads(r)["detail"] for r in link.replies] == [
            f"the doctor did not finish within {DOCTOR_ANSWER_S} s"]
        release.set()
        wait_for(lambda: loop.doctor is not None and loop.doctor.examining == 0, 10, "the late report",
                 between=loop.settle)
        loop.settle()  # the late report is dropped, the loop goes on
        assert len(link.replies) == 1
    finally:
        release.set()
        display.close()
        store.close()


def test_a_drawing_failure_fails_the_display_line(tmp_path: Path, station_config: Path) -> None:  # noqa: F811
    settings = config.load(station_config)
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True)
    try:
        station.start()
        station.loop.fault_board.raise_fault("display", "render_failed", datetime.now(UTC), "error: DRM master lost")
        parts = {f.part: f for f in examined(station.loop).findings}
        assert parts[Part.DISPLAY].health is Health.FAIL and "render_failed" in parts[Part.DISPLAY].detail
    finally:
        station.close()


def test_a_station_that_does_not_answer_is_not_said_to_be_stopped(tmp_path: Path, station_config: Path,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = config.load(station_config)
    monkeypatch.setattr(doctor_cli, "ANSWER_S", 0.2)
    monkeypatch.setattr(doctor_cli, "ANSWER_MARGIN_S", 0.0)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(doctor_cli.socket_path(settings)))
    server.listen(1)  # a hung station: it accepts and never answers
    try:
        parts = {f.part: f for f in doctor_cli.doctor(settings, station_config).findings}
    finally:
        server.close()
    assert parts[Part.SERVICE].health is Health.FAIL
    assert parts[Part.SERVICE].detail.startswith("the station runs but does not answer (")


def test_a_second_station_neither_takes_nor_removes_the_first_ones_socket(tmp_path: Path,
                                                                          station_config: Path) -> None:  # noqa: F811
    settings = config.load(station_config)
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True)
    path = tmp_path / "doctor.sock"
    first, second = DoctorSocket(path, station.loop), DoctorSocket(path, station.loop)
    try:
        first.start()
        inode = path.stat().st_ino
        second.start()  # finds the first one answering: leaves it alone
        second.close()
        assert path.stat().st_ino == inode
    finally:
        first.close()
        station.close()
    assert not path.exists()


def test_a_client_waiting_when_the_station_stops_is_told_at_once(tmp_path: Path,
                                                                 station_config: Path) -> None:  # noqa: F811
    settings = config.load(station_config)
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True)
    path = tmp_path / "doctor.sock"
    server = DoctorSocket(path, station.loop)
    server.start()
    outcome: list[object] = []

    def client() -> None:
        try:
            outcome.append(ask_station(path))
        except StationUnreachable as exc:
            outcome.append(exc)

    asking = threading.Thread(target=client)
    asking.start()
    try:
        wait_for(lambda: server.clients == 1, 10, "the client's question")  # the loop never settles: it waits
        started = time.monotonic()
        server.close()
        asking.join(10)
        assert time.monotonic() - started < 5
        assert isinstance(outcome[0], StationUnreachable) and str(outcome[0]) == "the station is stopping"
    finally:
        station.close()


def test_a_silent_terminal_is_reported_once_the_doctor_stops_waiting(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(NOW)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    silent = RecordingMethod("card_terminal", capabilities=frozenset({"status"}))  # asked, never answers
    loop = Loop(journey.initial(settings, clock()), store, silent, display, clock)
    loop.doctor = Doctor(UnknownHost(), examine, tmp_path / "kiosk.db", None, loop.post)
    reports: list[Report] = []
    try:
        loop.examine(lambda report, now: reports.append(report))
        assert [call[:2] for call in silent.calls] == [("request", "status")]
        wait_for(lambda: loop.doctor is not None and loop.doctor.examining == 0, 10, "the worker's findings",
                 between=loop.settle)
        assert reports == [] and loop.doctor.deadline() == NOW + timedelta(seconds=STATUS_WAIT_S)
        clock.set(NOW + timedelta(seconds=STATUS_WAIT_S))
        loop.settle()
        terminal = {f.part: f for f in reports[0].findings}[Part.TERMINAL]  # busy or silent: its fault says which
        assert terminal == Finding(Part.TERMINAL, Health.WARN,
                                   f"no answer to a status enquiry within {STATUS_WAIT_S} s (busy?)")
    finally:
        display.close()
        store.close()


class PostRecorder:
    """Stands in for the loop: what the socket posts."""

    def __init__(self) -> None:
        self.posted: list[object] = []

    def post(self, event: object) -> None:
        self.posted.append(event)


def test_a_connection_that_asks_nothing_examines_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor_cli, "ANSWER_S", 0.5)  # nobody answers the one that asks
    loop = PostRecorder()
    server = DoctorSocket(tmp_path / "doctor.sock", loop)  # type: ignore[arg-type]
    server.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:  # as a second station's start-up does
            probe.connect(str(tmp_path / "doctor.sock"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as asker:
            asker.connect(str(tmp_path / "doctor.sock"))
            asker.sendall(b"doctor\n")
            wait_for(lambda: len(loop.posted) == 1, 10, "the question posted")
        wait_for(lambda: server.clients == 0, 30, "both connections done")
        assert [type(event).__name__ for event in loop.posted] == ["DoctorAsked"]
    finally:
        server.close()
