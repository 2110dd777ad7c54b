"""systemd supervision: the notify protocol on a socket the test owns, a loop that feeds its watchdog only while it
turns, and `kiosk run` reporting READY, STATUS, WATCHDOG and STOPPING."""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ROOT, wait_for

from kiosk import config
from kiosk.cli.compose import build_station
from kiosk.cli.sd_notify import SystemdNotifier
from kiosk.domain.events import Tap


class NotifySocket:
    """A datagram socket playing systemd's NOTIFY_SOCKET; ``messages`` are (time.monotonic(), text)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.address = address
        self.messages: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            self.messages.put((time.monotonic(), data.decode()))

    def next(self, timeout: float = 20) -> str:
        return self.messages.get(timeout=timeout)[1]

    def until(self, prefix: str, timeout: float = 30) -> list[tuple[float, str]]:
        """Every message up to and including the first that starts with ``prefix``."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            at, text = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            seen.append((at, text))
            if text.startswith(prefix):
                return seen


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(str(tmp_path / "notify"))
    yield listener
    listener.sock.close()


def test_the_notifier_speaks_sd_notify_on_a_path_and_an_abstract_socket(notify_socket: NotifySocket,
                                                                          tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "20000000"})
    assert notifier.enabled and notifier.watchdog_interval == 10.0
    notifier.ready("waiting for parkers")
    notifier.alive()
    notifier.status("waiting for parkers")  # unchanged: not sent again
    notifier.status("help call")
    notifier.stopping()
    assert [notify_socket.next() for _ in range(4)] == ["READY=1\nSTATUS=waiting for parkers", "WATCHDOG=1",
                                                        "STATUS=help call", "STOPPING=1\nSTATUS=stopping"]
    abstract = NotifySocket(f"@kiosk-test-{os.getpid()}")
    try:
        SystemdNotifier({"NOTIFY_SOCKET": abstract.address}).ready("x")
        assert abstract.next() == "READY=1\nSTATUS=x"
    finally:
        abstract.sock.close()


def test_without_systemd_or_with_someone_else_s_watchdog_nothing_is_sent(caplog: pytest.LogCaptureFixture,
                                                                         tmp_path: Path) -> None:
    quiet = SystemdNotifier({})
    assert not quiet.enabled and quiet.watchdog_interval is None
    quiet.ready("x")
    quiet.alive()
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval \
        is None, "the watchdog is another process's"
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "bogus"}).watchdog_interval is None
    gone = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    for _ in range(3):
        gone.ready("x")  # logged once, never raised
    assert len([r for r in caplog.records if "cannot notify" in r.message]) == 1


class Beats:
    """A service manager that records when the loop said it is alive."""

    def __init__(self, interval: float) -> None:
        self.watchdog_interval = interval
        self.alive_at: list[float] = []
        self.statuses: list[str] = []
        self.ready_status = ""
        self.stopped = False

    def ready(self, status: str) -> None:
        self.ready_status = status

    def alive(self) -> None:
        self.alive_at.append(time.monotonic())

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def stopping(self) -> None:
        self.stopped = True


def test_the_loop_feeds_its_watchdog_while_it_turns_and_stops_when_it_hangs(tmp_path: Path) -> None:
    settings = config.from_mapping({"storage": {"database": str(tmp_path / "kiosk.db")}}, "test")
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True, online=False)
    beats = Beats(0.05)
    hang, hanging = threading.Event(), threading.Event()
    original = station.loop.handle

    def handle(event: object) -> None:
        if event == Tap("hang"):  # an effect that never returns, as a stuck device call would
            hanging.set()
            hang.wait(30)
        original(event)  # type: ignore[arg-type]

    station.loop.handle = handle  # type: ignore[method-assign]
    runner = threading.Thread(target=station.loop.run, args=(beats,))
    try:
        station.start()
        runner.start()
        wait_for(lambda: len(beats.alive_at) >= 5, 10, "five heartbeats from an idle loop")
        assert beats.ready_status == "waiting for parkers"
        station.loop.post(Tap("hang"))
        assert hanging.wait(10)
        count = len(beats.alive_at)
        assert not hang.wait(0.5), "held for half a second: ten intervals"
        assert len(beats.alive_at) <= count + 1, "a hung loop stops feeding the watchdog"
        hang.set()
        wait_for(lambda: len(beats.alive_at) >= count + 3, 10, "heartbeats again once it turns")
    finally:
        hang.set()
        station.loop.stop()
        runner.join(10)
        station.close()
    assert beats.stopped


def test_kiosk_run_reports_ready_status_watchdog_and_stopping(notify_socket: NotifySocket, tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    (tmp_path / "kiosk.toml").write_text(f'[storage]\ndatabase = "{database}"\n', encoding="utf-8")
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "400000",
           "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    env.pop("WATCHDOG_PID", None)
    with (tmp_path / "run.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--simulate", "--headless", "--config",
                                 str(tmp_path / "kiosk.toml")], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        before = notify_socket.until("READY=1")
        assert "STATUS=waiting for parkers" in before[-1][1]
        assert "ready: waiting for parkers" in (tmp_path / "run.log").read_text(), "READY only once it can serve"
        beats = [at for at, text in notify_socket.until("WATCHDOG=1") + notify_socket.until("WATCHDOG=1")
                 + notify_socket.until("WATCHDOG=1") if text == "WATCHDOG=1"]
        assert len(beats) == 3 and max(b - a for a, b in zip(beats, beats[1:])) < 0.4, "within WATCHDOG_USEC"
        proc.send_signal(signal.SIGTERM)
        assert notify_socket.until("STOPPING=1")[-1][1] == "STOPPING=1\nSTATUS=stopping"
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
