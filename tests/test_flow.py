"""Journey state machine: every transition, timeouts, and illegal events in every state."""
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.config import Settings
from kiosk.domain import helpdesk, journey
from kiosk.domain.events import (
    AgentSays,
    BeginPayment,
    CancelPayment,
    CommitFailed,
    CommitSession,
    ConfirmPayment,
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
    OpenHelpTicket,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentNotStarted,
    PaymentPending,
    PaymentStatus,
    RecordHelp,
    SaveFeedback,
    SessionCommitted,
    SessionLookedUp,
    SettingsChanged,
    Tap,
    Tick,
)
from kiosk.domain.journey import Screen
from kiosk.domain.payment import DeclineReason
from kiosk.domain.records import FaultRecord, PaymentResultData, SessionRecord

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=BERLIN).astimezone(UTC)  # a Monday, 2.00 EUR/h band
SETTINGS = Settings()
RESULT = PaymentResultData(0, "Visa", "411111******1111", "123456", "0001", "000001")


def session(plate: str = "AB123", minutes: int = 60, expires: datetime | None = None) -> SessionRecord:
    expires = expires or NOW + timedelta(minutes=minutes)
    return SessionRecord("s1", plate, SETTINGS.zone.name, NOW, expires, minutes, 200, "EUR", "paid", "p1", None, NOW)


def fault(impact: str) -> FaultRecord:
    return FaultRecord("storage", "full", "critical", "disk full", impact, NOW)


def run(state: journey.State, *events: object, now: datetime = NOW) -> tuple[journey.State, list[object]]:
    effects: list[object] = []
    for event in events:
        state, more = journey.step(state, event, now)
        effects.extend(more)
    return state, effects


def welcome() -> journey.State:
    return journey.initial(SETTINGS, NOW)


def at_plate(plate: str = "AB123") -> journey.State:
    state, _ = run(welcome(), Tap("start"), *[Tap(f"key:{c}") for c in plate])
    return state


def at_duration(existing: SessionRecord | None = None) -> journey.State:
    state, _ = run(at_plate(), SessionLookedUp("AB123", existing))
    return state


def at_paying() -> journey.State:
    state, _ = run(at_duration(), Tap("pay"), PaymentPending("p1"))
    return state


def at_paid() -> journey.State:
    state, _ = run(at_paying(), PaymentAuthorized("p1", RESULT), SessionCommitted("p1", session()))
    return state


def at_declined() -> journey.State:
    state, _ = run(at_paying(), PaymentDeclined("p1", DeclineReason.DECLINED, 0x05, "Declined"))
    return state


def at_feedback() -> journey.State:
    state, _ = run(at_paid(), Tap("done"))
    return state


def at_thanks() -> journey.State:
    state, _ = run(at_feedback(), Tap("rate:5"))
    return state


def out_of_service() -> journey.State:
    state, _ = run(welcome(), FaultsChanged((fault("out_of_service"),)))
    return state


STATES = {
    Screen.WELCOME: welcome, Screen.PLATE: at_plate, Screen.DURATION: at_duration, Screen.PAYING: at_paying,
    Screen.PAID: at_paid, Screen.DECLINED: at_declined, Screen.FEEDBACK: at_feedback, Screen.THANKS: at_thanks,
    Screen.OUT_OF_SERVICE: out_of_service,
}

# ---- the happy path and its effects ----


def test_full_journey_effects_in_order() -> None:
    state, effects = run(welcome(), Tap("start"), *[Tap(f"key:{c}") for c in "AB123"], Tap("continue"))
    assert effects == [LookupSession("AB123", SETTINGS.zone.name)]
    state, effects = run(state, SessionLookedUp("AB123", None))
    assert state.screen is Screen.DURATION and state.minutes == 15
    state, effects = run(state, Tap("plus"), Tap("plus"), Tap("plus"), Tap("pay"))
    assert state.screen is Screen.PAYING
    (begin,) = effects
    assert isinstance(begin, BeginPayment)
    assert (begin.amount, begin.currency, begin.minutes) == (200, "EUR", 60)
    assert begin.expires == NOW + timedelta(hours=1)
    state, effects = run(state, PaymentPending("p1"), PaymentStatus("p1", "Insert card"))
    assert state.payment is not None and state.payment.status_text == "Insert card"
    state, effects = run(state, PaymentAuthorized("p1", RESULT))
    assert effects == [CommitSession("p1", RESULT)], "the station commits before confirming"
    assert state.screen is Screen.PAYING
    state, effects = run(state, SessionCommitted("p1", session()))
    assert effects == [ConfirmPayment("p1", True)] and state.screen is Screen.PAID
    state, effects = run(state, Tap("done"), Tap("rate:4"))
    assert effects == [SaveFeedback(4, "s1", None)] and state.screen is Screen.THANKS
    state, _ = run(state, Tick(), now=NOW + timedelta(seconds=journey.THANKS_S))
    assert state.screen is Screen.WELCOME and state.plate == ""


def test_plate_keyboard_and_validation() -> None:
    state = at_plate("A")
    state, effects = run(state, Tap("continue"))
    assert state.screen is Screen.PLATE and state.message == "plate_invalid" and effects == []
    state, _ = run(state, Tap("key:B"), Tap("backspace"), Tap("key:-"), Tap("key:7"))
    assert state.plate == "A-7"
    state, _ = run(state, Tap("clear"))
    assert state.plate == ""
    state, _ = run(state, *[Tap("key:9")] * 12)
    assert state.plate == "9" * SETTINGS.plate.max_length and state.message == "plate_too_long"


def test_duration_limits_and_quick_picks() -> None:
    state, _ = run(at_duration(), Tap("minus"))
    assert state.minutes == 15
    state, _ = run(state, *[Tap("plus")] * 20)
    assert state.minutes == SETTINGS.tariff.maximum_minutes
    state, effects = run(state, Tap("pick:30"))
    assert state.minutes == 30 and effects == []
    state, effects = run(state, Tap("pick:999"))
    assert state.minutes == 30 and isinstance(effects[0], Ignored)


def test_extension_starts_at_expiry_and_counts_max_stay() -> None:
    existing = session(minutes=150, expires=NOW + timedelta(minutes=30))
    state = at_duration(existing)
    assert journey.minute_range(state) == (15, 30)
    state, effects = run(state, *[Tap("plus")] * 5, Tap("pay"))
    (begin,) = effects
    assert begin.extends_id == "s1" and begin.minutes == 180 and begin.starts == existing.starts
    assert begin.expires == NOW + timedelta(minutes=60)


def test_extension_refused_at_max_stay() -> None:
    state = at_duration(session(minutes=180, expires=NOW + timedelta(minutes=10)))
    assert state.message == "max_stay_reached" and state.minutes == 0
    state, effects = run(state, Tap("pay"))
    assert state.screen is Screen.DURATION and effects == [] and state.message == "nothing_to_pay"


def test_declined_offers_retry_with_new_payment() -> None:
    state = at_declined()
    assert state.decline == journey.Decline("declined", 0x05, "Declined")
    state, effects = run(state, Tap("retry"))
    assert state.screen is Screen.PAYING and isinstance(effects[0], BeginPayment)


def test_decline_is_recorded() -> None:
    _, effects = run(at_paying(), PaymentDeclined("p1", DeclineReason.UNREADABLE, 0x64, "Card not readable"))
    assert effects == [FailPayment("p1", "declined", 0x64)]


def test_cancel_really_aborts_and_returns_to_duration() -> None:
    state, effects = run(at_paying(), Tap("cancel"))
    assert effects == [CancelPayment()] and state.payment.cancelling
    state, effects = run(state, Tap("cancel"))
    assert isinstance(effects[0], Ignored), "a second Cancel does not abort twice"
    state, effects = run(state, PaymentDeclined("p1", DeclineReason.ABORTED, 0x6C, "Aborted"))
    assert state.screen is Screen.DURATION and state.message == "cancelled_not_charged"
    assert effects == [FailPayment("p1", "declined", 0x6C)]


def test_cancel_on_a_dead_terminal_gives_up_without_charging() -> None:
    state, _ = run(at_paying(), Tap("cancel"), now=NOW + timedelta(seconds=5))
    due = journey.deadline(state)
    assert due == NOW + timedelta(seconds=5 + journey.CANCEL_GRACE_S)
    state, effects = run(state, Tick(), now=due)
    assert effects == [FailPayment("p1", "reversed", 0x6C)]
    assert state.screen is Screen.DURATION and state.message == "cancelled_not_charged"


def test_approval_racing_a_cancel_is_refused() -> None:
    state, _ = run(at_paying(), Tap("cancel"))
    state, effects = run(state, PaymentAuthorized("p1", RESULT))
    assert effects == [ConfirmPayment("p1", False), FailPayment("p1", "reversed", 0x6C)]
    assert state.screen is Screen.DURATION


def test_commit_failure_refuses_payment() -> None:
    state, _ = run(at_paying(), PaymentAuthorized("p1", RESULT))
    state, effects = run(state, CommitFailed("p1", "disk full"))
    assert effects == [ConfirmPayment("p1", False), FailPayment("p1", "reversed", 0)]
    assert state.screen is Screen.DECLINED and state.decline.reason == "not_stored"


def test_payment_not_started_is_a_clear_failure() -> None:
    state, _ = run(at_duration(), Tap("pay"))
    state, effects = run(state, PaymentNotStarted("storage unavailable"))
    assert state.screen is Screen.DECLINED and state.decline.reason == "not_stored" and effects == []


def test_stray_authorization_is_refused() -> None:
    state = at_duration()
    after, effects = run(state, PaymentAuthorized("old", RESULT))
    assert effects == [ConfirmPayment("old", False)] and after == state


def test_silent_terminal_times_out_without_charging() -> None:
    state = at_paying()
    due = journey.deadline(state)
    assert due == NOW + timedelta(seconds=SETTINGS.terminal.payment_timeout_s + journey.PAYMENT_GRACE_S)
    same, effects = run(state, Tick(), now=due - timedelta(seconds=1))
    assert same == state and effects == []
    state, effects = run(state, Tick(), now=due)
    assert effects == [CancelPayment(), FailPayment("p1", "reversed", 0x6C)]
    assert state.screen is Screen.DECLINED and state.decline.reason == "terminal_timeout"
    _, effects = run(state, PaymentAuthorized("p1", RESULT), now=due)
    assert effects == [ConfirmPayment("p1", False)], "a late approval is reversed"


def test_inactivity_warns_then_resets_and_forgets_plate() -> None:
    state = at_duration()
    warn_at = NOW + timedelta(seconds=SETTINGS.timeouts.inactivity_s)
    state, _ = run(state, Tick(), now=warn_at)
    assert state.warning_since == warn_at and state.screen is Screen.DURATION
    state, _ = run(state, Tick(), now=warn_at + timedelta(seconds=SETTINGS.timeouts.warning_s))
    assert state.screen is Screen.WELCOME and state.plate == "" and state.existing is None


def test_tap_during_warning_only_dismisses_it() -> None:
    state = at_plate("AB")
    state, _ = run(state, Tick(), now=NOW + timedelta(seconds=SETTINGS.timeouts.inactivity_s))
    later = NOW + timedelta(seconds=SETTINGS.timeouts.inactivity_s + 3)
    state, effects = run(state, Tap("key:C"), now=later)
    assert state.warning_since is None and state.plate == "AB" and state.last_input == later and effects == []


def test_never_times_out_during_payment_before_terminal_limit() -> None:
    state = at_paying()
    state, _ = run(state, Tick(), now=NOW + timedelta(seconds=SETTINGS.timeouts.inactivity_s * 2))
    assert state.screen is Screen.PAYING and state.warning_since is None


def test_sleep_and_wake_tap_never_acts() -> None:
    state, _ = run(welcome(), Tick(), now=NOW + timedelta(seconds=SETTINGS.timeouts.sleep_s))
    assert state.asleep and journey.deadline(state) is None
    state, effects = run(state, Tap("start"))
    assert state.screen is Screen.WELCOME and not state.asleep and effects == []


def test_the_next_parker_finds_the_default_language_and_contrast() -> None:
    """A parker who chose French and high contrast and walked away leaves neither to the next one."""
    chosen, _ = run(welcome(), Tap("lang:fr"), Tap("contrast"))
    assert (chosen.language, chosen.high_contrast) == ("fr", True)
    asleep, _ = run(chosen, Tick(), now=NOW + timedelta(seconds=SETTINGS.timeouts.sleep_s))
    assert asleep.asleep and (asleep.language, asleep.high_contrast) == ("en", False)
    paid_in_french, _ = run(replace(at_paid(), language="fr", high_contrast=True), Tap("done"), Tap("skip"))
    assert paid_in_french.screen is Screen.WELCOME
    assert (paid_in_french.language, paid_in_french.high_contrast) == ("en", False)


def test_paid_and_feedback_time_out_to_welcome() -> None:
    state = at_paid()
    state, _ = run(state, Tick(), now=NOW + timedelta(seconds=SETTINGS.timeouts.paid_s))
    assert state.screen is Screen.WELCOME
    state, _ = run(at_feedback(), Tick(), now=NOW + timedelta(seconds=SETTINGS.timeouts.feedback_s))
    assert state.screen is Screen.WELCOME


def test_blocking_fault_goes_out_of_service_and_back() -> None:
    state, _ = run(at_plate(), FaultsChanged((fault("out_of_service"),)))
    assert state.screen is Screen.OUT_OF_SERVICE and state.plate == ""
    state, _ = run(state, FaultsChanged(()))
    assert state.screen is Screen.WELCOME


def test_fault_during_payment_waits_for_the_result() -> None:
    state, _ = run(at_paying(), FaultsChanged((fault("no_card_payment"),)))
    assert state.screen is Screen.PAYING
    state, _ = run(state, PaymentDeclined("p1", DeclineReason.DECLINED, 0x05))
    state, _ = run(state, Tap("done"))
    assert state.screen is Screen.OUT_OF_SERVICE


def test_retry_after_a_blocking_fault_goes_out_of_service() -> None:
    state, _ = run(at_declined(), FaultsChanged((fault("out_of_service"),)))
    assert state.screen is Screen.OUT_OF_SERVICE
    state, _ = run(at_duration(), Tap("pay"), FaultsChanged((fault("out_of_service"),)), PaymentNotStarted("disk full"))
    assert state.screen is Screen.DECLINED
    state, effects = run(state, Tap("retry"))
    assert state.screen is Screen.OUT_OF_SERVICE and effects == []


def test_notice_fault_does_not_block() -> None:
    state, _ = run(welcome(), FaultsChanged((fault("notice"),)))
    assert state.screen is Screen.WELCOME and state.faults


def test_help_from_any_screen_one_ticket() -> None:
    state, effects = run(at_plate(), HelpPressed())
    (opened,) = effects
    assert isinstance(opened, OpenHelpTicket) and opened.context["plate"] == "AB123"
    assert opened.context["screen"] == "plate"
    state, effects = run(state, HelpTicketOpened("t1"), HelpPressed(), HelpReleased())
    assert state.help is not None and state.help.id == "t1" and state.help.presses == 2 and effects == []
    state, effects = run(state, Tap("key:X"))
    assert state.plate == "AB123", "the overlay covers the keyboard"
    state, effects = run(state, Tap("help:cancel"))
    assert effects == [RecordHelp("t1", "close", outcome="cancelled_by_parker", presses=2)] and state.help is None
    assert state.screen is Screen.PLATE and state.plate == "AB123", "help does not destroy the journey"


def test_screen_never_sleeps_during_a_help_call() -> None:
    state, _ = run(welcome(), HelpPressed())
    assert journey.deadline(state) == NOW + timedelta(seconds=SETTINGS.timeouts.help_answer_s), "only the help timer runs"
    state, _ = run(state, Tick(), now=NOW + timedelta(seconds=SETTINGS.timeouts.sleep_s))
    assert not state.asleep


def test_help_during_payment_never_interrupts_it() -> None:
    state, _ = run(at_paying(), HelpPressed())
    state, effects = run(state, Tap("cancel"))
    assert effects == [CancelPayment()], "payment taps still work under a pending help call"


def test_ticket_opened_after_cancel_is_closed() -> None:
    _, effects = run(welcome(), HelpTicketOpened("t9"))
    assert effects == [RecordHelp("t9", "close", outcome="cancelled_by_parker")]


def test_settings_apply_for_the_next_parker_only() -> None:
    cheaper = replace(SETTINGS, version=7)
    state, _ = run(at_duration(), SettingsChanged(cheaper))
    assert state.settings is SETTINGS and state.next_settings is cheaper
    state, _ = run(state, Tap("cancel"))
    assert state.settings is cheaper and state.next_settings is None
    state, _ = run(welcome(), SettingsChanged(cheaper))
    assert state.settings is cheaper


def test_language_and_contrast_reset_after_session() -> None:
    settings = replace(SETTINGS, languages=replace(SETTINGS.languages, available=("en", "de")))
    state, _ = run(journey.initial(settings, NOW), Tap("lang:de"), Tap("contrast"), Tap("lang:xx"))
    assert state.language == "de" and state.high_contrast
    state, _ = run(state, Tap("start"), Tap("cancel"))
    assert state.language == "en" and not state.high_contrast


# ---- illegal events in every state ----

LEGAL_TAPS = {
    Screen.WELCOME: {"start", "contrast", "large_text", "more:prices", "more:notices", "help", "lang:en"},
    Screen.PLATE: {f"key:{k}" for k in journey.KEYBOARD} | {"backspace", "clear", "continue", "cancel", "help"},
    Screen.DURATION: {"plus", "minus", "pick:30", "pick:60", "pick:120", "pay", "back", "cancel", "help"},
    Screen.PAYING: {"cancel"},
    Screen.PAID: {"done"},
    Screen.DECLINED: {"retry", "change", "done", "help"},
    Screen.FEEDBACK: {f"rate:{n}" for n in range(1, 6)} | {"skip"},
    Screen.OUT_OF_SERVICE: {"help", "lang:en", "contrast", "large_text", "more:other_ways"},
}
ALL_TAPS = sorted(set().union(*LEGAL_TAPS.values()) | {"bogus", "rate:9", "key:Ä", "lang:xx", ""})


@pytest.mark.parametrize("screen", list(LEGAL_TAPS))
def test_illegal_taps_change_nothing(screen: Screen) -> None:
    legal = LEGAL_TAPS[screen]
    state = STATES[screen]()
    for target in ALL_TAPS:
        if target in legal:
            continue
        after, effects = journey.step(state, Tap(target), NOW)
        assert replace(after, last_input=state.last_input) == state, target
        assert effects and all(isinstance(e, Ignored) for e in effects), target


def test_any_tap_on_thanks_returns_to_welcome() -> None:
    for target in ALL_TAPS:
        state, effects = journey.step(at_thanks(), Tap(target), NOW)
        assert state.screen is Screen.WELCOME and effects == (), target


STRAY_EVENTS = [
    SessionLookedUp("OTHER", None), PaymentStatus("other", "x"), PaymentDeclined("other", DeclineReason.DECLINED, 5),
    SessionCommitted("other", session()), CommitFailed("other", "x"), PaymentNotStarted("x"),
    HelpReleased(), Tick(),
]


@pytest.mark.parametrize("screen", list(STATES))
def test_stray_device_events_change_nothing(screen: Screen) -> None:
    state = STATES[screen]()
    for event in STRAY_EVENTS:
        if screen is Screen.DURATION and isinstance(event, PaymentNotStarted):
            continue
        after, effects = journey.step(state, event, NOW)
        assert after == state, event
        assert all(isinstance(e, Ignored) for e in effects), event


@pytest.mark.parametrize("screen", [s for s in STATES if s is not Screen.PAYING])
def test_payment_pending_outside_payment_is_reversed(screen: Screen) -> None:
    state = STATES[screen]()
    after, effects = journey.step(state, PaymentPending("zz"), NOW)
    assert after == state
    assert effects == (ConfirmPayment("zz", False), FailPayment("zz", "reversed", 0x6C))


def test_unknown_event_type_is_ignored() -> None:
    state = welcome()
    after, effects = journey.step(state, object(), NOW)  # type: ignore[arg-type]
    assert after == state and isinstance(effects[0], Ignored)


# ---- staff notices ----


def test_notice_is_shown_until_cleared_and_survives_resets() -> None:
    state, effects = run(at_duration(), NoticeChanged("Closed on Sunday"))
    assert state.notice == "Closed on Sunday" and state.screen is Screen.DURATION and effects == []
    state, _ = run(state, Tap("cancel"))
    assert state.screen is Screen.WELCOME and state.notice == "Closed on Sunday"
    state, _ = run(state, NoticeChanged(""))
    assert state.notice == ""


# ---- the help desk inside the journey ----

TICKET = "11111111-1111-1111-1111-111111111111"


def in_help_call(state: journey.State | None = None) -> journey.State:
    state, _ = run(state or at_plate(), HelpPressed(), HelpTicketOpened(TICKET))
    return state


def test_agent_words_and_quick_replies_go_through_the_help_desk() -> None:
    state, effects = run(in_help_call(), AgentSays(TICKET, "accept", "Ana"), AgentSays(TICKET, "message", "Ana", "Hi"))
    assert effects == [RecordHelp(TICKET, "accept", agent="Ana"), RecordHelp(TICKET, "message", agent="Ana", text="Hi")]
    state, effects = run(state, Tap("help:reply:plate_not_found"))
    assert effects == [RecordHelp(TICKET, "reply", text="I can't find my plate", choice="plate_not_found")]
    assert [line.author for line in state.help.conversation] == ["agent", "parker"]


def test_the_journey_waits_under_the_help_overlay_and_gets_fresh_time_after() -> None:
    state = in_help_call()
    later = NOW + timedelta(seconds=SETTINGS.timeouts.inactivity_s + 5)
    state, _ = run(state, Tick(), now=later)
    assert state.screen is Screen.PLATE and state.warning_since is None, "no inactivity reset under the overlay"
    state, _ = run(state, AgentSays(TICKET, "resolve", "Ana", "Done", "solved"), now=later)
    state, _ = run(state, Tap("help:ok"), now=later)
    assert state.help is None and state.plate == "AB123"
    assert journey.deadline(state) == later + timedelta(seconds=SETTINGS.timeouts.inactivity_s)


def test_overdue_keep_waiting_by_tap() -> None:
    late = NOW + timedelta(seconds=SETTINGS.timeouts.help_answer_s)
    state, effects = run(in_help_call(), Tick(), now=late)
    assert state.help.overdue and effects == [RecordHelp(TICKET, "overdue")]
    state, effects = run(state, Tap("help:wait"), now=late)
    assert not state.help.overdue and effects == [RecordHelp(TICKET, "wait")]


def test_an_agent_can_end_the_journey_but_never_a_payment() -> None:
    state, effects = run(in_help_call(), JourneyCancelled("ended by agent Ana"))
    assert state.screen is Screen.WELCOME and state.plate == "" and state.help is not None, "the call goes on"
    paying = in_help_call(at_paying())
    state, effects = run(paying, JourneyCancelled("ended by agent Ana"))
    assert state.screen is Screen.PAYING and isinstance(effects[0], Ignored)


def test_help_context_tells_the_agent_what_happened() -> None:
    declined, _ = run(at_paying(), PaymentDeclined("p1", DeclineReason.DECLINED, 0x05, "Abgelehnt"))
    _, effects = run(declined, HelpPressed())
    context = effects[0].context
    assert context["last_payment"] == {"result": "declined"}
    assert context["last_payment_error"]["result_code"] == 0x05
    assert context["screen"] == "declined" and context["plate"] == "AB123"


def test_an_agent_cannot_end_the_journey_of_the_next_parker() -> None:
    state, effects = run(in_help_call(), Tap("help:cancel"), Tap("key:X"))  # the call ends, typing goes on
    state, effects = run(state, JourneyCancelled("ended by agent Ana", TICKET))
    assert state.screen is Screen.PLATE and state.plate == "AB123X" and isinstance(effects[0], Ignored)


def test_help_without_a_database_says_nobody_can_be_reached() -> None:
    state, _ = run(welcome(), HelpPressed(), HelpTicketFailed("storage unavailable"))
    assert state.help is not None and state.help.outcome == "unreachable" and not state.help.open


def test_a_rating_names_the_help_call_of_its_journey_and_never_the_previous_parkers() -> None:
    helped, _ = run(in_help_call(at_paid()), AgentSays(TICKET, "accept", "Ana"),
                    AgentSays(TICKET, "resolve", "Ana", "Done", "solved"), Tap("help:ok"))
    state, effects = run(helped, Tap("done"), Tap("rate:4"))
    assert effects == [SaveFeedback(4, "s1", TICKET)], "the rating counts for the agent who took the call"
    state, _ = run(state, Tick(), now=NOW + timedelta(seconds=journey.THANKS_S))
    assert state.screen is Screen.WELCOME and state.help_ticket_id is None, "the next parker starts without it"
    warned = NOW + timedelta(seconds=SETTINGS.timeouts.inactivity_s)
    state, _ = run(in_help_call(), AgentSays(TICKET, "resolve", "Ana", "Done", "solved"), Tap("help:ok"), now=NOW)
    state, _ = run(state, Tick(), now=warned)
    state, _ = run(state, Tick(), now=warned + timedelta(seconds=SETTINGS.timeouts.warning_s))
    assert state.screen is Screen.WELCOME and state.help_ticket_id is None, "nor after an inactivity reset"


def resolved_at_welcome(state: journey.State) -> journey.State:
    """The help call of ``state`` resolved by Ana and the parker's OK, on the Welcome screen."""
    state, _ = run(state, AgentSays(TICKET, "accept", "Ana"), AgentSays(TICKET, "resolve", "Ana", "Done", "solved"),
                   Tap("help:ok"))
    assert state.screen is Screen.WELCOME and state.help is None
    return state


def pay_and_rate(state: journey.State, rating: int, now: datetime = NOW) -> list:
    """A whole journey from Welcome to a rating; the effects of the rating."""
    state, _ = run(state, Tap("start"), *[Tap(f"key:{c}") for c in "AB123"], Tap("continue"), now=now)
    state, _ = run(state, SessionLookedUp("AB123", None), Tap("pay"), PaymentPending("p1"),
                   PaymentAuthorized("p1", RESULT), SessionCommitted("p1", session()), now=now)
    assert state.screen is Screen.PAID
    _, effects = run(state, Tap("done"), Tap(f"rate:{rating}"), now=now)
    return effects


def test_the_parker_who_called_from_welcome_names_the_call_and_the_next_parker_does_not() -> None:
    state = resolved_at_welcome(run(welcome(), HelpPressed(), HelpTicketOpened(TICKET))[0])
    assert pay_and_rate(state, 5) == [SaveFeedback(5, "s1", TICKET)], "the same parker, straight on"
    idle = journey.deadline(state)
    assert idle is not None
    state, _ = run(state, Tick(), Tap("start"), now=idle)  # Welcome idle: the parker has left; the next one wakes it
    assert state.help_ticket_id is None and not state.asleep
    assert pay_and_rate(state, 1, idle) == [SaveFeedback(1, "s1", None)], "a later parker's rating is not Ana's"


def test_a_call_going_on_when_an_agent_ends_the_journey_stays_with_its_parker_only() -> None:
    state, _ = run(in_help_call(), JourneyCancelled("ended by agent Ana"))
    assert state.screen is Screen.WELCOME and state.help is not None and state.help_ticket_id == TICKET
    state = resolved_at_welcome(state)
    assert pay_and_rate(state, 4) == [SaveFeedback(4, "s1", TICKET)]
    state, _ = run(state, Tick(), now=journey.deadline(state))
    assert state.help_ticket_id is None


def test_a_call_restored_at_start_up_and_cancelled_is_named_in_the_rating() -> None:
    restored = replace(at_plate(), help=helpdesk.Ticket(NOW, NOW, NOW + timedelta(minutes=1), NOW,
                                                        phase=helpdesk.Phase.CONNECTED, id=TICKET, agent="Ana"))
    state, _ = run(restored, Tap("help:cancel"))
    assert state.help is None and state.help_ticket_id == TICKET
