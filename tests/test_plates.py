"""One plate, however it is spelled: matching keys, the session lookup, extension offers and courtesy grants."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import no_menu
from screen_states import draw, states

from kiosk.app.cabinet import Cabinet
from kiosk.app.faults import FaultBoard
from kiosk.app.operations import Operations
from kiosk.config import PlateSettings, Settings
from kiosk.domain import journey
from kiosk.domain.events import CourtesyGranted, Event, LookupSession, Tap
from kiosk.domain.plates import plate_key, same_plate
from kiosk.domain.records import PaymentResultData
from kiosk.domain.staff import CourtesyArgs
from kiosk.storage import store as store_module
from kiosk.storage.schema import MIGRATIONS
from kiosk.storage.store import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CARD = PaymentResultData(0, "VISA", None, "A1", "0001", "000001")


@pytest.mark.parametrize(("a", "b", "look_alikes", "same"), [
    ("AB-123CD", "AB123CD", False, True),
    ("ab 123-cd", "AB123CD", False, True),
    ("AB-1O3", "AB-103", True, True),
    ("AB-1O3", "AB-103", False, False),
    ("I-23", "1-23", True, True),
    ("AB-123", "AB-124", True, False),
    ("B-AB12", "BA-B12", True, False),  # Berlin and Bamberg: separators count where both spellings have them
    ("B AB 12", "B-AB12", True, True),
    ("MU\u0308-A1", "MÜ-A1", True, True),  # a decomposed umlaut is the umlaut
    ("ＡＢ１２", "AB12", False, True),  # full-width characters are the plain ones
    ("MÜ-AB12", "M-AB12", True, False),  # an umlaut is a letter of its own
])
def test_spellings_of_one_plate(a: str, b: str, look_alikes: bool, same: bool) -> None:
    assert same_plate(a, b, look_alikes) is same
    assert plate_key("ab-1O3 i") == "AB1031"


def paid(store: Store, plate: str, until: datetime) -> str:
    payment = store.begin_payment(plate, "Demo Zone", 200, "EUR", int((until - NOW) / timedelta(minutes=1)), NOW,
                                  until, None, NOW, method="card_terminal")
    return store.commit_paid_session(payment.id, CARD, NOW).id


def test_the_session_is_found_however_the_plate_is_typed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "kiosk.db", "st-1", NOW) as store:
        session_id = paid(store, "AB-123CD", NOW + 3 * HOUR)
        assert store.active_session("AB123CD", "Demo Zone", NOW).id == session_id
        assert store.active_session("AB-I23CD", "Demo Zone", NOW).id == session_id
        assert store.active_session("AB-I23CD", "Demo Zone", NOW, look_alikes=False) is None
        assert store.active_session("AB123CD", "Other Zone", NOW) is None


def test_sessions_from_before_plate_keys_are_found_after_the_migration(tmp_path: Path, monkeypatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:6])
        with Store.open(tmp_path / "kiosk.db", "st-1", NOW) as store:
            at, until = "2026-03-02T09:00:00.000000Z", "2026-03-02T12:00:00.000000Z"
            store.core.db.execute_sql(
                "INSERT INTO parking_session (id, plate, zone, starts, expires, minutes, amount, currency, kind, "
                "reason, created) VALUES ('s6', 'AB-123CD', 'Demo Zone', ?, ?, 180, 0, 'XXX', 'courtesy', 'test', ?)",
                (at, until, at))
    with Store.open(tmp_path / "kiosk.db", "st-1", NOW) as store:
        assert store.active_session("AB123CD", "Demo Zone", NOW).id == "s6"


def test_the_journey_asks_with_the_stations_look_alike_rule() -> None:
    strict = Settings(plate=PlateSettings(look_alikes=False))
    state = journey.initial(strict, NOW)
    for target in ("start", "key:A", "key:B", "key:1", "key:2", "continue"):
        state, effects = journey.step(state, Tap(target), NOW)
    assert effects == (LookupSession("AB12", strict.zone.name, look_alikes=False),)


def test_a_courtesy_follows_the_plates_session_under_its_spelling(tmp_path: Path) -> None:
    settings = Settings()
    with Store.open(tmp_path / "kiosk.db", "st-1", NOW) as store:
        paid(store, "AB-123CD", NOW + HOUR)
        posted: list[Event] = []
        board = FaultBoard(store, posted.append)
        state = journey.initial(settings, NOW)
        operations = Operations(store, board, None, lambda: state, posted.append, lambda: None,
                                Cabinet(board).check_door, no_menu)
        done = operations.execute("courtesy", CourtesyArgs("AB123CD", 30, "card declined", "t-1"), NOW)
        assert "after its session until" in done.detail
        latest = store.active_session("AB123CD", settings.zone.name, NOW)
        assert (latest.plate, latest.starts, latest.expires) == ("AB-123CD", NOW + HOUR, NOW + HOUR + 30 * timedelta(
            minutes=1))
        assert posted[-1] == CourtesyGranted("t-1", "AB-123CD", NOW + HOUR + timedelta(minutes=30))


def test_duration_names_the_session_found_under_another_spelling() -> None:
    base = states()["duration_extend"]
    other_spelling = replace(base, plate="AB123CD", existing=replace(base.existing, plate="AB-123CD"))
    assert any(text.startswith("AB-123CD already has parking until") for text in draw(other_spelling).texts)
    same_spelling = replace(base, existing=replace(base.existing, plate=base.plate))
    assert any(text.startswith("You already have parking until") for text in draw(same_spelling).texts)
