"""Faults the database cannot keep still reach staff: published at once over MQTT, not durably, and again at reconnect."""
from __future__ import annotations

from pathlib import Path

import pytest

from broker import Mosquitto
from help_station import screen_says, settle_until, start_station, station_publishes
from kiosk.store import StorageError
from mqtt_client import Received, Staff
from station_process import PREFIX

pytestmark = pytest.mark.slow

TIMEOUT = 15


def fault_states(component: str):
    """The retained fault/{component} payloads received so far, parsed."""
    def found(messages: list[Received]) -> list[dict]:
        return [m.json() for m in messages if m.topic == PREFIX + f"fault/{component}" and m.payload]
    return found


@pytest.fixture
def staff(broker: Mosquitto):
    crew = Staff(broker.port)
    crew.subscribe(PREFIX + "fault/#", PREFIX + "status")
    yield crew
    crew.close()


def test_a_corrupt_database_is_reported_to_staff(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    folder = tmp_path / "station"
    folder.mkdir()
    (folder / "kiosk.db").write_bytes(b"this is not a database" * 100)
    station = start_station(folder, broker.port)
    try:
        assert station.store is None
        [fault] = station_publishes(station, staff, fault_states("storage"), TIMEOUT, "fault/storage")
        assert (fault["active"], fault["code"], fault["severity"]) == (True, "corrupt", "critical")
        assert fault["parker_impact"] == "out_of_service"
        settle_until(station, lambda: screen_says(station, "This pay station is out of service"), TIMEOUT,
                     "the out-of-service screen")
        assert not screen_says(station, "help button still works")  # no help call can be placed without storage
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
        database = Path(station.loop.state.settings.storage.database)

        def full(*_args: object) -> None:
            raise StorageError("full", database, "no space left on device")

        monkeypatch.setattr(station.store, "raise_fault", full)
        loop = station.loop
        loop.raise_fault("card_terminal", "unreachable", loop.clock(), "no answer on /dev/ttyUSB0")
        [fault] = station_publishes(station, staff, fault_states("card_terminal"), TIMEOUT, "fault/card_terminal")
        assert (fault["active"], fault["code"]) == (True, "unreachable")
        assert "no answer on /dev/ttyUSB0" in fault["message"]

        monkeypatch.undo()  # the disk has room again, but the store never had this fault: the clear goes out directly
        loop.clear_fault("card_terminal", loop.clock())
        states = station_publishes(station, staff, lambda m: len(fault_states("card_terminal")(m)) == 2 and
                                   fault_states("card_terminal")(m), TIMEOUT, "the clear")
        assert [s["active"] for s in states] == [True, False]

        loop.raise_fault("card_terminal", "unreachable", loop.clock(), "again")  # stored now: through the outbox
        states = station_publishes(station, staff, lambda m: len(fault_states("card_terminal")(m)) == 3 and
                                   fault_states("card_terminal")(m), TIMEOUT, "the stored fault")
        assert states[-1]["active"] and station.store.active_faults()[0].component == "card_terminal"
    finally:
        station.close()
