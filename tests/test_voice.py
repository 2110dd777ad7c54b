"""Help by voice in the journey and the help desk: when the call is placed, each phase, the fallbacks, callbacks."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.config import Settings, VoiceSettings
from kiosk.domain import helpdesk, journey
from kiosk.domain.events import (
    AgentSays,
    AnswerCall,
    CallOffered,
    CallProgress,
    EndCall,
    HelpPressed,
    HelpTicketOpened,
    Ignored,
    PaymentDeclined,
    PaymentPending,
    PlaceCall,
    RecordHelp,
    RefuseCall,
    SessionLookedUp,
    Tap,
    Tick,
)
from kiosk.domain.helpdesk import LedPattern
from kiosk.domain.payment import DeclineReason
from kiosk.domain.voice import CallDirection, CallPhase, FailReason, fail_reason, may_call_back, sip_address

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ID = "11111111-1111-1111-1111-111111111111"
AGENT = "sip:ana@pbx.example.org"
VOICE = VoiceSettings(enabled=True, destination="sip:help@pbx.example.org", ring_timeout_s=30,
                      callback_from=(AGENT,))
SETTINGS = Settings(voice=VOICE)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def run(state: journey.State, *events: object, now: datetime = NOW) -> tuple[journey.State, list[object]]:
    effects: list[object] = []
    for event in events:
        state, more = journey.step(state, event, now)
        effects.extend(more)
    return state, effects


def calls(effects: list[object]) -> list[object]:
    """The effects on the intercom and the call steps recorded, as (kind, ticket/phase) pairs."""
    out: list[object] = []
    for effect in effects:
        if isinstance(effect, RecordHelp) and effect.call is not None:
            out.append(("call", effect.call.phase, effect.call.reason))
        elif isinstance(effect, (PlaceCall, EndCall, AnswerCall, RefuseCall)):
            out.append(type(effect).__name__)
    return out


def pressed(settings: Settings = SETTINGS) -> tuple[journey.State, list[object]]:
    """Welcome, the button pressed and the ticket stored."""
    return run(journey.initial(settings, NOW), HelpPressed(), HelpTicketOpened(ID))


def talking() -> journey.State:
    state, _ = pressed()
    state, _ = run(state, CallProgress(ID, CallPhase.RINGING, "c1", "sip:help@pbx"),
                   CallProgress(ID, CallPhase.TALKING, "c1", "sip:help@pbx"), now=at(5))
    return state


# ---- placing the call ----


def test_a_press_dials_once_the_ticket_is_durable_and_records_the_step() -> None:
    state, effects = run(journey.initial(SETTINGS, NOW), HelpPressed())
    assert calls(effects) == [], "no ticket id yet: nothing to name in the call"
    state, effects = run(state, HelpTicketOpened(ID))
    assert calls(effects) == ["PlaceCall", ("call", CallPhase.DIALLING, "")]
    assert PlaceCall(ID) in effects
    assert state.help is not None and state.help.call is not None and state.help.call.ring_due == at(30)
    assert helpdesk.led(state.help) is LedPattern.BLINKING


def test_voice_off_is_exactly_text_only() -> None:
    state, effects = pressed(Settings())
    assert calls(effects) == [] and state.help is not None and state.help.call is None
    assert "voice" not in journey.help_context(state)
    state, effects = run(state, CallOffered("x", AGENT))
    assert effects == [RefuseCall("x", "voice is off")]


def test_the_call_waits_for_a_payment_in_progress() -> None:
    state, _ = run(journey.initial(SETTINGS, NOW), Tap("start"), *[Tap(f"key:{c}") for c in "AB123"],
                   SessionLookedUp("AB123", None), Tap("pay"), PaymentPending("p1"))
    assert state.screen is journey.Screen.PAYING
    state, effects = run(state, HelpPressed(), HelpTicketOpened(ID))
    assert calls(effects) == [], "the parker is paying: the call waits, as the overlay does"
    state, effects = run(state, PaymentDeclined("p1", DeclineReason.DECLINED, 5, "declined"))
    assert calls(effects) == ["PlaceCall", ("call", CallPhase.DIALLING, "")]


def test_a_callback_is_refused_while_the_parker_pays() -> None:
    state, _ = run(journey.initial(SETTINGS, NOW), Tap("start"), *[Tap(f"key:{c}") for c in "AB123"],
                   SessionLookedUp("AB123", None), Tap("pay"), PaymentPending("p1"), HelpPressed(),
                   HelpTicketOpened(ID))
    state, effects = run(state, CallOffered("c9", AGENT))
    assert effects == [RefuseCall("c9", "the parker is paying")]


# ---- its phases ----


def test_ringing_then_talking_then_the_agent_hangs_up_and_the_ticket_goes_on() -> None:
    state = talking()
    ticket = state.help
    assert ticket is not None and ticket.call is not None
    assert (ticket.call.phase, ticket.call.id, ticket.call.answered) == (CallPhase.TALKING, "c1", at(5))
    assert helpdesk.led(ticket) is LedPattern.STEADY
    assert journey.deadline(state) is None, "while talking, no timer runs: not the answer timer, not abandonment"
    state, effects = run(state, CallProgress(ID, CallPhase.ENDED, "c1", reason="Connection reset by user"), now=at(65))
    ticket = state.help
    assert ticket is not None and ticket.open, "an agent hanging up does not end the ticket"
    assert ticket.call is not None and (ticket.call.phase, ticket.call.reason) == (CallPhase.ENDED,
                                                                                  "Connection reset by user")
    assert calls(effects) == [("call", CallPhase.ENDED, "Connection reset by user")]
    assert helpdesk.led(ticket) is LedPattern.BLINKING, "waiting again, for an agent's word"
    assert not ticket.overdue and journey.deadline(state) == at(65 + SETTINGS.timeouts.help_abandon_s), \
        "somebody answered: nobody is 'not answering yet'"


def test_after_a_person_answered_once_a_later_failed_call_does_not_say_nobody_answered() -> None:
    state = talking()
    state, _ = run(state, CallProgress(ID, CallPhase.ENDED, "c1", reason="bye"), now=at(20))
    state, _ = run(state, HelpPressed(), CallProgress(ID, CallPhase.ENDED, "c2", reason="486 Busy Here"), now=at(200))
    assert state.help is not None and state.help.call is not None and state.help.call.phase is CallPhase.FAILED
    assert journey.deadline(state) == at(200 + SETTINGS.timeouts.help_abandon_s), "no 'nobody has answered yet'"


@pytest.mark.parametrize(("sip_reason", "reason"), [
    ("486 Busy Here", FailReason.BUSY), ("600 Busy Everywhere", FailReason.BUSY), ("603 Decline", FailReason.REJECTED),
    ("404 Not Found", FailReason.UNREACHABLE), ("408 Request Timeout", FailReason.NO_ANSWER),
    ("503 Service Unavailable", FailReason.UNREACHABLE), ("Connection refused", FailReason.UNREACHABLE),
    ("", FailReason.UNREACHABLE), ("unreachable", FailReason.UNREACHABLE),
])
def test_a_call_that_never_got_through_fails_with_why_and_the_ticket_goes_on_as_text(sip_reason: str,
                                                                                     reason: FailReason) -> None:
    state, _ = pressed()
    state, effects = run(state, CallProgress(ID, CallPhase.RINGING, "c1"), CallProgress(ID, CallPhase.ENDED, "c1",
                                                                                         reason=sip_reason), now=at(3))
    ticket = state.help
    assert ticket is not None and ticket.open and ticket.call is not None
    assert (ticket.call.phase, ticket.call.reason) == (CallPhase.FAILED, reason)
    assert calls(effects)[-1] == ("call", CallPhase.FAILED, reason)
    assert journey.deadline(state) == NOW + timedelta(seconds=SETTINGS.timeouts.help_answer_s), \
        "the answer timer of the text chat goes on"


def test_a_call_that_never_rang_is_unreachable_at_the_ring_timeout() -> None:
    state, _ = pressed()
    state, effects = run(state, Tick(), now=at(30))
    assert calls(effects) == ["EndCall", ("call", CallPhase.FAILED, FailReason.UNREACHABLE)]


def test_nobody_answering_within_the_ring_timeout_hangs_up_and_says_so() -> None:
    state, _ = pressed()
    state, _ = run(state, CallProgress(ID, CallPhase.RINGING, "c1"), now=at(1))
    assert journey.deadline(state) == at(30)
    state, effects = run(state, Tick(), now=at(30))
    assert calls(effects) == ["EndCall", ("call", CallPhase.FAILED, FailReason.NO_ANSWER)]
    state, effects = run(state, CallProgress(ID, CallPhase.ENDED, "c1", reason="487 Request Terminated"), now=at(31))
    assert [type(e) for e in effects] == [Ignored], "the hang-up's own echo changes nothing"


def test_cancel_on_screen_hangs_up_and_closes() -> None:
    state = talking()
    state, effects = run(state, Tap("help:cancel"), now=at(20))
    assert state.help is None
    assert calls(effects) == ["EndCall", ("call", CallPhase.ENDED, "ended by the station")]
    assert [e.action for e in effects if isinstance(e, RecordHelp)] == ["call", "close"]


def test_an_agent_resolving_hangs_up_the_call() -> None:
    state = talking()
    state, effects = run(state, AgentSays(ID, "resolve", "Ana", "", "solved"), now=at(20))
    assert state.help is not None and not state.help.open
    assert calls(effects) == ["EndCall", ("call", CallPhase.ENDED, "ended by the station")]


def test_cancelling_while_it_rings_records_cancelled() -> None:
    state, _ = pressed()
    state, effects = run(state, Tap("help:cancel"), now=at(2))
    assert calls(effects) == ["EndCall", ("call", CallPhase.FAILED, FailReason.CANCELLED)]


def test_a_second_press_calls_again_after_a_failed_call_but_not_during_one() -> None:
    state, _ = pressed()
    state, effects = run(state, HelpPressed(), now=at(1))
    assert calls(effects) == [], "a call is going on"
    state, _ = run(state, CallProgress(ID, CallPhase.ENDED, reason="486 Busy Here"), now=at(2))
    state, effects = run(state, HelpPressed(), now=at(40))
    assert calls(effects) == ["PlaceCall", ("call", CallPhase.DIALLING, "")]


def test_events_for_another_call_or_ticket_are_ignored() -> None:
    state = talking()
    for stray in (CallProgress("other-ticket", CallPhase.ENDED, "c1"), CallProgress(ID, CallPhase.ENDED, "c2"),
                  CallProgress(ID, CallPhase.RINGING, "c1"), CallProgress(ID, CallPhase.DIALLING, "c1")):
        after, effects = run(state, stray, now=at(9))
        assert after == state and [type(e) for e in effects] == [Ignored], stray


def test_a_restored_ticket_does_not_dial_by_itself() -> None:
    state, _ = pressed()
    assert state.help is not None
    restored = replace(state, help=replace(state.help, call=None, wants_call=False))
    state, effects = run(restored, Tick(), now=at(1))
    assert calls(effects) == []
    state, effects = run(state, HelpPressed(), now=at(2))
    assert calls(effects) == ["PlaceCall", ("call", CallPhase.DIALLING, "")]


# ---- callbacks ----


def test_an_allowed_agent_calling_back_is_answered() -> None:
    state, _ = pressed()
    state, _ = run(state, CallProgress(ID, CallPhase.ENDED, "c1", reason="486 Busy Here"), now=at(2))
    state, effects = run(state, CallOffered("c2", '"Ana" <sip:ana@pbx.example.org:5060>;tag=x'), now=at(60))
    assert effects[0] == AnswerCall(ID, "c2")
    ticket = state.help
    assert ticket is not None and ticket.call is not None
    assert (ticket.call.direction, ticket.call.phase) == (CallDirection.CALLBACK, CallPhase.RINGING)
    state, _ = run(state, CallProgress(ID, CallPhase.TALKING, "c2"), now=at(61))
    assert state.help is not None and helpdesk.led(state.help) is LedPattern.STEADY


def test_a_callback_after_nobody_answered_in_time_is_not_shown_as_nobody_answering() -> None:
    """Found by the fuzzer: the ticket stayed overdue, so the screen said "Nobody has answered yet" to a parker
    whom an agent was calling back."""
    state, _ = pressed()
    state, _ = run(state, Tick(), now=at(30))  # the call never rang: unreachable
    state, _ = run(state, Tick(), now=at(SETTINGS.timeouts.help_answer_s))
    assert state.help is not None and state.help.overdue
    state, effects = run(state, CallOffered("c2", AGENT), now=at(100))
    assert effects[0] == AnswerCall(ID, "c2")
    assert state.help is not None and not state.help.overdue


@pytest.mark.parametrize(("caller", "why"), [
    ("sip:eve@pbx.example.org", "not an agent allowed"),
    ("sip:ANA@pbx.example.org", "not an agent allowed"),
    ("tel:+4930123", "not an agent allowed"),
    ("", "not an agent allowed"),
])
def test_any_other_caller_is_refused(caller: str, why: str) -> None:
    state, _ = pressed()
    state, _ = run(state, CallProgress(ID, CallPhase.ENDED, "c1", reason="486 Busy Here"), now=at(2))
    after, effects = run(state, CallOffered("c2", caller), now=at(60))
    assert len(effects) == 1 and isinstance(effects[0], RefuseCall) and why in effects[0].reason
    assert after.help == state.help


def test_a_callback_that_never_connects_is_given_up_at_the_ring_timeout() -> None:
    """Found in review: a callback had no deadline, so a lost answer left "calling you back" on screen forever."""
    state, _ = pressed()
    state, _ = run(state, CallProgress(ID, CallPhase.ENDED, "c1", reason="486 Busy Here"), now=at(2))
    state, _ = run(state, CallOffered("c2", AGENT), now=at(60))
    assert journey.deadline(state) == at(90)
    state, effects = run(state, Tick(), now=at(90))
    assert calls(effects) == ["EndCall", ("call", CallPhase.FAILED, FailReason.NO_ANSWER)]
    assert state.help is not None and state.help.open and not state.help.on_the_phone


def test_callbacks_need_an_open_ticket_and_no_call_going_on() -> None:
    _, effects = run(journey.initial(SETTINGS, NOW), CallOffered("c2", AGENT))
    assert effects == [RefuseCall("c2", "no open help ticket")]
    _, effects = run(talking(), CallOffered("c3", AGENT), now=at(9))
    assert effects == [RefuseCall("c3", "a voice call is going on")]


# ---- the vocabulary ----


def test_sip_addresses_compare_without_display_name_port_and_parameters() -> None:
    assert sip_address('"Ana" <sip:ana@PBX.example.org:5060;transport=tcp>;tag=1') == "sip:ana@pbx.example.org"
    assert sip_address("sips:ana@[2001:db8::1]:5061") == "sip:ana@[2001:db8::1]"
    assert sip_address("tel:123") == sip_address("") == sip_address("<>") == ""
    assert may_call_back("sip:ana@pbx.example.org;user=phone", (AGENT,))
    assert not may_call_back("sip:ana@pbx.example.org.evil", (AGENT,))
    assert fail_reason("busy") is FailReason.BUSY
