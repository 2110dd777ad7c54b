"""A staff-side MQTT 5 client for tests: records what arrives and sends commands with correlation data."""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True)
class Received:
    """One message as the subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool
    correlation: bytes | None
    arrived: float

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


class Staff:
    """A test client (operator, agent or back office) on the test broker."""

    def __init__(self, port: int, client_id: str | None = None, *, session_expiry: int = 0,
                 username: str | None = None, password: str | None = None) -> None:
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"staff-{uuid.uuid4().hex[:8]}",
                                   protocol=mqtt.MQTTv5)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_message = self._on_message
        self._client.on_connect = lambda *args: self._connected.set()
        properties = Properties(PacketTypes.CONNECT)
        if session_expiry:
            properties.SessionExpiryInterval = session_expiry
        self._client.connect("127.0.0.1", port, keepalive=30, clean_start=not session_expiry, properties=properties)
        self._client.loop_start()
        if not self._connected.wait(10):
            raise AssertionError("staff client could not connect to the test broker")

    def subscribe(self, *topics: str) -> None:
        """Subscribe (QoS 1) and wait for the SUBACK."""
        done = threading.Event()
        self._client.on_subscribe = lambda *args: done.set()
        self._client.subscribe([(t, 1) for t in topics])
        if not done.wait(10):
            raise AssertionError(f"no SUBACK for {topics}")

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False, response_topic: str | None = None,
                correlation: bytes | None = None) -> None:
        """Publish QoS 1 and wait until the broker acknowledged it."""
        properties = Properties(PacketTypes.PUBLISH)
        if response_topic is not None:
            properties.ResponseTopic = response_topic
        if correlation is not None:
            properties.CorrelationData = correlation
        info = self._client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        info.wait_for_publish(10)

    def wait_for(self, condition: Callable[[list[Received]], Any], timeout: float, what: str) -> Any:
        """Wait until ``condition(messages)`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition(self.messages)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    topics = [m.topic for m in self.messages[-10:]]
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last topics {topics}")
                self._changed.wait(remaining)

    def on(self, topic: str) -> list[Received]:
        """Every message received on ``topic`` so far."""
        with self._changed:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        received = Received(message.topic, bytes(message.payload), bool(message.retain), correlation, time.monotonic())
        with self._changed:
            self.messages.append(received)
            self._changed.notify_all()
