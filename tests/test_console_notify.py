"""The console's desktop notifier (console.notify), with a notify-send of the test's own on PATH: real subprocesses."""
from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import wait_for

from console.alerts import AlertKind, Notice, Severity
from console.notify import DesktopNotifier, graphical_session

T0 = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)

FAKE_NOTIFY_SEND = """#!/bin/sh
if [ -n "$NOTIFY_GATE" ]; then while [ ! -e "$NOTIFY_GATE" ]; do sleep 0.01; done; fi
out="$NOTIFY_RECORD/$(date +%s%N)-$$"
printf '%s\\0' "$@" > "$out.part" && mv "$out.part" "$out.args"
exit "${NOTIFY_EXIT:-0}"
"""


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def session(tmp_path: Path, script: str = FAKE_NOTIFY_SEND, **extra: str) -> dict[str, str]:
    """A desktop session's environment whose PATH holds only our notify-send."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir(exist_ok=True)
    record.mkdir(exist_ok=True)
    program = bin_dir / "notify-send"
    program.write_text(script, encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "DISPLAY": ":0", "NOTIFY_RECORD": str(record), **extra}


def recorded(tmp_path: Path) -> list[list[str]]:
    """The arguments of every notify-send run so far, oldest first (by the nanosecond it ran: a file's mtime is coarse)."""
    files = sorted((tmp_path / "record").glob("*.args"), key=lambda p: int(p.name.split("-")[0]))
    return [p.read_bytes().decode().split("\0")[:-1] for p in files]


def notice(title: str, message: str, severity: Severity = Severity.ERROR, rings: bool = True) -> Notice:
    """A notice as AlertDesk.due() gives it."""
    return Notice("A1", AlertKind.CRITICAL_FAULT, title, message, ("ST-1",), 1, 1, rings, severity, T0, T0)


def test_the_desktop_gets_one_notification_per_ringing_batch(tmp_path: Path) -> None:
    clock = Clock()
    notifier = DesktopNotifier(session(tmp_path), clock=clock)
    assert notifier.enabled
    notifier.ring([notice("Station ST-1 lost", "ST-1 lost <its> connection & more")])
    wait_for(lambda: notifier.running() == 0, 10, "notify-send to finish")
    notifier.ring([notice("x", "y", rings=False)])  # nothing rings: nothing sent
    clock.now += 2
    notifier.ring([notice("1 new call at ST-2", "A parker asks", Severity.WARNING),
                   notice("silent", "not rung", Severity.ERROR, rings=False),
                   notice("1 new call at ST-3", "Another", Severity.WARNING)])
    wait_for(lambda: notifier.running() == 0 and len(recorded(tmp_path)) == 2, 10, "the second notify-send")
    assert recorded(tmp_path) == [
        ["--app-name=kiosk console", "--urgency=critical", "--", "Station ST-1 lost",
         "ST-1 lost &lt;its&gt; connection &amp; more"],
        ["--app-name=kiosk console", "--urgency=normal", "--", "2 alerts", "1 new call at ST-2\n1 new call at ST-3"],
    ]
    assert notifier.enabled


def test_the_desktop_is_rate_limited_and_never_waits(tmp_path: Path) -> None:
    clock = Clock()
    gate = tmp_path / "gate"
    notifier = DesktopNotifier(session(tmp_path, NOTIFY_GATE=str(gate)), clock=clock, min_interval_s=2, max_running=2)
    for title, later in (("first", 1), ("too soon", 1.5), ("second", 5), ("no free slot", 0)):
        notifier.ring([notice(title, "m")])  # returns while notify-send waits at its gate
        clock.now += later
    assert notifier.running() == 2
    gate.touch()
    wait_for(lambda: notifier.running() == 0 and len(recorded(tmp_path)) == 2, 10, "the gated notify-sends")
    notifier.ring([notice("third", "m")])
    wait_for(lambda: notifier.running() == 0 and len(recorded(tmp_path)) == 3, 10, "the last notify-send")
    gated, last = recorded(tmp_path)[:2], recorded(tmp_path)[2]  # the two gated ones finished in either order
    assert sorted(args[3:] for args in gated) == [["first", "m"], ["second", "m\n(and 1 earlier: see the console)"]]
    assert last[3:] == ["third", "m\n(and 1 earlier: see the console)"]


def test_close_ends_unfinished_notify_sends(tmp_path: Path) -> None:
    notifier = DesktopNotifier(session(tmp_path, NOTIFY_GATE=str(tmp_path / "never")))
    notifier.ring([notice("stuck", "m")])
    assert notifier.running() == 1
    notifier.close()
    assert notifier.running() == 0 and recorded(tmp_path) == []


def test_a_failing_notify_send_is_logged_once_and_turned_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    notifier = DesktopNotifier(session(tmp_path, NOTIFY_EXIT="1"), clock=clock)
    with caplog.at_level(logging.WARNING, logger="console.notify"):
        notifier.ring([notice("first", "m")])
        wait_for(lambda: notifier.running() == 0, 10, "notify-send to fail")
        clock.now += 10
        notifier.ring([notice("second", "m")])
    assert not notifier.enabled and len(recorded(tmp_path)) == 1
    assert caplog.messages == [f"desktop notifications off: {tmp_path}/bin/notify-send exited with status 1"]


def test_a_notify_send_that_cannot_start_is_logged_once_and_turned_off(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    notifier = DesktopNotifier(session(tmp_path, "#!/nonexistent/interpreter\n"), clock=clock)
    with caplog.at_level(logging.WARNING, logger="console.notify"):
        notifier.ring([notice("first", "m")])
        clock.now += 10
        notifier.ring([notice("second", "m")])
    assert not notifier.enabled
    [message] = caplog.messages
    assert message.startswith(f"desktop notifications off: {tmp_path}/bin/notify-send could not start: ")


def test_no_session_or_no_notify_send_means_no_desktop_notifications(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    environ = session(tmp_path)
    without_session = {key: value for key, value in environ.items() if key != "DISPLAY"}
    assert not graphical_session(without_session)
    assert graphical_session({"WAYLAND_DISPLAY": "wayland-0"}) and graphical_session({"DBUS_SESSION_BUS_ADDRESS": "x"})
    with caplog.at_level(logging.INFO, logger="console.notify"):
        assert not DesktopNotifier(without_session).enabled
        assert not DesktopNotifier({**environ, "PATH": str(tmp_path / "record")}).enabled
    assert caplog.messages == [
        "desktop notifications off: no graphical session (DISPLAY, WAYLAND_DISPLAY, DBUS_SESSION_BUS_ADDRESS unset)",
        "desktop notifications off: notify-send not found (Debian: apt install libnotify-bin)"]
    DesktopNotifier(without_session).ring([notice("x", "y")])
    assert recorded(tmp_path) == [] and os.listdir(tmp_path / "record") == []
