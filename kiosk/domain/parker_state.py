"""What the parker's journey knows: the State, its screens, and the read-only questions screens and the loop ask of it."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kiosk.config import Settings
from kiosk.domain import faults as fault_rules
from kiosk.domain import helpdesk
from kiosk.domain.events import Effect
from kiosk.domain.outage import Outage, ParkingWhileOut
from kiosk.domain.payment import DeclineReason, PaymentPrompt
from kiosk.domain.records import FaultRecord, SessionRecord
from kiosk.domain.service_menu import ServiceMenu
from kiosk.domain.tariff import Quote, is_chargeable, next_chargeable, quote

__all__ = [
    "CANCEL_GRACE_S", "KEYBOARD", "MORE_PAGES", "PAYMENT_GRACE_S", "THANKS_S", "Decline", "FreePeriod", "MorePage",
    "Payment", "Result", "Screen", "State", "blocking_fault", "blocking_impact", "current_quote", "deadline",
    "fault_notices", "free_now", "help_context", "help_shown", "initial", "minute_range", "parking_while_out",
    "plate_valid", "purchase_start", "screen_deadline",
]

KEYBOARD = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
THANKS_S = 4
PAYMENT_GRACE_S = 30
CANCEL_GRACE_S = 15


class MorePage(StrEnum):
    """A page over a screen with what it has no room for: its target is ``more:<value>``."""

    PRICES = "prices"  # Welcome: the tariff in words, where the screen has no room for it
    NOTICES = "notices"  # Welcome: every notice whole, and the app's QR code
    OTHER_WAYS = "other_ways"  # Out of service: what does not fit of the other ways to pay and get help


class Screen(StrEnum):
    """Every screen of the journey."""

    WELCOME = "welcome"
    PLATE = "plate"
    DURATION = "duration"
    PAYING = "paying"
    PAID = "paid"
    DECLINED = "declined"
    FEEDBACK = "feedback"
    THANKS = "thanks"
    OUT_OF_SERVICE = "out_of_service"


MORE_PAGES: dict[Screen, frozenset[MorePage]] = {  # the pages each screen opens
    Screen.WELCOME: frozenset({MorePage.PRICES, MorePage.NOTICES}),
    Screen.OUT_OF_SERVICE: frozenset({MorePage.OTHER_WAYS}),
}


@dataclass(frozen=True)
class Payment:
    """The payment in progress (on whichever payment method took it)."""

    amount: int
    currency: str
    started: datetime
    payment_id: str | None = None
    status_text: str = ""  # the payment method's own words for its last prompt
    prompt: PaymentPrompt | None = None  # what it asks of the parker, in the station's words
    cancelling_since: datetime | None = None
    committing: bool = False

    @property
    def cancelling(self) -> bool:
        """The parker pressed Cancel and the terminal has not confirmed the abort yet."""
        return self.cancelling_since is not None


@dataclass(frozen=True)
class Decline:
    """Why a payment did not go through, for the Declined screen (``result_code``: the method's, opaque)."""

    reason: DeclineReason
    result_code: int
    terminal_text: str = ""


@dataclass(frozen=True)
class State:
    """Everything the journey knows; immutable, replaced on every step."""

    settings: Settings
    entered: datetime
    last_input: datetime
    screen: Screen = Screen.WELCOME
    asleep: bool = False
    warning_since: datetime | None = None
    plate: str = ""
    existing: SessionRecord | None = None
    minutes: int = 0
    payment: Payment | None = None
    session: SessionRecord | None = None
    decline: Decline | None = None
    message: str = ""
    faults: tuple[FaultRecord, ...] = ()
    help: helpdesk.Ticket | None = None
    help_ticket_id: str | None = None  # the parker's latest durable help call: their rating goes to its agent
    language: str = ""
    high_contrast: bool = False
    large_text: bool = False
    more: MorePage | None = None  # a page the parker opened over the screen
    more_part: int = 0  # which part of that page shows (the screens know how many there are)
    next_settings: Settings | None = None
    notice: str = ""
    outage: Outage | None = None  # what staff said of parking meanwhile and the return to service
    payment_methods: tuple[str, ...] = ()  # the names of the station's payment methods (their fault components)
    service: ServiceMenu | None = None  # the technician's menu, over everything while it is open (kiosk.app.service_mode)


Result = tuple[State, tuple[Effect, ...]]


def initial(settings: Settings, now: datetime) -> State:
    """The state at start-up: Welcome, awake."""
    return State(settings=settings, entered=now, last_input=now, language=settings.languages.default)


def blocking_fault(state: State) -> FaultRecord | None:
    """The fault that stops parkers from paying, if any: out of service, or every payment method stopped."""
    return fault_rules.blocking(state.faults, state.payment_methods)


def blocking_impact(state: State) -> fault_rules.ParkerImpact:
    """What the blocking fault means for parkers (out of service when no fault says more).

    With several payment methods, all of them stopped means no payment at all, not only the
    first one's (no card payment, say).
    """
    fault = blocking_fault(state)
    if fault is None:
        return fault_rules.ParkerImpact.OUT_OF_SERVICE
    if fault.parker_impact in fault_rules.METHOD_DOWN and len(state.payment_methods) > 1:
        return fault_rules.ParkerImpact.NO_PAYMENT_METHOD
    return fault_rules.ParkerImpact(fault.parker_impact)


def fault_notices(state: State) -> tuple[FaultRecord, ...]:
    """The faults parkers are told about while they can still pay."""
    return fault_rules.notices(state.faults, state.payment_methods)


def plate_valid(settings: Settings, plate: str) -> bool:
    """True if the plate matches the configured format."""
    return len(plate) <= settings.plate.max_length and re.fullmatch(settings.plate.pattern, plate) is not None


def minute_range(state: State) -> tuple[int, int]:
    """Smallest and largest purchasable minutes now (extensions count the minutes already bought)."""
    tariff = state.settings.tariff_engine
    already = state.existing.minutes if state.existing else 0
    high = (tariff.maximum_minutes - already) // tariff.increment_minutes * tariff.increment_minutes
    low = tariff.minimum_minutes if state.existing is None else tariff.increment_minutes
    return min(low, high), high


@dataclass(frozen=True)
class FreePeriod:
    """Parking is free now: ``until`` the next charged time (None: none within the tariff's search window)."""

    until: datetime | None


def free_now(settings: Settings, now: datetime) -> FreePeriod | None:
    """The free period ``now`` lies in, if any: parkers need not pay before it ends."""
    tariff = settings.tariff_engine
    if is_chargeable(tariff, now):
        return None
    return FreePeriod(next_chargeable(tariff, now))


def purchase_start(state: State, now: datetime) -> datetime:
    """Bought time starts now, or at the end of the session being extended."""
    if state.existing is not None and state.existing.expires > now:
        return state.existing.expires
    return now


def current_quote(state: State, now: datetime) -> Quote | None:
    """Price and expiry of the duration on screen, or None when nothing can be bought."""
    if state.minutes <= 0:
        return None
    return quote(state.settings.tariff_engine, purchase_start(state, now), state.minutes)


def help_shown(state: State) -> bool:
    """The help overlay covers the screen (during a payment it waits until the terminal is done)."""
    return state.help is not None and state.screen is not Screen.PAYING


def deadline(state: State) -> datetime | None:
    """When the state machine next wants a Tick, if ever (the screen's timers rest under the help overlay)."""
    help_due = helpdesk.deadline(state.help, state.settings.timeouts)
    screen_due = None if help_shown(state) else screen_deadline(state)
    if help_due is None or screen_due is None:
        return help_due or screen_due
    return min(help_due, screen_due)


def screen_deadline(state: State) -> datetime | None:
    """When the screen's own timers (sleep, inactivity, payment give-up, Paid, Feedback, a chosen language) want a Tick."""
    t = state.settings.timeouts
    s = state.screen
    if s is Screen.WELCOME:
        return None if state.asleep else state.last_input + timedelta(seconds=t.sleep_s)
    if s in (Screen.PLATE, Screen.DURATION, Screen.DECLINED):
        if state.warning_since is not None:
            return state.warning_since + timedelta(seconds=t.warning_s)
        idle = t.declined_s if s is Screen.DECLINED else t.inactivity_s
        return state.last_input + timedelta(seconds=idle)
    if s is Screen.PAYING and state.payment is not None:
        limit = state.settings.terminal.payment_timeout_s + PAYMENT_GRACE_S
        give_up = state.payment.started + timedelta(seconds=limit)
        if state.payment.cancelling_since is not None:
            return min(give_up, state.payment.cancelling_since + timedelta(seconds=CANCEL_GRACE_S))
        return give_up
    if s is Screen.PAID:
        return state.entered + timedelta(seconds=t.paid_s)
    if s is Screen.FEEDBACK:
        return state.entered + timedelta(seconds=t.feedback_s)
    if s is Screen.THANKS:
        return state.entered + timedelta(seconds=THANKS_S)
    if s is Screen.OUT_OF_SERVICE and _personalised(state):
        return state.last_input + timedelta(seconds=t.inactivity_s)
    return None


def parking_while_out(state: State) -> ParkingWhileOut:
    """Whether parking must be paid while the station is out of service: staff's word, else the configuration's."""
    if state.outage is not None and state.outage.parking is not None:
        return state.outage.parking
    return ParkingWhileOut(state.settings.outage.parking)


def _personalised(state: State) -> bool:
    """True when a parker changed the language, contrast or text size, or opened a page over the screen."""
    return (state.language != state.settings.languages.default or state.high_contrast or state.large_text
            or state.more is not None)


def help_context(state: State) -> dict[str, object]:
    """What an agent needs to know about the parker's situation (sent with the ticket)."""
    last_payment: dict[str, object] | None = None
    if state.session is not None:
        last_payment = {"result": "approved", "plate": state.session.plate,
                        "expires": state.session.expires.isoformat()}
    elif state.decline is not None:
        last_payment = {"result": state.decline.reason}
    elif state.payment is not None:
        last_payment = {"result": "in_progress", "amount": state.payment.amount, "currency": state.payment.currency}
    context: dict[str, object] = {
        "station": state.settings.station.id,
        "zone": state.settings.zone.name,
        "screen": str(state.screen),
        "plate": state.plate,
        "last_payment": last_payment,
        "last_payment_error": dataclasses.asdict(state.decline) if state.decline else None,
        "active_faults": [{"fault": f"{f.component}/{f.code}", "severity": f.severity} for f in state.faults],
    }
    if state.settings.voice.enabled:  # the call comes to this URI, carrying the ticket (docs/help-desk.md)
        context["voice"] = {"uri": state.settings.voice.destination}
    return context
