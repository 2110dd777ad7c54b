"""MQTT link to the operator's broker: connection, will, subscriptions, publishes with PUBACK tracking, commands in.

The only module that imports paho. Over 600 lines on purpose: MqttClient is one class whose
state (the connection attempt, its boot number, the publishes in flight, the back-off) is
shared under one lock by paho's callbacks on the network thread and the loop's calls. Split
across modules, that lock's invariants would have to be read in several places at once.
"""
from __future__ import annotations

import functools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from kiosk.config import MqttSettings
from kiosk.domain.events import Event, LinkAcked, LinkDown, LinkState, LinkUp, MessageIn
from kiosk.mqtt.contract import STATUS, station_prefix, will_payload

log = logging.getLogger(__name__)
paho_log = logging.getLogger(__name__ + ".paho")

CONTENT_TYPE = "application/json"
MAX_PACKET_SIZE = 256 * 1024
DEFAULT_RECEIVE_MAXIMUM = 65535
MAX_INFLIGHT = 1000
SOCKET_TIMEOUT_S = 5.0  # paho's connect_timeout: bounds the TCP connect and the TLS handshake, not DNS
CONNECT_TIMEOUT_S = 10.0  # an attempt without CONNACK and SUBACK within this is dropped
STABLE_S = 10.0  # a connection that lasted this long resets the back-off to its first delay
FIRST_DELAY_S = 1.0
JITTER = 0.2
LOOP_S = 0.5  # select() timeout of the network loop; a publish or disconnect wakes it earlier
BEAT_S = 1.0
JOIN_TIMEOUT_S = SOCKET_TIMEOUT_S + 1.0
PUBACK_OK_BELOW = 0x80
NORMAL_DISCONNECT = ReasonCode(PacketTypes.DISCONNECT, identifier=0)  # the broker does not send the will


def json_properties(packet_type: int) -> Properties:
    """MQTT 5 properties of every message the station sends: UTF-8 JSON."""
    properties = Properties(packet_type)
    properties.PayloadFormatIndicator = 1
    properties.ContentType = CONTENT_TYPE
    return properties


# Shared by every publish without expiry: paho only reads properties, and building them per
# message cost a fifth of a backlog drain (docs/performance.md).
_PUBLISH_PROPERTIES = json_properties(PacketTypes.PUBLISH)


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """A paho callback that never lets an exception escape into paho's network loop."""
    @functools.wraps(method)
    def wrapper(*args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("MQTT callback %s failed", method.__name__)
    return wrapper


@dataclass(eq=False)
class _Pending:
    """A publish waiting for its PUBACK (QoS 1) or for being written (QoS 0)."""

    row_id: int | None
    topic: str
    done: threading.Event | None = None
    ok: bool | None = None


@dataclass(eq=False)
class _Connection:
    """One connection attempt: its own paho client and everything that dies with it."""

    gen: int
    boot: int
    client: mqtt.Client | None = None
    connacked: bool = False
    ready: bool = False
    closed: bool = False
    up_at: float = 0.0
    sub_mid: int | None = None
    ended: str | None = None
    last_error: str | None = None
    pending: dict[int, _Pending] = field(default_factory=dict)
    early: dict[int, bool] = field(default_factory=dict)


class MqttClient:
    """The station's MQTT 5 connection, run by its own network thread.

    paho's callbacks only record and *post* events (LinkUp, LinkDown, LinkAcked, MessageIn);
    the main loop calls publish/reply/take_acks. Every connection attempt uses a new paho
    client, so nothing queued in paho survives a connection: the outbox is the queue.
    """

    def __init__(self, settings: MqttSettings, station_id: str, post: Callable[[Event], None], *,
                 subscriptions: tuple[str, ...], boot: int) -> None:
        self._settings = settings
        self._station_id = station_id
        self._prefix = station_prefix(station_id)
        self._post = post
        self._subscriptions = subscriptions
        self._address = f"{settings.host}:{settings.port}"
        self._lock = threading.Lock()
        self._looped = threading.Condition()  # notified after every round of paho's loop (see flush)
        self._rounds = 0  # rounds of paho's loop so far (under _looped)
        self._stalled_at = -1  # _rounds when a flush last timed out
        self._stop_event = threading.Event()
        self._boot_offered = threading.Event()
        self._stopping = False
        self._gen = 0
        self._thread: threading.Thread | None = None
        self._conn: _Connection | None = None
        self._connected = False
        self._state = LinkState.DOWN
        self._since = datetime.now(UTC)
        self._ups = 0
        self._receive_maximum = DEFAULT_RECEIVE_MAXIMUM
        self._acks: list[tuple[int, bool]] = []
        self._ack_posted = False
        self._next_boot: int | None = boot
        self._used_boots: set[int] = set()
        self._report_failure = True
        self._beat_at = time.monotonic()
        self._refused: tuple[int, str] = (0, "")  # publishes the broker refused since start, and the last topic

    # ---- public API (main thread) ----

    @property
    def connected(self) -> bool:
        """CONNACK accepted and the subscriptions answered."""
        return self._connected

    @property
    def state(self) -> LinkState:
        """Connecting, connected, down or stopped."""
        return self._state

    @property
    def since(self) -> datetime:
        """When ``state`` last changed (UTC)."""
        return self._since

    @property
    def reconnects(self) -> int:
        """Successful connections after the first."""
        return max(0, self._ups - 1)

    @property
    def address(self) -> str:
        """The broker's host:port."""
        return self._address

    @property
    def tls(self) -> bool:
        """The link is encrypted (mqtt.tls)."""
        return self._settings.tls

    @property
    def refused(self) -> tuple[int, str]:
        """How many publishes the broker refused (PUBACK 0x80 or above: its ACL) since start, and the last topic."""
        return self._refused

    @property
    def receive_maximum(self) -> int:
        """The broker's Receive Maximum from the last CONNACK: how many QoS 1 publishes may be unacknowledged."""
        return self._receive_maximum

    def start(self) -> None:
        """Start the network thread; it connects, and reconnects with back-off, until stop()."""
        if not self._settings.host:
            log.info("no MQTT broker configured: messages stay in the outbox")
            return
        with self._lock:
            if self._thread is not None:
                return
            self._beat_at = time.monotonic()
            self._spawn(self._gen)

    def offer_boot(self, boot: int) -> None:
        """Give the boot number for the next connection (thread-safe; a used number is refused)."""
        with self._lock:
            if boot in self._used_boots:
                log.warning("MQTT boot number %d was already used by a connection; ignored", boot)
                return
            self._next_boot = boot
            self._boot_offered.set()

    def publish(self, topic: str, payload: str, qos: int, retain: bool, row_id: int | None = None,
                expiry_s: int | None = None) -> bool:
        """Hand a message for ``prefix + topic`` to paho; False when not connected or refused at once.

        With a ``row_id`` the broker's answer is reported by take_acks() (QoS 0: once written).
        """
        properties = _PUBLISH_PROPERTIES
        if expiry_s is not None:
            properties = json_properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = expiry_s
        return self._send(self._prefix + topic, payload, qos, retain, properties, _Pending(row_id, topic))

    def reply(self, response_topic: str, correlation: bytes | None, payload: str) -> bool:
        """Answer an MQTT 5 request on its (full) response topic, QoS 1, not retained."""
        if not response_topic or "+" in response_topic or "#" in response_topic:
            log.warning("MQTT reply dropped: invalid response topic %r", response_topic)
            return False
        properties = json_properties(PacketTypes.PUBLISH)
        if correlation is not None:
            properties.CorrelationData = correlation
        return self._send(response_topic, payload, 1, False, properties, _Pending(None, response_topic))

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s, the GIL released, until the network thread has written what paho queued.

        Only the network thread writes to the socket, and it needs the GIL to do so: while the
        loop thread draws a frame it would get it only in slices (docs/performance.md). True when
        nothing queued is left unwritten, or there is no connection to write to; QoS 1 messages
        that paho holds back for its in-flight limit are not waited for. After a flush that timed
        out, the next ones return at once until the network thread completes another round, so a
        stalled socket or a hung thread costs the loop one timeout, not one per publish.
        """
        with self._lock:
            conn = self._conn if self._connected else None
            client = conn.client if conn is not None else None
        if conn is None or client is None:
            return True
        end = time.monotonic() + timeout
        with self._looped:
            if self._stalled_at == self._rounds:
                return not client.want_write()
            while client.want_write() and not conn.closed:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    self._stalled_at = self._rounds
                    return False
                self._looped.wait(remaining)
        return True

    def take_acks(self) -> list[tuple[int, bool]]:
        """The (row_id, accepted) answers since the last call; a later answer posts LinkAcked again."""
        with self._lock:
            acks, self._acks = self._acks, []
            self._ack_posted = False
        return acks

    def heartbeat_age(self) -> float:
        """Seconds since the network thread last showed progress.

        It beats at least every second; a blocking connect (TCP and TLS, each bounded by
        SOCKET_TIMEOUT_S) is paid in advance with 2 x SOCKET_TIMEOUT_S.
        """
        if self._thread is None or self._stopping:
            return 0.0
        return max(0.0, time.monotonic() - self._beat_at)

    def restart(self) -> None:
        """Watchdog: abandon the current network thread (its callbacks are ignored from now on), start a fresh one."""
        with self._lock:
            if self._thread is None or self._stopping:
                return
            self._gen += 1
            conn, self._conn = self._conn, None
            self._connected = False
            if conn is not None:
                self._close_pending(conn)
            self._beat_at = time.monotonic()
            self._spawn(self._gen)
        log.warning("MQTT network thread abandoned by the watchdog; a fresh one connects to %s", self._address)
        if conn is not None and conn.client is not None:
            sock = conn.client.socket()
            if sock is not None:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # type: ignore[arg-type]
                except OSError as exc:
                    log.debug("closing the abandoned MQTT socket: %s", exc)
        if conn is not None and conn.connacked:
            with self._lock:
                self._report_failure = True
            self._post(LinkDown("network thread restarted by the watchdog"))

    def stop(self, offline_payload: str, timeout: float = 3.0) -> None:
        """Publish ``offline_payload`` retained on ``status`` if connected, wait for its PUBACK, disconnect normally."""
        with self._lock:
            if self._stopping:
                return
            conn = self._conn if self._connected else None
            client = conn.client if conn is not None else None
        done = threading.Event()
        pending = _Pending(None, STATUS, done)
        if client is not None and self._send(self._prefix + STATUS, offline_payload, 1, True,
                                             json_properties(PacketTypes.PUBLISH), pending):
            if done.wait(timeout) and pending.ok:
                log.info("MQTT broker %s acknowledged the offline state", self._address)
            else:
                log.warning("MQTT broker %s did not acknowledge the offline state within %.1f s",
                            self._address, timeout)
        with self._lock:
            self._stopping = True
            thread = self._thread
        if client is not None:
            client.disconnect(reasoncode=NORMAL_DISCONNECT)
        self._stop_event.set()
        self._boot_offered.set()
        if thread is not None:
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("MQTT network thread did not end within %.0f s", JOIN_TIMEOUT_S)
        with self._lock:
            self._connected = False
            self._conn = None
            self._set_state_locked(LinkState.STOPPED)
        log.info("MQTT link to %s stopped", self._address)

    # ---- shared helpers ----

    def _spawn(self, gen: int) -> None:
        """Start the network thread of generation ``gen`` (lock held)."""
        self._set_state_locked(LinkState.CONNECTING)
        self._thread = threading.Thread(target=self._run, args=(gen,), name=f"mqtt-link-{gen}", daemon=True)
        self._thread.start()

    def _set_state_locked(self, state: LinkState) -> None:
        if state != self._state:
            self._state = state
            self._since = datetime.now(UTC)

    def _set_state(self, gen: int, state: LinkState) -> None:
        with self._lock:
            if gen == self._gen and not self._stopping:
                self._set_state_locked(state)

    def _live(self, gen: int) -> bool:
        """Whether the thread of ``gen`` may still act: not abandoned, not stopping."""
        return gen == self._gen and not self._stopping

    def _post_from(self, gen: int, event: Event) -> None:
        """Post an event unless its thread was abandoned or the link is stopping."""
        if self._live(gen):
            self._post(event)
        else:
            log.debug("MQTT event from an ended link dropped: %s", type(event).__name__)

    def _beat(self, gen: int, grace: float = 0.0) -> None:
        """Show progress; ``grace`` pre-pays a bounded blocking call (the connect)."""
        if gen == self._gen:
            self._beat_at = time.monotonic() + grace

    def _send(self, topic: str, payload: str, qos: int, retain: bool, properties: Properties,
              pending: _Pending) -> bool:
        """Publish on the current connection and track its answer; never raises on a network error."""
        with self._lock:
            conn = self._conn if self._connected else None
            client = conn.client if conn is not None else None
        if conn is None or client is None:
            return False
        try:
            info = client.publish(topic, payload.encode("utf-8"), qos=qos, retain=retain, properties=properties)
        except (ValueError, TypeError, OSError) as exc:
            log.error("MQTT publish to %s refused by paho: %s", topic, exc)
            return False
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.debug("MQTT publish to %s not sent: %s", topic, mqtt.error_string(info.rc))
            return False
        with self._lock:
            if conn.closed:
                if pending.done is not None:
                    pending.done.set()
                return False
            early = conn.early.pop(info.mid, None)
            if early is None:
                conn.pending[info.mid] = pending
                return True
            post = self._resolve(pending, early)
        if post:
            self._post_from(conn.gen, LinkAcked())
        return True

    def _resolve(self, pending: _Pending, ok: bool) -> bool:
        """Record a publish's answer (lock held); True when a LinkAcked must be posted."""
        pending.ok = ok
        if pending.done is not None:
            pending.done.set()
        if not ok:
            log.warning("MQTT broker %s refused the publish on %s", self._address, pending.topic)
            self._refused = (self._refused[0] + 1, pending.topic)
        if pending.row_id is None:
            return False
        self._acks.append((pending.row_id, ok))
        post, self._ack_posted = not self._ack_posted, True
        return post

    @staticmethod
    def _close_pending(conn: _Connection) -> None:
        """The connection ended (lock held): its unanswered publishes never will be; wake their waiters."""
        conn.closed = True
        for pending in conn.pending.values():
            if pending.done is not None:
                pending.done.set()
        conn.pending.clear()
        conn.early.clear()

    # ---- the network thread ----

    def _run(self, gen: int) -> None:
        """Connect, loop, back off and reconnect until stopped or abandoned."""
        delay = FIRST_DELAY_S
        try:
            while self._live(gen):
                boot = self._wait_for_boot(gen)
                if boot is None:
                    break
                lasted = self._attempt(gen, boot)
                if not self._live(gen):
                    break
                if lasted is not None and lasted >= STABLE_S:
                    delay = FIRST_DELAY_S
                self._set_state(gen, LinkState.DOWN)
                pause = delay * random.uniform(1 - JITTER, 1 + JITTER)
                log.info("MQTT next attempt to connect to %s in %.1f s", self._address, pause)
                self._pause(gen, pause)
                delay = min(delay * 2, float(self._settings.reconnect_max_s))
        except Exception:
            log.exception("MQTT network thread failed; the watchdog restarts it")

    def _pause(self, gen: int, seconds: float) -> None:
        """Wait ``seconds`` (back-off), beating every second; ends at once on stop()."""
        end = time.monotonic() + seconds
        while self._live(gen):
            self._beat(gen)
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self._stop_event.wait(min(remaining, BEAT_S))

    def _wait_for_boot(self, gen: int) -> int | None:
        """The boot number for the next connection, waiting for offer_boot() if the last one was used."""
        told = False
        while self._live(gen):
            self._beat(gen)
            with self._lock:
                if self._next_boot is not None:
                    self._boot_offered.clear()
                    return self._next_boot
            if not told:
                log.info("MQTT link waits for a new boot number before connecting to %s", self._address)
                told = True
            self._boot_offered.wait(BEAT_S)
        return None

    def _attempt(self, gen: int, boot: int) -> float | None:
        """One connection with ``boot``: connect, loop until it ends; how long it was up (None if never)."""
        self._set_state(gen, LinkState.CONNECTING)
        conn = _Connection(gen, boot)
        try:
            client = self._new_client(conn)
        except (OSError, ValueError) as exc:
            self._failed(conn, str(exc))
            return None
        with self._lock:
            if not self._live(gen):
                return None
            conn.client = client
            self._conn = conn
        log.info("MQTT connecting to %s as %s (boot %d)", self._address, self._station_id, boot)
        try:
            self._beat(gen, grace=2 * SOCKET_TIMEOUT_S)
            rc = self._connect(conn)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                conn.ended = mqtt.error_string(rc)
            else:
                self._loop(conn)
        except (OSError, ValueError) as exc:
            conn.ended = f"{type(exc).__name__}: {exc}"
        finally:
            sock = client.socket()
            if sock is not None:
                sock.close()
            with self._lock:
                if self._conn is conn:
                    self._conn = None
                    self._connected = False
                    if self._live(gen):
                        self._set_state_locked(LinkState.DOWN)
                self._close_pending(conn)
                conn.client = None
            self._looped_once()  # a flush waiting on this connection's writes stops waiting
        return self._ended(conn)

    def _loop(self, conn: _Connection) -> None:
        """Run paho's loop for this connection until it ends, the attempt times out, stop() or restart()."""
        assert conn.client is not None
        client = conn.client
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while conn.gen == self._gen:
            self._beat(conn.gen)
            if self._stop_event.is_set():
                self._disconnect(client)
                return
            if not conn.ready and time.monotonic() > deadline:
                conn.ended = f"no CONNACK/SUBACK within {CONNECT_TIMEOUT_S:.0f} s"
                return
            rc = client.loop(LOOP_S)
            self._looped_once()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                conn.ended = conn.ended or conn.last_error or mqtt.error_string(rc)
                return

    def _looped_once(self) -> None:
        """A round of paho's loop is done (or the connection ended): wake flush()."""
        with self._looped:
            self._rounds += 1
            self._looped.notify_all()

    def _disconnect(self, client: mqtt.Client) -> None:
        """Send DISCONNECT (normal: no will) and write it out, within a second."""
        client.disconnect(reasoncode=NORMAL_DISCONNECT)
        end = time.monotonic() + BEAT_S
        while client.socket() is not None and client.want_write() and time.monotonic() < end:
            client.loop(0.1)

    def _ended(self, conn: _Connection) -> float | None:
        """Log and report the end of a connection attempt; how long it was up (None if it never was)."""
        if not self._live(conn.gen):
            return None
        reason = conn.ended or conn.last_error or "connection closed"
        if conn.ready:
            lasted = time.monotonic() - conn.up_at
            log.warning("MQTT connection to %s lost after %.0f s: %s", self._address, lasted, reason)
        elif conn.connacked:
            lasted = None
            log.warning("MQTT connection to %s lost before its subscriptions were answered: %s",
                        self._address, reason)
        else:
            self._failed(conn, reason)
            return None
        with self._lock:
            self._report_failure = True
        self._post_from(conn.gen, LinkDown(f"connection to {self._address} lost: {reason}"))
        return lasted

    def _failed(self, conn: _Connection, reason: str) -> None:
        """An attempt that never connected: LinkDown only for the first one after start() or a lost connection."""
        log.warning("MQTT connection to %s failed: %s", self._address, reason)
        with self._lock:
            report = self._report_failure and self._live(conn.gen)
            self._report_failure = False
        if report:
            self._post_from(conn.gen, LinkDown(f"cannot connect to {self._address}: {reason}", used=False))

    def _new_client(self, conn: _Connection) -> mqtt.Client:
        """A fresh paho client for one attempt: credentials, TLS, will and callbacks bound to ``conn``."""
        settings = self._settings
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self._station_id, protocol=mqtt.MQTTv5)
        client.connect_timeout = SOCKET_TIMEOUT_S
        client.max_inflight_messages_set(MAX_INFLIGHT)
        if settings.username:
            password = self._read_password() if settings.password_file else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            try:
                client.tls_set(ca_certs=settings.ca_file or None, certfile=settings.cert_file or None,
                               keyfile=settings.key_file or None, keyfile_password="")
            except (OSError, ValueError) as exc:
                log.error("MQTT TLS set-up failed (ca_file %r, cert_file %r, key_file %r): %s",
                          settings.ca_file, settings.cert_file, settings.key_file, exc)
                raise
        client.will_set(self._prefix + STATUS, will_payload(conn.boot), qos=1, retain=True,
                        properties=json_properties(PacketTypes.WILLMESSAGE))
        client.on_connect = functools.partial(self._on_connect, conn)
        client.on_subscribe = functools.partial(self._on_subscribe, conn)
        client.on_publish = functools.partial(self._on_publish, conn)
        client.on_message = functools.partial(self._on_message, conn)
        client.on_disconnect = functools.partial(self._on_disconnect, conn)
        client.logger = _PahoLog(conn)  # type: ignore[assignment]  # paho only calls .log(level, msg, *args)
        client.on_socket_register_write = _written_by_network_thread
        return client

    def _connect(self, conn: _Connection) -> mqtt.MQTTErrorCode:
        """Open the socket (blocking, bounded by SOCKET_TIMEOUT_S) and queue CONNECT."""
        assert conn.client is not None
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0
        properties.MaximumPacketSize = MAX_PACKET_SIZE
        rc = conn.client.connect(self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s,
                                 clean_start=True, properties=properties)
        sock = conn.client.socket()
        if rc == mqtt.MQTT_ERR_SUCCESS and isinstance(sock, socket.socket):
            # paho leaves Nagle on: a small message written while the broker has not yet
            # acknowledged the previous one (a TCP ACK, delayed ~40 ms) would wait for it.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return rc

    def _read_password(self) -> str:
        """The password, read from its file at each connect (one trailing newline removed)."""
        path = self._settings.password_file
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            log.error("cannot read the MQTT password file %s: %s", path, exc)
            raise
        return text.removesuffix("\n").removesuffix("\r")

    # ---- paho callbacks (network thread): record, post, never block ----

    def _current(self, conn: _Connection) -> bool:
        return conn.gen == self._gen and not conn.closed

    @_guarded
    def _on_connect(self, conn: _Connection, client: mqtt.Client, _userdata: Any, _flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if not self._current(conn):
            return
        if reason_code.is_failure:
            conn.ended = f"refused: {reason_code}"
            log.error("MQTT broker %s refused the connection of %s: %s", self._address, self._station_id, reason_code)
            return
        with self._lock:
            conn.connacked = True
            self._used_boots.add(conn.boot)
            if self._next_boot == conn.boot:
                self._next_boot = None
            self._receive_maximum = int(getattr(properties, "ReceiveMaximum", DEFAULT_RECEIVE_MAXIMUM))
        # paho does not read the broker's Receive Maximum itself. With its in-flight limit set to
        # it, paho queues instead of sending, so births, replies and republished state never
        # exceed it either. paho's setter refuses on an open connection (its worry is a change
        # from or to 0, "unlimited"); here nothing is published yet and both values are > 0.
        client._max_inflight_messages = max(1, min(MAX_INFLIGHT, self._receive_maximum))
        if not self._subscriptions:
            self._became_ready(conn)
            return
        # Retain As Published: a command retained by mistake arrives flagged, so it can be refused.
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        rc, mid = client.subscribe([(self._prefix + topic, options) for topic in self._subscriptions])
        if rc != mqtt.MQTT_ERR_SUCCESS:
            log.error("MQTT subscribe on %s failed: %s", self._address, mqtt.error_string(rc))
        conn.sub_mid = mid

    @_guarded
    def _on_subscribe(self, conn: _Connection, _client: mqtt.Client, _userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], _properties: Properties | None) -> None:
        if not self._current(conn) or mid != conn.sub_mid:
            return
        refused = [f"{topic} ({code})" for topic, code in zip(self._subscriptions, reason_codes) if code.is_failure]
        if refused:
            log.error("MQTT broker %s refused subscriptions: %s", self._address, ", ".join(refused))
        self._became_ready(conn)

    def _became_ready(self, conn: _Connection) -> None:
        with self._lock:
            if not self._live(conn.gen) or conn.closed:
                return
            conn.ready = True
            conn.up_at = time.monotonic()
            self._connected = True
            self._ups += 1
            self._set_state_locked(LinkState.CONNECTED)
            receive_maximum = self._receive_maximum
        log.info("MQTT connected to %s as %s (boot %d, receive maximum %d)", self._address, self._station_id,
                 conn.boot, receive_maximum)
        self._post_from(conn.gen, LinkUp(conn.boot))

    @_guarded
    def _on_publish(self, conn: _Connection, _client: mqtt.Client, _userdata: Any, mid: int,
                    reason_code: ReasonCode, _properties: Properties | None) -> None:
        ok = reason_code.value < PUBACK_OK_BELOW
        with self._lock:
            if not self._current(conn):
                return
            pending = conn.pending.pop(mid, None)
            if pending is None:
                conn.early[mid] = ok
                return
            post = self._resolve(pending, ok)
        if post:
            self._post_from(conn.gen, LinkAcked())

    @_guarded
    def _on_message(self, conn: _Connection, _client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        if not self._current(conn):
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            log.warning("MQTT message with a topic that is not UTF-8 dropped")
            return
        if not topic.startswith(self._prefix):
            log.warning("MQTT message outside %s dropped: %s", self._prefix, topic)
            return
        properties = message.properties
        response_topic = getattr(properties, "ResponseTopic", None)
        correlation = getattr(properties, "CorrelationData", None)
        log.debug("MQTT message on %s (%d bytes)", topic, len(message.payload))
        self._post_from(conn.gen, MessageIn(topic[len(self._prefix):], bytes(message.payload), response_topic,
                                            None if correlation is None else bytes(correlation), bool(message.retain)))

    @_guarded
    def _on_disconnect(self, conn: _Connection, _client: mqtt.Client, _userdata: Any,
                       flags: mqtt.DisconnectFlags, reason_code: ReasonCode, _properties: Properties | None) -> None:
        if not self._current(conn):
            return
        with self._lock:
            if self._conn is conn:
                self._connected = False
        if conn.ended is None:
            source = "broker" if flags.is_disconnect_packet_from_server else "network"
            conn.ended = f"{reason_code} ({source})"
            if conn.last_error:
                conn.ended += f": {conn.last_error}"



class _PahoLog:
    """paho's logger for one connection: keeps its last error for the LinkDown reason, the rest at DEBUG.

    Unlike an on_log callback, this formats paho's per-packet lines only when DEBUG is on:
    formatting them cost 12 % of a backlog drain (docs/performance.md).
    """

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    def log(self, level: int, fmt: str, *args: Any) -> None:
        """Called by paho for each of its log lines."""
        if level >= logging.ERROR:
            self._conn.last_error = fmt % args
        if paho_log.isEnabledFor(logging.DEBUG):
            paho_log.debug(fmt, *args)


def _written_by_network_thread(_client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
    """Registered so that paho never writes from the caller's thread: only the network thread's loop() writes."""
