"""A mosquitto with accounts from provisioning/broker_accounts.py, and a raw MQTT 5 peer that records its answers."""
from __future__ import annotations

import itertools
import os
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from broker import Mosquitto, free_port
from certs import CertFiles, Pki
from conftest import ROOT, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

SCRIPT = ROOT / "provisioning" / "broker_accounts.py"
TIMEOUT_S = 5.0
SUCCESS = 0x00
GRANTED_QOS_1 = 0x01
NOT_AUTHORIZED = 0x87
P = "paystation/v1"
# mosquitto started as root drops to the user "mosquitto", which cannot write the test's folder.
AS_ROOT = "user root\n" if os.geteuid() == 0 else ""  # the printed configuration has no `user` line
WILL = b'{"state":"lost","boot":1}'
ACCOUNTS = ("--station", "S1", "--station", "S2", "--agent", "a1", "--operator", "op1", "--crew", "crew-anna",
            "--bridge", "alerts")
CAFILE_LINE = "cafile /etc/mosquitto/paystation/ca.crt"
CRLFILE_LINE = "crlfile /etc/mosquitto/paystation/crl.pem"  # docs/broker.md, "The fleet CA"
CREW_PAGE = b"<!doctype html><title>crew</title>\n"  # what the test's http_dir serves

_numbers = itertools.count(1)


def unique(what: str = "m") -> bytes:
    """A payload no other publication in this test run has."""
    return f"{what}-{next(_numbers)}".encode()


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The generator as the operator runs it."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=30, check=False)


def generate(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the generator into ``out`` and insist that it succeeded."""
    result = run("--out", out, *args)
    assert result.returncode == 0, result.stderr
    return result


def secret(out: Path, name: str) -> str:
    """The generated password of one account."""
    return (out / "secrets" / f"{name}.password").read_text(encoding="utf-8")


class Peer:
    """A raw paho MQTT 5 client on its own network thread that records CONNACK, acknowledgements and messages."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None, *,
                 client_id: str = "", pki: Pki | None = None, cert: CertFiles | None = None,
                 will_topic: str | None = None, websockets: bool = False) -> None:
        self.port = port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{next(_numbers)}",
                                  protocol=mqtt.MQTTv5, reconnect_on_failure=False,
                                  transport="websockets" if websockets else "tcp")
        if websockets:
            self.client.ws_set_options(path="/mqtt")  # the crew page's path (mosquitto accepts any)
        if username is not None:
            self.client.username_pw_set(username, password)
        if pki is not None:
            self.client.tls_set(ca_certs=str(pki.ca.cert), certfile=str(cert.cert) if cert else None,
                                keyfile=str(cert.key) if cert else None)
        if will_topic is not None:
            self.client.will_set(will_topic, WILL, qos=1, retain=False)
        self.connack: ReasonCode | None = None
        self.closed = False
        self.acks: dict[int, ReasonCode | list[ReasonCode]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_ack
        self.client.on_subscribe = self._on_ack
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode,
                    properties: object) -> None:
        self.connack = reason

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags, reason: ReasonCode,
                       properties: object) -> None:
        self.closed = True

    def _on_ack(self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode | list[ReasonCode],
                properties: object) -> None:
        self.acks[mid] = reason

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages.append((message.topic, bytes(message.payload)))

    def connect(self) -> int | None:
        """Connect and return the CONNACK reason code, or None when the connection closed without one (TLS refused)."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except (ssl.SSLError, ConnectionError):
            return None
        self.client.loop_start()
        wait_for(lambda: self.connack is not None or self.closed, TIMEOUT_S, "CONNACK")
        return None if self.connack is None else self.connack.value

    def _acknowledged(self, mid: int) -> ReasonCode | list[ReasonCode]:
        wait_for(lambda: mid in self.acks, TIMEOUT_S, f"the acknowledgement of message {mid}")
        return self.acks[mid]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Publish with QoS 1 and return the PUBACK reason code."""
        reason = self._acknowledged(self.client.publish(topic, payload, qos=1, retain=retain).mid)
        assert isinstance(reason, ReasonCode)
        return reason.value

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe with QoS 1 and return the SUBACK reason codes."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS and mid is not None
        reasons = self._acknowledged(mid)
        assert isinstance(reasons, list)
        return [reason.value for reason in reasons]

    def wait_message(self, topic: str, payload: bytes) -> None:
        """Wait until this message has arrived."""
        wait_for(lambda: (topic, payload) in self.messages, TIMEOUT_S, f"{payload!r} on {topic}")

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def assert_denied(publisher: Peer, topic: str, observer: Peer, marker_topic: str) -> None:
    """A QoS 1 publication to ``topic`` gets PUBACK 0x87 and never reaches ``observer``.

    The allowed marker published after it on the same connection arrives; MQTT keeps one
    client's order, so the forbidden message, had it passed, would have arrived first.
    """
    payload, marker = unique("forbidden"), unique("marker")
    assert publisher.publish(topic, payload) == NOT_AUTHORIZED
    assert publisher.publish(marker_topic, marker) == SUCCESS
    observer.wait_message(marker_topic, marker)
    assert [message for message in observer.messages if message[1] == payload] == []


@dataclass
class ConfiguredMosquitto(Mosquitto):
    """mosquitto run with the configuration the generator prints (ports and folder made the test's own)."""

    conf: str = ""
    staff_port: int = field(default_factory=free_port)
    crew_port: int = field(default_factory=free_port)

    def write_config(self) -> None:
        """The printed configuration plus where this test keeps persistence and the log."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f"{self.conf}persistence_location {self.folder}/\n"
                                    f"log_dest file {self.log_path}\n{self.extra}", encoding="utf-8")


def configured_broker(folder: Path, pki: Pki, certificates: bool, crl: Path | None = None) -> ConfiguredMosquitto:
    """Accounts generated into ``folder``, the certificates beside them, mosquitto started with the printed conf.

    With ``crl`` the stations' listener also gets the `crlfile` line of docs/broker.md ("The fleet CA"). The crews'
    websockets listener serves ``folder``/crew (CREW_PAGE: index.html) as its http_dir.
    """
    args = [*ACCOUNTS, "--certificates"] if certificates else list(ACCOUNTS)
    printed = generate(folder, *args).stdout
    files = [(pki.ca.cert, "ca.crt"), (pki.server.cert, "broker.crt"), (pki.server.key, "broker.key"),
             (pki.server.cert, "crew.crt"), (pki.server.key, "crew.key")]  # the tests' phones trust the test CA
    for source, name in files + ([(crl, "crl.pem")] if crl else []):
        shutil.copyfile(source, folder / name)
    conf = printed[printed.index("# paystation accounts"):]
    if crl:
        conf = conf.replace(f"{CAFILE_LINE}\n", f"{CAFILE_LINE}\n{CRLFILE_LINE}\n", 1)
    (folder / "crew").mkdir()
    (folder / "crew" / "index.html").write_bytes(CREW_PAGE)
    mosquitto = ConfiguredMosquitto(folder / "broker", extra=AS_ROOT)
    mosquitto.conf = (conf.replace("/etc/mosquitto/paystation/", f"{folder}/")
                      .replace("http_dir /usr/share/kiosk/crew", f"http_dir {folder}/crew")
                      .replace("listener 8883", f"listener {mosquitto.port}")
                      .replace("listener 8884", f"listener {mosquitto.staff_port}")
                      .replace("listener 8885", f"listener {mosquitto.crew_port}"))
    mosquitto.start()
    if certificates:  # the staff's own listener, opened after the stations'
        mosquitto.wait_listening(mosquitto.staff_port)
    mosquitto.wait_listening(mosquitto.crew_port)  # the last one it opens
    return mosquitto
