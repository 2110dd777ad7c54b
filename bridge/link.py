"""The bridge's MQTT 5 connection (paho-mqtt 2): subscriptions on every connection, retained alert states out."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge.messages import ALERTS, subscriptions
from bridge.rules import BrokerSettings

__all__ = ["CLIENT_ID", "Link", "NotConnected"]

log = logging.getLogger(__name__)

CLIENT_ID = "kiosk-alerts"  # without a username; with one, the username (docs/broker.md: it must be)
KEEPALIVE_S = 30
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
SESSION_EXPIRY_S = 3600  # acknowledgements sent while the bridge restarts wait for it at the broker


class NotConnected(RuntimeError):
    """The link to the broker is down: nothing was sent (the state is sent again on the next connection)."""


class Link:
    """One MQTT 5 client with paho's network thread; it reconnects by itself until stop().

    ``on_message(topic, payload, retained)``, ``on_connected()``, ``on_subscribed()`` (the broker took the
    subscriptions: its retained state follows) and ``on_disconnected()`` run on paho's thread.
    """

    def __init__(self, broker: BrokerSettings, *, on_message: Callable[[str, bytes, bool], None],
                 on_connected: Callable[[], None], on_subscribed: Callable[[], None],
                 on_disconnected: Callable[[], None], password: str | None = None) -> None:
        self.broker = broker
        self.client_id = broker.username or CLIENT_ID
        self._on_message, self._on_connected = on_message, on_connected
        self._on_subscribed, self._on_disconnected = on_subscribed, on_disconnected
        self._stopping = False
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.suppress_exceptions = True  # a callback's bug is logged, the network thread carries on
        if broker.username:
            client.username_pw_set(broker.username, password)
        if broker.tls:
            client.tls_set(ca_certs=str(broker.ca) if broker.ca else None)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_subscribe = self._subscribed
        client.on_message = self._received
        self._client = client

    @property
    def url(self) -> str:
        """The broker's address, for people."""
        return f"{'mqtts' if self.broker.tls else 'mqtt'}://{self.broker.host}:{self.broker.port}"

    def start(self) -> None:
        """Connect in the background."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S, clean_start=False,
                                   properties=properties)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect and end the network thread: no message arrives after it returns.

        Every message that arrived was handed to on_message before; the rest waits at the broker
        (the session outlives the connection by SESSION_EXPIRY_S).
        """
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def publish_alert(self, alert_id: str, payload: bytes) -> None:
        """Publish an alert's state, retained, QoS 1 (an empty payload removes it)."""
        if not self._client.is_connected():
            raise NotConnected(f"not connected to {self.url}")
        properties = Properties(PacketTypes.PUBLISH)
        if payload:
            properties.PayloadFormatIndicator = 1
            properties.ContentType = "application/json"
        info = self._client.publish(f"{ALERTS}/{alert_id}", payload, qos=1, retain=True, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotConnected(f"cannot publish to {self.url}: {mqtt.error_string(info.rc)}")

    def _connected(self, client: mqtt.Client, _userdata: Any, _flags: mqtt.ConnectFlags, reason_code: ReasonCode,
                   _properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the bridge: %s", self.url, reason_code)
            return
        client.subscribe([(topic, SubscribeOptions(qos=qos)) for topic, qos in subscriptions()])
        log.info("connected to %s as %s", self.url, self.client_id)
        self._on_connected()

    def _disconnected(self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.DisconnectFlags,
                      reason_code: ReasonCode, _properties: Properties | None) -> None:
        if not self._stopping:
            log.warning("lost the connection to %s: %s", self.url, reason_code)
        self._on_disconnected()

    def _subscribed(self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: list[ReasonCode],
                    _properties: Properties | None) -> None:
        refused = [topic for (topic, _), code in zip(subscriptions(), reason_codes) if code.is_failure]
        if refused:
            log.error("broker %s refused subscriptions: %s (check the bridge account's ACL)", self.url, refused)
        self._on_subscribed()

    def _received(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._on_message(message.topic, bytes(message.payload), bool(message.retain))

