"""The main loop: one thread owns the journey state, runs effects, asks for renders and blocks when idle."""
from __future__ import annotations

import logging
import queue
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol

from kiosk import crashpoints

from kiosk.domain import helpdesk, journey
from kiosk.domain.events import (
    BeginPayment, CancelPayment, CommitFailed, CommitSession, ConfirmPayment, DoorChanged, Effect, Event, FailPayment,
    FaultsChanged, HelpButtonFreed, HelpButtonStuck, HelpTicketFailed, HelpTicketOpened, Ignored, LookupSession, OpenHelpTicket,
    PaymentConfirmed, PaymentNotStarted, PaymentPending, PaymentReconciled, RecordHelp, SaveFeedback,
    SessionCommitted, SessionLookedUp, TerminalHealth, Tick,
)
from kiosk.domain.faults import kind_of
from kiosk.app.healing import StorageHealer
from kiosk.domain.records import FaultRecord
from kiosk.storage.store import StorageError, Store
from kiosk.mqtt.uplink import UPLINK_EVENTS, Uplink

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Display(Protocol):
    """What the loop needs from the screen (screens.display.Display implements it)."""

    quit_requested: bool

    def render(self, state: journey.State, now: datetime) -> None: ...

    def wait(self, timeout: float | None) -> list[Event]: ...

    def wake(self) -> None: ...


class Terminal(Protocol):
    """What the loop needs from the card terminal (kiosk.ports.PaymentTerminal)."""

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None: ...

    def cancel_payment(self) -> None: ...

    def confirm_payment(self, payment_id: str, accept: bool) -> None: ...

    def request(self, kind: str, request_id: str) -> None: ...


class Panel(Protocol):
    """What the loop needs from the help button's panel (drivers.gpio.HelpPanel): its LED."""

    def show(self, pattern: helpdesk.LedPattern) -> None: ...


HARDWARE_EVENTS = (HelpButtonStuck, HelpButtonFreed, DoorChanged)


class Loop:
    """Owns the state; everything else only posts events."""

    def __init__(self, state: journey.State, store: Store | None, terminal: Terminal, display: Display,
                 clock: Clock, faults: tuple[FaultRecord, ...] = (), uplink: Uplink | None = None,
                 panel: Panel | None = None) -> None:
        self.state = state
        self.store = store
        self.terminal = terminal
        self.display = display
        self.clock = clock
        self._inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._faults = {f.component: f for f in faults}
        self._unrecorded_clears: set[str] = set()  # components cleared while the database could not record it
        self._unrecorded_payments: list[PaymentConfirmed | PaymentReconciled] = []  # settled while it failed
        self._rendered: tuple[journey.State, datetime] | None = None
        self._stopping = False
        self.restart_requested = False
        self.uplink = uplink
        self.panel = panel
        self._door_open = False
        now = clock()
        self._healer = StorageHealer(self, Path(state.settings.storage.database), state.settings.station.id)
        if faults:
            self.post(FaultsChanged(tuple(faults)))
        for fault in faults:
            if fault.component == "storage":
                self._healer.fault_raised(fault, now)
        if uplink is not None:
            uplink.attach(self, now)
            for fault in faults if store is None else ():  # without a database, nobody else will report them
                uplink.fault_changed(fault, True, False, now)

    def post(self, event: Event) -> None:
        """Queue an event from any thread and wake the loop."""
        self._inbox.put(event)
        self.display.wake()

    def stop(self) -> None:
        """Ask run() to return (from any thread)."""
        self._stopping = True
        self.display.wake()

    def run(self) -> None:
        """Process events until stopped or the window is closed; block while nothing happens."""
        self.settle()
        log.info("ready: waiting for parkers")
        while not self._stopping and not self.display.quit_requested:
            self.settle()
            if self._stopping:
                break
            now = self.clock()
            uplink_due = self.uplink.deadline() if self.uplink is not None else None
            dues = (journey.deadline(self.state), self._next_redraw(now), uplink_due, self._healer.deadline())
            wake_at = min(t for t in dues if t is not None)
            timeout = max(0.0, (wake_at - now).total_seconds())
            for event in self.display.wait(timeout):
                self.handle(event)

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
        if self.restart_requested and self.idle():
            log.info("restart requested by staff: stopping now that no parker is being served")
            self._stopping = True
        if self.panel is not None:
            self.panel.show(helpdesk.led(self.state.help))
        self.render_if_changed()

    def handle(self, event: Event) -> None:
        """Step the journey with one event and run the effects it asks for (device bookkeeping stays here)."""
        now = self.clock()
        if self.uplink is not None and isinstance(event, UPLINK_EVENTS):
            self.uplink.handle(event, now)
            return
        if isinstance(event, (PaymentConfirmed, PaymentReconciled, TerminalHealth)):
            self._bookkeeping(event, now)
            return
        if isinstance(event, HARDWARE_EVENTS):
            self._hardware(event, now)
            return
        self.state, effects = journey.step(self.state, event, now)
        for effect in effects:
            self._run(effect, now)

    def request_restart(self) -> None:
        """Stop run() as soon as no parker is being served (the service manager starts the station again)."""
        self.restart_requested = True

    def terminal_request(self, kind: str, request_id: str) -> None:
        """Pass a staff request to the card terminal; it answers with a TerminalReport event."""
        self.terminal.request(kind, request_id)

    def next_storage_try(self) -> datetime | None:
        """When the station tries its unusable database again; None while it works (or only a technician can help)."""
        return self._healer.deadline()

    def idle(self) -> bool:
        """No parker is in the middle of something."""
        s = self.state
        return s.screen in (journey.Screen.WELCOME, journey.Screen.OUT_OF_SERVICE) and s.help is None and s.payment is None

    def render_if_changed(self) -> None:
        """Draw only when the state or the shown clock changed."""
        now = self.clock()
        shown = (self.state, self._clock_shown(now))
        if shown != self._rendered:
            first = self._rendered is None
            self.display.render(self.state, now)
            if first:
                log.info("first frame drawn")
            self._rendered = shown

    def faults(self) -> tuple[FaultRecord, ...]:
        """The active faults as the station knows them (the database may not have been able to keep them all)."""
        return tuple(self._faults.values())

    def record_unstored(self, store: Store, now: datetime) -> None:
        """Write what the database missed while it failed: payments the terminal settled, then fault changes.

        StorageError if it still fails; what was written stays written, the rest is kept.
        """
        while self._unrecorded_payments:
            self._record_payment(store, self._unrecorded_payments[0], now)
            self._unrecorded_payments.pop(0)
        store.sync_faults(self._faults.values(), self._unrecorded_clears, now)
        self._unrecorded_clears.clear()

    def raise_fault(self, component: str, code: str, now: datetime, detail: str = "") -> None:
        """Record a fault (durably when the store works) and tell the journey."""
        kind = kind_of(component, code)
        message = f"{kind.message} {detail}".strip()
        record = FaultRecord(component, code, kind.severity, message, kind.parker_impact, now)
        current = self._faults.get(component)
        if current is not None and current.code == code:
            return
        log.error("fault raised: %s/%s (%s): %s", component, code, kind.severity, message)
        stored = False
        if self.store is not None:
            try:
                record = self.store.raise_fault(component, code, kind.severity, message, kind.parker_impact, now)
                stored = True
            except StorageError as exc:
                log.error("fault %s/%s kept in memory only: %s", component, code, exc)
        self._faults[component] = record
        if component == "storage":
            self._healer.fault_raised(record, now)
        if self.uplink is not None:
            self.uplink.fault_changed(record, True, stored, now)
        self.post(FaultsChanged(tuple(self._faults.values())))

    def clear_fault(self, component: str, now: datetime, *, must_store: bool = False) -> None:
        """Clear a component's fault (durably when the store works) and tell the journey.

        With ``must_store`` a failing database leaves the fault active and raises StorageError.
        """
        record = self._faults.get(component)
        if record is None:
            return
        stored = False
        if self.store is not None:
            try:
                stored = self.store.clear_fault(component, now)  # False: it never reached the store either
            except StorageError as exc:
                if must_store:
                    raise
                log.error("fault %s cleared in memory only: %s", component, exc)
        del self._faults[component]
        log.info("fault cleared: %s", component)
        if not stored:
            self._unrecorded_clears.add(component)
        if self.uplink is not None:
            self.uplink.fault_changed(record, False, stored, now)
        self.post(FaultsChanged(tuple(self._faults.values())))

    def in_service_mode(self) -> bool:
        """A crew announced itself (cmd/mode service): door openings are expected."""
        operator = self._faults.get("operator")
        return operator is not None and operator.code == "service"

    def check_door(self, now: datetime) -> None:
        """An open cabinet door outside service mode is a tamper alarm; closing it (or service mode) clears it."""
        if self._door_open and not self.in_service_mode():
            self.raise_fault("door", "open", now)
        else:
            self.clear_fault("door", now)

    def _hardware(self, event: HelpButtonStuck | HelpButtonFreed | DoorChanged, now: datetime) -> None:
        """The help button's and the door's health: faults for staff, not steps of the parker's journey."""
        if isinstance(event, HelpButtonStuck):
            self.raise_fault("help_button", "stuck", now, f"held for {event.held_s} s")
        elif isinstance(event, HelpButtonFreed):
            self.clear_fault("help_button", now)
        else:
            log.info("cabinet door %s", "opened" if event.open else "closed")
            self._door_open = event.open
            self.check_door(now)

    def _bookkeeping(self, event: PaymentConfirmed | PaymentReconciled | TerminalHealth, now: datetime) -> None:
        """Terminal facts the parker's journey does not depend on: faults and payment confirmation."""
        if isinstance(event, TerminalHealth):
            if event.code is None:
                self.clear_fault("card_terminal", now)
            else:
                self.raise_fault("card_terminal", event.code, now, event.detail)
            return
        if self.store is None:
            log.error("payment %s: %s kept in memory, no usable database", event.payment_id, type(event).__name__)
            self._unrecorded_payments.append(event)
            return
        try:
            self._record_payment(self.store, event, now)
        except StorageError as exc:
            log.error("payment %s: %s kept in memory: %s", event.payment_id, type(event).__name__, exc)
            self._unrecorded_payments.append(event)
            self.raise_fault("storage", exc.reason, now, str(exc))

    def _record_payment(self, store: Store, event: PaymentConfirmed | PaymentReconciled, now: datetime) -> None:
        """Apply what the terminal settled to the stored payment; StorageError if the database fails."""
        try:
            if isinstance(event, PaymentConfirmed) or event.outcome == "booked":
                store.mark_confirmed(event.payment_id, now)
                crashpoints.reached("payment.confirmed")
            elif event.outcome == "reversed":
                reason = f"payment {event.payment_id} reversed by the card terminal ({event.detail})"
                store.reverse_unconfirmed_payment(event.payment_id, reason, now)
            else:
                detail = f"payment {event.payment_id}: {event.detail}"
                try:
                    store.mark_unreconciled(event.payment_id, event.detail, now)
                except StorageError:
                    self.raise_fault("payments", "unreconciled", now, detail)  # staff hear of it even so
                    raise
                self.raise_fault("payments", "unreconciled", now, detail)
        except ValueError as exc:
            log.warning("payment %s: %s not applied: %s", event.payment_id, type(event).__name__, exc)

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

    def _run(self, effect: Effect, now: datetime) -> None:
        if isinstance(effect, Ignored):
            log.info("ignored %s: %s", type(effect.event).__name__, effect.reason)
            return
        if isinstance(effect, (CancelPayment, ConfirmPayment)):
            self._run_terminal(effect)
            return
        if self.store is None or (isinstance(effect, RecordHelp) and self.uplink is not None
                                  and self.uplink.holds_directly(effect.ticket_id)):
            if self.store is None:
                log.error("%s without a usable database", type(effect).__name__)
            self._storage_unavailable(effect, now)
            return
        try:
            self._run_stored(effect, now)
        except StorageError as exc:
            self.raise_fault("storage", exc.reason, now, str(exc))
            self._storage_unavailable(effect, now)

    def _run_terminal(self, effect: CancelPayment | ConfirmPayment) -> None:
        if isinstance(effect, CancelPayment):
            self.terminal.cancel_payment()
            return
        self.terminal.confirm_payment(effect.payment_id, effect.accept)

    def _run_stored(self, effect: Effect, now: datetime) -> None:
        store = self.store
        assert store is not None
        if isinstance(effect, LookupSession):
            self.post(SessionLookedUp(effect.plate, store.active_session(effect.plate, effect.zone, now)))
        elif isinstance(effect, BeginPayment):
            record = store.begin_payment(effect.plate, effect.zone, effect.amount, effect.currency, effect.minutes,
                                         effect.starts, effect.expires, effect.extends_id, now)
            self.post(PaymentPending(record.id))
            self.terminal.start_payment(record.id, effect.amount, effect.currency)
        elif isinstance(effect, CommitSession):
            crashpoints.reached("payment.approved")
            session = store.commit_paid_session(effect.payment_id, effect.result, now)
            crashpoints.reached("payment.committed")
            self.post(SessionCommitted(effect.payment_id, session))
        elif isinstance(effect, FailPayment):
            try:
                store.fail_payment(effect.payment_id, effect.state, effect.result_code, now)
            except ValueError as exc:
                log.warning("payment %s not marked %s: %s", effect.payment_id, effect.state, exc)
        elif isinstance(effect, SaveFeedback):
            store.save_feedback(effect.rating, effect.session_id, now)
        elif isinstance(effect, OpenHelpTicket):
            self.post(HelpTicketOpened(store.open_help_ticket(effect.context, now)))
            if self.uplink is not None:
                self.uplink.help_stored()
        elif isinstance(effect, RecordHelp):
            try:
                store.record_help(effect.ticket_id, effect.action, now, agent=effect.agent, text=effect.text,
                                  outcome=effect.outcome, choice=effect.choice, presses=effect.presses)
            except ValueError as exc:
                log.warning("help ticket %s: %s not recorded: %s", effect.ticket_id, effect.action, exc)
        else:
            raise TypeError(f"no executor for {effect!r}")

    def _storage_unavailable(self, effect: Effect, now: datetime) -> None:
        """Answer effects that needed the database so the journey never waits forever; help goes out directly."""
        if isinstance(effect, CommitSession):
            self.post(CommitFailed(effect.payment_id, "storage unavailable"))
        elif isinstance(effect, BeginPayment):
            self.post(PaymentNotStarted("storage unavailable"))
        elif isinstance(effect, OpenHelpTicket):
            ticket = self.uplink.open_help_directly(effect.context, now) if self.uplink is not None else None
            self.post(HelpTicketOpened(ticket) if ticket is not None else HelpTicketFailed("storage unavailable"))
        elif isinstance(effect, RecordHelp) and self.uplink is not None:
            try:
                self.uplink.help_step_directly(effect.ticket_id, effect.action, now, agent=effect.agent, text=effect.text,
                                               outcome=effect.outcome, choice=effect.choice)
            except ValueError as exc:
                log.warning("help ticket %s: %s not sent: %s", effect.ticket_id, effect.action, exc)
