"""systemd's part of systemd/kiosk.service for tests: the guard before and after each start, Type=notify, Restart=always.

It does what the unit asks of systemd, with the same environment contract: ExecStartPre runs
``python -m kiosk.releases.guard start`` from the *stable* release, ExecStart the *current*
release's ``kiosk run`` with $NOTIFY_SOCKET, a start that sends no READY=1 within
``start_timeout`` is stopped (SIGTERM) with the result ``timeout``, and ExecStopPost gets
$SERVICE_RESULT and $EXIT_STATUS (exit status 75 counts as success, SuccessExitStatus=75).
Then it starts again (Restart=always), until stopped.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SUCCESS_EXIT = (0, 75)


@dataclass
class Run:
    """One start: which release ran, whether it reported ready, and how it ended (SERVICE_RESULT, EXIT_STATUS)."""

    release: str
    ready: bool = False
    result: str = ""
    status: str = ""


@dataclass
class Supervisor:
    """Runs the station of ``root`` with ``config`` as systemd would, in a thread; ``runs`` is its history."""

    root: Path
    config: Path
    log: Path
    start_timeout: float = 60.0
    stop_timeout: float = 10.0  # TimeoutStopSec: then SIGKILL
    runs: list[Run] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _process: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._serve, name="supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60) -> None:
        """systemctl stop: SIGTERM to the station, then no more restarts."""
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
        if self._thread is not None:
            self._thread.join(self.stop_timeout)
            if self._thread.is_alive() and process is not None:
                process.kill()  # TimeoutStopSec passed
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "the supervisor did not stop"

    def text(self) -> str:
        """What the guard and the station logged."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def _guard(self, when: str, env: dict[str, str]) -> None:
        python = self.root / "stable" / ".venv" / "bin" / "python"
        with self.log.open("ab") as out:
            subprocess.run([str(python), "-m", "kiosk.releases.guard", when, "--root", str(self.root)],
                           env={**os.environ, **env}, stdout=out, stderr=out, check=False, timeout=120)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            self._guard("start", {})
            if self._stopping.is_set():
                return
            run = self._one()
            self._guard("stopped", {"SERVICE_RESULT": run.result, "EXIT_STATUS": run.status})
            if not self._stopping.is_set():
                time.sleep(0.2)  # RestartSec (a pause between starts, not a synchronisation)

    def _one(self) -> Run:
        """Start the current release, wait for READY=1 within the start timeout, then for its end."""
        current = self.root / "current"
        run = Run(os.readlink(current).rsplit("/", 1)[-1])
        self.runs.append(run)
        address = str(self.log.with_name(f"notify-{len(self.runs)}.sock"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(address)
            notify.settimeout(0.2)
            env = {**os.environ, "NOTIFY_SOCKET": address, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
            env.pop("PYTHONPATH", None)  # the release's own code, from its own venv
            with self.log.open("ab") as out:
                self._process = process = subprocess.Popen(
                    [str(current / ".venv" / "bin" / "kiosk"), "run", "--simulate", "--headless", "--config",
                     str(self.config)], env=env, stdout=out, stderr=out, cwd=self.log.parent)
            deadline = time.monotonic() + self.start_timeout
            timed_out = False
            killed_at = None
            while process.poll() is None:
                try:
                    message = notify.recv(4096).decode()
                except TimeoutError:
                    message = ""
                if "READY=1" in message.split("\n"):
                    run.ready = True
                if not run.ready and time.monotonic() > deadline and not timed_out:
                    timed_out = True
                    process.send_signal(signal.SIGTERM)
                    killed_at = time.monotonic() + self.stop_timeout
                if killed_at is not None and time.monotonic() > killed_at:
                    process.kill()
            code = process.wait()
        os.unlink(address)
        status = signal.Signals(-code).name.removeprefix("SIG") if code < 0 else str(code)  # systemd names signals
        if timed_out:
            run.result, run.status = "timeout", status
        elif code < 0:
            run.result, run.status = "signal", status
        else:
            run.result, run.status = ("success" if code in SUCCESS_EXIT else "exit-code"), str(code)
        return run
