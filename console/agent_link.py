"""The agents' console connection to the MQTT broker: subscriptions, messages to parkers, commands with replies."""
from __future__ import annotations

import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

TOPIC_ROOT = "paystation/v1"
SHARE_GROUP = "agents"
REPLY_TIMEOUT_S = 15.0
KEEPALIVE_S = 30
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
DEFAULT_PORTS = {False: 1883, True: 8883}
TO_PARKER_KINDS = ("accept", "message", "resolve")
CONTENT_TYPE = "application/json"
MAX_AGENT = 60  # the station accepts agent names of 1 to 60 characters


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and whether to use TLS."""

    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        """The address as a URL, for people."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


class NotConnected(RuntimeError):
    """The link to the broker is down: nothing was sent."""


def parse_broker_url(url: str, tls: bool = False) -> BrokerAddress:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]`` (TLS; also ``tls=True``); ValueError says what is wrong.

    The default port is 8883 with TLS and 1883 without.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL {url!r}: use mqtt://host[:1883] or mqtts://host[:8883]")
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"broker URL {url!r}: give credentials with --username and --password-file, not in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"broker URL {url!r}: nothing may follow host and port")
    secure = tls or parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, port or DEFAULT_PORTS[secure], secure)


def check_agent(agent: str) -> str:
    """An agent name as the station accepts it and as it can stand in a client id and a topic level."""
    if not 1 <= len(agent) <= MAX_AGENT or not agent.isprintable() or agent != agent.strip() \
            or any(c in agent for c in "/+#"):
        raise ValueError(f"agent name {agent!r}: 1 to {MAX_AGENT} printable characters, no spaces around, "
                         "no '/', '+' or '#'")
    return agent


RETAINED_STATE = ("status", "fault/#", "help/state", "telemetry")
EVENTS = ("event/help", "help/from-parker", "event/session", "event/fault", "event/feedback")


def subscriptions(client_id: str) -> list[tuple[str, int]]:
    """What a console subscribes to, and at which QoS. ``help/request`` comes only through the agents' share.

    The retained state is taken at QoS 0: a broker queues at most ``max_queued_messages``
    (mosquitto: 1,000) QoS 1 messages for a client and drops the rest, so at QoS 1 a console
    subscribing to 5,000 stations' retained state would silently miss most of it, and show
    a fleet healthier than it is. At QoS 0 the broker writes it all, and a lost connection
    loses nothing the next subscription does not send again. Events and requests, which are
    not retained, keep QoS 1.
    """
    return ([(f"{TOPIC_ROOT}/+/{name}", 0) for name in RETAINED_STATE]
            + [(f"{TOPIC_ROOT}/+/{name}", 1) for name in EVENTS]
            + [(f"$share/{SHARE_GROUP}/{TOPIC_ROOT}/+/help/request", 1),
               (f"{TOPIC_ROOT}/+/reply/{client_id}/#", 1)])


@dataclass
class _Pending:
    station: str
    name: str
    response_topic: str
    on_reply: Callable[[dict[str, Any]], None]
    timer: threading.Timer


class AgentLink:
    """One console's MQTT 5 client with its own network thread and automatic reconnect.

    ``on_message(topic, payload, retained)`` gets every message except command replies;
    ``on_state(connected, text)`` every change of the connection (connected once subscribed); command ``on_reply``
    callbacks get the station's reply, or a ``timeout`` one. All of them run on paho's
    network thread (or a timer's thread): a UI must hand them over to its own thread.
    """

    def __init__(self, url: str, agent: str, *, tls: bool = False, ca: str | None = None, cert: str | None = None,
                 key: str | None = None, username: str | None = None, password_file: str | None = None,
                 on_message: Callable[[str, bytes, bool], None], on_state: Callable[[bool, str], None],
                 reply_timeout_s: float = REPLY_TIMEOUT_S) -> None:
        self.address = parse_broker_url(url, tls)
        self.agent = check_agent(agent)
        if (ca or cert or key) and not self.address.tls:
            raise ValueError("--ca, --cert and --key need TLS: use mqtts:// or --tls")
        if key and not cert:
            raise ValueError("--key needs --cert")
        if password_file and not username:
            raise ValueError("--password-file needs --username")
        self.client_id = f"console-{agent}-{secrets.token_hex(4)}"
        self._on_message, self._on_state = on_message, on_state
        self._reply_timeout_s = reply_timeout_s
        self._reply_filter = f"{TOPIC_ROOT}/+/reply/{self.client_id}/#"
        self._pending: dict[bytes, _Pending] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._client = self._new_client(username, password_file, ca, cert, key)

    def _new_client(self, username: str | None, password_file: str | None, ca: str | None, cert: str | None,
                    key: str | None) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.suppress_exceptions = True  # a callback's bug is logged, the network thread carries on
        if username:
            password = None
            if password_file:
                password = Path(password_file).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
            client.username_pw_set(username, password)
        if self.address.tls:
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        client.on_connect = self._connected
        client.on_connect_fail = self._connect_failed
        client.on_disconnect = self._disconnected
        client.on_subscribe = self._subscribed
        client.on_message = self._received
        return client

    # ---- lifecycle ----

    def start(self) -> None:
        """Connect in the background; paho's network thread keeps reconnecting until stop()."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0
        self._client.connect_async(self.address.host, self.address.port, keepalive=KEEPALIVE_S, clean_start=True,
                                   properties=properties)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect and end the network thread; unanswered commands get no callback."""
        self._stopping = True
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for request in pending:
            request.timer.cancel()
        self._client.disconnect()
        self._client.loop_stop()

    # ---- sending ----

    def to_parker(self, station: str, ticket: str, kind: str, text: str = "", outcome: str = "") -> None:
        """Accept, message or resolve a help ticket (``help/to-parker``); empty text or outcome are sent as null."""
        if kind not in TO_PARKER_KINDS:
            raise ValueError(f"kind {kind!r}: one of {', '.join(TO_PARKER_KINDS)}")
        payload = {"ticket": ticket, "type": kind, "agent": self.agent, "text": text or None,
                   "outcome": outcome or None}
        self._publish(f"{TOPIC_ROOT}/{_level(station)}/help/to-parker", payload, _json_properties())

    def command(self, station: str, name: str, args: dict[str, Any],
                on_reply: Callable[[dict[str, Any]], None]) -> str:
        """Send ``cmd/{name}`` as an MQTT 5 request; return its correlation id.

        ``on_reply`` gets the reply ``{"ok":..,"code":..,"detail":..}``, or
        ``{"ok": false, "code": "timeout"}`` after the reply timeout (15 s).
        """
        if not name or any(c in name for c in "+#") or name.startswith("/") or name.endswith("/"):
            raise ValueError(f"command name {name!r}")
        correlation = str(uuid.uuid4())
        key = correlation.encode("ascii")
        response_topic = f"{TOPIC_ROOT}/{_level(station)}/reply/{self.client_id}/{correlation}"
        properties = _json_properties()
        properties.ResponseTopic = response_topic
        properties.CorrelationData = key
        timer = threading.Timer(self._reply_timeout_s, self._expired, args=(key,))
        timer.daemon = True
        with self._lock:
            self._pending[key] = _Pending(station, name, response_topic, on_reply, timer)
        try:
            self._publish(f"{TOPIC_ROOT}/{station}/cmd/{name}", args, properties)
        except BaseException:  # not sent: nothing may wait for its reply
            with self._lock:
                self._pending.pop(key, None)
            raise
        timer.start()
        log.info("sent %s to %s (correlation %s)", name, station, correlation)
        return correlation

    def _publish(self, topic: str, payload: dict[str, Any], properties: Properties) -> None:
        if not self._client.is_connected():
            raise NotConnected(f"not connected to {self.address.url}")
        info = self._client.publish(topic, json.dumps(payload), qos=1, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotConnected(f"cannot send to {self.address.url}: {mqtt.error_string(info.rc)}")

    def _expired(self, key: bytes) -> None:
        with self._lock:
            request = self._pending.pop(key, None)
        if request is not None:
            log.warning("no reply from %s to %s", request.station, request.name)
            request.on_reply({"ok": False, "code": "timeout",
                              "detail": f"no reply from {request.station} within {self._reply_timeout_s:g} s"})

    # ---- paho callbacks (network thread) ----

    def _connected(self, client: mqtt.Client, _userdata: Any, _flags: mqtt.ConnectFlags, reason_code: ReasonCode,
                   _properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the console: %s", self.address.url, reason_code)
            self._on_state(False, f"refused by {self.address.url}: {reason_code}")
            return
        client.subscribe([(topic, SubscribeOptions(qos=qos)) for topic, qos in subscriptions(self.client_id)])
        log.info("connected to %s as %s", self.address.url, self.client_id)

    def _connect_failed(self, _client: mqtt.Client, _userdata: Any) -> None:
        if not self._stopping:
            self._on_state(False, f"reconnecting: cannot reach {self.address.url}")

    def _disconnected(self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.DisconnectFlags,
                      reason_code: ReasonCode, _properties: Properties | None) -> None:
        if not self._stopping:
            log.warning("lost the connection to %s: %s", self.address.url, reason_code)
            self._on_state(False, f"reconnecting: {reason_code}")

    def _subscribed(self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: list[ReasonCode],
                    _properties: Properties | None) -> None:
        refused = [topic for (topic, _), code in zip(subscriptions(self.client_id), reason_codes) if code.is_failure]
        if refused:
            log.error("broker %s refused subscriptions: %s", self.address.url, refused)
            self._on_state(True, f"connected to {self.address.url}, but refused: {', '.join(refused)}")
        else:
            self._on_state(True, f"connected to {self.address.url}")

    def _received(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if mqtt.topic_matches_sub(self._reply_filter, message.topic):
            self._reply(message)
        else:
            self._on_message(message.topic, bytes(message.payload), bool(message.retain))

    def _reply(self, message: mqtt.MQTTMessage) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        key = correlation if isinstance(correlation, bytes) else None
        with self._lock:
            request = self._pending.get(key) if key is not None else None
            if key is None or request is None or request.response_topic != message.topic:
                log.info("reply on %s matches no command of this console", message.topic)
                return
            del self._pending[key]
        request.timer.cancel()
        request.on_reply(_reply_payload(bytes(message.payload)))


def _reply_payload(payload: bytes) -> dict[str, Any]:
    """The station's reply with ``ok``, ``code`` and ``detail`` always present and of the right type."""
    try:
        reply = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        reply = None
    if not isinstance(reply, dict):
        return {"ok": False, "code": "bad_reply", "detail": "the station's reply is not a JSON object"}
    code, detail = reply.get("code"), reply.get("detail")
    return {**reply, "ok": reply.get("ok") is True, "code": code if isinstance(code, str) else "",
            "detail": detail if isinstance(detail, str) else ""}


def _level(station: str) -> str:
    """A station id as one topic level."""
    if not station or any(c in station for c in "/+#"):
        raise ValueError(f"station id {station!r}")
    return station


def _json_properties() -> Properties:
    properties = Properties(PacketTypes.PUBLISH)
    properties.PayloadFormatIndicator = 1
    properties.ContentType = CONTENT_TYPE
    return properties
