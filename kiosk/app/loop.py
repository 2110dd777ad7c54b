"""The main loop: one thread owns the journey state, routes events from a table, asks for renders and blocks when idle."""
from __future__ import annotations

import logging
import queue
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.app.cabinet import CABINET_EVENTS, Cabinet
from kiosk.app.doctor import Doctor, LiveParts, UnknownHost, live_findings
from kiosk.app.effects import EffectRunner
from kiosk.app.faults import FaultBoard
from kiosk.app.healing import StorageHealer
from kiosk.app.operations import Operations
from kiosk.app.payments import PaymentRouter, Settlements, method_catalogue
from kiosk.app.service_mode import MENU_EVENTS, TEST_PAYMENT_EVENTS, ServiceMode
from kiosk.app.updater import Updater
from kiosk.domain import helpdesk, journey
from kiosk.domain.doctor import Finding, Health, Part, Report
from kiosk.domain.events import (
    UPLINK_EVENTS,
    ControlAsked,
    DoctorAsked,
    DoctorExamined,
    DoorChanged,
    Event,
    FaultsChanged,
    IntercomHealth,
    MethodHealth,
    MethodReport,
    PaymentConfirmed,
    PaymentReconciled,
    Tick,
    UpdateProgress,
)
from kiosk.domain.records import FaultRecord
from kiosk.domain.staff import Done
from kiosk.domain.update import harmful
from kiosk.ports import Clock, Display, HelpPanel, Host, Intercom, PaymentMethod, ServiceManager, Store, Uplink

__all__ = ["DISPLAY_COMPONENT", "VOICE_COMPONENT", "Loop"]

log = logging.getLogger(__name__)

VOICE_COMPONENT = "help"  # the fault component of the voice path (kiosk.domain.faults)
DISPLAY_COMPONENT = "display"


class _MenuSeat:
    """The loop's service menu as Operations reaches it (the menu is made after Operations, which it uses)."""

    def __init__(self, loop: Loop) -> None:
        self._loop = loop

    def command(self, show: bool, now: datetime) -> Done:
        return self._loop.service_mode.command(show, now)

    def mode_set(self, now: datetime) -> None:
        self._loop.service_mode.mode_set(now)


class Loop:
    """Owns the state; everything else only posts events.

    The parts it composes each own one concern: ``fault_board`` the active faults, ``payment``
    the routing of payments over the payment methods (``method`` first, then ``more_methods``),
    ``settlements`` what a payment method settled after the journey moved on, ``cabinet`` the
    help button's and the door's health, ``effects`` the journey's effects, and the storage
    healer an unusable database. ``uplink`` (MQTT), ``panel`` (the help LED) and ``intercom`` (help
    by voice) are optional; ``host`` is the computer (an UnknownHost when not given), and ``doctor``
    examines the computer and the database when a technician asks (without one, only the devices
    and the link are examined).
    """

    def __init__(self, state: journey.State, store: Store, method: PaymentMethod, display: Display,
                 clock: Clock, faults: tuple[FaultRecord, ...] = (), uplink: Uplink | None = None,
                 panel: HelpPanel | None = None, more_methods: Sequence[PaymentMethod] = (),
                 intercom: Intercom | None = None, *, host: Host | None = None, doctor: Doctor | None = None,
                 updater: Updater | None = None) -> None:
        methods = (method, *more_methods)
        self.state = replace(state, payment_methods=tuple(m.name for m in methods))
        self.store = store
        self.display = display
        self.clock = clock
        self._inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._rendered: tuple[journey.State, datetime] | None = None
        self._stopping = False
        self.restart_requested = False
        self.unhealthy: str | None = None
        self.updater = updater
        self.uplink = uplink
        self.panel = panel
        self.host: Host = host or UnknownHost()
        self.doctor = doctor
        now = clock()
        self.fault_board = FaultBoard(store, self.post, faults, method_catalogue(methods))
        self.payment = PaymentRouter(methods, self.fault_board)
        self.settlements = Settlements(store, self.fault_board, method.name)
        self.cabinet = Cabinet(self.fault_board)
        self.operations = Operations(store, self.fault_board, self.payment, lambda: self.state, self.post,
                                     self.request_restart, self.cabinet.check_door, _MenuSeat(self), updater)
        self.service_mode = ServiceMode(self)
        self.fault_board.listen(self.service_mode.fault_changed)
        self.effects = EffectRunner(store, self.payment, self.fault_board, self.post, uplink, intercom)
        self._healer = StorageHealer(self, self.fault_board, Path(state.settings.storage.database),
                                     state.settings.station.id)
        self.fault_board.listen(self._healer.fault_changed)
        self._routes: dict[type, Callable[[Any, datetime], None]] = {
            PaymentConfirmed: self.settlements.settled,
            PaymentReconciled: self.settlements.settled,
            MethodHealth: self.settlements.health,
            IntercomHealth: self._voice_health,
            DoctorAsked: self._doctor_asked,
            ControlAsked: lambda event, now: event.run(now),
            DoctorExamined: self._doctor_examined,
            **{kind: self.cabinet.handle for kind in CABINET_EVENTS},
            DoorChanged: self._door,
            MethodReport: self._method_report,
        }
        if updater is not None:
            self._routes[UpdateProgress] = updater.progress
        if faults:
            self.post(FaultsChanged(tuple(faults)))
        for fault in faults:
            self._healer.fault_changed(fault, True, False, now)
        if uplink is not None:
            self._routes.update({kind: uplink.handle for kind in UPLINK_EVENTS if kind is not MethodReport})
            uplink.attach(self, now)
            self.fault_board.listen(uplink.fault_changed)
            for fault in faults if not store.usable else ():  # without a database, nobody else will report them
                uplink.fault_changed(fault, True, False, now)
        if updater is not None:
            updater.attach(self, now)

    def _voice_health(self, event: IntercomHealth, now: datetime) -> None:
        """The voice path's fault (help by text still works, and parkers are told so on Welcome)."""
        if event.fault is None:
            self.fault_board.clear_fault(VOICE_COMPONENT, now)
        else:
            self.fault_board.raise_fault(VOICE_COMPONENT, event.fault, now, event.detail)

    def examine(self, answer: Callable[[Report, datetime], None]) -> None:
        """Ask the doctor for a report (loop thread); ``answer`` gets it on the loop thread, soon after."""
        self._doctor_asked(DoctorAsked(answer), self.clock())

    def _doctor_asked(self, event: DoctorAsked, now: datetime) -> None:
        s = self.state
        parts = LiveParts(s.settings, self.fault_board.active(), self.payment.name, self.cabinet.door_open,
                          self.display, self.uplink)
        live = live_findings(parts, now)
        if self.doctor is None:
            event.answer(Report.of([*live, Finding(Part.DATABASE, Health.WARN, "not examined in this run")]), now)
            return
        status_request = None
        if "status" in self.payment.capabilities and s.payment is None and not self.service_mode.terminal_busy():
            status_request = str(uuid.uuid4())
            self.payment.request("status", status_request)
        self.doctor.ask(live, s.settings.version, event.answer, now, status_request)

    def _door(self, event: DoorChanged, now: datetime) -> None:
        self.cabinet.handle(event, now)
        self.service_mode.door(event, now)

    def _method_report(self, event: MethodReport, now: datetime) -> None:
        """A payment method's answer: to the service menu or the doctor if they asked, else to staff's command."""
        if self.service_mode.report(event, now) or (self.doctor is not None and self.doctor.report(event, now)):
            return
        if self.uplink is not None:
            self.uplink.handle(event, now)

    def _doctor_examined(self, event: DoctorExamined, now: datetime) -> None:
        if self.doctor is not None:
            self.doctor.examined(event, now)

    def post(self, event: Event) -> None:
        """Queue an event from any thread and wake the loop."""
        self._inbox.put(event)
        self.display.wake()

    def stop(self) -> None:
        """Ask run() to return (from any thread)."""
        self._stopping = True
        self.display.wake()

    def run(self, service: ServiceManager | None = None) -> None:
        """Process events until stopped or the window is closed; block while nothing happens.

        ``service`` (systemd) hears when the station is ready, what it is doing, and, from this
        thread after each pass, that the loop still turns: a loop that hangs stops feeding its watchdog.
        """
        self.settle()
        log.info("ready: waiting for parkers")
        interval = timedelta(seconds=service.watchdog_interval) if service and service.watchdog_interval else None
        next_beat = None
        if service is not None:
            service.ready(self.status_line())
        if self.updater is not None:
            self.updater.ready(self.clock())
        while not self._stopping and not self.display.quit_requested:
            self.settle()
            if self._stopping:
                break
            now = self.clock()
            if service is not None:
                service.status(self.status_line())
                if interval is not None and (next_beat is None or now >= next_beat):
                    service.alive()
                    next_beat = now + interval
            uplink_due = self.uplink.deadline() if self.uplink is not None else None
            dues = (journey.deadline(self.state), self._next_redraw(now), uplink_due, self._healer.deadline(),
                    next_beat, self.service_mode.deadline(), self.doctor.deadline() if self.doctor else None,
                    self.updater.deadline() if self.updater else None)
            wake_at = min(t for t in dues if t is not None)
            timeout = max(0.0, (wake_at - now).total_seconds())
            for event in self.display.wait(timeout):
                self.handle(event)
        if service is not None:
            service.stopping()

    def status_line(self) -> str:
        """What the station is doing, in a few words (no plate, nothing personal): for the service manager."""
        s = self.state
        if s.screen is journey.Screen.OUT_OF_SERVICE:
            doing = "out of service"
        elif s.help is not None:
            doing = "help call"
        elif self.idle():
            doing = "waiting for parkers"
        else:
            doing = f"serving a parker ({s.screen})"
        faults = ", ".join(f"{f.component}/{f.code}" for f in s.faults)
        return f"{doing}; faults: {faults}" if faults else doing

    def settle(self) -> None:
        """Handle every queued event and every due deadline, then render if anything visible changed."""
        while True:
            try:
                event = self._inbox.get_nowait()
            except queue.Empty:
                due = journey.deadline(self.state)
                if due is None or self.clock() < due:
                    break
                event = Tick()
            self.handle(event)
        heal_due = self._healer.deadline()
        if heal_due is not None and self.clock() >= heal_due:
            self._healer.on_due(self.clock())
        if self.uplink is not None:
            now = self.clock()
            due = self.uplink.deadline()
            if due is not None and now >= due:
                self.uplink.on_due(now)
            self.uplink.pump(now)
        self.service_mode.settle(self.clock())
        doctor = self.doctor
        doctor_due = doctor.deadline() if doctor is not None else None
        if doctor is not None and doctor_due is not None and self.clock() >= doctor_due:
            doctor.on_due(self.clock())
        if self.updater is not None:
            self.updater.settle(self.clock())
        if (self.restart_requested or self.unhealthy is not None) and self.idle():
            log.info("stopping now that no parker is being served (%s)",
                     "unhealthy" if self.unhealthy is not None else "restart requested")
            self._stopping = True
        if self.panel is not None:
            self.panel.show(helpdesk.LED_STEADY if self.service_mode.led_on() else helpdesk.led(self.state.help))
        self.render_if_changed()

    def handle(self, event: Event) -> None:
        """Route one event: to its owner from the table, or else to the journey, whose effects are then run."""
        now = self.clock()
        if isinstance(event, MENU_EVENTS) and self.service_mode.takes(event, now):  # the technician has the screen
            return
        if isinstance(event, TEST_PAYMENT_EVENTS) and self.service_mode.payment_event(event, now):
            return
        route = self._routes.get(type(event))
        if route is not None:
            route(event, now)
            return
        self.state, effects = journey.step(self.state, event, now)
        for effect in effects:
            self.effects.run(effect, now)

    def request_restart(self) -> None:
        """Stop run() as soon as no parker is being served (the service manager starts the station again)."""
        self.restart_requested = True

    def stop_unhealthy(self, reason: str) -> None:
        """Stop as soon as no parker is served: this release on trial failed its health check (EXIT_UNHEALTHY)."""
        log.error("release unhealthy, stopping once no parker is served: %s", reason)
        self.unhealthy = reason

    def update_changed(self) -> None:
        """The update's state changed: the birth says it again (while connected)."""
        if self.uplink is not None:
            self.uplink.status_changed(self.clock())

    def harmful_faults(self) -> set[str]:
        """The active faults that keep parkers from paying (a new release must not bring one)."""
        return harmful((f.component, f.code, f.parker_impact) for f in self.fault_board.active())

    def update_summary(self) -> dict[str, Any] | None:
        """The updater's summary for the birth message; None without an updater."""
        return self.updater.summary() if self.updater is not None else None

    def next_storage_try(self) -> datetime | None:
        """When the station tries its unusable database again; None while it works (or only a technician can help)."""
        return self._healer.deadline()

    def idle(self) -> bool:
        """No parker is in the middle of something, and no technician has the service menu open."""
        s = self.state
        return s.screen in (journey.Screen.WELCOME, journey.Screen.OUT_OF_SERVICE) and s.help is None \
            and s.payment is None and s.service is None

    def render_if_changed(self) -> None:
        """Draw only when the state or the shown clock changed."""
        now = self.clock()
        shown = (self.state, self._clock_shown(now))
        if shown != self._rendered:
            first = self._rendered is None
            try:
                self.display.render(self.state, now)
            except Exception as exc:  # a drawing bug or a lost panel must not stop payments, MQTT and help
                log.exception("the screen could not be drawn")
                self.fault_board.raise_fault(DISPLAY_COMPONENT, "render_failed", now, f"{type(exc).__name__}: {exc}")
                return
            if first:
                log.info("first frame drawn")
            self._rendered = shown
            fault = self.fault_board.get(DISPLAY_COMPONENT)
            if fault is not None and fault.code == "render_failed":
                self.fault_board.clear_fault(DISPLAY_COMPONENT, now)

    def record_unstored(self, store: Store, now: datetime) -> None:
        """Write what the database missed while it failed: the notice, payments the terminal settled, fault changes.

        StorageError if it still fails; what was written stays written, the rest is kept.
        """
        self.operations.record_unstored(store, now)
        self.settlements.record_unstored(store, now)
        self.fault_board.record_unstored(store, now)

    def _seconds_shown(self) -> bool:
        """A countdown or a waiting time is on screen, so the picture changes every second."""
        return self.state.warning_since is not None or self.state.help is not None

    def _clock_shown(self, now: datetime) -> datetime:
        """The clock as the screen shows it: to the second while a countdown runs, else to the minute."""
        if self._seconds_shown():
            return now.replace(microsecond=0)
        return now.replace(second=0, microsecond=0)

    def _next_redraw(self, now: datetime) -> datetime:
        step = timedelta(seconds=1) if self._seconds_shown() else timedelta(minutes=1)
        return self._clock_shown(now) + step
