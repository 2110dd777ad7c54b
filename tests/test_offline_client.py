"""The MQTT client of a station without a broker: never connected, sends nothing, and nothing restarts it."""
from __future__ import annotations

from kiosk.domain.events import LinkState
from kiosk.mqtt.offline import OfflineClient


def test_it_is_never_connected_and_sends_nothing() -> None:
    client = OfflineClient()
    assert client.connected is False and client.state is LinkState.STOPPED and client.reconnects == 0
    assert client.publish("status", "{}", 1, True) is False
    assert client.reply("paystation/v1/S1/reply/x", b"1", "{}") is False
    assert client.flush(0.01) is True and client.heartbeat_age() == 0.0
    client.offer_boot(7)
    client.restart()
    client.stop("{}")
    assert client.since.tzinfo is not None
