"""MQTT drain rate and memory of the whole station sending a 50,000-event backlog after reconnect, against raw paho."""
from __future__ import annotations

import json
import multiprocessing
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import common
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes

from kiosk.config import MqttSettings
from kiosk.mqtt.client import DEFAULT_RECEIVE_MAXIMUM, MAX_INFLIGHT, json_properties
from kiosk.storage.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto
from station_process import PREFIX, STATION, Station, station_config

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
BATCH = 1000  # events per transaction when pre-filling, as tests/test_mqtt_station.py writes them
SAMPLE_S = 0.05
IDLE_S = 1.0
START_S = 60.0
DRAIN_TIMEOUT_S = 900.0
BROKER_EXTRA = "max_queued_messages 0\nmax_inflight_messages 0\n"  # nothing dropped, no in-flight cap of its own
EVENT_TOPIC = PREFIX + "event/feedback"
BASELINE_TOPIC = "paystation/v1/BASE/event/feedback"  # as long as the station's topic
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # the store's timestamps (kiosk.storage.schema._stamp)


class Counter:
    """A subscriber that counts the distinct event ids it expects on one topic and notes the station's birth."""

    def __init__(self, port: int, topic: str, expected: set[str]) -> None:
        self.expected = expected
        self.seen: set[str] = set()
        self.arrivals = 0
        self.birth: tuple[float, float] | None = None  # (time.monotonic(), time.time()) of the first `online`
        self.done_at: float | None = None  # time.monotonic() when the last expected id arrived
        self.done = threading.Event()
        self.born = threading.Event()
        self._topic = topic
        self._client = common.mqtt_client(port, "counter", self._on_message, START_S)
        common.subscribe(self._client, [topic, PREFIX + "status"], START_S)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._topic:
            self.arrivals += 1
            event_id = json.loads(message.payload)["id"]
            if event_id in self.expected and event_id not in self.seen:
                self.seen.add(event_id)
                if len(self.seen) == len(self.expected):
                    self.done_at = time.monotonic()
                    self.done.set()
        elif self.birth is None and message.payload and json.loads(message.payload)["state"] == "online":
            self.birth = (time.monotonic(), time.time())
            self.born.set()


def prefill(database: Path, count: int) -> None:
    """Commit ``count`` feedback events into a fresh station database, BATCH per transaction."""
    now = datetime.now(UTC)
    store = Store.open(database, STATION, now)
    try:
        for start in range(0, count, BATCH):
            with store.core.write():
                for i in range(start, min(count, start + BATCH)):
                    store.core.add_event("feedback", {"rating": 1 + i % 5, "session_id": None, "n": i}, now)
    finally:
        store.close()


def backlog(database: Path) -> tuple[set[str], str]:
    """The ids of the queued feedback events and the payload of median size (the baseline's template)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        payloads = [p for (p,) in conn.execute("SELECT payload FROM outbox WHERE topic = 'event/feedback'")]
    return {json.loads(p)["id"] for p in payloads}, sorted(payloads, key=len)[len(payloads) // 2]


def last_marked_sent(database: Path) -> tuple[float, int]:
    """When the last feedback row was marked sent (epoch seconds), and how many are still unsent."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        last, unsent = conn.execute("SELECT max(sent), count(*) - count(sent) FROM outbox "
                                    "WHERE topic = 'event/feedback'").fetchone()
    return datetime.strptime(last, STAMP).replace(tzinfo=UTC).timestamp(), unsent


def raw_ids(count: int) -> list[str]:
    """The baseline's event ids: as long as a uuid4, and the same in both processes."""
    return [str(uuid.UUID(int=i)) for i in range(count)]


def publish_raw(port: int, template: str, count: int, window: int, results: Queue[dict[str, Any]]) -> None:
    """Raw paho in its own process: ``count`` QoS 1 publishes, at most min(window, Receive Maximum) unacknowledged."""
    template_id = json.loads(template)["id"]
    payloads = [template.replace(template_id, event_id).encode() for event_id in raw_ids(count)]
    properties = json_properties(PacketTypes.PUBLISH)  # the station's properties: the same bytes on the wire
    connack: dict[str, int] = {}
    connected = threading.Event()
    finished = threading.Event()
    slots = threading.Semaphore(0)  # released up to the bound once the CONNACK tells the Receive Maximum
    acks = {"count": 0, "refused": 0, "last": 0.0}

    def on_connect(_client: mqtt.Client, _userdata: Any, _flags: Any, _reason: Any, props: Any) -> None:
        connack["receive_maximum"] = int(getattr(props, "ReceiveMaximum", DEFAULT_RECEIVE_MAXIMUM))
        connected.set()

    def on_publish(_client: mqtt.Client, _userdata: Any, _mid: int, reason: Any, _props: Any) -> None:
        acks["count"] += 1
        acks["refused"] += reason.value >= 0x80
        slots.release()
        if acks["count"] == count:
            acks["last"] = time.monotonic()
            finished.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw-publisher", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(MAX_INFLIGHT)  # as the station's link: paho itself never holds one back
    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(START_S):
        raise RuntimeError("the raw publisher could not connect")
    bound = min(window, connack["receive_maximum"])
    slots.release(bound)
    started = time.monotonic()
    for payload in payloads:
        slots.acquire()
        client.publish(BASELINE_TOPIC, payload, qos=1, properties=properties)
    if not finished.wait(DRAIN_TIMEOUT_S):
        raise RuntimeError(f"only {acks['count']} of {count} PUBACKs")
    client.disconnect()
    client.loop_stop()
    results.put({"receive_maximum": connack["receive_maximum"], "bound": bound, "started": started,
                 "last_puback": acks["last"], "refused": acks["refused"]})


def wait_for_log(station: Station, *marks: str) -> None:
    """Wait until the station's log has every mark (it writes to a file; polled)."""
    deadline = time.monotonic() + START_S
    while not all(mark in station.log() for mark in marks):
        if station.process is None or station.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the station did not log {marks}: {station.log()}")
        time.sleep(SAMPLE_S)


def sample_rss(pid: int, until: threading.Event, limit: float) -> list[float]:
    """Resident memory of ``pid`` every SAMPLE_S until ``until`` is set or ``limit`` seconds have passed."""
    samples = [common.rss_mb(pid)]
    end = time.monotonic() + limit
    while not until.wait(SAMPLE_S) and time.monotonic() < end:
        samples.append(common.rss_mb(pid))
    return samples


def drain_station(folder: Path, broker: Mosquitto, expected: set[str]) -> dict[str, Any]:
    """Start the station with the broker down, then start the broker and time the drain of the backlog."""
    station = Station(station_config(folder, broker.port))
    counter = None
    try:
        station.start()
        assert station.process is not None
        pid = station.process.pid
        wait_for_log(station, "ready: waiting for parkers", "MQTT connection to")
        idle = sample_rss(pid, threading.Event(), IDLE_S)
        station.process.send_signal(signal.SIGSTOP)  # no reconnect before the subscriber is there
        broker.start()
        counter = Counter(broker.port, EVENT_TOPIC, expected)
        station.process.send_signal(signal.SIGCONT)
        if not counter.born.wait(START_S):
            raise RuntimeError(f"no birth: {station.log()}")
        during = sample_rss(pid, counter.done, DRAIN_TIMEOUT_S)
        if not counter.done.is_set():
            raise RuntimeError(f"{len(counter.seen)} of {len(expected)} ids within {DRAIN_TIMEOUT_S:.0f} s")
        after = sample_rss(pid, threading.Event(), IDLE_S)
        if station.stop() != 0:
            raise RuntimeError(f"the station did not stop cleanly: {station.log()}")
    finally:
        station.kill()
        if counter is not None:
            counter.close()
    assert counter.birth is not None and counter.done_at is not None
    limits = re.findall(r"receive maximum (\d+)", station.log())
    marked, unsent = last_marked_sent(folder / "kiosk.db")
    return {"seconds": counter.done_at - counter.birth[0], "marked": marked - counter.birth[1], "unsent": unsent,
            "duplicates": counter.arrivals - len(counter.seen), "idle": idle, "during": during, "after": after,
            "receive_maximum": int(limits[0]) if limits else None}


def drain_raw(broker: Mosquitto, template: str, window: int) -> dict[str, Any]:
    """The baseline: a raw paho publisher process and the same counting subscriber, on the same broker."""
    expected = set(raw_ids(EVENTS))
    counter = Counter(broker.port, BASELINE_TOPIC, expected)
    try:
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        publisher = spawn.Process(target=publish_raw, args=(broker.port, template, EVENTS, window, results))
        publisher.start()
        result = results.get(timeout=DRAIN_TIMEOUT_S + START_S)
        publisher.join(START_S)
        if not counter.done.wait(DRAIN_TIMEOUT_S):
            raise RuntimeError(f"{len(counter.seen)} of {EVENTS} raw messages arrived")
    finally:
        counter.close()
    assert counter.done_at is not None
    return {**result, "puback_s": result["last_puback"] - result["started"],
            "arrival_s": counter.done_at - result["started"], "duplicates": counter.arrivals - len(counter.seen)}


def main() -> None:
    """Print the figures."""
    began = time.perf_counter()
    window = MqttSettings().window
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-drain-") as scratch:
        folder = Path(scratch)
        database = folder / "station" / "kiosk.db"
        database.parent.mkdir()
        prefill(database, EVENTS)
        expected, template = backlog(database)
        broker = Mosquitto(folder / "broker", extra=BROKER_EXTRA)
        try:
            station = drain_station(folder / "station", broker, expected)
            raw = drain_raw(broker, template, window)
        finally:
            broker.stop()
    elapsed = time.perf_counter() - began

    station_rate = EVENTS / station["seconds"]
    puback_rate = EVENTS / raw["puback_s"]
    arrival_rate = EVENTS / raw["arrival_s"]
    peak = max(station["during"])
    print(f"{EVENTS:,} feedback events pre-filled ({len(template)} bytes the median payload); mosquitto with "
          f"{BROKER_EXTRA.strip().replace(chr(10), ', ')}; Receive Maximum in the CONNACK: station "
          f"{station['receive_maximum']}, raw {raw['receive_maximum']}; in flight at most: station "
          f"{min(window, station['receive_maximum'])} (mqtt.window {window}), raw {raw['bound']}")
    print(f"  station, birth -> every id at the subscriber:  {station['seconds']:.2f} s = {station_rate:,.0f} rows/s"
          f"  (last row marked sent {station['marked']:.2f} s after the birth; {station['unsent']} unsent; "
          f"{station['duplicates']} duplicates)")
    print(f"  station RSS: idle before the drain {statistics.median(station['idle']):.1f} MB, peak during the drain "
          f"{peak:.1f} MB ({len(station['during'])} samples every {SAMPLE_S * 1000:.0f} ms), "
          f"after it {statistics.median(station['after']):.1f} MB  "
          f"(target < 100 MB: {'met' if peak < 100 else 'NOT met'})")
    print(f"  raw paho, first publish -> last PUBACK:       {raw['puback_s']:.2f} s = {puback_rate:,.0f} rows/s"
          f"  ({raw['refused']} refused)")
    print(f"  raw paho, first publish -> every id at the subscriber: {raw['arrival_s']:.2f} s = {arrival_rate:,.0f} "
          f"rows/s  ({raw['duplicates']} duplicates)")
    print(f"  {elapsed:.1f} s in all, pre-filling and start-up included")
    print(f"station / raw: x{station_rate / puback_rate:.3f} of the PUBACK rate, x{station_rate / arrival_rate:.3f} "
          f"of the arrival rate (target >= x0.5 of the PUBACK rate): "
          f"{'met' if station_rate >= 0.5 * puback_rate else 'NOT met'}")


if __name__ == "__main__":
    main()
