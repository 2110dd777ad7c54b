"""The MQTT link against a real mosquitto: connection, will, acks, commands, auth, TLS, back-off and the watchdog."""
from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from broker import Mosquitto, free_port
from certs import make_pki
from conftest import wait_for
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from posted import Posted

from kiosk.config import MqttSettings
from kiosk.domain.events import LinkAcked, LinkDown, LinkUp, MessageIn
from kiosk.mqtt import client as link_module
from kiosk.mqtt.client import MqttClient

STATION = "ST-1"
PREFIX = f"paystation/v1/{STATION}/"
OFFLINE = '{"state":"offline","boot":%d}'


class Observer:
    """A plain paho client of the test: watches what the station publishes and sends it commands."""

    def __init__(self, broker: Mosquitto, topics: tuple[str, ...] = (PREFIX + "#",),
                 client_id: str = "observer") -> None:
        self._lock = threading.Lock()
        self.messages: list[mqtt.MQTTMessage] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        if not subscribed.wait(5):
            raise AssertionError("observer could not subscribe")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        """Messages received on one full topic."""
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def payloads(self, topic: str) -> list[str]:
        """Payloads received on one full topic, decoded."""
        return [m.payload.decode() for m in self.on(topic)]

    def send(self, topic: str, payload: str, *, response_topic: str | None = None, correlation: bytes | None = None,
             retain: bool = False) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK."""
        properties = Properties(PacketTypes.PUBLISH)
        if response_topic is not None:
            properties.ResponseTopic = response_topic
        if correlation is not None:
            properties.CorrelationData = correlation
        self.client.publish(topic, payload, qos=1, retain=retain, properties=properties).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()
        self.client.loop_stop()


MakeLink = Callable[..., tuple[MqttClient, Posted]]


class HeldLoop:
    """Stops a link's network thread before its next round of paho's loop while ``hold`` is set, until ``let_go``."""

    def __init__(self, link: MqttClient, *, connections: int | None = None) -> None:
        """Only the first ``connections`` connections' threads are held (all when None)."""
        self.hold, self.held, self.let_go = threading.Event(), threading.Event(), threading.Event()
        clients = 0
        real_new_client = link._new_client

        def new_client(conn: Any) -> mqtt.Client:
            nonlocal clients
            client = real_new_client(conn)
            clients += 1
            if connections is None or clients <= connections:
                real_loop = client.loop

                def loop(timeout: float = 1.0) -> mqtt.MQTTErrorCode:
                    if self.hold.is_set():
                        self.held.set()
                        self.let_go.wait(30)
                    return real_loop(timeout)

                client.loop = loop
            return client

        link._new_client = new_client


def settings_for(port: int, **overrides: Any) -> MqttSettings:
    """Plain TCP to the test broker, short keepalive."""
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "tls": False, "keepalive_s": 5, "reconnect_max_s": 4}
    values.update(overrides)
    return MqttSettings(**values)


@pytest.fixture
def make_link() -> Iterator[MakeLink]:
    """Build links (not started) that are stopped after the test."""
    links: list[MqttClient] = []

    def make(settings: MqttSettings, *, station: str = STATION, boot: int = 1,
             subscriptions: tuple[str, ...] = ("cmd/#", "cfg/desired")) -> tuple[MqttClient, Posted]:
        posted = Posted()
        link = MqttClient(settings, station, posted, subscriptions=subscriptions, boot=boot)
        links.append(link)
        return link, posted

    yield make
    for link in links:
        link.stop(OFFLINE % 0, timeout=0.5)


@pytest.fixture
def observer(broker: Mosquitto) -> Iterator[Observer]:
    """An observer subscribed to everything under the station's prefix."""
    watcher = Observer(broker)
    yield watcher
    watcher.close()


def test_connects_subscribes_and_receives_commands(broker: Mosquitto, observer: Observer, make_link: MakeLink) -> None:
    observer.send(PREFIX + "cfg/desired", '{"version":3}', retain=True)
    link, posted = make_link(settings_for(broker.port), boot=5)
    assert link.state == "down" and not link.connected
    link.start()

    assert posted.wait(LinkUp) == [LinkUp(5)]
    assert link.connected and link.state == "connected" and link.reconnects == 0
    assert link.receive_maximum == 20  # mosquitto's default max_inflight_messages
    wait_for(lambda: posted.of(MessageIn), 5, "the retained desired configuration")
    assert posted.of(MessageIn)[0] == MessageIn("cfg/desired", b'{"version":3}', None, None, True)

    observer.send(PREFIX + "cmd/x", '{"n":1}', response_topic="ops/replies/7", correlation=b"\x00c1")
    wait_for(lambda: len(posted.of(MessageIn)) == 2, 5, "the command")
    assert posted.of(MessageIn)[1] == MessageIn("cmd/x", b'{"n":1}', "ops/replies/7", b"\x00c1", False)
    assert not posted.of(LinkDown)


def test_publish_properties_expiry_and_reply(broker: Mosquitto, make_link: MakeLink) -> None:
    link, posted = make_link(settings_for(broker.port))
    link.start()
    posted.wait(LinkUp)
    watcher = Observer(broker, (PREFIX + "#", "ops/replies/#"))
    try:
        assert link.publish("help/request", '{"ticket":"t1"}', 1, False, row_id=11, expiry_s=120)
        assert link.reply("ops/replies/9", b"corr-9", '{"ok":true}')
        assert link.publish("telemetry", '{"up":1}', 0, False, row_id=12)
        wait_for(lambda: watcher.on(PREFIX + "help/request") and watcher.on("ops/replies/9")
                 and watcher.on(PREFIX + "telemetry"), 5, "the three messages")
    finally:
        watcher.close()
    request = watcher.on(PREFIX + "help/request")[0]
    assert request.payload == b'{"ticket":"t1"}' and request.qos == 1
    assert request.properties.PayloadFormatIndicator == 1
    assert request.properties.ContentType == "application/json"
    assert 110 <= request.properties.MessageExpiryInterval <= 120
    reply = watcher.on("ops/replies/9")[0]
    assert reply.payload == b'{"ok":true}' and reply.qos == 1 and not reply.retain
    assert reply.properties.CorrelationData == b"corr-9"
    assert reply.properties.ContentType == "application/json"
    assert not hasattr(watcher.on(PREFIX + "telemetry")[0].properties, "MessageExpiryInterval")
    wait_for(lambda: len(posted.of(LinkAcked)) == 1, 5, "LinkAcked")
    acks: list[tuple[int, bool]] = []
    wait_for(lambda: acks.extend(link.take_acks()) or len(acks) == 2, 5, "both acks")
    assert sorted(acks) == [(11, True), (12, True)]  # the QoS 0 row counts as acked once written


def test_flush_waits_until_the_network_thread_has_written(broker: Mosquitto, observer: Observer,
                                                          make_link: MakeLink) -> None:
    link, posted = make_link(settings_for(broker.port))
    assert link.flush(0.0)  # not connected: nothing can be waiting
    held = HeldLoop(link)
    link.start()
    posted.wait(LinkUp)
    assert link.publish("event/zero", "{}", 1, False)
    assert link.flush(0.4)  # woken by the round that wrote it, not by the next idle round (LOOP_S, 0.5 s)
    held.hold.set()
    assert link.publish("event/first", "{}", 1, False)  # wakes the network thread, which then stops before its next round
    assert held.held.wait(5)
    assert link.publish("help/request", '{"ticket":"t1"}', 1, False)
    assert not link.flush(0.05)  # only the network thread writes, and it is held
    began = time.monotonic()
    assert not link.flush(30)  # still no round since the last flush timed out: no second wait
    assert time.monotonic() - began < 5
    assert not observer.on(PREFIX + "help/request")
    held.let_go.set()
    wait_for(lambda: observer.on(PREFIX + "help/request"), 5, "the request at the observer once the thread runs")
    assert link.publish("event/later", "{}", 1, False)
    wait_for(lambda: link.flush(0.4), 5, "flushes that wait again once the thread has made progress")


def test_acks_are_batched_into_one_event_until_taken(broker: Mosquitto, observer: Observer,
                                                     make_link: MakeLink) -> None:
    link, posted = make_link(settings_for(broker.port))
    link.start()
    posted.wait(LinkUp)
    for row in range(1, 51):
        assert link.publish("event/session", json.dumps({"seq": row}), 1, False, row_id=row)
    wait_for(lambda: len(observer.on(PREFIX + "event/session")) == 50, 10, "50 messages at the observer")
    posted.wait(LinkAcked)
    assert len(posted.of(LinkAcked)) == 1  # however many PUBACKs arrived, until take_acks() is called

    acks: list[tuple[int, bool]] = []
    takes = 0

    def take() -> bool:
        nonlocal takes
        takes += 1
        acks.extend(link.take_acks())
        return len(acks) == 50

    wait_for(take, 10, "all 50 acks")
    assert sorted(acks) == [(row, True) for row in range(1, 51)]
    assert len(posted.of(LinkAcked)) <= takes
    assert link.take_acks() == []


def test_refused_publish_is_acked_false(tmp_path: Path, make_link: MakeLink) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic deny paystation/v1/ST-1/fault/secret\npattern readwrite paystation/v1/%c/#\n",
                   encoding="utf-8")
    broker = Mosquitto(tmp_path / "broker", acl_file=acl).start()
    try:
        link, posted = make_link(settings_for(broker.port))
        link.start()
        posted.wait(LinkUp)
        assert link.publish("fault/secret", '{"active":true}', 1, True, row_id=1)
        assert link.publish("fault/door", '{"active":true}', 1, True, row_id=2)
        acks: list[tuple[int, bool]] = []
        wait_for(lambda: acks.extend(link.take_acks()) or len(acks) == 2, 5, "both acks")
        # mosquitto 2.0 answers a denied MQTT 5 QoS 1 publish with PUBACK 0x87 (Not authorized)
        # and keeps the connection.
        assert sorted(acks) == [(1, False), (2, True)]
        assert link.connected and not posted.of(LinkDown)
    finally:
        broker.stop()


def test_will_is_published_when_the_connection_dies_abruptly(broker: Mosquitto, observer: Observer,
                                                             make_link: MakeLink) -> None:
    link, posted = make_link(settings_for(broker.port), boot=7)
    link.start()
    posted.wait(LinkUp)
    link.restart()  # the socket is shut down without DISCONNECT, as when the station dies
    wait_for(lambda: observer.on(PREFIX + "status"), 5, "the will")
    will = observer.on(PREFIX + "status")[0]
    assert will.payload == b'{"state":"lost","boot":7}' and will.qos == 1
    assert will.properties.ContentType == "application/json" and will.properties.PayloadFormatIndicator == 1
    assert posted.of(LinkDown)[0].reason == "network thread restarted by the watchdog"

    link.offer_boot(8)
    assert posted.wait(LinkUp, 2)[-1] == LinkUp(8)
    assert link.reconnects == 1


def test_clean_stop_publishes_offline_and_no_will(broker: Mosquitto, observer: Observer, make_link: MakeLink) -> None:
    link, posted = make_link(settings_for(broker.port), boot=3)
    link.start()
    posted.wait(LinkUp)
    link.stop(OFFLINE % 3)
    assert link.state == "stopped" and not link.connected
    wait_for(lambda: observer.on(PREFIX + "status"), 5, "the offline state")
    wait_for(lambda: f"Client {STATION} disconnected." in broker.log(), 5, "the broker to log a clean DISCONNECT")
    late = Observer(broker, (PREFIX + "status",), client_id="late")
    try:
        wait_for(lambda: late.on(PREFIX + "status"), 5, "the retained status")
        assert late.on(PREFIX + "status")[0].retain
        assert late.payloads(PREFIX + "status") == [OFFLINE % 3]
    finally:
        late.close()
    assert observer.payloads(PREFIX + "status") == [OFFLINE % 3]
    assert not posted.of(LinkDown)


def test_broker_restart_waits_for_a_new_boot(broker: Mosquitto, make_link: MakeLink,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.mqtt.client")
    link, posted = make_link(settings_for(broker.port), boot=1)
    link.start()
    posted.wait(LinkUp)
    broker.restart()
    assert "lost" in posted.wait(LinkDown)[0].reason
    link.offer_boot(1)  # a used number is refused
    wait_for(lambda: "waits for a new boot number" in caplog.text, 5, "the link to wait for a boot number")
    assert not link.connected and link.state == "down"
    link.offer_boot(2)
    assert posted.wait(LinkUp, 2)[-1] == LinkUp(2)
    assert link.reconnects == 1 and link.connected


def test_backoff_grows_is_capped_and_resets_after_a_stable_connection(tmp_path: Path, make_link: MakeLink,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "STABLE_S", 0.0)
    port = free_port()
    link, posted = make_link(settings_for(port, reconnect_max_s=4), boot=1)
    pauses: list[float] = []
    allowed = threading.Condition()
    budget = [5]

    def pause(_gen: int, seconds: float) -> None:
        with allowed:
            pauses.append(seconds)
            allowed.wait_for(lambda: len(pauses) < budget[0], 10)

    def allow(count: int) -> None:
        with allowed:
            budget[0] = count
            allowed.notify_all()

    monkeypatch.setattr(link, "_pause", pause)
    link.start()
    broker = None
    try:
        wait_for(lambda: len(pauses) == 5, 10, "five failed attempts")
        for seconds, expected in zip(pauses, (1, 2, 4, 4, 4)):
            assert 0.8 * expected <= seconds <= 1.2 * expected
        assert len(posted.of(LinkDown)) == 1  # the first failure only, not every retry

        broker = Mosquitto(tmp_path / "broker", port=port).start()
        allow(7)
        posted.wait(LinkUp)
        link.offer_boot(2)
        broker.stop()
        wait_for(lambda: len(pauses) == 7, 10, "the pause after the lost connection")
        assert 0.8 <= pauses[5] <= 1.2  # the connection lasted STABLE_S: back to the first delay
        assert 1.6 <= pauses[6] <= 2.4
    finally:
        allow(10**6)
        if broker is not None:
            broker.stop()


def test_attempt_without_connack_is_dropped(make_link: MakeLink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "CONNECT_TIMEOUT_S", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        link, posted = make_link(settings_for(silent.getsockname()[1]))
        link.start()
        assert "no CONNACK" in posted.wait(LinkDown)[0].reason
        assert not link.publish("telemetry", "{}", 0, False)
        started = time.monotonic()
        link.stop(OFFLINE % 1)
        assert time.monotonic() - started < 2.0
        assert link.state == "stopped"


def test_password_auth(tmp_path: Path, make_link: MakeLink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.mqtt.client")
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), STATION, "s3cret"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "ST-2", "s3cret"], check=True)
    good, wrong = tmp_path / "good", tmp_path / "wrong"
    good.write_text("s3cret\n", encoding="utf-8")
    wrong.write_text("guess\n", encoding="utf-8")
    broker = Mosquitto(tmp_path / "broker", password_file=passwords).start()
    try:
        link, posted = make_link(settings_for(broker.port, username=STATION, password_file=str(good)))
        link.start()
        posted.wait(LinkUp)

        bad, bad_posted = make_link(settings_for(broker.port, username="ST-2", password_file=str(wrong)),
                                    station="ST-2")
        bad.start()
        assert "Not authorized" in bad_posted.wait(LinkDown)[0].reason  # mosquitto 2.0.11: 0x87, not 0x86
        assert not bad.connected and "refused the connection of ST-2" in caplog.text

        missing = tmp_path / "missing"
        unreadable, unreadable_posted = make_link(settings_for(broker.port, username="ST-3",
                                                               password_file=str(missing)), station="ST-3")
        unreadable.start()
        assert str(missing) in unreadable_posted.wait(LinkDown)[0].reason
        assert any(r.levelno == logging.ERROR and str(missing) in r.getMessage() for r in caplog.records)
        assert link.connected and link.publish("telemetry", "{}", 1, False, row_id=1)
    finally:
        broker.stop()


def test_tls_with_client_certificate(tmp_path: Path, make_link: MakeLink) -> None:
    pki = make_pki(tmp_path / "pki", (STATION,))
    broker = Mosquitto(tmp_path / "broker", cafile=pki.ca.cert, certfile=pki.server.cert, keyfile=pki.server.key,
                       require_certificate=True).start()
    try:
        tls = {"host": "localhost", "tls": True, "ca_file": str(pki.ca.cert)}
        link, posted = make_link(settings_for(broker.port, cert_file=str(pki.clients[STATION].cert),
                                              key_file=str(pki.clients[STATION].key), **tls))
        link.start()
        posted.wait(LinkUp)
        assert link.publish("event/session", "{}", 1, False, row_id=4)
        acks: list[tuple[int, bool]] = []
        wait_for(lambda: acks.extend(link.take_acks()) or acks, 5, "the ack over TLS")
        assert acks == [(4, True)]

        anonymous, anonymous_posted = make_link(settings_for(broker.port, **tls), station="ST-2")
        anonymous.start()
        assert "certificate required" in anonymous_posted.wait(LinkDown)[0].reason
        assert not anonymous.connected and link.connected
    finally:
        broker.stop()


def test_watchdog_abandons_a_hung_thread(broker: Mosquitto, observer: Observer, make_link: MakeLink) -> None:
    link, posted = make_link(settings_for(broker.port), boot=1)
    held = HeldLoop(link, connections=1)
    link.start()
    posted.wait(LinkUp)
    link.offer_boot(2)
    hung = next(t for t in threading.enumerate() if t.name == "mqtt-link-0")
    held.hold.set()
    wait_for(lambda: link.heartbeat_age() > 1.5, 5, "the heartbeat to age")
    observer.send(PREFIX + "cmd/late", "{}")  # waits in the hung connection's socket

    link.restart()
    assert posted.wait(LinkUp, 2)[-1] == LinkUp(2)
    wait_for(lambda: observer.on(PREFIX + "status"), 5, "the will of the abandoned connection")
    assert observer.payloads(PREFIX + "status") == ['{"state":"lost","boot":1}']
    assert link.heartbeat_age() < 1.5

    held.let_go.set()  # the hung thread wakes up: its socket is dead, its callbacks must be ignored
    hung.join(5)
    assert not hung.is_alive()
    assert [type(e) for e in posted.events] == [LinkUp, LinkDown, LinkUp]
    assert link.connected and link.state == "connected"
    observer.send(PREFIX + "cmd/ping", "{}")
    posted.wait(MessageIn)
    assert [m.topic for m in posted.of(MessageIn)] == ["cmd/ping"]  # not cmd/late: the hung thread read it
    assert link.publish("event/session", "{}", 1, False, row_id=9)
    posted.wait(LinkAcked)
    assert link.take_acks() == [(9, True)]
