"""`kiosk alerts` as systemd runs it: the unit's hardening, and a clean stop on SIGTERM of the real command."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from alerts_kit import PREFIX, HookSink, MailSink, config_text, fault, online
from broker import Mosquitto
from conftest import ROOT, unit_exposure
from mqtt_client import Staff

UNIT = ROOT / "systemd" / "kiosk-alerts.service"
TARGET = 1.5


def test_the_unit_is_hardened() -> None:
    assert unit_exposure(UNIT)[0] <= TARGET
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/opt/kiosk-alerts/.venv/bin/kiosk alerts --config /etc/kiosk/alerts.toml\n" in text
    assert "StateDirectory=kiosk-alerts\n" in text and "KillSignal=SIGTERM\n" in text
    assert "Type=notify\n" in text and "WatchdogSec=60\n" in text and "RestartPreventExitStatus=2\n" in text


def test_the_command_runs_the_bridge_tells_systemd_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    mail, hooks = MailSink().start(), HookSink().start()
    config = tmp_path / "alerts.toml"
    config.write_text(config_text(tmp_path / "alerts.db", broker.port, mail.port, hooks.url, grace_s=0),
                      encoding="utf-8")
    station = Staff(broker.port)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's side of sd_notify
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(20)
    process = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "alerts", "--config", str(config)], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(tmp_path / "notify"),
                                    "WATCHDOG_USEC": "60000000"}, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
    reader.start()
    try:
        station.publish(f"{PREFIX}/ST-1/status", online("Altstadt Nord"), retain=True)
        station.publish(f"{PREFIX}/ST-1/fault/door", fault(True, code="open"), retain=True)
        got = mail.wait_for(lambda items: items if len(items) == 2 else None, 20, "the alert's mails")
        assert sorted(m.to[0] for m in got) == ["anna@example.org", "ben@example.org"]
        assert notify.recv(4096) == b"READY=1\nSTATUS=connecting to the broker"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        notices = [notify.recv(4096)]
        while notices[-1] != b"STOPPING=1\nSTATUS=stopping":
            notices.append(notify.recv(4096))
        assert b"WATCHDOG=1" in notices  # fed by the step loop, which says what it does
        assert any(notice.startswith(b"STATUS=") and b" open alerts; " in notice for notice in notices), notices
        reader.join(timeout=5)
        assert "INFO bridge.command: signal SIGTERM: stopping\n" in lines
        assert lines[-1] == "INFO bridge.command: alert bridge stopped\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        notify.close()
        station.close()
        hooks.stop()
        mail.stop()
        broker.stop()
