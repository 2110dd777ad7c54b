"""The crew's "fixed" note (cmd/fixed, event/repair, repair_note): validation, storage with its event, execution."""
from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import no_menu
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.app.faults import FaultBoard
from kiosk.app.operations import Operations
from kiosk.domain.records import RepairNoteRecord
from kiosk.domain.staff import Done, FixedArgs, Refusal, Signed
from kiosk.mqtt import commands
from kiosk.mqtt.commands import Request
from kiosk.storage import store as store_module
from kiosk.storage.errors import InvalidValue
from kiosk.storage.schema import MIGRATIONS
from kiosk.storage.store import Store
from kiosk.storage.unavailable import UnavailableStore

T0 = datetime(2026, 12, 6, 9, 14, 3, 215000, tzinfo=UTC)
PREFIX = "paystation/v1/ST-1/"


def request(payload: bytes, name: str = "fixed/crew-anna") -> Request:
    """cmd/fixed/crew-anna as the crew page sends it."""
    return Request(name, payload, PREFIX + "reply/crew-crew-anna/0a1b2c3d", b"c1", False)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh station database."""
    opened = Store.open(tmp_path / "kiosk.db", "ST-1", T0)
    yield opened
    opened.close()


def repair_events(store: Store) -> list[dict]:
    """The envelopes of every event/repair queued, oldest first."""
    return [json.loads(row["payload"]) for row in store.rows("outbox", topic="event/repair")]


# ---------------------------------------------------------------- arguments


def test_valid_arguments_are_signed_by_the_topics_last_level() -> None:
    args = commands.parse(request(b'{"component": "card_terminal", "note": "Reader swapped"}'))
    assert args == Signed("crew-anna", FixedArgs("card_terminal", "Reader swapped"))


@pytest.mark.parametrize(("payload", "detail"), [
    (b"{}", "component: missing; this key is required; note: missing; this key is required"),
    (b'{"component": "Card Terminal", "note": " x"}',
     "component: expected a fault component, e.g. card_terminal, got 'Card Terminal'; "
     "note: expected 1 to 200 characters, not starting with a space, without control characters, got ' x'"),
    (b'{"component": "door", "note": "ok", "by": "anna"}', "by: unknown key; valid keys here: component, note"),
])
def test_bad_arguments_name_each_bad_one(payload: bytes, detail: str) -> None:
    with pytest.raises(Refusal) as refused:
        commands.parse(request(payload))
    assert (refused.value.code, refused.value.detail) == ("bad_arguments", detail)


@pytest.mark.parametrize(("name", "code", "detail"), [
    ("fixed", "unknown_command", "unknown command 'fixed'; known: rebirth, notice, mode, courtesy, terminal/status, "
     "terminal/end-of-day, restart, journey/cancel, doctor, service-menu, update, fixed/{account}, service/{account}"),
    ("fixed/anna/x", "unknown_command", "unknown command 'fixed/anna/x'; known: rebirth, notice, mode, courtesy, "
     "terminal/status, terminal/end-of-day, restart, journey/cancel, doctor, service-menu, update, fixed/{account}, "
     "service/{account}"),
    *[(f"fixed/{signer}", "bad_arguments", f"the topic's last level {signer!r} is no account name: letters, digits, "
       "'_', '.', '-' (1-64), not a word of the station's topics")
      for signer in ("", "fault", "event", "status", "reply", "cmd", "..", ".anna", "a" * 65, "anna schmidt")],
])
def test_a_signed_command_needs_an_account_name_as_its_last_level(name: str, code: str, detail: str) -> None:
    with pytest.raises(Refusal) as refused:
        commands.parse(request(b'{"component": "door", "note": "ok"}', name))
    assert (refused.value.code, refused.value.detail) == (code, detail)


def test_a_note_of_201_characters_is_refused() -> None:
    payload = json.dumps({"component": "door", "note": "x" * 201}).encode()
    with pytest.raises(Refusal) as refused:
        commands.parse(request(payload))
    assert refused.value.detail.startswith("note: expected 1 to 200 characters")


CONTROLS = ["\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\x80", "\x85", "\x9f",
            *(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))]


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize(("name", "arguments", "key"), [
    ("fixed/anna", {"component": "door"}, "note"), ("notice", {}, "text"), ("mode", {"mode": "out_of_service"}, "reason"),
    ("courtesy", {"plate": "B-AB-123", "minutes": 5}, "reason"), ("journey/cancel", {}, "reason"),
])
def test_every_staff_text_refuses_control_characters_first_or_within(control: str, name: str,
                                                                     arguments: dict[str, object], key: str) -> None:
    for text in (control + "x", "x" + control + "y"):
        with pytest.raises(Refusal) as refused:
            commands.parse(request(json.dumps({**arguments, key: text}).encode(), name))
        assert (refused.value.code, refused.value.detail) == (
            "bad_arguments", f"{key}: expected 1 to 200 characters, not starting with a space, without control "
                             f"characters, got {text!r}")


def test_the_texts_next_to_control_characters_are_accepted() -> None:
    text = "Tür\u00a0offen \u200d \u2065 \u206a \u2029 \u00a0– ok 😀"  # no control: NBSP, ZWJ, unassigned, separators
    assert commands.parse(request(json.dumps({"component": "door", "note": text}).encode())).args.note == text


def test_fuzzed_arguments_are_refused_as_bad_arguments_or_stored(tmp_path: Path) -> None:
    """Whatever the page sends is refused as bad, or the store takes it (a note starting with NUL once failed there)."""
    with Store.open(tmp_path / "kiosk.db", "ST-1", T0) as store:
        run = operations(store)

        anything = st.none() | st.integers() | st.text(max_size=210) | st.lists(st.text(max_size=3), max_size=2)
        texts = st.text(max_size=210) | st.tuples(st.sampled_from(CONTROLS), st.text(max_size=200)).map("".join)

        @settings(max_examples=200, deadline=None, derandomize=True)  # the same examples every run
        @given(st.fixed_dictionaries({"component": st.sampled_from(["door", "printer"]),
                                      "note": texts}, optional={"by": anything, "x": anything})
               | st.dictionaries(st.sampled_from(["component", "note", "by", "x"]), anything))
        def check(raw: dict) -> None:
            try:
                args = commands.parse(request(json.dumps(raw).encode()))
            except Refusal as refusal:  # bad_json: a lone surrogate, a valid JSON escape but no text
                assert refusal.code in ("bad_arguments", "bad_json") and refusal.detail
                return
            assert set(raw) == {"component", "note"}
            try:
                done = run.execute("fixed", args, T0)
            except Refusal as refusal:
                assert (refusal.code, refusal.detail) == (
                    "bad_arguments", f"component: {args.args.component!r} is no fault component of this station")
                return
            assert done.data["recorded_at"] == "2026-12-06T09:14:03.215Z"
            assert store.rows("repair_note")[-1]["note"] == args.args.note

        check()


# ---------------------------------------------------------------- the store: note and event in one transaction


def test_a_note_on_the_active_fault_is_stored_with_it_and_published(store: Store) -> None:
    store.raise_fault("card_terminal", "unreachable", "critical", "The card terminal does not answer.",
                      "no_card_payment", T0)
    at = T0 + timedelta(minutes=42)
    note = store.note_repair("card_terminal", "Cable replugged", "crew-anna", at)
    assert note == RepairNoteRecord(1, "card_terminal", "unreachable", T0, True, "Cable replugged", "crew-anna", at)
    [fault] = store.rows("fault")
    assert store.rows("repair_note") == [{"id": 1, "component": "card_terminal", "code": "unreachable",
                                          "note": "Cable replugged", "by": "crew-anna", "fault_id": fault["id"],
                                          "created": "2026-12-06T09:56:03.215000Z"}]
    [event] = repair_events(store)
    assert (event["kind"], event["ts"], event["data"]) == ("repair", "2026-12-06T09:56:03.215Z", {
        "component": "card_terminal", "code": "unreachable", "fault_raised_at": "2026-12-06T09:14:03.215Z",
        "fault_active": True, "note": "Cable replugged", "by": "crew-anna"})
    assert [row["topic"] for row in store.rows("outbox", retain=True)] == ["fault/card_terminal"], "no retained row"


def test_a_note_after_the_clear_names_the_latest_fault_and_one_without_any_names_none(store: Store) -> None:
    store.raise_fault("door", "open", "critical", "open", "none", T0)
    store.clear_fault("door", T0 + timedelta(minutes=1))
    store.raise_fault("door", "open", "critical", "open again", "none", T0 + timedelta(minutes=2))
    store.clear_fault("door", T0 + timedelta(minutes=3))
    latest = store.rows("fault")[-1]
    note = store.note_repair("door", "Lock replaced", "crew-ben", T0 + timedelta(minutes=9))
    assert (note.code, note.fault_raised_at, note.fault_active) == ("open", T0 + timedelta(minutes=2), False)
    assert store.rows("repair_note")[0]["fault_id"] == latest["id"]
    never = store.note_repair("display", "Checked, fine", "crew-ben", T0 + timedelta(minutes=10))
    assert (never.code, never.fault_raised_at, never.fault_active) == (None, None, False)
    assert repair_events(store)[-1]["data"] == {"component": "display", "code": None, "fault_raised_at": None,
                                                "fault_active": False, "note": "Checked, fine", "by": "crew-ben"}
    assert [e["seq"] for e in repair_events(store)] == [repair_events(store)[0]["seq"], repair_events(store)[0]["seq"] + 1]


def test_a_code_that_replaced_another_is_the_one_noted(store: Store) -> None:
    store.raise_fault("help", "voice_down", "warning", "down", "notice", T0)
    store.raise_fault("help", "voice_unregistered", "warning", "unregistered", "notice", T0 + timedelta(minutes=5))
    note = store.note_repair("help", "Registrar fixed", "crew-anna", T0 + timedelta(minutes=6))
    assert (note.code, note.fault_active) == ("voice_unregistered", True)


@pytest.mark.parametrize(("component", "note", "by", "message"), [
    ("door", "", "anna", "note must be a non-empty string"),
    ("door", "x" * 201, "anna", "note must be at most 200 characters, got 201"),
    ("door", "ok", "a" * 65, "by must be at most 64 characters, got 65"),
    ("", "ok", "anna", "component must be a non-empty string"),
])
def test_the_store_refuses_bad_values_and_writes_nothing(store: Store, component: str, note: str, by: str,
                                                         message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        store.note_repair(component, note, by, T0)
    assert store.rows("repair_note") == [] and repair_events(store) == []


def test_a_failing_event_leaves_no_note(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(store.core, "add_event", broken)
    with pytest.raises(sqlite3.OperationalError):
        store.note_repair("door", "ok", "anna", T0)
    assert store.rows("repair_note") == []


def test_migration_10_adds_the_table_to_a_version_9_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:9])
        with Store.open(tmp_path / "kiosk.db", "ST-1", T0) as old:
            old.raise_fault("door", "open", "critical", "open", "none", T0)
            assert old.rows("meta", key="schema_version")[0]["value"] == "9"
    with Store.open(tmp_path / "kiosk.db", "ST-1", T0 + timedelta(hours=1)) as new:
        assert new.rows("meta", key="schema_version")[0]["value"] == "10"
        assert new.note_repair("door", "Closed it", "anna", T0 + timedelta(hours=1)).fault_active is True
    with sqlite3.connect(tmp_path / "kiosk.db") as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("""INSERT INTO repair_note (component, note, "by", fault_id, created)
                            VALUES ('door', 'x', 'a', 999, 'now')""")


# ---------------------------------------------------------------- execution on the loop thread


def operations(store: Store | UnavailableStore) -> Operations:
    """Operations over ``store`` with a fault board of the station's own faults."""
    board = FaultBoard(store, lambda event: None)
    return Operations(store, board, None, lambda: None, lambda event: None, lambda: None,
                      lambda now: None, no_menu)


def test_the_command_replies_with_the_fault_state_and_the_time(store: Store) -> None:
    store.raise_fault("door", "open", "critical", "open", "none", T0)
    done = operations(store).execute("fixed", Signed("crew-anna", FixedArgs("door", "Lock replaced")), T0)
    assert done == Done("note recorded on door/open, still active",
                        {"fault_active": True, "recorded_at": "2026-12-06T09:14:03.215Z"})
    store.clear_fault("door", T0 + timedelta(seconds=1))
    again = operations(store).execute("fixed", Signed("crew-anna", FixedArgs("door", "Lock replaced")),
                                      T0 + timedelta(seconds=2))
    assert again.detail == "note recorded on door/open, cleared" and again.data["fault_active"] is False
    fresh = operations(store).execute("fixed", Signed("crew-anna", FixedArgs("gpio", "Checked")), T0)
    assert fresh.detail == "note recorded; gpio has no fault on record"


def test_an_unknown_component_is_refused_and_nothing_stored(store: Store) -> None:
    with pytest.raises(Refusal) as refused:
        operations(store).execute("fixed", Signed("anna", FixedArgs("printer", "ok")), T0)
    assert (refused.value.code, refused.value.detail) == (
        "bad_arguments", "component: 'printer' is no fault component of this station")
    assert store.rows("repair_note") == []


def test_without_a_database_the_note_is_refused_as_unavailable() -> None:
    unavailable = UnavailableStore("io", Path("/nonexistent/kiosk.db"))
    with pytest.raises(Refusal) as refused:
        operations(unavailable).execute("fixed", Signed("anna", FixedArgs("door", "ok")), T0)
    assert refused.value.code == "unavailable"
