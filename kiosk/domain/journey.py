"""The parker's journey as a pure state machine: step(state, event, now) -> (state, effects)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypedDict, Unpack

from kiosk.domain import helpdesk
from kiosk.domain.events import (
    AgentSays,
    BeginPayment,
    CallOffered,
    CallProgress,
    CancelPayment,
    CommitFailed,
    CommitSession,
    ConfirmPayment,
    CourtesyGranted,
    Effect,
    Event,
    FailPayment,
    FaultsChanged,
    HelpPressed,
    HelpReleased,
    HelpTicketFailed,
    HelpTicketOpened,
    Ignored,
    JourneyCancelled,
    LookupSession,
    NoticeChanged,
    OutageChanged,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentNotStarted,
    PaymentPending,
    PaymentStatus,
    RefuseCall,
    SaveFeedback,
    SessionCommitted,
    SessionLookedUp,
    SettingsChanged,
    Tap,
    Tick,
)
from kiosk.domain.parker_state import (
    CANCEL_GRACE_S,
    KEYBOARD,
    MORE_PAGES,
    PAYMENT_GRACE_S,
    THANKS_S,
    Decline,
    FreePeriod,
    MorePage,
    Payment,
    Result,
    Screen,
    State,
    blocking_fault,
    blocking_impact,
    current_quote,
    deadline,
    fault_notices,
    free_now,
    help_context,
    help_shown,
    initial,
    minute_range,
    parking_while_out,
    plate_valid,
    purchase_start,
    screen_deadline,
)
from kiosk.domain.payment import ABANDONED_CODE, NO_CODE, DeclineReason
from kiosk.domain.records import PaymentState, SessionRecord
from kiosk.domain.tariff import clamp_minutes

__all__ = [  # the journey's state and queries live in parker_state; they are part of this surface too
    "CANCEL_GRACE_S", "KEYBOARD", "MORE_PAGES", "PAYMENT_GRACE_S", "THANKS_S", "Decline", "FreePeriod", "MorePage",
    "Payment", "Result", "Screen", "State", "blocking_fault", "blocking_impact", "current_quote", "deadline",
    "fault_notices", "free_now", "help_context", "help_shown", "initial", "minute_range", "parking_while_out",
    "plate_valid", "purchase_start", "step",
]

def step(state: State, event: Event, now: datetime) -> Result:
    """Apply one event at time `now`; return the new state and the effects to run."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return _ignore(state, event, "unknown event type")
    state, effects = handler(state, event, now)
    return _place_call(state, effects, now)


def _place_call(state: State, effects: tuple[Effect, ...], now: datetime) -> Result:
    """Dial the voice call a press asked for once its ticket is durable and on screen (never during a payment)."""
    voice = state.settings.voice
    if not voice.enabled or state.help is None or not state.help.wants_call or not help_shown(state):
        return state, effects
    state, placed = _with_help(state, helpdesk.dial(state.help, voice.ring_timeout_s, now), now)
    return state, effects + placed


# ---- helpers ----


def _ignore(state: State, event: object, reason: str) -> Result:
    return state, (Ignored(event, f"{reason} (screen {state.screen})"),)


class _Entering(TypedDict, total=False):
    """What may change with the screen as the journey enters it (see _go)."""

    plate: str
    existing: SessionRecord | None
    minutes: int
    payment: Payment | None
    session: SessionRecord | None
    decline: Decline | None
    message: str
    last_input: datetime


def _go(state: State, screen: Screen, now: datetime, **changes: Unpack[_Entering]) -> State:
    """Enter a screen: its timers start now and the previous screen's message goes."""
    changes.setdefault("message", "")
    return replace(state, screen=screen, entered=now, warning_since=None, more=None, more_part=0, **changes)


def _reset(state: State, now: datetime) -> State:
    """End the parker's session: forget plate and choices (privacy), apply new settings.

    A help call still going on stays, with the parker who is on it (their rating may follow).
    """
    settings = state.next_settings or state.settings
    fresh = initial(settings, now)
    fresh = replace(fresh, faults=state.faults, help=state.help, help_ticket_id=_call_going_on(state),
                    notice=state.notice, outage=state.outage,
                    payment_methods=state.payment_methods, service=state.service)
    if blocking_fault(fresh):
        return replace(fresh, screen=Screen.OUT_OF_SERVICE)
    return fresh


def _call_going_on(state: State) -> str | None:
    """The durable id of the help call on the station now, if any (it belongs to the parker there)."""
    return state.help.id if state.help else None


def _with_help(state: State, result: helpdesk.Result, now: datetime) -> Result:
    """Take the help desk's answer; when the call ends, the screen's timers start afresh.

    The journey keeps the id of its latest durable ticket after the call, for the parker's rating.
    """
    ticket, effects = result
    latest = (ticket.id if ticket else None) or _call_going_on(state) or state.help_ticket_id
    if ticket is None and state.help is not None:
        return replace(state, help=None, help_ticket_id=latest, last_input=now, entered=now, warning_since=None), effects
    return replace(state, help=ticket, help_ticket_id=latest), effects


# ---- taps ----


def _on_tap(state: State, event: Tap, now: datetime) -> Result:
    if help_shown(state):
        return _tap_help(state, event, now)
    if state.asleep:
        return replace(state, asleep=False, last_input=now), ()
    if state.warning_since is not None:
        return replace(state, warning_since=None, last_input=now), ()
    touched = replace(state, last_input=now)
    if state.more is not None:  # a page over the screen: it turns over and closes
        if event.target == "more:close":
            return replace(touched, more=None, more_part=0), ()
        if event.target == "more:next":
            return replace(touched, more_part=state.more_part + 1), ()
        return _ignore(state, event, "a page is showing over the screen")
    handler = _TAPS.get(state.screen)
    if handler is None:
        return _ignore(state, event, "no targets")
    return handler(touched, event.target, now, event)


def _tap_help(state: State, event: Tap, now: datetime) -> Result:
    ticket = state.help
    assert ticket is not None
    touched = replace(state, asleep=False)
    if event.target == "help:cancel":
        return _with_help(touched, helpdesk.cancel(ticket, now), now)
    if event.target == "help:ok":
        return _with_help(touched, helpdesk.dismiss(ticket), now)
    if event.target == "help:wait":
        return _with_help(touched, helpdesk.keep_waiting(ticket, state.settings.timeouts, now), now)
    if event.target.startswith("help:reply:"):
        return _with_help(touched, helpdesk.reply(ticket, event.target[len("help:reply:"):], now), now)
    return _ignore(state, event, "help overlay is showing")


def _tap_welcome(state: State, target: str, now: datetime, event: Tap) -> Result:
    if target == "start":
        return _go(state, Screen.PLATE, now, plate=""), ()
    if target == "help":
        return _on_help(state, HelpPressed(), now)
    return _reading(state, target, event)


def _reading(state: State, target: str, event: Tap) -> Result:
    """The parker's reading choices (language, high contrast, large text) and the pages over the screen."""
    page = target.removeprefix("more:")
    if target.startswith("more:") and page in MORE_PAGES.get(state.screen, ()):
        return replace(state, more=MorePage(page), more_part=0), ()
    if target == "contrast":
        return replace(state, high_contrast=not state.high_contrast), ()
    if target == "large_text":
        return replace(state, large_text=not state.large_text), ()
    if target.startswith("lang:") and target[5:] in state.settings.languages.available:
        return replace(state, language=target[5:]), ()
    return _ignore(state, event, "unknown target")


def _default_reading(state: State) -> State:
    """The station's own language and look, for the next parker, who has no help call of their own yet."""
    return replace(state, language=state.settings.languages.default, high_contrast=False, large_text=False, more=None,
                   more_part=0, help_ticket_id=_call_going_on(state))


def _tap_plate(state: State, target: str, now: datetime, event: Tap) -> Result:
    if target.startswith("key:") and target[4:] in KEYBOARD:
        if len(state.plate) >= state.settings.plate.max_length:
            return replace(state, message="plate_too_long"), ()
        return replace(state, plate=state.plate + target[4:], message=""), ()
    if target == "backspace":
        return replace(state, plate=state.plate[:-1], message=""), ()
    if target == "clear":
        return replace(state, plate="", message=""), ()
    if target == "continue":
        if not plate_valid(state.settings, state.plate):
            return replace(state, message="plate_invalid"), ()
        return state, (LookupSession(state.plate, state.settings.zone.name, state.settings.plate.look_alikes),)
    if target == "cancel":
        return _reset(state, now), ()
    if target == "help":
        return _on_help(state, HelpPressed(), now)
    return _ignore(state, event, "unknown target")


def _tap_duration(state: State, target: str, now: datetime, event: Tap) -> Result:
    low, high = minute_range(state)
    step_minutes = state.settings.tariff_engine.increment_minutes
    if target == "plus":
        return replace(state, minutes=min(state.minutes + step_minutes, high)), ()
    if target == "minus":
        return replace(state, minutes=max(state.minutes - step_minutes, low)), ()
    if target.startswith("pick:") and target[5:].isdigit() and low <= int(target[5:]) <= high:
        return replace(state, minutes=int(target[5:])), ()
    if target == "pay":
        return _begin_payment(state, now)
    if target == "back":
        return _go(state, Screen.PLATE, now, existing=None, minutes=0), ()
    if target == "cancel":
        return _reset(state, now), ()
    if target == "help":
        return _on_help(state, HelpPressed(), now)
    return _ignore(state, event, "unknown target")


def _begin_payment(state: State, now: datetime) -> Result:
    q = current_quote(state, now)
    if q is None or q.price <= 0:
        return replace(state, message="nothing_to_pay"), ()
    existing = state.existing
    minutes = q.minutes + (existing.minutes if existing else 0)
    starts = existing.starts if existing else q.starts
    tariff = state.settings.tariff_engine
    payment = Payment(amount=q.price, currency=tariff.currency, started=now)
    effect = BeginPayment(
        plate=state.plate, zone=state.settings.zone.name, amount=q.price, currency=tariff.currency,
        minutes=minutes, starts=starts, expires=q.expires, extends_id=existing.id if existing else None,
    )
    return _go(state, Screen.PAYING, now, payment=payment, decline=None), (effect,)


def _tap_paying(state: State, target: str, now: datetime, event: Tap) -> Result:
    payment = state.payment
    if target != "cancel" or payment is None:
        return _ignore(state, event, "only Cancel works during payment")
    if payment.cancelling or payment.committing:
        return _ignore(state, event, "payment is already ending")
    return replace(state, payment=replace(payment, cancelling_since=now)), (CancelPayment(),)


def _tap_paid(state: State, target: str, now: datetime, event: Tap) -> Result:
    if target == "done":
        return _go(state, Screen.FEEDBACK, now), ()
    return _ignore(state, event, "unknown target")


def _tap_declined(state: State, target: str, now: datetime, event: Tap) -> Result:
    if target in ("retry", "change") and blocking_fault(state):
        return _reset(state, now), ()
    if target == "retry":
        return _begin_payment(state, now)
    if target == "change":
        return _go(state, Screen.DURATION, now), ()
    if target == "done":
        return _reset(state, now), ()
    if target == "help":
        return _on_help(state, HelpPressed(), now)
    return _ignore(state, event, "unknown target")


def _tap_feedback(state: State, target: str, now: datetime, event: Tap) -> Result:
    if target.startswith("rate:") and target[5:] in ("1", "2", "3", "4", "5"):
        session_id = state.session.id if state.session else None
        return _go(state, Screen.THANKS, now), (SaveFeedback(int(target[5:]), session_id, state.help_ticket_id),)
    if target == "skip":
        return _reset(state, now), ()
    return _ignore(state, event, "unknown target")


def _tap_thanks(state: State, target: str, now: datetime, event: Tap) -> Result:
    return _reset(state, now), ()


def _tap_out_of_service(state: State, target: str, now: datetime, event: Tap) -> Result:
    if target == "help":
        return _on_help(state, HelpPressed(), now)
    return _reading(state, target, event)


_TAPS = {
    Screen.WELCOME: _tap_welcome,
    Screen.PLATE: _tap_plate,
    Screen.DURATION: _tap_duration,
    Screen.PAYING: _tap_paying,
    Screen.PAID: _tap_paid,
    Screen.DECLINED: _tap_declined,
    Screen.FEEDBACK: _tap_feedback,
    Screen.THANKS: _tap_thanks,
    Screen.OUT_OF_SERVICE: _tap_out_of_service,
}

# ---- other events ----


def _on_tick(state: State, event: Tick, now: datetime) -> Result:
    help_effects: tuple[Effect, ...] = ()
    help_due = helpdesk.deadline(state.help, state.settings.timeouts)
    if help_due is not None and now >= help_due:
        state, help_effects = _with_help(state, helpdesk.tick(state.help, state.settings.timeouts, now), now)
    due = None if help_shown(state) else screen_deadline(state)
    if due is None or now < due:
        return state, help_effects
    state, effects = _screen_tick(state, now)
    return state, help_effects + effects


def _screen_tick(state: State, now: datetime) -> Result:
    s = state.screen
    if s is Screen.WELCOME:  # the next parker finds the station in its own language and look
        return replace(_default_reading(state), asleep=True), ()
    if s in (Screen.PLATE, Screen.DURATION, Screen.DECLINED):
        if state.warning_since is None:
            return replace(state, warning_since=now), ()
        return _reset(state, now), ()
    if s is Screen.PAYING:
        return _payment_timed_out(state, now)
    if s is Screen.OUT_OF_SERVICE:  # the parker who chose a language has left: the next one finds the default
        return _default_reading(state), ()
    return _reset(state, now), ()


def _payment_timed_out(state: State, now: datetime) -> Result:
    payment = state.payment
    assert payment is not None
    effects: list[Effect] = [] if payment.cancelling else [CancelPayment()]
    if payment.payment_id is not None:
        effects.append(FailPayment(payment.payment_id, PaymentState.REVERSED, ABANDONED_CODE))
    if payment.cancelling:
        return _go(state, Screen.DURATION, now, payment=None, message="cancelled_not_charged",
                   last_input=now), tuple(effects)
    decline = Decline(DeclineReason.NO_ANSWER, ABANDONED_CODE)
    return _go(state, Screen.DECLINED, now, payment=None, decline=decline, last_input=now), tuple(effects)


def _current_payment(state: State, payment_id: str) -> Payment | None:
    payment = state.payment
    if state.screen is Screen.PAYING and payment is not None and payment.payment_id == payment_id:
        return payment
    return None


def _on_session_looked_up(state: State, event: SessionLookedUp, now: datetime) -> Result:
    if state.screen is not Screen.PLATE or event.plate != state.plate:
        return _ignore(state, event, "lookup answer for another plate or screen")
    looked = replace(state, existing=event.session)
    low, high = minute_range(looked)
    minutes = clamp_minutes(state.settings.tariff_engine, low) if high > 0 else 0
    message = "" if high > 0 else "max_stay_reached"
    return _go(looked, Screen.DURATION, now, minutes=min(minutes, high), message=message), ()


def _on_payment_pending(state: State, event: PaymentPending, now: datetime) -> Result:
    payment = state.payment
    if state.screen is not Screen.PAYING or payment is None or payment.payment_id is not None:
        return state, (ConfirmPayment(event.payment_id, False), FailPayment(event.payment_id, PaymentState.REVERSED,
                                                                            ABANDONED_CODE))
    return replace(state, payment=replace(payment, payment_id=event.payment_id)), ()


def _on_payment_not_started(state: State, event: PaymentNotStarted, now: datetime) -> Result:
    payment = state.payment
    if state.screen is not Screen.PAYING or payment is None or payment.payment_id is not None:
        return _ignore(state, event, "no payment being started")
    decline = Decline(DeclineReason.NOT_STORED, NO_CODE, event.reason)
    return _go(state, Screen.DECLINED, now, payment=None, decline=decline, last_input=now), ()


def _on_terminal_status(state: State, event: PaymentStatus, now: datetime) -> Result:
    payment = _current_payment(state, event.payment_id)
    if payment is None:
        return _ignore(state, event, "status for no current payment")
    return replace(state, payment=replace(payment, status_text=event.text, prompt=event.prompt)), ()


def _on_authorized(state: State, event: PaymentAuthorized, now: datetime) -> Result:
    payment = _current_payment(state, event.payment_id)
    if payment is None:
        # Approved after we gave up on it: refuse so that the terminal reverses it.
        return state, (ConfirmPayment(event.payment_id, False),)
    if payment.cancelling:
        refused = (ConfirmPayment(event.payment_id, False), FailPayment(event.payment_id, PaymentState.REVERSED,
                                                                        ABANDONED_CODE))
        return _go(state, Screen.DURATION, now, payment=None, message="cancelled_not_charged", last_input=now), refused
    return replace(state, payment=replace(payment, committing=True)), (CommitSession(event.payment_id, event.result),)


def _on_committed(state: State, event: SessionCommitted, now: datetime) -> Result:
    if _current_payment(state, event.payment_id) is None:
        return _ignore(state, event, "commit for no current payment")
    confirm = ConfirmPayment(event.payment_id, True)
    return _go(state, Screen.PAID, now, payment=None, session=event.session), (confirm,)


def _on_commit_failed(state: State, event: CommitFailed, now: datetime) -> Result:
    if _current_payment(state, event.payment_id) is None:
        return _ignore(state, event, "commit failure for no current payment")
    effects = (ConfirmPayment(event.payment_id, False), FailPayment(event.payment_id, PaymentState.REVERSED, NO_CODE))
    decline = Decline(DeclineReason.NOT_STORED, NO_CODE, event.reason)
    return _go(state, Screen.DECLINED, now, payment=None, decline=decline, last_input=now), effects


def _on_declined(state: State, event: PaymentDeclined, now: datetime) -> Result:
    payment = _current_payment(state, event.payment_id)
    if payment is None:
        return _ignore(state, event, "decline for no current payment")
    failed = (FailPayment(event.payment_id, PaymentState.DECLINED, event.result_code),)
    if payment.cancelling:
        return _go(state, Screen.DURATION, now, payment=None, message="cancelled_not_charged", last_input=now), failed
    decline = Decline(event.reason, event.result_code, event.text)
    return _go(state, Screen.DECLINED, now, payment=None, decline=decline, last_input=now), failed


def _on_help(state: State, event: HelpPressed, now: datetime) -> Result:
    awake = replace(state, asleep=False, last_input=now)
    return _with_help(awake, helpdesk.press(state.help, help_context(state), state.settings.timeouts, now), now)


def _on_help_released(state: State, event: HelpReleased, now: datetime) -> Result:
    return state, ()


def _on_ticket_opened(state: State, event: HelpTicketOpened, now: datetime) -> Result:
    return _with_help(state, helpdesk.opened(state.help, event.ticket_id), now)


def _on_ticket_failed(state: State, event: HelpTicketFailed, now: datetime) -> Result:
    return _with_help(state, helpdesk.failed(state.help, now), now)


def _on_agent(state: State, event: AgentSays, now: datetime) -> Result:
    return _with_help(state, helpdesk.from_agent(state.help, event, now), now)


def _on_courtesy(state: State, event: CourtesyGranted, now: datetime) -> Result:
    return _with_help(state, helpdesk.courtesy(state.help, event, now), now)


def _on_call_progress(state: State, event: CallProgress, now: datetime) -> Result:
    return _with_help(state, helpdesk.call_progress(state.help, event, now), now)


def _on_call_offered(state: State, event: CallOffered, now: datetime) -> Result:
    voice = state.settings.voice
    if not voice.enabled:
        return state, (RefuseCall(event.call_id, "voice is off"),)
    return _with_help(state, helpdesk.offered(state.help, event, voice.callback_from, help_shown(state),
                                              voice.ring_timeout_s, now), now)


def _on_journey_cancelled(state: State, event: JourneyCancelled, now: datetime) -> Result:
    if state.screen is Screen.PAYING:
        return _ignore(state, event, "a payment is in progress")
    if event.ticket is not None and (state.help is None or state.help.id != event.ticket or not state.help.open):
        return _ignore(state, event, "for a help call that is no longer on screen")
    return _reset(state, now), ()


def _on_faults(state: State, event: FaultsChanged, now: datetime) -> Result:
    updated = replace(state, faults=event.faults)
    blocked = blocking_fault(updated) is not None
    if blocked and state.screen in (Screen.WELCOME, Screen.PLATE, Screen.DURATION, Screen.DECLINED, Screen.THANKS):
        return _go(updated, Screen.OUT_OF_SERVICE, now, plate="", existing=None, minutes=0), ()
    if not blocked and state.screen is Screen.OUT_OF_SERVICE:
        return _reset(updated, now), ()
    return updated, ()


def _on_settings(state: State, event: SettingsChanged, now: datetime) -> Result:
    if state.screen in (Screen.WELCOME, Screen.OUT_OF_SERVICE):
        return replace(_reset(replace(state, next_settings=event.settings), now), asleep=state.asleep), ()
    return replace(state, next_settings=event.settings), ()


def _on_notice(state: State, event: NoticeChanged, now: datetime) -> Result:
    return replace(state, notice=event.text), ()


def _on_outage(state: State, event: OutageChanged, now: datetime) -> Result:
    return replace(state, outage=event.outage), ()


_HANDLERS: dict[type, Callable[[State, Any, datetime], Result]] = {
    Tap: _on_tap,
    Tick: _on_tick,
    SessionLookedUp: _on_session_looked_up,
    PaymentPending: _on_payment_pending,
    PaymentNotStarted: _on_payment_not_started,
    PaymentStatus: _on_terminal_status,
    PaymentAuthorized: _on_authorized,
    SessionCommitted: _on_committed,
    CommitFailed: _on_commit_failed,
    PaymentDeclined: _on_declined,
    HelpPressed: _on_help,
    HelpReleased: _on_help_released,
    HelpTicketOpened: _on_ticket_opened,
    HelpTicketFailed: _on_ticket_failed,
    AgentSays: _on_agent,
    CallProgress: _on_call_progress,
    CallOffered: _on_call_offered,
    CourtesyGranted: _on_courtesy,
    JourneyCancelled: _on_journey_cancelled,
    FaultsChanged: _on_faults,
    SettingsChanged: _on_settings,
    NoticeChanged: _on_notice,
    OutageChanged: _on_outage,
}
