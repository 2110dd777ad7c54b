"""Without its database a station still tells staff its faults and puts a help call through, straight over MQTT."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from broker import Mosquitto
from help_station import press_help, screen_says, settle_until, start_station, station_publishes
from mqtt_client import Staff
from station_process import PREFIX, newest, on

from kiosk.domain.events import Tap
from kiosk.mqtt.direct_help import DirectHelp
from kiosk.storage.store import StorageError, Store

pytestmark = pytest.mark.slow

TIMEOUT = 15


@pytest.fixture
def staff(broker: Mosquitto):
    crew = Staff(broker.port)
    crew.subscribe(PREFIX + "fault/#", PREFIX + "status", "$share/agents/paystation/v1/+/help/request",
                   PREFIX + "help/state", PREFIX + "help/from-parker", PREFIX + "event/#")
    yield crew
    crew.close()


def disk_full(station, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's ``method`` fails as on a full disk, until monkeypatch.undo()."""
    database = Path(station.loop.state.settings.storage.database)

    def full(*_args: object) -> None:
        raise StorageError("full", database, "no space left on device")

    monkeypatch.setattr(station.store, method, full)


def corrupt_station(folder: Path, port: int):
    """A station whose database file is garbage: it runs without storage."""
    folder.mkdir()
    (folder / "kiosk.db").write_bytes(b"this is not a database" * 100)
    station = start_station(folder, port)
    assert station.store is None
    return station


def test_a_corrupt_database_is_reported_to_staff(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = corrupt_station(tmp_path / "station", broker.port)
    try:
        [fault] = station_publishes(station, staff, on("fault/storage"), TIMEOUT, "fault/storage")
        assert (fault["active"], fault["code"], fault["severity"]) == (True, "corrupt", "critical")
        assert fault["parker_impact"] == "out_of_service"
        settle_until(station, lambda: screen_says(station, "This pay station is out of service"), TIMEOUT,
                     "the out-of-service screen")
        assert not screen_says(station, "help button still works")  # promised only while storage works (conservative)
    finally:
        station.close()

    late = Staff(broker.port)  # a crew member who connects later finds it retained
    try:
        late.subscribe(PREFIX + "fault/storage")
        late.wait_for(lambda messages: messages, TIMEOUT, "the retained fault/storage")
        assert late.messages[0].retain and late.messages[0].json()["code"] == "corrupt"
    finally:
        late.close()


def test_a_fault_the_store_cannot_keep_is_published_at_once(tmp_path: Path, broker: Mosquitto, staff: Staff,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        settle_until(station, lambda: station.link.connected, TIMEOUT, "the MQTT connection")
        disk_full(station, "raise_fault", monkeypatch)
        loop = station.loop
        loop.fault_board.raise_fault("payments", "unreconciled", loop.clock(), "payment p-7: no answer")

        fault = station_publishes(station, staff, newest("fault/payments", active=True), TIMEOUT, "fault/payments")
        assert fault["code"] == "unreconciled" and "payment p-7: no answer" in fault["message"]

        monkeypatch.undo()  # the disk has room again, but the store never had this fault: the clear goes out directly
        loop.fault_board.clear_fault("payments", loop.clock())
        assert station_publishes(station, staff, newest("fault/payments", active=False), TIMEOUT,
                                 "the clear")["code"] == "unreconciled"

        loop.fault_board.raise_fault("payments", "unreconciled", loop.clock(),
                                     "again")  # stored now: through the outbox
        assert "again" in station_publishes(station, staff, newest("fault/payments", active=True), TIMEOUT,
                                            "the stored fault")["message"]
        assert "payments" in {f.component for f in station.store.active_faults()}
        [event] = station_publishes(station, staff, on("event/fault"), TIMEOUT, "the stored fault's event")
        assert (event["data"]["component"], event["data"]["active"]) == ("payments", True)
    finally:
        station.close()


def to_parker(staff: Staff, **message: object) -> None:
    staff.publish(PREFIX + "help/to-parker", json.dumps(message))


def test_a_help_call_reaches_an_agent_without_a_database(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = corrupt_station(tmp_path / "station", broker.port)
    try:
        settle_until(station, lambda: station.link.connected, TIMEOUT, "the MQTT connection")
        press_help(station)
        [request] = station_publishes(station, staff, on("help/request"), TIMEOUT, "the call in the agents' queue")
        ticket = request["ticket"]
        assert request["station"] == "ST-1" and request["context"]["screen"] == "out_of_service"
        waiting = station_publishes(station, staff, newest("help/state", state="waiting"), TIMEOUT, "help/state")
        assert (waiting["ticket"], waiting["agent"]) == (ticket, None)
        settle_until(station, lambda: screen_says(station, "Your call has been received"), TIMEOUT, "the call taken")

        to_parker(staff, ticket=ticket, type="accept", agent="Ana")
        connected = station_publishes(station, staff, newest("help/state", state="connected"), TIMEOUT, "connected")
        assert (connected["ticket"], connected["agent"]) == (ticket, "Ana")
        to_parker(staff, ticket=ticket, type="message", agent="Ana", text="A colleague is on the way.")
        settle_until(station, lambda: screen_says(station, "A colleague is on the way."), TIMEOUT, "the message")
        station.loop.post(Tap("help:reply:machine_broken"))
        [reply] = station_publishes(station, staff, on("help/from-parker"), TIMEOUT, "the parker's reply")
        assert (reply["ticket"], reply["choice"]) == (ticket, "machine_broken")

        to_parker(staff, ticket=ticket, type="resolve", agent="Ana", outcome="technician", text="Thank you")
        closed = station_publishes(station, staff, newest("help/state", state="closed"), TIMEOUT, "closed")
        assert (closed["ticket"], closed["outcome"]) == (ticket, "technician")
        settle_until(station, lambda: screen_says(station, "Your call has ended"), TIMEOUT, "the ending")
        assert not [m for m in staff.messages if m.topic.startswith(PREFIX + "event/")], "no events without a database"
    finally:
        station.close()


def test_a_call_held_in_memory_publishes_what_a_stored_one_does(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    context = {"screen": "welcome", "plate": "B-AB123"}
    store = Store.open(tmp_path / "kiosk.db", "ST-1", now)
    try:
        stored_id = store.open_help_ticket(context, now)
        stored = dict(store.retained_messages())["help/state"]
    finally:
        store.close()
    direct = DirectHelp("ST-1")
    ticket, messages = direct.open(context, now)
    [(state_topic, state, state_retained, _), (request_topic, request, request_retained, expiry_s)] = messages
    assert (state_topic, state_retained, request_topic, request_retained, expiry_s) == (
        "help/state", True, "help/request", False, 120)
    assert state == stored.replace(stored_id, ticket)
    assert json.loads(request) == {"ticket": ticket, "station": "ST-1", "opened": "2026-03-02T09:00:00.000Z",
                                   "context": context}

    assert direct.step(ticket, "message", now, agent="Ana", text="Hello") == []  # an event only, when stored
    assert direct.step(ticket, "refused", now, agent="Bo", outcome="accept", text="taken") == []
    [(_, accepted, _, _)] = direct.step(ticket, "accept", now + timedelta(seconds=5), agent="Ana")
    assert json.loads(accepted)["state"] == "connected" and json.loads(accepted)["since"] == "2026-03-02T09:00:05.000Z"
    [(_, closed, _, _)] = direct.step(ticket, "close", now + timedelta(seconds=9), outcome="solved")
    assert (json.loads(closed)["state"], json.loads(closed)["outcome"], json.loads(closed)["agent"]) == (
        "closed", "solved", "Ana")
    with pytest.raises(ValueError, match="not open"):
        direct.step(ticket, "reply", now, text="late")
    with pytest.raises(ValueError, match="not open"):
        direct.step("another", "accept", now, agent="Ana")
    with pytest.raises(ValueError, match="action"):
        DirectHelp("ST-1").step(ticket, "dance", now)


def test_a_call_opened_without_storage_stays_direct_when_the_store_works_again(
        tmp_path: Path, broker: Mosquitto, staff: Staff, monkeypatch: pytest.MonkeyPatch) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        settle_until(station, lambda: station.link.connected, TIMEOUT, "the MQTT connection")
        disk_full(station, "open_help_ticket", monkeypatch)
        press_help(station)
        [request] = station_publishes(station, staff, on("help/request"), TIMEOUT, "the call in the agents' queue")
        monkeypatch.undo()  # room on the disk again: the call still is the one held in memory
        to_parker(staff, ticket=request["ticket"], type="accept", agent="Ana")
        connected = station_publishes(station, staff, newest("help/state", state="connected"), TIMEOUT, "connected")
        assert (connected["ticket"], connected["agent"]) == (request["ticket"], "Ana")
        settle_until(station, lambda: screen_says(station, "Ana is helping you"), TIMEOUT, "the agent on screen")
    finally:
        station.close()


def test_a_call_that_cannot_be_published_is_not_pretended(tmp_path: Path, broker: Mosquitto,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    station = corrupt_station(tmp_path / "station", broker.port)
    try:
        settle_until(station, lambda: station.link.connected, TIMEOUT, "the MQTT connection")
        monkeypatch.setattr(station.link, "publish", lambda *_args, **_kwargs: False)  # the connection just broke
        press_help(station)
        settle_until(station, lambda: screen_says(station, "We cannot reach our staff from this station right now"),
                     TIMEOUT, "the honest ending")
    finally:
        station.close()
