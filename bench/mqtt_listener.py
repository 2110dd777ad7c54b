"""A console in its own process for the benchmarks: prints `monotonic topic` for every message it receives.

Usage: python bench/mqtt_listener.py PORT TOPIC_FILTER...   (prints `subscribed` once ready)
CLOCK_MONOTONIC is the same clock in every process on the machine, so the times compare
with the benchmark's own.
"""
from __future__ import annotations

import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt


def main(port: int, topics: list[str]) -> None:
    """Subscribe (QoS 1) and print each arrival first thing in paho's callback, until terminated."""
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-listener-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, message: print(f"{time.monotonic()} {message.topic}", flush=True)
    client.on_connect = lambda c, *_: c.subscribe([(topic, 1) for topic in topics])
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if subscribed.wait(20):
        print("subscribed", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
