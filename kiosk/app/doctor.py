"""The doctor: examines every part of the station for a technician (`kiosk doctor` and MQTT cmd/doctor)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path

from kiosk import config
from kiosk.domain.doctor import Finding, Health, Part, Report, judge_clock, judge_disk, judge_temperature
from kiosk.domain.events import DoctorExamined, MethodReport
from kiosk.domain.faults import Severity
from kiosk.domain.records import FaultRecord
from kiosk.mqtt.contract import time_text
from kiosk.ports import Display, Host, Post, Uplink

__all__ = ["ACTIVE_STATES", "EXAMINATION_S", "STATUS_WAIT_S", "Answer", "DatabaseExaminer", "Doctor", "LiveParts",
           "UnknownHost", "live_findings", "status_finding", "system_findings"]

log = logging.getLogger(__name__)

DatabaseExaminer = Callable[[Path], tuple[bool, str]]
"""Looks at a database file read-only: (sound, what was found) (kiosk.storage.examine.examine)."""

Answer = Callable[[Report, datetime], None]
"""Gets the doctor's report on the loop thread, with the loop's time."""

STATUS_WAIT_S = 15  # the terminal answers a status enquiry within a second or two; a silent one is reported so
EXAMINATION_S = 15  # the worker's database check and commands; one not done by then is a hung disk (kiosk doctor
# waits ANSWER_S = 20 s for the whole report)
ACTIVE_STATES = ("active", "activating", "reloading")  # systemd's words for a service that runs


class UnknownHost:
    """A computer the station cannot read anything of: the Host of tests and scenario replays."""

    def cpu_temperature_c(self) -> float | None:
        """Not reported."""
        return None

    def throttling(self) -> int | None:
        """Not reported."""
        return None

    def disk_free_bytes(self, path: Path) -> int | None:
        """Not reported."""
        return None

    def clock_synchronised(self) -> tuple[bool | None, str]:
        """Nobody said."""
        return None, "not known here"

    def service_state(self) -> str | None:
        """No systemd."""
        return None

    def addresses(self) -> tuple[str, ...]:
        """None known."""
        return ()


def system_findings(host: Host, examine_database: DatabaseExaminer, database: Path, config_file: Path | None,
                    applied_version: int | None = None) -> list[Finding]:
    """What can be examined without the station's devices: configuration, database, clock, temperature, service.

    ``applied_version`` is the configuration version the running station applies (remote
    configuration may have replaced the file's); None when the station does not run.
    """
    sound, detail = examine_database(database)
    return [
        _configuration(config_file, applied_version),
        judge_disk(host.disk_free_bytes(database), detail, sound),
        judge_clock(*host.clock_synchronised()),
        judge_temperature(host.cpu_temperature_c(), host.throttling()),
        _service(host.service_state(), running=applied_version is not None),
    ]


def _configuration(config_file: Path | None, applied_version: int | None) -> Finding:
    applied = "" if applied_version is None else f"; version {applied_version} applied"
    if config_file is None:
        return Finding(Part.CONFIGURATION, Health.WARN, "no configuration file: built-in demo settings" + applied)
    try:
        settings = config.load(config_file)
    except config.ConfigError as exc:
        first = exc.problems[0] if exc.problems else "unreadable"
        return Finding(Part.CONFIGURATION, Health.FAIL, f"{len(exc.problems)} problem(s) in {config_file}: {first}")
    return Finding(Part.CONFIGURATION, Health.OK,
                   f"{config_file} valid (station {settings.station.id}, version {settings.version}){applied}")


@dataclass(frozen=True)
class LiveParts:
    """What only the running station knows, as the loop holds it when the doctor is asked."""

    settings: config.Settings
    faults: tuple[FaultRecord, ...]
    payment_method: str
    door_open: bool
    display: Display
    uplink: Uplink | None


def live_findings(parts: LiveParts, now: datetime) -> list[Finding]:
    """The running station's view of its devices and its link."""
    faults = {f.component: f for f in parts.faults}
    return [
        _terminal(parts, faults, now),
        _gpio(parts, faults, now),
        _display(parts, faults, now),
        _voice(parts, faults, now),
        parts.uplink.examine() if parts.uplink is not None
        else Finding(Part.BROKER, Health.WARN, "no MQTT link in this run"),
    ]


def _fault_text(fault: FaultRecord, now: datetime) -> str:
    minutes = int((now - fault.since).total_seconds() // 60)
    return f"{fault.component}/{fault.code} for {minutes} min: {fault.message}"


def _terminal(parts: LiveParts, faults: dict[str, FaultRecord], now: datetime) -> Finding:
    fault = faults.get(parts.payment_method)
    if fault is not None:  # a warning (payment_timeout: payments were slow) is not a terminal that does not work
        return Finding(Part.TERMINAL, Health.WARN if fault.severity == Severity.WARNING else Health.FAIL,
                       _fault_text(fault, now))
    return Finding(Part.TERMINAL, Health.OK,
                   f"ready (answers a status enquiry every {parts.settings.terminal.status_interval_s} s)")


def _display(parts: LiveParts, faults: dict[str, FaultRecord], now: datetime) -> Finding:
    fault = faults.get("display")  # a frame that failed to draw, or no display at start
    if fault is not None:
        return Finding(Part.DISPLAY, Health.FAIL, _fault_text(fault, now))
    return parts.display.examine()


def _gpio(parts: LiveParts, faults: dict[str, FaultRecord], now: datetime) -> Finding:
    door = "door open" if parts.door_open else "door closed"
    for component in ("gpio", "help_button"):
        fault = faults.get(component)
        if fault is not None:
            return Finding(Part.GPIO, Health.FAIL, f"{_fault_text(fault, now)}; {door}")
    g = parts.settings.gpio
    pins = f"help button GPIO{g.help_button}, LED GPIO{g.help_led}, door switch GPIO{g.door_switch}"
    tamper = faults.get("door")
    if tamper is not None:
        return Finding(Part.GPIO, Health.WARN, f"{pins}; {_fault_text(tamper, now)}")
    return Finding(Part.GPIO, Health.OK, f"{pins}; {door}")


def _voice(parts: LiveParts, faults: dict[str, FaultRecord], now: datetime) -> Finding:
    voice = parts.settings.voice
    if not voice.enabled:
        return Finding(Part.VOICE, Health.OK, "off: help is by text on the screen")
    fault = faults.get("help")
    if fault is not None:
        return Finding(Part.VOICE, Health.FAIL, _fault_text(fault, now))
    return Finding(Part.VOICE, Health.OK, f"ready: help calls go to {voice.destination}")


def _service(state: str | None, running: bool) -> Finding:
    if not running:
        said = "no systemd" if state is None else f"systemd: {state}"
        return Finding(Part.SERVICE, Health.FAIL, f"the station does not run ({said})")
    if state is None:
        return Finding(Part.SERVICE, Health.OK, "running, not under systemd")
    if state in ACTIVE_STATES:
        return Finding(Part.SERVICE, Health.OK, f"running; systemd: {state}")
    return Finding(Part.SERVICE, Health.WARN, f"running, but not as the kiosk service (systemd: {state})")


@dataclass
class _Examination:
    """One examination under way: what is known so far, and whom to tell."""

    live: list[Finding]
    answer: Answer
    asked: datetime
    status_request: str | None  # the terminal's status enquiry, while it is unanswered
    system: tuple[Finding, ...] | None = None
    status: Finding | None = None


def status_finding(event: MethodReport) -> Finding:
    """The terminal's answer to the doctor's status enquiry."""
    data = event.data
    if not event.ok:
        return Finding(Part.TERMINAL, Health.FAIL, f"did not answer a status enquiry: {data.get('error', 'no answer')}")
    if not data.get("ready"):
        return Finding(Part.TERMINAL, Health.FAIL, f"answered a status enquiry: status {data.get('status')}, not ready")
    return Finding(Part.TERMINAL, Health.OK, f"answered a status enquiry just now: status {data.get('status')}, ready")


class Doctor:
    """Examines the station when asked, on the loop thread, without blocking it.

    The devices and the link are read at once from the loop's own view (:func:`live_findings`);
    the card terminal is asked for its status (unless it is busy) and answers with a MethodReport;
    the database, the clock, the temperature and the service take a read-only integrity check and
    a few commands, so a worker thread examines them and posts DoctorExamined. Once both are in,
    or STATUS_WAIT_S passed without the terminal's answer (a warning: busy, or silent; its fault
    says which) and EXAMINATION_S without the worker's, the report goes to whoever asked.
    """

    def __init__(self, host: Host, examine_database: DatabaseExaminer, database: Path, config_file: Path | None,
                 post: Post) -> None:
        self._host = host
        self._examine_database = examine_database
        self._database = database
        self._config_file = config_file
        self._post = post
        self._tokens = count(1)
        self._waiting: dict[int, _Examination] = {}

    def ask(self, live: Iterable[Finding], applied_version: int, answer: Answer, now: datetime,
            status_request: str | None = None) -> None:
        """Examine the rest of the station in a worker; ``answer`` gets the whole report on the loop thread.

        ``status_request`` is the id of the status enquiry the loop asked the terminal for (None: not asked).
        """
        token = next(self._tokens)
        self._waiting[token] = _Examination(list(live), answer, now, status_request)

        def examine() -> None:
            try:
                findings = system_findings(self._host, self._examine_database, self._database, self._config_file,
                                           applied_version)
            except Exception as exc:  # a bug here must still answer the technician
                log.exception("the doctor's examination failed")
                findings = [Finding(Part.SERVICE, Health.FAIL, f"the examination failed: {type(exc).__name__}")]
            self._post(DoctorExamined(token, tuple(findings)))

        threading.Thread(target=examine, name="doctor", daemon=True).start()

    @property
    def examining(self) -> int:
        """How many examinations still wait for the worker's findings."""
        return sum(1 for e in self._waiting.values() if e.system is None)

    def examined(self, event: DoctorExamined, now: datetime) -> None:
        """The worker's findings."""
        examination = self._waiting.get(event.token)
        if examination is not None:
            examination.system = event.findings
            self._complete(event.token, now)

    def report(self, event: MethodReport, now: datetime) -> bool:
        """The terminal's answer to a status enquiry of the doctor's; False if it answers someone else."""
        token = next((t for t, e in self._waiting.items() if e.status_request == event.request_id), None)
        if token is None:
            return False
        examination = self._waiting[token]
        examination.status, examination.status_request = status_finding(event), None
        self._complete(token, now)
        return True

    def deadline(self) -> datetime | None:
        """When a silent terminal, or a worker that has not finished, is reported as such."""
        dues = [e.asked + timedelta(seconds=STATUS_WAIT_S) for e in self._waiting.values() if e.status_request]
        dues += [e.asked + timedelta(seconds=EXAMINATION_S) for e in self._waiting.values() if e.system is None]
        return min(dues, default=None)

    def on_due(self, now: datetime) -> None:
        """Report what did not answer in time: the terminal (busy, or silent), the worker (a hung disk)."""
        for token, examination in list(self._waiting.items()):
            if examination.status_request is not None and now >= examination.asked + timedelta(seconds=STATUS_WAIT_S):
                examination.status_request = None  # its late answer goes to nobody
                examination.status = Finding(Part.TERMINAL, Health.WARN,
                                             f"no answer to a status enquiry within {STATUS_WAIT_S} s (busy?)")
            if examination.system is None and now >= examination.asked + timedelta(seconds=EXAMINATION_S):
                examination.system = (Finding(Part.DATABASE, Health.FAIL, f"not examined: the check did not finish "
                                                                          f"within {EXAMINATION_S} s (a hung disk?)"),)
            self._complete(token, now)

    def _complete(self, token: int, now: datetime) -> None:
        examination = self._waiting[token]
        if examination.system is None or examination.status_request is not None:
            return
        del self._waiting[token]
        live = [_with_status(f, examination.status) if f.part is Part.TERMINAL else f for f in examination.live]
        report = Report.of([*live, *examination.system])
        log.info("doctor: %s at %s", "healthy" if report.healthy else "something is wrong", time_text(now))
        try:
            examination.answer(report, now)
        except Exception:  # whoever asked must not stop the loop
            log.exception("the doctor's report could not be given")


def _with_status(fault_view: Finding, status: Finding | None) -> Finding:
    """The terminal's line: the status enquiry's answer, and its fault if it has one (the worse of the two counts)."""
    if status is None:
        return fault_view
    health = max(fault_view.health, status.health, key=list(Health).index)
    if fault_view.health is Health.OK:
        return Finding(Part.TERMINAL, health, status.detail)
    return Finding(Part.TERMINAL, health, f"{status.detail}; {fault_view.detail}")
