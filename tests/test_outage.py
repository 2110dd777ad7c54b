"""Out of service tells parkers whether parking is free meanwhile and when the station is back: config and `mode`."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import no_menu
from screen_states import MULTILINGUAL, NOW, draw, fault, states

from kiosk.app.faults import FaultBoard
from kiosk.app.operations import Operations
from kiosk.cli.compose import build_station
from kiosk.cli.scenario import ManualClock
from kiosk.config import OutageSettings, Settings, StorageSettings
from kiosk.domain import journey
from kiosk.domain.events import Event, OutageChanged, Tick
from kiosk.domain.outage import Outage, ParkingWhileOut
from kiosk.domain.staff import ModeArgs, Refusal
from kiosk.mqtt import commands
from kiosk.mqtt.commands import Request
from kiosk.storage.store import Store
from kiosk.storage.unavailable import UnavailableStore

BACK = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # 14:30 in Berlin, the same day as NOW
FREE = "You may park here without paying until this station works again."
PAID = "Parking must still be paid: by app or at another pay station."


def out_of_service(**changes: object) -> journey.State:
    return replace(states(MULTILINGUAL)["out_of_service"], **changes)


def mode(payload: bytes) -> ModeArgs:
    parsed = commands.parse(Request("mode", payload, "paystation/v1/ST-1/reply/x", b"c1", False))
    assert isinstance(parsed, ModeArgs)
    return parsed


# ---- what parkers read ----


@pytest.mark.parametrize(("configured", "said", "shown"), [
    ("unknown", None, None), ("free", None, FREE), ("paid", None, PAID),
    ("free", ParkingWhileOut.PAID, PAID), ("paid", ParkingWhileOut.FREE, FREE), ("free", ParkingWhileOut.UNKNOWN, None),
])
def test_parking_meanwhile_is_staffs_word_else_the_configurations(configured: str, said: ParkingWhileOut | None,
                                                                  shown: str | None) -> None:
    settings = replace(MULTILINGUAL, outage=OutageSettings(parking=configured))
    state = out_of_service(settings=settings, outage=Outage(said) if said else None)
    texts = draw(state).texts
    assert [t for t in (FREE, PAID) if t in texts] == ([shown] if shown else [])


def test_the_return_to_service_is_shown_until_it_has_passed() -> None:
    state = out_of_service(outage=Outage(back_at=BACK))
    assert "Expected back in service: 14:30" in draw(state).texts
    tomorrow = out_of_service(outage=Outage(back_at=BACK + timedelta(days=1)))
    assert "Expected back in service: Tue 14:30" in draw(tomorrow).texts
    passed = draw(out_of_service(outage=Outage(back_at=NOW - timedelta(minutes=1)))).texts
    assert not any(t.startswith("Expected back") for t in passed), "a time gone by is no promise"


def test_it_is_said_in_the_parkers_language() -> None:
    state = out_of_service(language="de", outage=Outage(ParkingWhileOut.FREE, BACK))
    texts = draw(state).texts
    assert "Bis dieser Automat wieder funktioniert, dürfen Sie hier kostenlos parken." in texts
    assert "Voraussichtlich wieder in Betrieb: 14:30" in texts


def test_the_outage_outlives_a_parkers_session() -> None:
    state = replace(journey.initial(MULTILINGUAL, NOW), faults=(fault("operator", "out_of_service", "out_of_service"),))
    told, _ = journey.step(state, OutageChanged(Outage(ParkingWhileOut.FREE)), NOW)
    reset, _ = journey.step(replace(told, screen=journey.Screen.THANKS), Tick(), NOW + timedelta(hours=1))
    assert reset.outage == Outage(ParkingWhileOut.FREE) and reset.screen is journey.Screen.OUT_OF_SERVICE
    cleared, _ = journey.step(told, OutageChanged(None), NOW)
    assert cleared.outage is None


# ---- the mode command ----


def test_mode_takes_parking_and_back_at() -> None:
    args = mode(b'{"mode": "out_of_service", "reason": "works", "parking": "free", "back_at": "2026-03-02T14:30:00+01:00"}')
    assert args == ModeArgs("out_of_service", "works", "free", "2026-03-02T14:30:00+01:00")
    assert mode(b'{"mode": "service", "back_at": "2026-03-02T13:30:00Z"}').back_at == "2026-03-02T13:30:00Z"


@pytest.mark.parametrize("payload", [
    b'{"mode": "normal", "parking": "free"}',  # nothing is out of service
    b'{"mode": "normal", "back_at": "2026-03-02T13:30:00Z"}',
    b'{"mode": "service", "parking": "maybe"}',
    b'{"mode": "service", "back_at": "2026-03-02T14:30:00"}',  # no offset: whose 14:30?
    b'{"mode": "service", "back_at": "2026-02-30T14:30:00Z"}',  # no such day
    b'{"mode": "service", "back_at": "tomorrow"}',
    b'{"mode": "service", "back_at": 1767225600}',
    b'{"mode": "service", "back_at": "9999-12-31T23:59:59Z"}',  # "for ever" in a date local time cannot reach
])
def test_mode_refuses_what_does_not_go_together(payload: bytes) -> None:
    with pytest.raises(Refusal) as refused:
        mode(payload)
    assert refused.value.code == "bad_arguments" and refused.value.detail


def operations(store: Store | UnavailableStore, posted: list[Event]) -> Operations:
    board = FaultBoard(store, posted.append, ())
    return Operations(store, board, None, lambda: journey.initial(MULTILINGUAL, NOW), posted.append, lambda: None,
                      lambda now: None, no_menu)


def test_mode_keeps_the_outage_and_normal_forgets_it(tmp_path: Path) -> None:
    posted: list[Event] = []
    with Store.open(tmp_path / "kiosk.db", "st-1", NOW) as store:
        ops = operations(store, posted)
        ops.execute("mode", mode(b'{"mode": "out_of_service", "reason": "works", "parking": "paid", '
                                 b'"back_at": "2026-03-02T14:30:00+01:00"}'), NOW)
        told = Outage(ParkingWhileOut.PAID, BACK)
        assert store.outage() == told and OutageChanged(told) in posted
        ops.execute("mode", mode(b'{"mode": "normal"}'), NOW)
        assert store.outage() is None and posted[-1] == OutageChanged(None)


def test_mode_refuses_a_return_more_than_a_year_ahead(tmp_path: Path) -> None:
    posted: list[Event] = []
    with Store.open(tmp_path / "kiosk.db", "st-1", NOW) as store:
        ops = operations(store, posted)
        with pytest.raises(Refusal) as refused:
            ops.execute("mode", mode(b'{"mode": "service", "back_at": "2027-03-04T09:00:00Z"}'), NOW)
        assert refused.value.code == "bad_arguments" and "366 days" in refused.value.detail
        assert store.outage() is None and posted == [], "nothing changed"


def test_an_outage_told_while_the_database_failed_is_written_once_it_works(tmp_path: Path) -> None:
    posted: list[Event] = []
    ops = operations(UnavailableStore("io", tmp_path / "kiosk.db"), posted)
    ops.execute("mode", mode(b'{"mode": "service", "parking": "free"}'), NOW)
    assert OutageChanged(Outage(ParkingWhileOut.FREE)) in posted, "parkers are told at once"
    with Store.open(tmp_path / "kiosk.db", "st-1", NOW) as store:
        ops.record_unstored(store, NOW)
        assert store.outage() == Outage(ParkingWhileOut.FREE)


def test_a_restarted_station_still_tells_parkers(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    with Store.open(tmp_path / "kiosk.db", settings.station.id, NOW) as store:
        store.set_outage(Outage(ParkingWhileOut.FREE, BACK), NOW)
    station = build_station(settings, ManualClock(NOW), simulate=True, headless=True, online=False)
    try:
        assert station.loop.state.outage == Outage(ParkingWhileOut.FREE, BACK)
    finally:
        station.close()


@pytest.mark.parametrize("stored", ['{"parking": "maybe"}', '{"back_at": "9999-12-31T23:59:59+00:00"}', "[1]", "{"])
def test_an_unreadable_stored_outage_is_ignored_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           stored: str) -> None:
    """Whatever a database holds, the station starts and draws Out of service (a year 9999 once broke every frame)."""
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    with Store.open(tmp_path / "kiosk.db", settings.station.id, NOW) as store:
        store.core.db.execute_sql("INSERT INTO meta (key, value) VALUES ('outage', ?)", (stored,))
        store.raise_fault("operator", "out_of_service", "info", "works", "out_of_service", NOW)
        with caplog.at_level(logging.ERROR):
            assert store.outage() is None
    assert "outage is unreadable" in caplog.text or stored == "[1]"
    station = build_station(settings, ManualClock(NOW), simulate=True, headless=True, online=False)
    try:
        station.loop.settle()
        assert station.loop.state.screen is journey.Screen.OUT_OF_SERVICE and station.loop.state.outage is None
    finally:
        station.close()


def test_a_page_over_out_of_service_closes_for_the_next_parker() -> None:
    opened = replace(out_of_service(), more=journey.MorePage.OTHER_WAYS)
    due = journey.screen_deadline(opened)
    assert due == NOW + timedelta(seconds=MULTILINGUAL.timeouts.inactivity_s)
    assert journey.step(opened, Tick(), due)[0].more is None
