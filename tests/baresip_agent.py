"""A real baresip on loopback playing the agent's phone (or PBX) in tests and benchmarks, and the tone it heard."""
from __future__ import annotations

import json
import math
import shutil
import socket
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.config import VoiceSettings

BARESIP = shutil.which("baresip")
MODULES = "/usr/lib/baresip/modules"
STATION_TONE_HZ = 1000  # what the station's microphone "hears" (ausine)
AGENT_TONE_HZ = 440  # what the agent says


def free_port_pair() -> int:
    """A port P free for UDP and TCP, with P + 1 free too (baresip listens for TLS on the next port)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            held = []
            for candidate in (port, port + 1):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    held.append(s)
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return port
    raise RuntimeError("no free pair of ports")


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def station_voice(folder: Path, agent: Agent, **changes: Any) -> VoiceSettings:
    """The station's voice settings calling ``agent``, with a tone for a microphone.

    baresip 1.0 (Debian 12) has no file player, so the station's speaker is a recording made
    by baresip's sndfile module, loaded by a wrapper ``program`` (the station's own config is
    untouched): see recording(). The player itself is a module that does not exist, on both
    versions: baresip 1.1's ``aufile`` player crashed baresip (SIGSEGV) in most SRTP calls here.
    """
    recordings = folder / "station-recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "baresip-recording"
    module = recordings / "sndfile.so"  # baresip pre-loads (-m) from the working folder, where sndfile also writes
    if not module.exists():
        module.symlink_to(f"{MODULES}/sndfile.so")
    wrapper.write_text(f'#!/bin/sh\ncd "{recordings}" && exec "{BARESIP}" -m sndfile.so "$@"\n')
    wrapper.chmod(0o755)
    settings: dict[str, Any] = {
        "enabled": True, "destination": agent.uri, "listen": f"127.0.0.1:{free_port_pair()}",
        "control_port": free_tcp_port(), "rtp_ports": "30000-30999", "program": str(wrapper),
        "audio_source": f"ausine,{STATION_TONE_HZ}", "audio_player": "nosound,none",
        "codecs": ("PCMU", "PCMA"), "ring_timeout_s": 10, "callback_from": (agent.uri,),
    }
    settings.update(changes)
    return VoiceSettings(**settings)


def recording(folder: Path) -> Path | None:
    """The newest recording of what a baresip heard (sndfile's decoded dump) in ``folder``, if any."""
    dumps = sorted(folder.glob("dump-*-dec.wav"))
    return dumps[-1] if dumps else None


def finished_recording(folder: Path) -> Path | None:
    """The newest recording once baresip closed it (sndfile writes the WAV header's sizes at the call's end)."""
    found = recording(folder)
    if found is None:
        return None
    try:
        with wave.open(str(found), "rb") as dump:
            return found if dump.getnframes() > 0 else None
    except (wave.Error, EOFError):
        return None


class Agent:
    """An agent's softphone: a baresip of its own on loopback, answering (``answer``) or not, recording what it hears
    (recording(folder)) and, with ``trace``, the SIP messages it received in its log.

    ``answer`` is "auto" (answers at once) or "manual" (rings until told: send("accept") or send("hangup")).
    """

    def __init__(self, folder: Path, answer: str = "auto", user: str = "agent", trace: bool = True,
                 mediaenc: str = "") -> None:
        assert BARESIP is not None, "baresip is not installed (provisioning/setup.sh --test installs it)"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port_pair()
        self.control = free_tcp_port()
        self.uri = f"sip:{user}@127.0.0.1:{self.port}"
        (folder / "config").write_text("".join(f"{k}\t\t{v}\n" for k, v in [
            ("poll_method", "epoll"), ("sip_listen", f"127.0.0.1:{self.port}"), ("module_path", MODULES),
            ("module", "g711.so"), ("module", "ausine.so"), ("module", "sndfile.so"), ("snd_path", str(folder)),
            *([("module", "srtp.so")] if mediaenc else []),
            ("module_app", "account.so"), ("module_app", "menu.so"), ("module_app", "ctrl_tcp.so"),
            ("ctrl_tcp_listen", f"127.0.0.1:{self.control}"), ("audio_source", f"ausine,{AGENT_TONE_HZ}"),
            ("ausrc_srate", "48000"), ("ausrc_channels", "2"),
            ("rtp_ports", "31000-31999"), ("net_interface", "127.0.0.1")]))
        account = f"<sip:{user}@127.0.0.1:{self.port};transport=udp>;regint=0;answermode={answer};audio_codecs=PCMU,PCMA"
        (folder / "accounts").write_text(account + (f";mediaenc={mediaenc}" if mediaenc else "") + "\n")
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen([BARESIP, "-f", str(folder), *(["-s"] if trace else [])], stdin=subprocess.DEVNULL,
                                        stdout=(folder / "baresip.log").open("wb"), stderr=subprocess.STDOUT)
        self._sock = self._connect()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.control), timeout=1)
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(f"the agent's baresip did not start: {self.log()}") from None
                time.sleep(0.02)  # polling a socket that is not open yet; not synchronisation between parts

    def _read(self) -> None:
        buffer = b""
        self._sock.settimeout(None)
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:
                length, _, rest = buffer.partition(b":")
                if len(rest) <= int(length):
                    break
                with self._changed:
                    event = json.loads(rest[:int(length)])
                    event["at"] = time.monotonic()  # when it reached this process (benchmarks)
                    self.events.append(event)
                    self._changed.notify_all()
                buffer = rest[int(length) + 1:]

    def send(self, command: str, params: str = "") -> None:
        """Send a ctrl_tcp command (accept, hangup, dial ...)."""
        data = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._sock.sendall(str(len(data)).encode() + b":" + data + b",")

    def wait_for(self, condition: Callable[[list[dict[str, Any]]], Any], timeout: float, what: str) -> Any:
        """Wait until ``condition(events)`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition(self.events)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; events: "
                                         f"{[e.get('type') for e in self.events if e.get('event')]}")
                self._changed.wait(left)

    def call_event(self, kind: str) -> Callable[[list[dict[str, Any]]], Any]:
        """A condition: the first call event of this type."""
        return lambda events: next((e for e in events if e.get("event") and e.get("type") == kind), None)

    def log(self, tail: int = 2000) -> str:
        """The end of its output (with ``trace``, the SIP messages)."""
        return (self.folder / "baresip.log").read_text(errors="replace")[-tail:]

    def close(self) -> None:
        self._sock.close()
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def tone_strength(path: Path, hz: float) -> float:
    """How much of the recording at ``path`` is a tone of ``hz`` (0: none, 1: nothing else), by a Goertzel filter."""
    with wave.open(str(path), "rb") as recording:
        rate, width, frames = recording.getframerate(), recording.getsampwidth(), recording.readframes(10**7)
    assert width == 2, f"expected 16-bit samples, got {width * 8}-bit"
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    samples = samples[len(samples) // 4:]  # past the call's first moments
    if not samples:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * hz / rate)
    before = before2 = 0.0
    for sample in samples:
        before, before2 = sample + coefficient * before - before2, before
    power = before2 ** 2 + before ** 2 - coefficient * before * before2
    energy = sum(s * s for s in samples) * len(samples) / 2
    return power / energy if energy else 0.0
