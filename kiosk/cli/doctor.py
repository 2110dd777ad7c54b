"""`kiosk doctor`: the technician's check of every part, asked of the running station over a local socket."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
import threading
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from kiosk import config
from kiosk.app.doctor import system_findings
from kiosk.app.loop import Loop
from kiosk.cli.line_socket import exchange
from kiosk.domain.doctor import Finding, Health, Part, Report
from kiosk.domain.events import DoctorAsked
from kiosk.storage.examine import examine

__all__ = ["DEFAULT_CONFIG", "SOCKET_NAME", "DoctorSocket", "StationUnreachable", "Unreachable", "ask_station", "doctor",
           "report_json", "run", "socket_path", "station_answers"]

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/kiosk/kiosk.toml")
SOCKET_NAME = "doctor.sock"  # beside the database: only root and the station's own user can reach it
REQUEST = b"doctor\n"  # what a client says; a connection that says nothing (a probe) is examined for nothing
STOPPING = "the station is stopping"
ANSWER_S = 20.0  # the report takes a database check and a few commands; a loop that hangs never answers
REQUEST_WAIT_S = 5.0  # a client has this long to say REQUEST
ANSWER_MARGIN_S = 5.0  # the client waits this much longer than the station, which says when it gave up
DEVICES = (Part.TERMINAL, Part.GPIO, Part.DISPLAY, Part.VOICE, Part.BROKER)
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_NO_RIGHTS = 0, 1, 2


def socket_path(settings: config.Settings) -> Path:
    """Where the running station answers the doctor: ``doctor.sock`` beside its database."""
    return Path(settings.storage.database).parent / SOCKET_NAME


class DoctorSocket:
    """The running station's end of `kiosk doctor`: a Unix socket that answers a request with one report.

    A connection that sends REQUEST gets the report as one line of JSON (Report.as_json) and is
    closed; one that sends nothing else within a few seconds is closed unanswered. The socket
    file is made mode 0600 in the database's folder.
    """

    def __init__(self, path: Path, loop: Loop) -> None:
        self._path = path
        self._loop = loop
        self._server: socket.socket | None = None
        self._inode: int | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._waiting: set[threading.Event] = set()  # the answer threads' wake-ups

    def start(self) -> None:
        """Listen; a stale socket file from an earlier run is replaced, a live one (another station) is left alone.

        A failure is logged and the station runs on without the socket.
        """
        try:
            if station_answers(self._path):
                log.error("kiosk doctor: another station answers on %s; this one does not take it over", self._path)
                return
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)
            try:
                server.bind(str(self._path))
            finally:
                os.umask(old_umask)
            server.listen(4)
            self._inode = self._path.stat().st_ino
        except OSError as exc:
            log.error("kiosk doctor cannot reach this station: socket %s: %s", self._path, exc)
            return
        self._server = server
        threading.Thread(target=self._accept, args=(server,), name="doctor-socket", daemon=True).start()

    def close(self) -> None:
        """Stop answering (a client still waiting hears that the station stops) and remove our socket file."""
        self._closing.set()
        with self._lock:
            waiting = list(self._waiting)
        for wake in waiting:
            wake.set()
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
            with contextlib.suppress(OSError):
                if self._path.stat().st_ino == self._inode:  # not a socket another station made since
                    self._path.unlink()

    @property
    def clients(self) -> int:
        """How many clients wait for their report now."""
        with self._lock:
            return len(self._waiting)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), name="doctor-answer", daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        wake = threading.Event()
        reports: list[Report] = []

        def answer(report: Report, now: datetime) -> None:
            reports.append(report)
            wake.set()

        with self._lock:
            self._waiting.add(wake)
        try:
            with conn:
                if not _asked(conn):
                    return
                if not self._closing.is_set():
                    self._loop.post(DoctorAsked(answer))
                    wake.wait(ANSWER_S)
                if reports:
                    payload = report_json(reports[0])
                elif self._closing.is_set():
                    payload = json.dumps({"error": STOPPING})
                else:
                    payload = json.dumps({"error": f"the station's loop did not answer within {ANSWER_S:.0f} s"})
                with contextlib.suppress(OSError):
                    conn.settimeout(ANSWER_S)
                    conn.sendall(payload.encode() + b"\n")
        finally:
            with self._lock:
                self._waiting.discard(wake)


def _asked(conn: socket.socket) -> bool:
    """The client sent REQUEST (within REQUEST_WAIT_S)."""
    received = b""
    try:
        conn.settimeout(REQUEST_WAIT_S)
        while len(received) < len(REQUEST) and (chunk := conn.recv(len(REQUEST) - len(received))):
            received += chunk
    except OSError:
        return False
    return received == REQUEST


def station_answers(path: Path) -> bool:
    """Something listens on the socket at ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(str(path))
        return True
    except OSError:
        return False


def report_json(report: Report) -> str:
    """The report as one line of JSON."""
    return json.dumps(report.as_json(), ensure_ascii=False, separators=(",", ":"))


class Unreachable(StrEnum):
    """Why the running station could not be asked."""

    NOT_RUNNING = "not_running"
    NO_PERMISSION = "no_permission"
    NO_ANSWER = "no_answer"


class StationUnreachable(Exception):
    """The running station could not be asked: ``why`` (not running, no permission, no answer) and the detail."""

    def __init__(self, why: Unreachable, detail: str) -> None:
        super().__init__(detail)
        self.why = why


def ask_station(path: Path, timeout: float | None = None) -> Report:
    """The running station's report over its socket (within ``timeout``, ANSWER_S and its margin by default).

    StationUnreachable says why not.
    """
    try:
        received = exchange(path, REQUEST, ANSWER_S + ANSWER_MARGIN_S if timeout is None else timeout)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise StationUnreachable(Unreachable.NOT_RUNNING, f"the station does not run (no answer on {path})") from exc
    except PermissionError as exc:
        raise StationUnreachable(Unreachable.NO_PERMISSION,
                                 f"no permission to ask the station on {path}: run as root (sudo)") from exc
    except OSError as exc:
        raise StationUnreachable(Unreachable.NO_ANSWER, f"the station did not answer on {path}: {exc}") from exc
    try:
        raw = json.loads(received)
    except ValueError as exc:
        raise StationUnreachable(Unreachable.NO_ANSWER, f"the station's answer is not JSON: {received[:80]!r}") from exc
    if isinstance(raw, dict) and "error" in raw:
        said = str(raw["error"])
        raise StationUnreachable(Unreachable.NOT_RUNNING if said == STOPPING else Unreachable.NO_ANSWER, said)
    try:
        return Report.from_json(raw)
    except ValueError as exc:
        raise StationUnreachable(Unreachable.NO_ANSWER, str(exc)) from exc


def doctor(settings: config.Settings, config_file: Path | None) -> Report:
    """Ask the running station; when it does not run or answer, examine what can be examined without it.

    StationUnreachable (NO_PERMISSION) when it may not be asked: a report would be all false alarms.
    """
    try:
        return ask_station(socket_path(settings))
    except StationUnreachable as exc:
        if exc.why is Unreachable.NO_PERMISSION:
            raise
        unreachable = exc
    from drivers.host import LinuxHost

    alone = system_findings(LinuxHost(), examine, Path(settings.storage.database), config_file)
    if unreachable.why is Unreachable.NO_ANSWER:  # it runs: its service line would say otherwise
        alone = [f for f in alone if f.part is not Part.SERVICE]
        alone.append(Finding(Part.SERVICE, Health.FAIL, f"the station runs but does not answer ({unreachable}); "
                                                        "a hung loop is restarted by systemd's watchdog"))
    unseen = [Finding(part, Health.WARN, f"not examined: {unreachable}") for part in DEVICES]
    return Report.of([*alone, *unseen])


def run(args: argparse.Namespace, settings: config.Settings, config_file: Path | None) -> int:
    """Print the report (lines, or JSON with ``--json``); exit 0 when nothing failed, 1 otherwise, 2 without rights."""
    try:
        report = doctor(settings, config_file)
    except StationUnreachable as exc:
        sys.stderr.write(f"kiosk doctor: {exc}\n")
        return EXIT_NO_RIGHTS
    if args.json:
        sys.stdout.write(report_json(report) + "\n")
    else:
        sys.stdout.write("\n".join(report.lines()) + "\n")
        sys.stdout.write(("healthy" if report.healthy else "NOT healthy: see the lines marked fail") + "\n")
    return EXIT_HEALTHY if report.healthy else EXIT_UNHEALTHY
