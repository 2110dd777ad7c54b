"""A real mosquitto for tests: own config, own free port, own folder; started and stopped by the test."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mosquitto:
    """One mosquitto process with a generated mosquitto.conf in ``folder``.

    Plain TCP with anonymous access unless ``password_file``/``acl_file`` or TLS files are
    given. The port is chosen once, so ``restart`` comes back on the same port (clients
    reconnect to it), with persistence on so retained messages survive a restart.
    """

    folder: Path
    port: int = field(default_factory=free_port)
    password_file: Path | None = None
    acl_file: Path | None = None
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    require_certificate: bool = False
    extra: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        """Where the generated configuration is written."""
        return self.folder / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        """mosquitto's own log (read it when a test fails)."""
        return self.folder / "mosquitto.log"

    def write_config(self) -> None:
        """Generate mosquitto.conf from the fields."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [
            # As root, mosquitto would switch to the `mosquitto` user, who cannot read the test's
            # 0600 files nor write its log in the test's own folder.
            *(["user root"] if os.geteuid() == 0 else []),
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.folder}/",
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
            f"allow_anonymous {'false' if self.password_file or self.require_certificate else 'true'}",
        ]
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if self.cafile:
            lines += [f"cafile {self.cafile}", f"certfile {self.certfile}", f"keyfile {self.keyfile}"]
            if self.require_certificate:
                lines += ["require_certificate true", "use_identity_as_username true"]
        self.config_path.write_text("\n".join(lines) + "\n" + self.extra, encoding="utf-8")

    def start(self) -> Mosquitto:
        """Start mosquitto and return once it accepts TCP connections."""
        self.write_config()
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config_path)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self.wait_listening(self.port)
        return self

    def wait_listening(self, port: int) -> None:
        """Return once mosquitto accepts TCP connections on ``port`` (it opens its listeners one after another)."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {err}{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not listen on {port}: {self.log()}") from None
                time.sleep(0.02)  # polling a port that is not open yet; no condition to wait on

    def stop(self) -> None:
        """Stop cleanly (SIGTERM): persistence is written, clients see the connection close."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def kill(self) -> None:
        """kill -9: no goodbye, no persistence written."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.stop()

    def restart(self) -> Mosquitto:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def log(self) -> str:
        """The broker's log so far (for failure messages)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
