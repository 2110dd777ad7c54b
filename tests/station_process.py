"""A whole station (`kiosk run --simulate --headless`) in a subprocess, wired to a test broker."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from mqtt_client import Received, Staff

ROOT = Path(__file__).resolve().parent.parent
STATION = "ST-1"
PREFIX = f"paystation/v1/{STATION}/"
REPLY_TOPIC = PREFIX + "reply/tests"


def station_config(folder: Path, port: int, **mqtt: object) -> Path:
    """A station configuration for the test broker on ``port`` (plain TCP, fast reconnects)."""
    settings: dict[str, object] = {"host": "127.0.0.1", "port": port, "tls": False, "keepalive_s": 5,
                                   "reconnect_max_s": 1, "telemetry_interval_s": 300}
    settings.update(mqtt)
    lines = [f'[station]\nid = "{STATION}"', f'[storage]\ndatabase = "{folder / "kiosk.db"}"', "[mqtt]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]  # JSON scalars are TOML too
    path = folder / "kiosk.toml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def on(topic: str):
    """The payloads received on one topic so far, parsed."""
    def found(messages: list[Received]) -> list[dict]:
        return [m.json() for m in messages if m.topic == PREFIX + topic and m.payload]
    return found


def newest(topic: str, **fields: object):
    """The newest payload on ``topic`` once it has these fields (the retained view may be republished meanwhile)."""
    def found(messages: list[Received]) -> dict | None:
        payloads = on(topic)(messages)
        return payloads[-1] if payloads and all(payloads[-1].get(k) == v for k, v in fields.items()) else None
    return found


class Station:
    """The station process; ``log`` collects its stderr in a file for failure messages.

    ``args`` go after `kiosk run --simulate --headless --config FILE`; ``env`` replaces the environment.
    """

    def __init__(self, config: Path, args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.args = args
        self.env = env if env is not None else dict(os.environ)

    def start(self) -> Station:
        """Start the station (it connects on its own; wait for its birth on a subscriber)."""
        env = {**self.env, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli", "run", "--simulate", "--headless", "--config", str(self.config),
                 *self.args], cwd=ROOT, env=env, stdout=log, stderr=log)
        return self

    def kill(self) -> None:
        """kill -9: no offline message, no clean disconnect."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        """What the station logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


def births(messages: list[Received]) -> list[dict]:
    """The `online` status payloads received so far."""
    return [m.json() for m in messages if m.topic == PREFIX + "status" and m.payload and m.json()["state"] == "online"]


def command(staff: Staff, name: str, payload: bytes | str, correlation: bytes | None = None,
            timeout: float = 20) -> dict:
    """Send cmd/{name} with a response topic and wait for the reply with the same correlation data."""
    correlation = correlation or uuid.uuid4().bytes
    before = len(staff.messages)
    staff.publish(PREFIX + "cmd/" + name, payload, response_topic=REPLY_TOPIC, correlation=correlation)

    def answered(messages: list[Received]) -> dict | None:
        for m in messages[before:]:
            if m.topic == REPLY_TOPIC and m.correlation == correlation:
                return m.json()
        return None

    return staff.wait_for(answered, timeout, f"the reply to cmd/{name}")


def sim_config(folder: Path, station: str, port: int) -> Path:
    """The minimal configuration of a simulated station of a training fleet (docs/help-desk.md), for the test broker."""
    folder.mkdir(parents=True)
    path = folder / "kiosk.toml"
    path.write_text(f'[station]\nid = "{station}"\n[storage]\ndatabase = "{folder / "kiosk.db"}"\n'
                    f'[terminal]\nstatus_interval_s = 1\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntls = false\nreconnect_max_s = 1\n', encoding="utf-8")
    return path
