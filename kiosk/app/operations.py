"""Staff commands on the loop: notice, mode, service, courtesy, journey cancel, restart, menu, terminal, fixed, update."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from kiosk.app.faults import FaultBoard
from kiosk.app.payments import PaymentRouter
from kiosk.domain import journey
from kiosk.domain.events import CourtesyGranted, Event, JourneyCancelled, MethodReport, NoticeChanged, OutageChanged
from kiosk.domain.helpdesk import courtesy_reason_suffix
from kiosk.domain.outage import LATEST_BACK, Outage, ParkingWhileOut, parse_back_at
from kiosk.domain.payment import REQUEST_KINDS
from kiosk.domain.staff import (
    CourtesyArgs,
    Done,
    FixedArgs,
    JourneyCancelArgs,
    ModeArgs,
    NoArgs,
    NoticeArgs,
    Refusal,
    ServiceArgs,
    Signed,
)
from kiosk.domain.update import UpdateArgs
from kiosk.mqtt.contract import time_text
from kiosk.ports import StorageError, Store

__all__ = ["Operations", "ServiceMenuSeat", "UpdateSeat"]

log = logging.getLogger(__name__)


class ServiceMenuSeat(Protocol):
    """The technician's menu as staff commands reach it (kiosk.app.service_mode.ServiceMode)."""

    def command(self, show: bool, now: datetime) -> Done:
        """Staff's ``service-menu``."""

    def mode_set(self, now: datetime) -> None:
        """A ``mode`` command ran (staff's, or the menu's own)."""


class UpdateSeat(Protocol):
    """The station's updater as staff commands reach it (kiosk.app.updater.Updater)."""

    def command(self, args: UpdateArgs, now: datetime, source: str = "staff") -> Done:
        """Staff's ``update``."""


class Operations:
    """Executes validated staff commands against the station; refuses with Refusal what must not run now.

    The MQTT side (parsing, at-most-once, replies, rebirth) stays in kiosk.mqtt.uplink. What a
    command changes while the database is unusable (the notice, the outage) is kept and written
    by ``record_unstored`` once it works again.
    """

    def __init__(self, store: Store, faults: FaultBoard, payment: PaymentRouter,
                 state: Callable[[], journey.State], post: Callable[[Event], None],
                 restart: Callable[[], None], check_door: Callable[[datetime], None],
                 service_menu: ServiceMenuSeat, updater: UpdateSeat | None = None) -> None:
        self._store = store
        self._faults = faults
        self._payment = payment
        self._state = state
        self._post = post
        self._restart = restart
        self._check_door = check_door
        self._service_menu = service_menu
        self._unstored: dict[str, Callable[[Store, datetime], None]] = {}  # what -> its latest write, not yet stored
        self._executors: dict[str, Callable[[Any, datetime], Done]] = {  # command name -> its executor
            "notice": self._notice,
            "mode": self._mode,
            "service": self._service,
            "courtesy": self._courtesy,
            "journey/cancel": self._journey_cancel,
            "restart": self._restart_when_idle,
            "service-menu": lambda args, now: self._service_menu.command(args.show, now),
            "update": self._update,
            "fixed": self._fixed,
        }
        self._updater = updater

    def execute(self, name: str, args: Any, now: datetime) -> Done:
        """Run command ``name`` with its validated ``args``; Refusal if it must not run."""
        executor = self._executors.get(name)
        if executor is None:
            raise Refusal("unknown_command", f"no executor for {name!r}")
        return executor(args, now)

    def ask_payment_method(self, kind: str, request_id: str) -> None:
        """Pass a staff request (status, end of day) to the payment method; it answers with a MethodReport."""
        if self._state().screen is journey.Screen.PAYING:
            raise Refusal("busy", "a parker is paying; try again in a few minutes")
        if kind not in REQUEST_KINDS & self._payment.capabilities:
            self._post(MethodReport(request_id, kind, False, {"error": f"{self._payment.name} has no {kind} request"}))
            return
        self._payment.request(kind, request_id)

    def keep_report(self, event: MethodReport, now: datetime) -> str:
        """Store an end of day's totals; the words to add to the reply ("" when stored or nothing to store)."""
        if not (event.ok and event.kind == "end_of_day" and self._store.usable):
            return ""
        try:
            self._store.record_terminal_report({"kind": "end_of_day", **event.data}, now)
        except StorageError as exc:  # the totals still reach the asker
            self._faults.raise_fault("storage", exc.reason, now, str(exc))
            return f" (not stored: {exc.reason})"
        return ""

    def record_unstored(self, store: Store, now: datetime) -> None:
        """Write what commands set while the database failed (StorageError if it still fails)."""
        for what, write in list(self._unstored.items()):
            write(store, now)
            del self._unstored[what]

    def _keep(self, what: str, write: Callable[[Store, datetime], None], now: datetime) -> None:
        """Write now, or once the database works again (only the latest write of each kind is kept)."""
        if self._store.usable:
            write(self._store, now)
            self._unstored.pop(what, None)
        else:
            self._unstored[what] = write

    def _notice(self, args: NoticeArgs, now: datetime) -> Done:
        self._keep("notice", lambda store, at: store.set_notice(args.text, at), now)
        self._post(NoticeChanged(args.text or ""))
        return Done("notice cleared" if args.text is None else "notice shown to parkers")

    def _mode(self, args: ModeArgs, now: datetime) -> Done:
        back_at = None if args.back_at is None else parse_back_at(args.back_at)
        if back_at is not None and back_at - now > LATEST_BACK:
            raise Refusal("bad_arguments", f"back_at: more than {LATEST_BACK.days} days ahead")
        if args.mode == "normal":
            self._faults.clear_fault("operator", now)
        else:
            self._faults.raise_fault("operator", args.mode, now, args.reason or "")
        outage = None if args.mode == "normal" else Outage(
            None if args.parking is None else ParkingWhileOut(args.parking), back_at)
        self._keep("outage", lambda store, at: store.set_outage(outage, at), now)
        self._post(OutageChanged(outage))
        self._check_door(now)  # always: a tamper alarm kept from before a restart is decided on again
        self._service_menu.mode_set(now)  # a mode staff set is theirs: the menu gives nothing back over it
        return Done(f"mode {args.mode}", {"mode": args.mode})

    def _service(self, signed: Signed[ServiceArgs], now: datetime) -> Done:
        """A crew member's service mode: ``mode service`` on, ``mode normal`` off, and only over their own kind of mode.

        Staff's out of service stays theirs (what parkers were told too), and a station in
        service mode already keeps what staff told parkers.
        """
        operator = self._faults.get("operator")
        mode = None if operator is None else operator.code
        if mode == "out_of_service":
            raise Refusal("wrong_mode", "the station is out of service by staff; only staff can change that")
        if signed.args.on:
            if mode == "service":
                self._service_menu.mode_set(now)  # theirs now: a service menu that opened it gives nothing back
                return Done("already in service mode; what parkers were told stays", {"mode": "service"})
            return self._mode(ModeArgs("service", f"service by crew {signed.by}"), now)
        if mode != "service":
            raise Refusal("wrong_mode", "the station is not in service mode")
        return self._mode(ModeArgs("normal"), now)

    def _courtesy(self, args: CourtesyArgs, now: datetime) -> Done:
        """Free parking for a plate, after the session it already has (however the agent spelled the plate)."""
        settings = self._state().settings
        if not journey.plate_valid(settings, args.plate):
            raise Refusal("bad_arguments", f"plate: {args.plate!r} does not match this station's plate format")
        if not self._store.usable:
            raise Refusal("unavailable", "the station's database is not usable")
        current = self._store.active_session(args.plate, settings.zone.name, now,
                                             look_alikes=settings.plate.look_alikes)
        starts = now if current is None else current.expires
        plate = args.plate if current is None else current.plate  # one spelling for enforcement
        expires = starts + timedelta(minutes=args.minutes)
        reason = f"granted by staff: {args.reason}"
        if args.ticket is not None:
            reason += courtesy_reason_suffix(args.ticket)
        session = self._store.grant_courtesy_session(plate, settings.zone.name, args.minutes, starts, expires,
                                                     reason, now)
        if args.ticket is not None:
            self._post(CourtesyGranted(args.ticket, plate, expires))
        after = "" if current is None else f", after its session until {time_text(current.expires)}"
        return Done(f"free parking for {plate} until {time_text(expires)}{after}",
                    {"session": session.id, "expires": time_text(expires)})

    def _journey_cancel(self, args: JourneyCancelArgs, now: datetime) -> Done:
        state = self._state()
        if state.screen is journey.Screen.PAYING:
            raise Refusal("busy", "the parker is paying; a payment is never interrupted")
        call = state.help
        if args.ticket is not None and (call is None or call.id != args.ticket or not call.open):
            raise Refusal("bad_arguments", f"ticket: {args.ticket} is not the call on screen; the parker left")
        self._post(JourneyCancelled(args.reason, args.ticket))
        return Done("the parker's journey ended; Welcome is shown")

    def _fixed(self, signed: Signed[FixedArgs], now: datetime) -> Done:
        """A crew member's "fixed" note: stored in the fault history with the fault it notes, and published."""
        args = signed.args
        if not self._faults.knows(args.component):
            raise Refusal("bad_arguments", f"component: {args.component!r} is no fault component of this station")
        if not self._store.usable:
            raise Refusal("unavailable", "the station's database is not usable; the note needs the fault history")
        note = self._store.note_repair(args.component, args.note, signed.by, now)
        if note.code is None:
            detail = f"note recorded; {note.component} has no fault on record"
        else:
            detail = f"note recorded on {note.component}/{note.code}, {'still active' if note.fault_active else 'cleared'}"
        return Done(detail,
                    {"fault_active": note.fault_active, "recorded_at": time_text(note.created)})

    def _update(self, args: UpdateArgs, now: datetime) -> Done:
        if self._updater is None:
            raise Refusal("not_supported", "this station runs without its updater (not installed as releases)")
        return self._updater.command(args, now)

    def _restart_when_idle(self, args: NoArgs, now: datetime) -> Done:
        self._restart()
        return Done("restarting as soon as no parker is being served")
