"""A synthetic fleet on the MQTT contract (docs/mqtt.md): retained status, faults, help tickets, telemetry, fault bursts.

As a module: :func:`build_fleet` says what N stations publish and what a console must then
know (:class:`Fleet`); :class:`Publisher` sends messages with QoS 1 and many in flight and
waits for every PUBACK; :func:`burst` makes a stream of fault changes whose ``message``
carries a send stamp (:func:`parse_stamp`). As a command, in its own process, so that the
console's CPU is measured alone::

    python bench/fleet_sim.py --port 1883 --stations 5000 load
    python bench/fleet_sim.py --port 1883 --stations 5000 burst --rate 200 --seconds 30

``load`` publishes the retained state, prints ``loaded N``, then stays connected and sends
telemetry until stdin closes (or for ``--idle`` seconds). ``burst`` prints ``burst N`` when
the last change was acknowledged; the last change is always a raise, and its stamp ends in
``last``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = [
    "BURST_FAULTS",
    "ZONES",
    "BoardLike",
    "BurstFault",
    "FaultLike",
    "Fleet",
    "Message",
    "Mode",
    "Publisher",
    "StampedChange",
    "StationLike",
    "TicketLike",
    "Tracker",
    "build_fleet",
    "burst",
    "help_requests",
    "iso",
    "main",
    "paced",
    "parse_stamp",
    "stamp",
    "station_id",
    "telemetry",
    "unknown_to",
]

ROOT = "paystation/v1"
ZONES = ("Altstadt Nord", "Altstadt Süd", "Bahnhof", "Hafen", "Messe", "Klinikum")
FIRMWARE = ("0.4.0", "0.4.1", "0.5.0")
BOOT0 = 1_795_338_000
MAX_INFLIGHT = 5000  # the publisher's own bound; the broker's Receive Maximum may lower it
DEFAULT_RECEIVE_MAXIMUM = 65535
MAX_UNACKNOWLEDGED = 30_000  # handed to paho and not yet acknowledged (its message ids wrap at 65,535)
REQUEST_EXPIRY_S = 120  # help/request carries MQTT 5 message expiry 120 s
CONNECT_TIMEOUT_S = 10.0
STAMP_PREFIX = "burst "
LAST_MARK = " last"


class Mode(Enum):
    """What the command does once connected."""

    LOAD = "load"
    BURST = "burst"


@dataclass(frozen=True)
class Message:
    """One publish: full topic, payload, retained flag, QoS, MQTT 5 message expiry (None: none)."""

    topic: str
    payload: bytes
    retain: bool
    qos: int = 1
    expiry_s: int | None = None


@dataclass(frozen=True)
class BurstFault:
    """A fault the burst raises and clears: component, code, severity, parker impact."""

    component: str
    code: str
    severity: str
    parker_impact: str


BURST_FAULTS = (BurstFault("door", "open", "critical", "none"),
                BurstFault("help_button", "stuck", "warning", "notice"),
                BurstFault("outbox", "backlog", "warning", "none"))


@dataclass
class Fleet:
    """What ``count`` stations publish, and what a console that received all of it knows.

    ``states`` maps every station to online, offline or lost; ``zones`` the online ones to
    their zone; ``faults`` every station with active faults to ``{component: code}``;
    ``waiting`` every station with a waiting ticket to the ticket id; ``messages`` is the
    retained state, in publishing order.
    """

    count: int
    now: datetime
    states: dict[str, str] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)
    faults: dict[str, dict[str, str]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)

    @property
    def fault_count(self) -> int:
        """Active faults in the whole fleet."""
        return sum(len(faults) for faults in self.faults.values())


@dataclass(frozen=True)
class StampedChange:
    """One fault change of a burst: its message, its place, whether it raises, and whether it is the last."""

    message: Message
    index: int
    station: str
    component: str
    active: bool
    last: bool


class FaultLike(Protocol):
    """What :func:`unknown_to` reads of a fault view."""

    @property
    def component(self) -> str: ...

    @property
    def code(self) -> str | None: ...


class StationLike(Protocol):
    """What :func:`unknown_to` reads of a station view."""

    @property
    def state(self) -> str: ...

    @property
    def zone(self) -> str | None: ...

    @property
    def faults(self) -> Sequence[FaultLike]: ...


class TicketLike(Protocol):
    """What :func:`unknown_to` reads of a ticket view."""

    @property
    def station(self) -> str: ...

    @property
    def ticket(self) -> str: ...


class BoardLike(Protocol):
    """The console's board as :func:`unknown_to` asks it (console.board.Board)."""

    def station(self, station_id: str) -> StationLike | None: ...

    def queue(self, now: datetime) -> Sequence[TicketLike]: ...


def unknown_to(board: BoardLike, fleet: Fleet, stations: Sequence[str], now: datetime) -> list[str]:
    """Those of ``stations`` whose state, zone or active faults the board does not know as published, and
    ``ticket:<station>`` for every waiting ticket missing from its queue (checked once the stations are known)."""
    missing = []
    for station in stations:
        view = board.station(station)
        if (view is None or view.state != fleet.states[station] or view.zone != fleet.zones.get(station, view.zone)
                or {f.component: f.code for f in view.faults} != fleet.faults.get(station, {})):
            missing.append(station)
    if missing or not fleet.waiting:
        return missing
    queued = {t.station: t.ticket for t in board.queue(now)}
    return [f"ticket:{station}" for station, ticket in sorted(fleet.waiting.items()) if queued.get(station) != ticket]


class Tracker:
    """Asks a board whether it knows the whole fleet, each time only about the stations it did not know before
    (cheap enough to poll on the console's own event loop); a last full check before it says yes."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.pending = list(fleet.states)
        self.missing: list[str] = self.pending

    def known(self, board: BoardLike, now: datetime) -> bool:
        """True once the board knows every station, fault and waiting ticket as published."""
        self.missing = unknown_to(board, self.fleet, self.pending, now)
        if not self.missing:
            self.missing = unknown_to(board, self.fleet, list(self.fleet.states), now)
        self.pending = [station for station in self.missing if station in self.fleet.states]
        return not self.missing


def station_id(number: int) -> str:
    """``ST-00001`` for 1."""
    return f"ST-{number:05d}"


def iso(moment: datetime) -> str:
    """A timestamp as stations write it (milliseconds, Z)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _js(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _fault(code: str, severity: str, impact: str, message: str, since: datetime, active: bool = True) -> bytes:
    return _js({"active": active, "code": code, "severity": severity, "since": iso(since), "message": message,
                "parker_impact": impact})


# (share of the fleet, component, code, severity, parker impact, message); a station gets at most one of each
FAULT_MIX: tuple[tuple[float, str, str, str, str, str], ...] = (
    (0.05, "card_terminal", "unreachable", "critical", "no_card_payment",
     "The card terminal does not answer. no answer after 3 tries"),
    (0.04, "help_button", "stuck", "warning", "notice", "The help button has been held for 30 s"),
    (0.03, "payments", "unreconciled", "warning", "none", "1 payment from before a restart is not settled"),
    (0.02, "operator", "out_of_service", "info", "out_of_service", "Out of service: barrier repair"),
)
CLEARED_SHARE = 0.10  # stations whose retained fault/door says a cleared fault (active false)
WAITING_SHARE = 0.005  # stations with a waiting help ticket (at least one in any fleet)
CLOSED_SHARE = 0.20  # stations whose last ticket is closed; the rest never had one (idle)
STATUS_MIX = ((0.90, "online"), (0.07, "offline"), (0.03, "lost"))


def build_fleet(count: int, now: datetime, seed: int = 18) -> Fleet:
    """The retained state of ``count`` stations (``ST-00001``…), the same for the same seed and ``now``."""
    if count < 1:
        raise ValueError(f"stations: at least 1, not {count}")
    rng = random.Random(seed)
    fleet = Fleet(count, now)
    waiting_stations = set(rng.sample(range(1, count + 1), max(1, round(count * WAITING_SHARE))))
    for number in range(1, count + 1):
        station = station_id(number)
        prefix = f"{ROOT}/{station}/"
        boot = BOOT0 + number
        roll, state = rng.random(), "online"
        for share, name in STATUS_MIX:
            if roll < share:
                state = name
                break
            roll -= share
        zone = ZONES[number % len(ZONES)]
        fleet.states[station] = state
        if state == "online":
            fleet.zones[station] = zone
            status: dict[str, Any] = {"state": "online", "boot": boot, "series": str(uuid.UUID(int=number)),
                                      "firmware": FIRMWARE[number % len(FIRMWARE)], "config_version": 2, "zone": zone,
                                      "ts": iso(now - timedelta(hours=number % 48))}
        elif state == "offline":
            status = {"state": "offline", "boot": boot, "ts": iso(now - timedelta(minutes=number % 600))}
        else:
            status = {"state": "lost", "boot": boot}
        fleet.messages.append(Message(prefix + "status", _js(status), True))
        active: dict[str, str] = {}
        for share, component, code, severity, impact, text in FAULT_MIX:
            if rng.random() < share:
                active[component] = code
                since = now - timedelta(minutes=rng.randrange(1, 3000))
                fleet.messages.append(Message(prefix + f"fault/{component}",
                                              _fault(code, severity, impact, text, since), True))
        if rng.random() < CLEARED_SHARE:
            fleet.messages.append(Message(prefix + "fault/door", _fault("open", "critical", "none", "The door closed",
                                                                         now - timedelta(days=1), active=False), True))
        if active:
            fleet.faults[station] = active
        fleet.messages.append(Message(prefix + "help/state", _help_state(fleet, station, number, rng, waiting_stations),
                                      True))
    return fleet


def _help_state(fleet: Fleet, station: str, number: int, rng: random.Random, waiting: set[int]) -> bytes:
    now = fleet.now
    if number not in waiting and rng.random() >= CLOSED_SHARE:
        return _js({"ticket": None, "state": "idle", "since": iso(now - timedelta(days=2))})
    ticket = str(uuid.UUID(int=(1 << 64) + number))
    faults = [{"fault": f"{component}/{code}", "severity": next(m[3] for m in FAULT_MIX if m[1] == component)}
              for component, code in fleet.faults.get(station, {}).items()]
    context = {"station": station, "zone": ZONES[number % len(ZONES)], "screen": "payment",
               "plate": f"B-ST-{number % 10000}", "last_payment": {"result": "declined"},
               "last_payment_error": {"reason": "declined", "result_code": 5, "terminal_text": "Karte abgelehnt"},
               "active_faults": faults}
    if number in waiting:
        opened = now - timedelta(seconds=30 + number % 200)
        fleet.waiting[station] = ticket
        fleet.contexts[station] = context
        return _js({"ticket": ticket, "state": "waiting", "since": iso(opened), "opened": iso(opened), "agent": None,
                    "overdue": False, "context": context})
    opened = now - timedelta(hours=1 + number % 20)
    return _js({"ticket": ticket, "state": "closed", "since": iso(opened + timedelta(minutes=4)), "opened": iso(opened),
                "agent": "Ana", "overdue": False, "context": context, "outcome": "solved"})


def help_requests(fleet: Fleet) -> list[Message]:
    """The ``help/request`` of every waiting ticket (not retained, expiry 120 s: only a console online gets them)."""
    return [Message(f"{ROOT}/{station}/help/request",
                    _js({"ticket": ticket, "station": station, "opened": iso(fleet.now - timedelta(seconds=30)),
                         "context": fleet.contexts[station]}), False, expiry_s=REQUEST_EXPIRY_S)
            for station, ticket in sorted(fleet.waiting.items())]


def telemetry(fleet: Fleet, station: str, now: datetime, uptime_s: int) -> Message:
    """One station's ``telemetry`` (QoS 0, not retained)."""
    number = int(station.rsplit("-", 1)[1])
    terminal = fleet.faults.get(station, {}).get("card_terminal", "ready")
    payload = {"ts": iso(now), "boot": BOOT0 + number, "uptime_s": uptime_s, "outbox_depth": 0, "outbox_in_flight": 0,
               "link": {"state": "connected", "since": iso(now - timedelta(seconds=uptime_s)), "reconnects": number % 4},
               "terminal": terminal, "screen": "welcome", "config_version": 2, "cpu_temp_c": 48.3,
               "disk_free_bytes": 12_345_678_901}
    return Message(f"{ROOT}/{station}/telemetry", _js(payload), False, qos=0)


def stamp(index: int, total: int, sent: float) -> str:
    """A burst message's ``message``: its place, the sender's time.monotonic(), and `` last`` on the last one."""
    return f"{STAMP_PREFIX}{index}/{total} sent {sent:.6f}" + (LAST_MARK if index == total - 1 else "")


def parse_stamp(message: str | None) -> tuple[int, float, bool] | None:
    """(index, monotonic send time, last) of a burst message's ``message``; None for any other text."""
    if not message or not message.startswith(STAMP_PREFIX):
        return None
    parts = message[len(STAMP_PREFIX):].split()
    try:
        return int(parts[0].split("/")[0]), float(parts[2]), parts[-1] == LAST_MARK.strip()
    except (IndexError, ValueError):
        return None


def burst(fleet: Fleet, total: int, seed: int = 1818) -> Iterator[StampedChange]:
    """``total`` fault changes at random stations, each raising a fault of :data:`BURST_FAULTS` that is not active
    there, or clearing one that is; the last always raises. Messages are made as they are taken, so that the stamp
    says when the change was sent; ``fleet.faults`` follows the changes."""
    rng = random.Random(seed)
    stations = list(fleet.states)
    for index in range(total):
        station = rng.choice(stations)
        kind = rng.choice(BURST_FAULTS)
        faults = fleet.faults.setdefault(station, {})
        last = index == total - 1
        active = last or kind.component not in faults
        if last and kind.component in faults:
            kind = next((k for k in BURST_FAULTS if k.component not in faults), kind)
        now = datetime.now(UTC)
        text = stamp(index, total, time.monotonic())
        payload = _fault(kind.code, kind.severity, kind.parker_impact, text, now, active)
        if active:
            faults[kind.component] = kind.code
        else:
            faults.pop(kind.component, None)
        if not faults:
            del fleet.faults[station]
        yield StampedChange(Message(f"{ROOT}/{station}/fault/{kind.component}", payload, True), index, station,
                            kind.component, active, last)


class Publisher:
    """One paho MQTT 5 client that publishes with QoS 1, as many in flight as the broker allows, and counts PUBACKs."""

    def __init__(self, port: int, host: str = "127.0.0.1", name: str = "fleet") -> None:
        self._connected = threading.Event()
        self._done = threading.Condition()
        self._sent = self._acked = 0
        self.receive_maximum = DEFAULT_RECEIVE_MAXIMUM
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:8]}",
                                   protocol=mqtt.MQTTv5)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._client.max_queued_messages_set(0)
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the fleet could not connect to {host}:{port}")

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any,
                    properties: Properties | None) -> None:
        self.receive_maximum = int(getattr(properties, "ReceiveMaximum", DEFAULT_RECEIVE_MAXIMUM))
        # paho does not read the broker's Receive Maximum itself, and its setter refuses on an open connection
        # (its worry is a change from or to 0); nothing is published yet and both values are > 0 (as kiosk.mqtt does).
        client._max_inflight_messages = max(1, min(MAX_INFLIGHT, self.receive_maximum))
        self._connected.set()

    def _on_publish(self, *_args: Any) -> None:
        with self._done:
            self._acked += 1
            self._done.notify_all()

    def publish(self, message: Message) -> None:
        """Hand one message to paho (QoS 0 ones count as acknowledged at once)."""
        with self._done:  # paho's message ids are 16 bits: never more unacknowledged than it can tell apart
            if not self._done.wait_for(lambda: self._sent - self._acked < MAX_UNACKNOWLEDGED, CONNECT_TIMEOUT_S):
                raise RuntimeError(f"{self._sent - self._acked} messages unacknowledged for {CONNECT_TIMEOUT_S} s")
        properties = None
        if message.expiry_s is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = message.expiry_s
        info = self._client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain,
                                    properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish {message.topic}: {mqtt.error_string(info.rc)}")
        with self._done:
            self._sent += 1

    def publish_all(self, messages: Sequence[Message], timeout: float) -> None:
        """Publish every message and wait until each is acknowledged; RuntimeError after ``timeout`` seconds."""
        for message in messages:
            self.publish(message)
        self.wait_acked(timeout)

    def wait_acked(self, timeout: float) -> None:
        """Wait until every message published so far is acknowledged (PUBACK, or written for QoS 0)."""
        with self._done:
            if not self._done.wait_for(lambda: self._acked >= self._sent, timeout):
                raise RuntimeError(f"{self._sent - self._acked} of {self._sent} messages unacknowledged "
                                   f"after {timeout} s")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()


def paced(changes: Iterator[StampedChange], rate: float) -> Iterator[StampedChange]:
    """The changes, each taken no earlier than its slot at ``rate`` per second (the stamp is made when taken)."""
    began = time.monotonic()
    pause = threading.Event()
    for index in itertools.count():
        due = began + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            pause.wait(delay)  # pacing the sender, not waiting for a condition
        try:
            yield next(changes)
        except StopIteration:
            return


def _load(args: argparse.Namespace, publisher: Publisher, fleet: Fleet) -> None:
    publisher.publish_all(fleet.messages + help_requests(fleet), args.timeout)
    print(f"loaded {len(fleet.messages)} retained, {len(fleet.waiting)} requests, {fleet.fault_count} active faults",
          flush=True)
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    stations = list(fleet.states)
    gap = args.telemetry_interval / len(stations)
    began = time.monotonic()
    for index in itertools.count():
        if stop.wait(max(0.0, began + index * gap - time.monotonic())):
            return
        if args.idle and time.monotonic() - began > args.idle:
            return
        publisher.publish(telemetry(fleet, stations[index % len(stations)], datetime.now(UTC), 3600 + int(index * gap)))


def _burst(args: argparse.Namespace, publisher: Publisher, fleet: Fleet) -> None:
    total = int(args.rate * args.seconds)
    for change in paced(burst(fleet, total, args.seed), args.rate):
        publisher.publish(change.message)
    publisher.wait_acked(args.timeout)
    print(f"burst {total}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the PUBACKs")
    modes = parser.add_subparsers(dest="mode", required=True)
    load = modes.add_parser(Mode.LOAD.value, help="publish the retained state, then send telemetry until stdin closes")
    load.add_argument("--telemetry-interval", type=float, default=300.0, help="seconds between a station's telemetry")
    load.add_argument("--idle", type=float, default=0.0, help="stop after this many seconds (0: when stdin closes)")
    fire = modes.add_parser(Mode.BURST.value, help="fault changes at random stations, the last one marked")
    fire.add_argument("--rate", type=float, default=200.0, help="changes per second")
    fire.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    fleet = build_fleet(args.stations, datetime.now(UTC), args.seed)
    publisher = Publisher(args.port, args.host)
    try:
        {Mode.LOAD: _load, Mode.BURST: _burst}[Mode(args.mode)](args, publisher, fleet)
    finally:
        publisher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
