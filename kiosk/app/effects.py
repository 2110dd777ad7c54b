"""Effect executors: what the journey's effects do to the store, the payment method and the help desk, from a table."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kiosk import crashpoints
from kiosk.app.faults import FaultBoard
from kiosk.app.payments import PaymentRouter
from kiosk.domain.events import (
    AnswerCall,
    BeginPayment,
    CallProgress,
    CancelPayment,
    CommitFailed,
    CommitSession,
    ConfirmPayment,
    Effect,
    EndCall,
    Event,
    FailPayment,
    HelpTicketFailed,
    HelpTicketOpened,
    Ignored,
    LookupSession,
    OpenHelpTicket,
    PaymentNotStarted,
    PaymentPending,
    PlaceCall,
    RecordHelp,
    RefuseCall,
    SaveFeedback,
    SessionCommitted,
    SessionLookedUp,
)
from kiosk.domain.helpdesk import HelpAction
from kiosk.domain.refusals import Refused
from kiosk.domain.voice import CallPhase, FailReason
from kiosk.ports import Intercom, StorageError, Store, Uplink

__all__ = ["EffectRunner"]

log = logging.getLogger(__name__)

Executor = Callable[[Any, datetime], None]


class EffectRunner:
    """Runs each effect the journey returns; every effect type has one executor, and one answer without a database.

    Effects that need the database and cannot have it are answered so that the journey never
    waits forever: a payment is not started, a session commit fails, help goes out directly.
    """

    def __init__(self, store: Store, payment: PaymentRouter, faults: FaultBoard,
                 post: Callable[[Event], None], direct_help: Uplink | None, intercom: Intercom | None = None) -> None:
        self._store = store
        self._payment = payment
        self._faults = faults
        self._post = post
        self._direct_help = direct_help
        self._intercom = intercom
        self._device: dict[type, Executor] = {
            Ignored: self._ignored,
            CancelPayment: self._cancel_payment,
            ConfirmPayment: self._confirm_payment,
            PlaceCall: self._place_call,
            EndCall: self._end_call,
            AnswerCall: self._answer_call,
            RefuseCall: self._refuse_call,
        }
        self._stored: dict[type, Executor] = {
            LookupSession: self._lookup_session,
            BeginPayment: self._begin_payment,
            CommitSession: self._commit_session,
            FailPayment: self._fail_payment,
            SaveFeedback: self._save_feedback,
            OpenHelpTicket: self._open_help_ticket,
            RecordHelp: self._record_help,
        }
        self._unstored: dict[type, Executor] = {
            CommitSession: self._commit_unstored,
            BeginPayment: self._begin_unstored,
            OpenHelpTicket: self._open_help_unstored,
            RecordHelp: self._record_help_unstored,
        }

    def run(self, effect: Effect, now: datetime) -> None:
        """Execute one effect; a failing database raises the storage fault and answers the effect without it."""
        device = self._device.get(type(effect))
        if device is not None:
            device(effect, now)
            return
        if type(effect) not in self._stored:
            raise TypeError(f"no executor for {effect!r}")
        if not self._store.usable or self._held_directly(effect):
            if not self._store.usable:
                log.error("%s without a usable database", type(effect).__name__)
            self._without_store(effect, now)
            return
        try:
            self._stored[type(effect)](effect, now)
        except StorageError as exc:
            self._faults.raise_fault("storage", exc.reason, now, str(exc))
            self._without_store(effect, now)

    def _held_directly(self, effect: Effect) -> bool:
        """A step of a help call that was opened without the database stays on that path to its end."""
        return (isinstance(effect, RecordHelp) and self._direct_help is not None
                and self._direct_help.holds_directly(effect.ticket_id))

    def _without_store(self, effect: Effect, now: datetime) -> None:
        executor = self._unstored.get(type(effect))
        if executor is not None:
            executor(effect, now)

    # ---- effects on devices ----

    def _ignored(self, effect: Ignored, now: datetime) -> None:
        log.info("ignored %s: %s", type(effect.event).__name__, effect.reason)

    def _cancel_payment(self, effect: CancelPayment, now: datetime) -> None:
        self._payment.cancel_payment()

    def _confirm_payment(self, effect: ConfirmPayment, now: datetime) -> None:
        self._payment.confirm_payment(effect.payment_id, effect.accept)

    def _place_call(self, effect: PlaceCall, now: datetime) -> None:
        if self._intercom is None:  # voice enabled in settings the station was not built with: tell, go on as text
            log.error("help ticket %s: no intercom to call with", effect.ticket_id)
            self._post(CallProgress(effect.ticket_id, CallPhase.FAILED, reason=FailReason.UNREACHABLE))
            return
        self._intercom.dial(effect.ticket_id)

    def _end_call(self, effect: EndCall, now: datetime) -> None:
        if self._intercom is not None:
            self._intercom.hang_up(effect.ticket_id)

    def _answer_call(self, effect: AnswerCall, now: datetime) -> None:
        if self._intercom is None:
            self._post(CallProgress(effect.ticket_id, CallPhase.FAILED, reason=FailReason.UNREACHABLE))
            return
        self._intercom.answer(effect.ticket_id, effect.call_id)

    def _refuse_call(self, effect: RefuseCall, now: datetime) -> None:
        log.warning("incoming call %s refused: %s", effect.call_id, effect.reason)
        if self._intercom is not None:
            self._intercom.refuse(effect.call_id)

    # ---- effects on the database ----

    def _lookup_session(self, effect: LookupSession, now: datetime) -> None:
        found = self._store.active_session(effect.plate, effect.zone, now, look_alikes=effect.look_alikes)
        self._post(SessionLookedUp(effect.plate, found))

    def _begin_payment(self, effect: BeginPayment, now: datetime) -> None:
        method = self._payment.choose()
        record = self._store.begin_payment(effect.plate, effect.zone, effect.amount, effect.currency, effect.minutes,
                                           effect.starts, effect.expires, effect.extends_id, now, method=method.name)
        self._post(PaymentPending(record.id))
        self._payment.start_payment(record.id, effect.amount, effect.currency, method)

    def _commit_session(self, effect: CommitSession, now: datetime) -> None:
        crashpoints.reached("payment.approved")
        session = self._store.commit_paid_session(effect.payment_id, effect.result, now)
        crashpoints.reached("payment.committed")
        self._post(SessionCommitted(effect.payment_id, session))

    def _fail_payment(self, effect: FailPayment, now: datetime) -> None:
        try:
            self._store.fail_payment(effect.payment_id, effect.state, effect.result_code, now)
        except Refused as exc:
            log.warning("payment %s not marked %s: %s", effect.payment_id, effect.state, exc)

    def _save_feedback(self, effect: SaveFeedback, now: datetime) -> None:
        self._store.save_feedback(effect.rating, effect.session_id, effect.ticket_id, now)

    def _open_help_ticket(self, effect: OpenHelpTicket, now: datetime) -> None:
        self._post(HelpTicketOpened(self._store.open_help_ticket(effect.context, now)))
        if self._direct_help is not None:
            self._direct_help.help_stored()

    def _record_help(self, effect: RecordHelp, now: datetime) -> None:
        try:
            self._store.record_help(effect.ticket_id, effect.action, now, agent=effect.agent, text=effect.text,
                                    outcome=effect.outcome, choice=effect.choice, presses=effect.presses,
                                    call=effect.call)
        except Refused as exc:
            log.warning("help ticket %s: %s not recorded: %s", effect.ticket_id, effect.action, exc)

    # ---- the same effects without a usable database ----

    def _commit_unstored(self, effect: CommitSession, now: datetime) -> None:
        self._post(CommitFailed(effect.payment_id, "storage unavailable"))

    def _begin_unstored(self, effect: BeginPayment, now: datetime) -> None:
        self._post(PaymentNotStarted("storage unavailable"))

    def _open_help_unstored(self, effect: OpenHelpTicket, now: datetime) -> None:
        ticket = self._direct_help.open_help_directly(effect.context, now) if self._direct_help is not None else None
        self._post(HelpTicketOpened(ticket) if ticket is not None else HelpTicketFailed("storage unavailable"))

    def _record_help_unstored(self, effect: RecordHelp, now: datetime) -> None:
        if self._direct_help is None or effect.action == HelpAction.CALL:  # a call held in memory has no voice record
            return
        try:
            self._direct_help.help_step_directly(effect.ticket_id, effect.action, now, agent=effect.agent,
                                                 text=effect.text, outcome=effect.outcome, choice=effect.choice)
        except Refused as exc:
            log.warning("help ticket %s: %s not sent: %s", effect.ticket_id, effect.action, exc)
