"""The technician's service menu: opened by the door in service mode or by staff, its actions, leaving it, events."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import station_config, wait_for  # noqa: F401  (station_config is a fixture)
from recording_method import RecordingMethod

from drivers.gpio_sim import SimulatedHelpPanel
from drivers.payment.zvt.faults import FAULT_KINDS
from drivers.payment.zvt.simulator import Behaviour
from kiosk import config
from kiosk.app.loop import Loop
from kiosk.app.service_mode import MENU_IDLE_S
from kiosk.cli.compose import Station, build_station
from kiosk.cli.scenario import ManualClock
from kiosk.config import Settings, StorageSettings
from kiosk.domain import helpdesk, journey
from kiosk.domain.events import DoorChanged, HelpPressed, HelpReleased, MethodReport, PaymentDeclined, Tap
from kiosk.domain.payment import DeclineReason
from kiosk.domain.service_menu import MenuAction, Opener, target_of
from kiosk.domain.staff import ModeArgs, Refusal, ServiceMenuArgs
from kiosk.storage.store import Store
from screens.display import Display

TIMEOUT = 20


@pytest.fixture
def station(station_config: Path) -> Iterator[Station]:  # noqa: F811
    """A started station (simulated terminal and GPIO pins, headless), its terminal ready."""
    built = build_station(config.load(station_config), lambda: datetime.now(UTC), simulate=True, headless=True,
                          config_file=station_config)
    built.start()
    settle_until(built, lambda: not built.loop.fault_board.active(), "the terminal ready")
    yield built
    built.close()


def settle_until(station: Station, done, what: str) -> None:  # type: ignore[no-untyped-def]
    wait_for(done, TIMEOUT, what, between=station.loop.settle)


def panel(station: Station) -> SimulatedHelpPanel:
    assert isinstance(station.panel, SimulatedHelpPanel)
    return station.panel


def service_events(station: Station) -> list[dict]:
    assert station.store is not None
    rows = station.store.rows("outbox")
    return [json.loads(r["payload"])["data"] for r in rows if r["topic"] == "event/service"]


def tap(station: Station, action: MenuAction) -> None:
    display = station.display
    assert isinstance(display, Display)
    station.loop.settle()
    assert target_of(action) in display.targets(), display.targets()
    station.loop.post(Tap(target_of(action)))
    station.loop.settle()


def enter_service_mode(station: Station) -> None:
    station.loop.operations.execute("mode", ModeArgs("service", "crew at work"), datetime.now(UTC))
    station.loop.settle()


def open_by_door(station: Station) -> None:
    enter_service_mode(station)
    panel(station).set_door(True)
    settle_until(station, lambda: station.loop.state.service is not None, "the menu")


def test_the_door_opens_the_menu_only_in_service_mode(station: Station) -> None:
    panel(station).set_door(True)
    settle_until(station, lambda: station.loop.fault_board.get("door") is not None, "the tamper alarm")
    assert station.loop.state.service is None  # outside service mode an open door is a tamper alarm, no menu
    panel(station).set_door(False)
    settle_until(station, lambda: station.loop.fault_board.get("door") is None, "the alarm cleared")
    open_by_door(station)
    menu = station.loop.state.service
    assert menu is not None and menu.opener is Opener.DOOR
    assert menu.about[0].startswith(f"station {station.loop.state.settings.station.id}, firmware ")
    texts = station.display.texts()
    assert texts[0] == f"Service mode: {station.loop.state.settings.station.id}"
    assert "faults: operator/service 0 min" in texts
    assert station.loop.fault_board.get("door") is None  # no tamper alarm in service mode
    assert service_events(station) == [{"action": "opened", "by": "door"}]
    panel(station).set_door(False)
    settle_until(station, lambda: station.loop.state.service is None, "the menu closed with the door")
    assert station.loop.fault_board.in_service_mode()  # staff decide when service mode ends
    assert service_events(station)[-1] == {"action": "closed", "why": "the cabinet door closed", "button_presses": 0}


def test_terminal_status_and_end_of_day_from_the_menu(station: Station) -> None:
    open_by_door(station)
    tap(station, MenuAction.TERMINAL_STATUS)
    assert station.loop.state.service is not None and station.loop.state.service.running is MenuAction.TERMINAL_STATUS
    assert not station.display.targets().get(target_of(MenuAction.DOCTOR)), "one action at a time"
    settle_until(station, lambda: station.loop.state.service.running is None, "the terminal's answer")  # type: ignore[union-attr]
    menu = station.loop.state.service
    assert menu is not None and menu.answer[0] == "terminal status: done" and "status: 00" in menu.answer
    tap(station, MenuAction.END_OF_DAY)
    settle_until(station, lambda: station.loop.state.service.running is None, "the end of day")  # type: ignore[union-attr]
    assert station.loop.state.service.answer[0] == "end of day: done"  # type: ignore[union-attr]
    assert station.store is not None
    terminal_events = [r for r in station.store.rows("outbox") if r["topic"] == "event/terminal"]
    assert len(terminal_events) == 1  # the totals are kept and published as for staff's command
    actions = [(e["action"], e.get("ok")) for e in service_events(station)]
    assert actions == [("opened", None), ("terminal_status", True), ("end_of_day", True)]


def test_led_and_button_tests_never_call_for_help(station: Station) -> None:
    open_by_door(station)
    tap(station, MenuAction.LED_TEST)
    assert panel(station).led_pattern == helpdesk.LED_STEADY
    for _ in range(2):
        panel(station).press()
        settle_until(station, lambda: station.loop.state.service.button_down, "the press")  # type: ignore[union-attr]
        panel(station).release()
        settle_until(station, lambda: not station.loop.state.service.button_down, "the release")  # type: ignore[union-attr]
    assert station.loop.state.service.presses == 2 and station.loop.state.help is None  # type: ignore[union-attr]
    assert "LED on; help button up, pressed 2 time(s)" in station.display.texts()
    tap(station, MenuAction.LED_TEST)
    assert panel(station).led_pattern == helpdesk.LED_OFF
    assert [e.get("led") for e in service_events(station) if e["action"] == "led_test"] == ["on", "off"]


def test_the_doctor_in_the_menu(station: Station) -> None:
    open_by_door(station)
    tap(station, MenuAction.DOCTOR)
    settle_until(station, lambda: station.loop.state.service.report is not None, "the report")  # type: ignore[union-attr]
    station.loop.settle()
    texts = station.display.texts()
    assert any(text.startswith("Doctor: ") for text in texts), texts
    report = station.loop.state.service.report  # type: ignore[union-attr]
    failed = [str(f.part) for f in report.findings if f.health == "fail"]
    assert [e for e in service_events(station) if e["action"] == "doctor"] == [
        {"action": "doctor", "healthy": not failed, "failed": failed}]


def test_leaving_returns_the_station_to_service(station: Station) -> None:
    open_by_door(station)
    tap(station, MenuAction.LEAVE)
    settle_until(station, lambda: station.loop.state.screen is journey.Screen.WELCOME, "Welcome")
    assert station.loop.state.service is None and not station.loop.fault_board.in_service_mode()
    assert [e["action"] for e in service_events(station)] == ["opened", "leave", "closed"]
    assert station.loop.fault_board.get("door") is not None  # the door is still open: now it is a tamper alarm


def test_staff_open_and_close_the_menu(station: Station) -> None:
    now = datetime.now(UTC)
    done = station.loop.operations.execute("service-menu", ServiceMenuArgs(show=True), now)
    assert done.detail == "service menu shown; the station is in service mode"
    station.loop.settle()
    assert station.loop.fault_board.in_service_mode() and station.loop.state.service is not None
    assert station.loop.state.service.opener is Opener.STAFF
    station.loop.operations.execute("mode", ModeArgs("normal"), now)  # staff end service mode: the menu goes
    station.loop.settle()
    assert station.loop.state.service is None
    station.loop.post(Tap("start"))
    station.loop.settle()
    assert station.loop.state.screen is journey.Screen.PLATE
    with pytest.raises(Refusal, match="busy"):  # never over a parker's journey
        station.loop.operations.execute("service-menu", ServiceMenuArgs(show=True), now)


def test_a_test_payment_proves_the_card_path_and_charges_nothing(station: Station) -> None:
    simulator = station.devices.simulator
    assert simulator is not None
    open_by_door(station)
    tap(station, MenuAction.TEST_PAYMENT)
    settle_until(station, lambda: station.loop.state.service.running is None, "the test payment")  # type: ignore[union-attr]
    menu = station.loop.state.service
    assert menu is not None and menu.answer == (
        "test payment authorized: VISA, auth code " + menu.answer[0].rsplit(" ", 1)[1],
        "refused by the station: the terminal reverses it, nothing is charged")
    wait_for(lambda: [e["event"] for e in simulator.journal()][-1:] == ["reversed"], TIMEOUT, "the reversal")
    entries = [(e["event"], e.get("amount")) for e in simulator.journal() if e["event"] != "status"]
    assert ("authorized", 1) in entries and not any(kind == "booked" for kind, _ in entries)
    assert station.store is not None and station.store.rows("payment") == []  # not a parker's payment
    steps = [(e["step"], e.get("ok")) for e in service_events(station) if e["action"] == "test_payment"]
    assert steps == [("started", None), ("ended", True)]
    assert "pan" not in str(service_events(station)).lower()  # no card number, not even masked


def test_a_declined_test_payment_and_leaving_during_one(station: Station) -> None:
    simulator = station.devices.simulator
    assert simulator is not None
    open_by_door(station)
    simulator.script(Behaviour(kind="decline", result_code=0x05, text="Abgelehnt"))
    tap(station, MenuAction.TEST_PAYMENT)
    settle_until(station, lambda: station.loop.state.service.running is None, "the decline")  # type: ignore[union-attr]
    assert station.loop.state.service.answer[0].startswith("test payment declined (")  # type: ignore[union-attr]
    simulator.script(Behaviour(kind="wait-card"))
    tap(station, MenuAction.TEST_PAYMENT)
    wait_for(lambda: [e["event"] for e in simulator.journal()][-1:] == ["started"], TIMEOUT, "the card asked for")
    tap(station, MenuAction.LEAVE)  # the technician leaves while the terminal still asks for a card: it is aborted
    wait_for(lambda: "aborted" in [e["event"] for e in simulator.journal()], TIMEOUT, "the abort")
    settle_until(station, lambda: station.loop.state.screen is journey.Screen.WELCOME, "back in service")
    assert station.store is not None and station.store.rows("payment") == []


# ---- never over a parker, never left open, nothing lost (a manual clock and a recording terminal) ----


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Loop]:
    """A loop on a manual clock with a terminal that only records what it is asked."""
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    card = RecordingMethod("card_terminal", capabilities=frozenset({"status", "end_of_day"}), fault_kinds=FAULT_KINDS)
    loop = Loop(journey.initial(settings, clock()), store, card, display, clock)
    loop.settle()
    yield loop
    display.close()
    store.close()


def post(loop: Loop, *events: object) -> None:
    for event in events:
        loop.post(event)  # type: ignore[arg-type]
        loop.settle()


def test_the_door_waits_for_a_paying_parker_and_for_a_help_call(bare: Loop) -> None:
    loop = bare
    post(loop, Tap("start"), *[Tap(f"key:{c}") for c in "B-CO 1"], Tap("continue"), Tap("plus"), Tap("pay"))
    assert loop.state.screen is journey.Screen.PAYING
    loop.operations.execute("mode", ModeArgs("service", "crew"), loop.clock())
    post(loop, DoorChanged(True))
    assert loop.state.service is None  # the parker keeps the screen
    post(loop, Tap("cancel"))
    assert ("cancel_payment",) in [call[:1] for call in loop.payment._methods[0].calls]  # type: ignore[attr-defined]
    post(loop, PaymentDeclined(loop.state.payment.payment_id or "", DeclineReason.ABORTED, 0x6C))  # type: ignore[union-attr]
    while loop.state.screen is not journey.Screen.OUT_OF_SERVICE:  # the parker's journey ends, then the menu opens
        loop.clock.set(loop.clock() + timedelta(seconds=30))  # type: ignore[attr-defined]
        loop.settle()
    assert loop.state.service is not None and loop.state.service.opener is Opener.DOOR
    post(loop, DoorChanged(False))
    post(loop, HelpPressed(), HelpReleased())
    assert loop.state.help is not None
    post(loop, DoorChanged(True))
    assert loop.state.service is None  # a help call is never covered either


def test_a_staff_menu_with_the_door_shut_closes_when_idle_and_yields_to_help(bare: Loop) -> None:
    loop = bare
    loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    loop.settle()
    assert loop.service_mode.deadline() == loop.clock() + timedelta(seconds=MENU_IDLE_S)
    loop.clock.set(loop.clock() + timedelta(seconds=MENU_IDLE_S))  # type: ignore[attr-defined]
    loop.settle()
    assert loop.state.service is None  # nobody tapped it: a passer-by never finds it open
    loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    loop.settle()
    post(loop, HelpPressed(), HelpReleased())  # a parker at the shut station asks for help: the menu makes way
    assert loop.state.service is None and loop.state.help is not None


def test_end_of_day_totals_are_kept_when_the_menu_closes_first(bare: Loop) -> None:
    loop = bare
    loop.operations.execute("mode", ModeArgs("service", "crew"), loop.clock())
    post(loop, DoorChanged(True), Tap(target_of(MenuAction.END_OF_DAY)))
    request_id = [call for call in loop.payment._methods[0].calls if call[0] == "request"][-1][2]  # type: ignore[attr-defined]
    post(loop, DoorChanged(False))  # the technician shuts the door while the terminal closes its day
    post(loop, MethodReport(request_id, "end_of_day", True, {"count": 3, "amount": 750}))
    totals = [json.loads(r["payload"])["data"] for r in loop.store.rows("outbox") if r["topic"] == "event/terminal"]
    assert totals == [{"kind": "end_of_day", "count": 3, "amount": 750}]


def test_staff_never_turn_an_outage_into_service_mode_with_the_menu(bare: Loop) -> None:
    loop = bare
    back = (loop.clock() + timedelta(hours=3)).isoformat()
    loop.operations.execute("mode", ModeArgs("out_of_service", "flood", "free", back), loop.clock())
    loop.settle()
    with pytest.raises(Refusal, match="wrong_mode"):  # what parkers are told of the outage stays
        loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    loop.operations.execute("mode", ModeArgs("service", "crew", "free", back), loop.clock())
    loop.settle()
    before = loop.state.outage
    loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    loop.settle()
    assert loop.state.service is not None and loop.state.outage == before is not None
    loop.operations.execute("service-menu", ServiceMenuArgs(show=False), loop.clock())
    loop.settle()
    assert loop.fault_board.in_service_mode()  # staff set service mode themselves: it stays


def test_a_staff_menu_gives_back_the_service_it_took_and_only_its_buttons_keep_it_open(bare: Loop) -> None:
    loop = bare
    loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    loop.settle()
    assert loop.fault_board.in_service_mode()
    for _ in range(3):  # a passer-by tapping the screen does not keep it open
        loop.clock.set(loop.clock() + timedelta(seconds=MENU_IDLE_S // 3))  # type: ignore[attr-defined]
        post(loop, Tap("start"))
    loop.settle()
    assert loop.state.service is None and not loop.fault_board.in_service_mode()  # back in service, as before
    assert loop.state.screen is journey.Screen.WELCOME


def test_a_help_release_alone_does_not_close_a_staff_menu(bare: Loop) -> None:
    loop = bare
    loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    post(loop, HelpReleased())  # a button that was held when the menu opened comes free
    assert loop.state.service is not None


def test_a_service_mode_staff_set_meanwhile_is_not_the_menus_to_give_back(bare: Loop) -> None:
    loop = bare
    loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    loop.settle()
    loop.operations.execute("mode", ModeArgs("service", "crew all day"), loop.clock())  # staff's own, now
    loop.clock.set(loop.clock() + timedelta(seconds=MENU_IDLE_S))  # type: ignore[attr-defined]
    loop.settle()
    assert loop.state.service is None and loop.fault_board.in_service_mode()


def test_a_staff_menu_closed_by_the_door_gives_back_its_service_mode(bare: Loop) -> None:
    loop = bare
    loop.operations.execute("service-menu", ServiceMenuArgs(show=True), loop.clock())
    post(loop, DoorChanged(True), DoorChanged(False))  # the technician came and went without Leave
    assert loop.state.service is None and not loop.fault_board.in_service_mode()
