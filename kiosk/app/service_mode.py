"""The technician's service menu on the loop thread: when it opens and closes, what its buttons do, what is published."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any, Protocol

from kiosk.app.cabinet import Cabinet
from kiosk.app.faults import FaultBoard
from kiosk.app.operations import Operations
from kiosk.app.payments import PaymentRouter
from kiosk.domain import journey
from kiosk.domain.doctor import Health, Report
from kiosk.domain.events import (
    DoorChanged,
    HelpPressed,
    HelpReleased,
    MethodReport,
    PaymentAuthorized,
    PaymentConfirmed,
    PaymentDeclined,
    PaymentStatus,
    Tap,
)
from kiosk.domain.records import FaultRecord
from kiosk.domain.service_menu import TARGET_PREFIX, MenuAction, Opener, ServiceMenu
from kiosk.domain.staff import Done, ModeArgs, Refusal
from kiosk.ports import Host, StorageError, Store, Uplink

__all__ = ["MENU_EVENTS", "MENU_IDLE_S", "TEST_AMOUNT", "TEST_PAYMENT_EVENTS", "ServiceMode"]

log = logging.getLogger(__name__)

MENU_EVENTS = (Tap, HelpPressed, HelpReleased)  # what the menu takes from the journey while it is open
REQUESTS = {MenuAction.TERMINAL_STATUS: "status", MenuAction.END_OF_DAY: "end_of_day"}  # -> payment method request
TEST_AMOUNT = 1  # minor units: the test payment asks the card for the smallest amount, and is never booked
TEST_PAYMENT_EVENTS = (PaymentStatus, PaymentAuthorized, PaymentDeclined, PaymentConfirmed)
MENU_IDLE_S = 300  # a menu staff opened with the door shut closes after this long without a tap


class Station(Protocol):
    """What the service menu needs from the loop (kiosk.app.loop.Loop)."""

    state: journey.State
    store: Store
    fault_board: FaultBoard
    cabinet: Cabinet
    operations: Operations
    payment: PaymentRouter
    host: Host
    uplink: Uplink | None

    def examine(self, answer: Callable[[Report, datetime], None]) -> None: ...

    def idle(self) -> bool: ...


class ServiceMode:
    """Opens the menu when the cabinet door is open in service mode, or when staff ask (``service-menu``).

    Never over a parker: an open door waits until nobody is served (a payment, a receipt or a
    help call ends first), and staff's command is refused meanwhile. It closes when the door
    closes, when service mode ends, on Leave (which ends service mode: the station is back in
    service), when staff ask, and, when staff opened it with the door shut, after MENU_IDLE_S
    without a tap or at the first press of the help button (a parker's: it calls for help as
    always). With the door open it takes the screen's taps and the help button's presses (the
    button test). Every opening, closing and action is logged and published as ``event/service``.
    """

    def __init__(self, station: Station) -> None:
        self._station = station
        self._requests: dict[str, tuple[MenuAction, datetime]] = {}  # request id -> (action, the menu's opening)
        self._test_payment: str | None = None  # the id of the last test payment (its events come to the menu)
        self._door_wants_menu = False  # the door is open and nobody closed its menu: it opens once the station may
        self._touched: datetime | None = None  # the menu's last tap (or its opening)
        self._entered_service_mode = False  # staff's menu put the station in service mode: it gives it back
        self._setting_mode = False  # the menu runs a mode command of its own now
        self._test_events: dict[type, Callable[[Any, datetime], None]] = {
            PaymentStatus: self._test_status,
            PaymentAuthorized: self._test_authorized,
            PaymentDeclined: self._test_declined,
            PaymentConfirmed: self._test_booked,
        }
        self._events: dict[type, Callable[[Any, datetime], None]] = {
            Tap: lambda event, now: self._tap(event.target, now),
            HelpPressed: lambda event, now: self._button(True),
            HelpReleased: lambda event, now: self._button(False),
        }
        self._actions: dict[MenuAction, Callable[[datetime], None]] = {
            MenuAction.TERMINAL_STATUS: lambda now: self._ask_terminal(MenuAction.TERMINAL_STATUS, now),
            MenuAction.END_OF_DAY: lambda now: self._ask_terminal(MenuAction.END_OF_DAY, now),
            MenuAction.TEST_PAYMENT: self._start_test_payment,
            MenuAction.LED_TEST: self._led_test,
            MenuAction.DOCTOR: self._doctor,
            MenuAction.LEAVE: self._leave,
        }

    @property
    def menu(self) -> ServiceMenu | None:
        """The menu on screen, if any."""
        return self._station.state.service

    def takes(self, event: Tap | HelpPressed | HelpReleased, now: datetime) -> bool:
        """Handle a tap on the menu, or the help button (the button test); False when the journey should have it.

        With the door shut the help button is a parker's: a staff-opened menu closes for it.
        """
        if self.menu is None:
            return False
        if not isinstance(event, Tap) and not self._station.cabinet.door_open:
            if isinstance(event, HelpPressed):
                self.close("the help button was pressed with the door shut", now, give_back=True)
            return False
        self._events[type(event)](event, now)
        return True

    def deadline(self) -> datetime | None:
        """When a staff-opened menu with the door shut closes for want of taps."""
        menu = self.menu
        if menu is None or self._station.cabinet.door_open or self._touched is None:
            return None
        return self._touched + timedelta(seconds=MENU_IDLE_S)

    def settle(self, now: datetime) -> None:
        """Open the menu the door asked for once nobody is served; close an idle staff-opened one."""
        due = self.deadline()
        if due is not None and now >= due:
            self.close(f"no tap for {MENU_IDLE_S // 60} min with the door shut", now, give_back=True)
        elif self._door_wants_menu and self.menu is None and self._station.fault_board.in_service_mode() \
                and self._station.idle():
            self.open(Opener.DOOR, now)

    def _button(self, down: bool) -> None:
        menu = self.menu
        if menu is not None:
            pressed = menu.pressed(down)
            self._show(pressed)
            if pressed.presses > menu.presses:
                log.info("service menu: help button pressed (%d since the menu opened)", pressed.presses)

    def door(self, event: DoorChanged, now: datetime) -> None:
        """The door opened: the menu opens in service mode once nobody is served (settle); it closed: it closes."""
        self._door_wants_menu = event.open  # the cabinet (told first) keeps the door's state
        if event.open:
            self.settle(now)
        elif self.menu is not None:
            self.close("the cabinet door closed", now, give_back=True)

    def fault_changed(self, fault: FaultRecord, active: bool, stored: bool, now: datetime) -> None:
        """Service mode ended (staff set another mode): the menu closes."""
        if fault.component == "operator" and self.menu is not None and not self._station.fault_board.in_service_mode():
            self.close("service mode ended", now)
            self._door_wants_menu = self._station.cabinet.door_open  # service mode again, door still open: the menu

    def mode_set(self, now: datetime) -> None:
        """A ``mode`` command ran: when it was staff's, the service mode is theirs, not the menu's to give back."""
        if not self._setting_mode:
            self._entered_service_mode = False

    def _set_mode(self, args: ModeArgs, now: datetime) -> None:
        """Run the ``mode`` command as the menu's own."""
        self._setting_mode = True
        try:
            self._station.operations.execute("mode", args, now)
        finally:
            self._setting_mode = False

    def command(self, show: bool, now: datetime) -> Done:
        """Staff's ``service-menu``: show it (entering service mode from normal), or close it.

        A menu that put the station in service mode gives it back to normal when it closes for
        want of taps or on staff's word; Leave always does.
        """
        if not show:
            if self.menu is None:
                return Done("the service menu was not open")
            self.close("closed by staff", now, give_back=True)
            return Done("service menu closed")
        if self.menu is not None:
            return Done("the service menu is already open")
        if not self._station.idle():
            raise Refusal("busy", "a parker is using the station; try again when they are done")
        board = self._station.fault_board
        if not board.in_service_mode():
            if board.get("operator") is not None:  # out of service by staff: what parkers are told stays theirs
                raise Refusal("wrong_mode", "the station is out of service by staff; send mode service first")
            self._set_mode(ModeArgs("service", "service menu opened by staff"), now)
            self._entered_service_mode = True
        self.open(Opener.STAFF, now)
        return Done("service menu shown; the station is in service mode")

    def report(self, event: MethodReport, now: datetime) -> bool:
        """The payment method's answer to a menu action; False if it answers something else (staff's command)."""
        asked = self._requests.pop(event.request_id, None)
        if asked is None:
            return False
        action, opened = asked
        words = self._station.operations.keep_report(event, now)
        lines = [f"{action.value.replace('_', ' ')}: {'done' if event.ok else 'failed'}{words}"]
        lines += [f"{key}: {value}" for key, value in event.data.items() if key != "lines"]
        menu = self.menu
        if menu is not None and menu.opened == opened:  # the totals are kept even when the menu closed meanwhile
            self._show(replace(menu, running=None, answer=tuple(lines)))
        self._record(now, action=action.value, ok=event.ok, result=lines[0])
        return True

    def payment_event(self, event: PaymentStatus | PaymentAuthorized | PaymentDeclined | PaymentConfirmed,
                      now: datetime) -> bool:
        """An event of the menu's test payment, handled here; False for any other payment's (the journey's)."""
        if self._test_payment is None or event.payment_id != self._test_payment:
            return False
        self._test_events[type(event)](event, now)
        return True

    def terminal_busy(self) -> bool:
        """The menu has the card terminal working: a status, an end of day or a test payment under way."""
        menu = self.menu
        return bool(self._requests) or (menu is not None and menu.running is MenuAction.TEST_PAYMENT)

    def led_on(self) -> bool:
        """The LED test is on: the help LED shines whatever the help desk says."""
        menu = self.menu
        return menu is not None and menu.led_on

    def open(self, opener: Opener, now: datetime) -> None:
        """Show the menu with the station's facts as of now."""
        if self.menu is not None:
            return
        log.info("service menu opened (%s)", opener)
        self._touched = now
        self._show(ServiceMenu(now, opener, self._about()))
        self._record(now, action="opened", by=str(opener))

    def close(self, why: str, now: datetime, *, give_back: bool = False) -> None:
        """Take the menu off the screen; with ``give_back`` a service mode the menu entered ends (normal again)."""
        menu = self.menu
        if menu is None:
            return
        log.info("service menu closed: %s", why)
        self._door_wants_menu = False  # closed while the door is open: it opens again with the next opening
        if menu.running is MenuAction.TEST_PAYMENT:
            self._station.payment.cancel_payment()  # the terminal stops asking for a card
        self._show(None)
        self._record(now, action="closed", why=why, button_presses=menu.presses)
        entered, self._entered_service_mode = self._entered_service_mode, False
        if give_back and entered and self._station.fault_board.in_service_mode():
            self._set_mode(ModeArgs("normal"), now)

    # ---- the buttons ----

    def _tap(self, target: str, now: datetime) -> None:
        if not target.startswith(TARGET_PREFIX):
            return
        try:
            action = MenuAction(target.removeprefix(TARGET_PREFIX))
        except ValueError:
            log.warning("service menu: no button %r", target)
            return
        self._touched = now  # a button, not a tap anywhere, keeps a staff-opened menu open
        menu = self.menu
        if menu is not None and menu.running is not None and action is not MenuAction.LEAVE:
            return  # one action at a time; its answer comes soon
        log.info("service menu: %s", action.value)
        self._actions[action](now)

    def _ask_terminal(self, action: MenuAction, now: datetime) -> None:
        request_id = str(uuid.uuid4())
        try:
            self._station.operations.ask_payment_method(REQUESTS[action], request_id)
        except Refusal as refusal:
            self._answer(action, [refusal.detail], now)
            return
        menu = self.menu
        if menu is not None:
            self._requests[request_id] = (action, menu.opened)
        if menu is not None:
            self._show(replace(menu, running=action, answer=(f"{action.value.replace('_', ' ')}: asked …",)))

    def _start_test_payment(self, now: datetime) -> None:
        """Ask a card for TEST_AMOUNT and refuse the vending answer: the card path is proved, nothing is charged."""
        if self._station.state.payment is not None:
            self._answer(MenuAction.TEST_PAYMENT, ["a parker's payment is in progress"], now)
            return
        currency = self._station.state.settings.zone.currency
        self._test_payment = str(uuid.uuid4())
        self._station.payment.start_payment(self._test_payment, TEST_AMOUNT, currency)
        menu = self.menu
        if menu is not None:
            self._show(replace(menu, running=MenuAction.TEST_PAYMENT, answer=(
                f"test payment of {TEST_AMOUNT} minor unit(s) {currency}: present a card to the terminal", )))
        self._record(now, action=MenuAction.TEST_PAYMENT.value, step="started", amount=TEST_AMOUNT, currency=currency)

    def _test_status(self, event: PaymentStatus, now: datetime) -> None:
        menu = self.menu
        if menu is not None and event.text:
            self._show(replace(menu, answer=(*menu.answer[:1], f"terminal: {event.text}")))

    def _test_authorized(self, event: PaymentAuthorized, now: datetime) -> None:
        self._station.payment.confirm_payment(event.payment_id, False)  # never booked: the terminal reverses it
        result = event.result
        said = f"authorized: {result.brand or 'card'}, auth code {result.auth_code or '-'}"
        self._test_ended(now, [f"test payment {said}", "refused by the station: the terminal reverses it, "
                                                      "nothing is charged"], ok=True, brand=result.brand,
                         auth_code=result.auth_code)

    def _test_declined(self, event: PaymentDeclined, now: datetime) -> None:
        said = f"declined ({event.reason}, {event.result_code:02X})" + (f": {event.text}" if event.text else "")
        self._test_ended(now, [f"test payment {said}"], ok=False, reason=str(event.reason),
                         result_code=event.result_code)

    def _test_booked(self, event: PaymentConfirmed, now: datetime) -> None:
        log.error("the terminal booked test payment %s although the station refused it: reverse it with "
                  "kiosk terminal reverse", event.payment_id)
        self._test_ended(now, ["the terminal BOOKED the test payment: reverse it (kiosk terminal reverse)"],
                         ok=False, booked=True)

    def _test_ended(self, now: datetime, lines: list[str], **data: Any) -> None:
        self._answer(MenuAction.TEST_PAYMENT, lines, now, step="ended", **data)

    def _led_test(self, now: datetime) -> None:
        menu = self.menu
        if menu is not None:
            on = not menu.led_on
            self._show(replace(menu, led_on=on))
            self._record(now, action=MenuAction.LED_TEST.value, led="on" if on else "off")

    def _doctor(self, now: datetime) -> None:
        menu = self.menu
        if menu is None:
            return
        self._show(replace(menu, running=MenuAction.DOCTOR, answer=("doctor: examining …",)))
        self._station.examine(self._examined)

    def _examined(self, report: Report, now: datetime) -> None:
        menu = self.menu
        if menu is not None and menu.running is MenuAction.DOCTOR:  # not a menu closed and opened again meanwhile
            self._show(replace(menu, running=None, answer=(), report=report))
        self._record(now, action=MenuAction.DOCTOR.value, healthy=report.healthy,
                     failed=[str(f.part) for f in report.findings if f.health is Health.FAIL])

    def _leave(self, now: datetime) -> None:
        self._record(now, action=MenuAction.LEAVE.value)
        self.close("the technician left service mode", now)
        self._set_mode(ModeArgs("normal"), now)

    def _answer(self, action: MenuAction, lines: list[str], now: datetime, **data: Any) -> None:
        """An action ended: its lines on the menu, and its ``event/service`` (a refusal unless ``data`` says ok)."""
        menu = self.menu
        if menu is not None:
            self._show(replace(menu, running=None, answer=tuple(lines)))
        self._record(now, action=action.value, **({"ok": False} | data), result=lines[0])

    # ---- helpers ----

    def _show(self, menu: ServiceMenu | None) -> None:
        self._station.state = replace(self._station.state, service=menu)

    def _about(self) -> tuple[str, ...]:
        station = self._station
        try:
            firmware = package_version("kiosk")
        except PackageNotFoundError:
            firmware = "unknown"
        addresses = ", ".join(station.host.addresses()) or "no IP address"
        link = station.uplink.link_summary() if station.uplink is not None else "no MQTT link"
        return (f"station {station.state.settings.station.id}, firmware {firmware}", addresses, f"broker: {link}")

    def _record(self, now: datetime, **data: Any) -> None:
        """Publish one ``event/service`` (kept in the outbox); without a database it is only logged."""
        store = self._station.store
        if not store.usable:
            log.warning("service menu event not stored (no database): %s", data)
            return
        try:
            store.record_service(data, now)
        except StorageError as exc:
            self._station.fault_board.raise_fault("storage", exc.reason, now, str(exc))
