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
from pathlib import Path

from kiosk import config
from kiosk.app.doctor import system_findings
from kiosk.app.loop import Loop
from kiosk.domain.doctor import Finding, Health, Part, Report
from kiosk.domain.events import DoctorAsked
from kiosk.storage.examine import examine

__all__ = ["DEFAULT_CONFIG", "SOCKET_NAME", "DoctorSocket", "StationUnreachable", "ask_station", "doctor", "report_json",
           "run", "socket_path"]

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/kiosk/kiosk.toml")
SOCKET_NAME = "doctor.sock"  # beside the database: only root and the station's own user can reach it
ANSWER_S = 20.0  # the report takes a database check and a few commands; a loop that hangs never answers
DEVICES = (Part.TERMINAL, Part.GPIO, Part.DISPLAY, Part.VOICE, Part.BROKER)
EXIT_HEALTHY, EXIT_UNHEALTHY = 0, 1


def socket_path(settings: config.Settings) -> Path:
    """Where the running station answers the doctor: ``doctor.sock`` beside its database."""
    return Path(settings.storage.database).parent / SOCKET_NAME


class DoctorSocket:
    """The running station's end of `kiosk doctor`: a Unix socket that answers every connection with one report.

    A connection gets the report as one line of JSON (Report.as_json) and is closed; nothing is
    read from it. The socket file is made mode 0600 in the database's folder.
    """

    def __init__(self, path: Path, loop: Loop) -> None:
        self._path = path
        self._loop = loop
        self._server: socket.socket | None = None

    def start(self) -> None:
        """Listen (a stale socket file from an earlier run is replaced); a failure is logged, the station runs on."""
        try:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)
            try:
                server.bind(str(self._path))
            finally:
                os.umask(old_umask)
            server.listen(4)
        except OSError as exc:
            log.error("kiosk doctor cannot reach this station: socket %s: %s", self._path, exc)
            return
        self._server = server
        threading.Thread(target=self._accept, args=(server,), name="doctor-socket", daemon=True).start()

    def close(self) -> None:
        """Stop answering and remove the socket file."""
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
            with contextlib.suppress(OSError):
                self._path.unlink()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), name="doctor-answer", daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        done = threading.Event()
        reports: list[Report] = []

        def answer(report: Report, now: datetime) -> None:
            reports.append(report)
            done.set()

        with conn:
            self._loop.post(DoctorAsked(answer))
            if done.wait(ANSWER_S):
                payload = report_json(reports[0])
            else:
                payload = json.dumps({"error": f"the station's loop did not answer within {ANSWER_S:.0f} s"})
            with contextlib.suppress(OSError):
                conn.settimeout(ANSWER_S)
                conn.sendall(payload.encode() + b"\n")


def report_json(report: Report) -> str:
    """The report as one line of JSON."""
    return json.dumps(report.as_json(), ensure_ascii=False, separators=(",", ":"))


class StationUnreachable(Exception):
    """The running station could not be asked (not running, no permission, no answer)."""


def ask_station(path: Path, timeout: float = ANSWER_S + 5) -> Report:
    """The running station's report over its socket; StationUnreachable says why not."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            received = b""
            while not received.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise StationUnreachable(f"the station does not run (no answer on {path})") from exc
    except PermissionError as exc:
        raise StationUnreachable(f"no permission to ask the station on {path}: run as root (sudo)") from exc
    except OSError as exc:
        raise StationUnreachable(f"the station did not answer on {path}: {exc}") from exc
    try:
        raw = json.loads(received)
    except ValueError as exc:
        raise StationUnreachable(f"the station's answer is not JSON: {received[:80]!r}") from exc
    if isinstance(raw, dict) and "error" in raw:
        raise StationUnreachable(str(raw["error"]))
    try:
        return Report.from_json(raw)
    except ValueError as exc:
        raise StationUnreachable(str(exc)) from exc


def doctor(settings: config.Settings, config_file: Path | None) -> Report:
    """Ask the running station; when it cannot be asked, examine what can be examined without it."""
    try:
        return ask_station(socket_path(settings))
    except StationUnreachable as exc:
        why = str(exc)
    from drivers.host import LinuxHost

    alone = system_findings(LinuxHost(), examine, Path(settings.storage.database), config_file)
    unseen = [Finding(part, Health.WARN, f"not examined: {why}") for part in DEVICES]
    return Report.of([*alone, *unseen])


def run(args: argparse.Namespace, settings: config.Settings, config_file: Path | None) -> int:
    """Print the report (lines, or JSON with ``--json``); exit 0 when nothing failed, 1 otherwise."""
    report = doctor(settings, config_file)
    if args.json:
        sys.stdout.write(report_json(report) + "\n")
    else:
        sys.stdout.write("\n".join(report.lines()) + "\n")
        sys.stdout.write(("healthy" if report.healthy else "NOT healthy: see the lines marked fail") + "\n")
    return EXIT_HEALTHY if report.healthy else EXIT_UNHEALTHY
