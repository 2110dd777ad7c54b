"""MQTT event latency of the whole station: a fault's commit to its event/fault at a subscriber, against raw paho."""
from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import common
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.mqtt.client import json_properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto
from station_process import PREFIX, Station, station_config

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
WARM_UP = 10
PAUSE_S = 0.02  # between measured messages, so that the station's redraw after a command is over
TIMEOUT_S = 20.0
START_S = 60.0
REPLY_TOPIC = PREFIX + "reply/bench"
EVENT_TOPIC = PREFIX + "event/fault"
BASELINE_TOPIC = "paystation/v1/BASE/event/fault"  # as long as the station's topic
MODES = (('{"mode":"out_of_service","reason":"bench"}', True), ('{"mode":"normal"}', False))  # payload, fault active
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # the store's timestamps (kiosk.storage.schema._stamp)
T = TypeVar("T")


@dataclass(frozen=True)
class Arrival:
    """One message as the subscriber's paho callback got it, with both clocks read first thing."""

    topic: str
    payload: bytes
    correlation: bytes | None
    wall: float  # time.time(): comparable with the station's clock
    perf: float  # time.perf_counter(): comparable with send times in this process


@dataclass(frozen=True)
class Round:
    """One mode command: when it was sent, its reply and its event/fault."""

    sent_wall: float
    sent_perf: float
    reply: Arrival
    event: Arrival

    @property
    def envelope(self) -> dict[str, Any]:
        """The event envelope."""
        return json.loads(self.event.payload)


class Client:
    """An MQTT 5 client on the test broker that records what arrives on its subscriptions."""

    def __init__(self, port: int, name: str) -> None:
        self.messages: list[Arrival] = []
        self._changed = threading.Condition()
        self._client = common.mqtt_client(port, name, self._on_message, TIMEOUT_S)

    def subscribe(self, *topics: str) -> None:
        """Subscribe with QoS 1 and wait for the SUBACK."""
        common.subscribe(self._client, list(topics), TIMEOUT_S)

    def publish(self, topic: str, payload: str | bytes, properties: Properties) -> None:
        """Publish with QoS 1 without waiting for the PUBACK (paho's network thread writes it)."""
        self._client.publish(topic, payload, qos=1, properties=properties)

    def wait_for(self, condition: Callable[[list[Arrival]], T | None], what: str, timeout: float = TIMEOUT_S) -> T:
        """Wait until ``condition(messages)`` returns something and return it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition(self.messages)
                if value is not None:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"no {what} within {timeout} s")
                self._changed.wait(remaining)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        wall, perf = time.time(), time.perf_counter()
        correlation = getattr(message.properties, "CorrelationData", None)
        arrival = Arrival(message.topic, bytes(message.payload), correlation, wall, perf)
        with self._changed:
            self.messages.append(arrival)
            self._changed.notify_all()


def operator_fault(arrival: Arrival, active: bool) -> bool:
    """Whether a message is the event/fault of the operator's fault being raised (active) or cleared."""
    if arrival.topic != EVENT_TOPIC:
        return False
    data = json.loads(arrival.payload)["data"]
    return data["component"] == "operator" and data["active"] is active


def command_round(sender: Client, subscriber: Client, payload: str, active: bool) -> Round:
    """Send cmd/mode as an MQTT 5 request and wait for both its reply and the operator's event/fault."""
    correlation = uuid.uuid4().bytes
    properties = Properties(PacketTypes.PUBLISH)
    properties.ResponseTopic = REPLY_TOPIC
    properties.CorrelationData = correlation
    seen = len(subscriber.messages)

    def answered(messages: list[Arrival]) -> tuple[Arrival, Arrival] | None:
        reply = next((m for m in messages[seen:] if m.topic == REPLY_TOPIC and m.correlation == correlation), None)
        event = next((m for m in messages[seen:] if operator_fault(m, active)), None)
        return None if reply is None or event is None else (reply, event)

    sent_wall, sent_perf = time.time(), time.perf_counter()
    sender.publish(PREFIX + "cmd/mode", payload, properties)
    reply, event = subscriber.wait_for(answered, f"reply and event/fault for {payload}")
    if not json.loads(reply.payload)["ok"]:
        raise RuntimeError(f"cmd/mode {payload} refused: {reply.payload!r}")
    return Round(sent_wall, sent_perf, reply, event)


def baseline_round(sender: Client, subscriber: Client, payload: bytes) -> float:
    """Raw paho: publish one QoS 1 message and time it until the subscriber's callback has it, in ms."""
    properties = json_properties(PacketTypes.PUBLISH)  # the station's properties: the same bytes on the wire
    seen = len(subscriber.messages)
    sent = time.perf_counter()
    sender.publish(BASELINE_TOPIC, payload, properties)
    arrival = subscriber.wait_for(lambda m: next((a for a in m[seen:] if a.topic == BASELINE_TOPIC), None),
                                  "baseline message")
    return (arrival.perf - sent) * 1000


def committed_at(database: Path) -> dict[str, str]:
    """Event id -> the `now` its outbox row was committed with, as stored (microseconds)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT payload, created FROM outbox WHERE topic = 'event/fault'").fetchall()
    return {json.loads(payload)["id"]: created for payload, created in rows}


def epoch(stamp: str) -> float:
    """A stored timestamp (microseconds) or an envelope's `ts` (milliseconds) in epoch seconds."""
    return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC).timestamp()


def ratio(figure: list[float], baseline: list[float]) -> str:
    """Median and p99 of a figure as multiples of the baseline's."""
    median = statistics.median(figure) / statistics.median(baseline)
    p99 = common.percentile(figure, 0.99) / common.percentile(baseline, 0.99)
    return f"x{median:.1f} median, x{p99:.1f} p99"


def main() -> None:
    """Print the figures."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-mqtt-") as scratch:
        folder = Path(scratch)
        broker = Mosquitto(folder / "broker").start()
        station = Station(station_config(folder / "station", broker.port))
        subscriber = sender = None
        try:
            subscriber = Client(broker.port, "subscriber")
            subscriber.subscribe(PREFIX + "#", BASELINE_TOPIC)
            sender = Client(broker.port, "sender")
            station.start()
            subscriber.wait_for(lambda m: next((a for a in m if a.topic == PREFIX + "status"
                                                and json.loads(a.payload)["state"] == "online"), None),
                                "birth", START_S)
            rounds: list[Round] = []
            raw: list[float] = []
            for n in range(WARM_UP + ROUNDS):
                done = command_round(sender, subscriber, *MODES[n % 2])
                time.sleep(PAUSE_S)
                took = baseline_round(sender, subscriber, done.event.payload)
                time.sleep(PAUSE_S)
                if n >= WARM_UP:
                    rounds.append(done)
                    raw.append(took)
            exit_code = station.stop()
        finally:
            station.kill()
            for client in (subscriber, sender):
                if client is not None:
                    client.close()
            broker.stop()
        if exit_code != 0:
            raise RuntimeError(f"the station exited with {exit_code}: {station.log()}")
        now_of = committed_at(folder / "station" / "kiosk.db")
    elapsed = time.perf_counter() - began

    stored = [now_of[r.envelope["id"]] for r in rounds]
    commit = [epoch(s) for s in stored]
    latency = [(r.event.wall - c) * 1000 for r, c in zip(rounds, commit)]
    from_ts = [(r.event.wall - epoch(r.envelope["ts"])) * 1000 for r in rounds]
    end_to_end = [(r.event.perf - r.sent_perf) * 1000 for r in rounds]
    inbound = [(c - r.sent_wall) * 1000 for r, c in zip(rounds, commit)]
    to_reply = [(r.reply.wall - c) * 1000 for r, c in zip(rounds, commit)]
    reply_to_event = [(r.event.perf - r.reply.perf) * 1000 for r in rounds]
    inconsistent = sum(1 for r, c, s in zip(rounds, commit, stored)
                       if not r.sent_wall < c < r.event.wall or r.envelope["ts"] != s[:23] + "Z")
    sizes = sorted({len(r.event.payload) for r in rounds})

    print(f"{ROUNDS} cmd/mode requests (out_of_service and normal in turn) after {WARM_UP} warm-up ones, each waited "
          f"for (reply and event/fault), interleaved with {ROUNDS} raw paho messages, {PAUSE_S * 1000:.0f} ms apart; "
          f"mosquitto on 127.0.0.1, station subprocess and subscriber on this machine")
    print(f"  fault's `now` (us, its outbox row) -> event/fault at the subscriber: {common.summary(latency)}"
          f"  [{ratio(latency, raw)}]")
    print(f"  the same from the envelope's `ts` (ms, truncated):                   {common.summary(from_ts)}")
    print(f"  command published -> event/fault at the subscriber:                  {common.summary(end_to_end)}")
    print(f"    of which command published -> the station's `now`:                 {common.summary(inbound)}")
    print(f"    of which `now` -> reply at the subscriber (3 commits, reply):      {common.summary(to_reply)}")
    print(f"    of which reply -> event/fault at the subscriber (outbox pump):     {common.summary(reply_to_event)}")
    print(f"  baseline: raw paho MQTT 5 QoS 1, the same payloads ({'/'.join(map(str, sizes))} bytes) and properties, "
          f"publish -> subscriber callback in one process: {common.summary(raw)}")
    if inconsistent:
        print(f"  WARNING: {inconsistent} rounds where `now` is not between send and arrival or `ts` does not match it")
    print(f"  {elapsed:.1f} s in all")
    difference = common.percentile(latency, 0.99) - common.percentile(raw, 0.99)
    print(f"p99 difference {difference:.3f} ms (target station p99 <= raw p99 + 10 ms): "
          f"{'met' if difference <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
