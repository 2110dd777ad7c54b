"""The help ticket state machine: every transition, every timeout, and every illegal event refused or ignored."""
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.config import TimeoutSettings
from kiosk.domain import helpdesk
from kiosk.domain.events import AgentSays, CourtesyGranted, Ignored, OpenHelpTicket, RecordHelp
from kiosk.domain.helpdesk import Phase, Ticket
from kiosk.domain.records import HelpMessageRecord, HelpTicketRecord, SessionRecord

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T = TimeoutSettings()
ID = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"
CONTEXT = {"screen": "plate", "plate": "B-1"}


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def waiting() -> Ticket:
    ticket, _ = helpdesk.press(None, CONTEXT, T, NOW)
    assert ticket is not None
    ticket, _ = helpdesk.opened(ticket, ID)
    assert ticket is not None
    return ticket


def connected(agent: str = "Ana") -> Ticket:
    ticket, _ = helpdesk.from_agent(waiting(), AgentSays(ID, "accept", agent), at(30))
    assert ticket is not None and ticket.phase is Phase.CONNECTED
    return ticket


def closed() -> Ticket:
    ticket, _ = helpdesk.from_agent(connected(), AgentSays(ID, "resolve", "Ana", "Bye", "solved"), at(60))
    assert ticket is not None and ticket.phase is Phase.CLOSED
    return ticket


def overdue() -> Ticket:
    ticket, _ = helpdesk.tick(waiting(), T, at(T.help_answer_s))
    assert ticket is not None and ticket.overdue
    return ticket


# ---- the happy path ----


def test_press_opens_a_ticket_with_context_and_joins_later_presses() -> None:
    ticket, effects = helpdesk.press(None, CONTEXT, T, NOW)
    assert effects == (OpenHelpTicket(CONTEXT),)
    assert ticket is not None and (ticket.phase, ticket.id, ticket.presses) == (Phase.WAITING, None, 1)
    ticket, effects = helpdesk.press(ticket, {"other": "context"}, T, at(3))
    assert effects == () and ticket is not None and ticket.presses == 2, "a second press joins, no new ticket"
    ticket, effects = helpdesk.opened(ticket, ID)
    assert effects == () and ticket is not None and ticket.id == ID


def test_accept_message_resolve_then_the_resolution_times_out() -> None:
    ticket, effects = helpdesk.from_agent(waiting(), AgentSays(ID, "accept", "Ana"), at(30))
    assert effects == (RecordHelp(ID, "accept", agent="Ana"),)
    assert ticket is not None and (ticket.phase, ticket.agent, ticket.since) == (Phase.CONNECTED, "Ana", at(30))
    ticket, effects = helpdesk.from_agent(ticket, AgentSays(ID, "message", "Ana", "Hello"), at(40))
    assert effects == (RecordHelp(ID, "message", agent="Ana", text="Hello"),)
    assert ticket is not None and ticket.conversation == (helpdesk.Line("agent", "Hello", at(40)),)
    ticket, effects = helpdesk.from_agent(ticket, AgentSays(ID, "resolve", "Ana", "All good", "solved"), at(50))
    assert effects == (RecordHelp(ID, "close", agent="Ana", text="All good", outcome="solved", presses=1),)
    assert ticket is not None and (ticket.phase, ticket.resolution, ticket.outcome) == (Phase.CLOSED, "All good", "solved")
    assert helpdesk.deadline(ticket, T) == at(50 + T.help_closed_s)
    assert helpdesk.tick(ticket, T, at(50 + T.help_closed_s - 1)) == (ticket, ())
    assert helpdesk.tick(ticket, T, at(50 + T.help_closed_s)) == (None, ())


def test_parker_replies_reach_the_agent_also_while_waiting() -> None:
    ticket, effects = helpdesk.reply(waiting(), "card_declined", at(5))
    assert effects == (RecordHelp(ID, "reply", text="My card is declined", choice="card_declined"),)
    assert ticket is not None and ticket.conversation[-1].author == "parker"


def test_parker_cancels_and_dismisses() -> None:
    ticket, effects = helpdesk.cancel(connected(), at(50))
    assert (ticket, effects) == (None, (RecordHelp(ID, "close", outcome="cancelled_by_parker", presses=1),))
    assert helpdesk.dismiss(closed()) == (None, ())


def test_cancel_before_the_ticket_is_durable_closes_it_when_it_is() -> None:
    ticket, _ = helpdesk.press(None, CONTEXT, T, NOW)
    assert helpdesk.cancel(ticket, at(1)) == (None, ())
    assert helpdesk.opened(None, ID) == (None, (RecordHelp(ID, "close", outcome="cancelled_by_parker"),))


def test_courtesy_shows_in_the_conversation() -> None:
    until = at(3600)
    ticket, effects = helpdesk.courtesy(connected(), CourtesyGranted(ID, "B-1", until), at(50))
    assert effects == () and ticket is not None
    assert ticket.conversation[-1] == helpdesk.Line("courtesy", "B-1", at(50), until=until)


# ---- timeouts ----


def test_nobody_answers_the_parker_is_told_and_may_keep_waiting() -> None:
    ticket = waiting()
    assert helpdesk.deadline(ticket, T) == at(T.help_answer_s)
    assert helpdesk.tick(ticket, T, at(T.help_answer_s - 1)) == (ticket, ()), "nothing before its time"
    late, effects = helpdesk.tick(ticket, T, at(T.help_answer_s))
    assert late is not None and late.overdue and effects == (RecordHelp(ID, "overdue"),)
    assert helpdesk.led(late) == helpdesk.LED_BLINKING
    again, effects = helpdesk.keep_waiting(late, T, at(100))
    assert again is not None and not again.overdue and effects == (RecordHelp(ID, "wait"),)
    assert helpdesk.deadline(again, T) == at(100 + T.help_answer_s), "the answer timer starts again"


def test_a_press_while_overdue_means_keep_waiting() -> None:
    ticket, effects = helpdesk.press(overdue(), CONTEXT, T, at(100))
    assert ticket is not None and not ticket.overdue and ticket.presses == 2
    assert effects == (RecordHelp(ID, "wait"),)


def test_an_agent_can_still_accept_an_overdue_ticket() -> None:
    ticket, effects = helpdesk.from_agent(overdue(), AgentSays(ID, "accept", "Ana"), at(200))
    assert ticket is not None and ticket.phase is Phase.CONNECTED and not ticket.overdue
    assert effects == (RecordHelp(ID, "accept", agent="Ana"),)


@pytest.mark.parametrize("make", [waiting, overdue, connected], ids=["waiting", "overdue", "connected"])
def test_a_call_without_any_activity_is_abandoned(make) -> None:
    ticket = make()
    quiet_until = ticket.last_activity + timedelta(seconds=T.help_abandon_s)
    ended, effects = helpdesk.tick(ticket, T, quiet_until)
    assert ended is not None and ended.phase is Phase.CLOSED and ended.outcome == helpdesk.ABANDONED
    assert effects == (RecordHelp(ID, "close", agent=ticket.agent, outcome=helpdesk.ABANDONED, presses=1),)


def test_messages_keep_a_connected_call_alive() -> None:
    ticket, _ = helpdesk.from_agent(connected(), AgentSays(ID, "message", "Ana", "Still there?"), at(800))
    assert helpdesk.deadline(ticket, T) == at(800 + T.help_abandon_s)


def test_overdue_before_durable_is_shown_but_recorded_only_by_state() -> None:
    ticket, _ = helpdesk.press(None, CONTEXT, T, NOW)
    late, effects = helpdesk.tick(ticket, T, at(T.help_answer_s))
    assert late is not None and late.overdue and effects == ()


def test_abandoned_before_durable_is_closed_once_durable() -> None:
    ticket, _ = helpdesk.press(None, CONTEXT, T, NOW)
    ticket = replace(ticket, overdue=True)
    ended, _ = helpdesk.tick(ticket, T, at(T.help_abandon_s))
    assert ended is not None and not ended.open
    ended, effects = helpdesk.opened(ended, ID)
    assert effects == (RecordHelp(ID, "close", outcome=helpdesk.ABANDONED),)


# ---- the LED ----


def test_led_follows_the_phase() -> None:
    assert helpdesk.led(None) == helpdesk.LED_OFF
    assert helpdesk.led(waiting()) == helpdesk.LED_BLINKING
    assert helpdesk.led(connected()) == helpdesk.LED_STEADY
    assert helpdesk.led(closed()) == helpdesk.LED_OFF


# ---- every illegal event ----

REFUSALS = [
    ("no ticket", lambda: None, AgentSays(ID, "accept", "Ana"), "not the open ticket of this station"),
    ("other ticket", waiting, AgentSays(OTHER, "accept", "Ana"), "not the open ticket of this station"),
    ("message before accept", waiting, AgentSays(ID, "message", "Ana", "Hi"), "accept the ticket first"),
    ("accept taken", connected, AgentSays(ID, "accept", "Bo"), "taken by Ana"),
    ("message taken", connected, AgentSays(ID, "message", "Bo", "Hi"), "taken by Ana"),
    ("resolve taken", connected, AgentSays(ID, "resolve", "Bo", "", "solved"), "taken by Ana"),
    ("accept closed", closed, AgentSays(ID, "accept", "Bo"), "the ticket is closed"),
    ("message closed", closed, AgentSays(ID, "message", "Ana", "late"), "the ticket is closed"),
    ("resolve closed", closed, AgentSays(ID, "resolve", "Ana", "", "solved"), "the ticket is closed"),
    ("unknown kind", connected, AgentSays(ID, "dance", "Ana"), "unknown kind 'dance'"),
]


@pytest.mark.parametrize("make, said, reason", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_illegal_agent_words_are_refused_and_change_nothing(make, said, reason) -> None:
    ticket = make()
    after, effects = helpdesk.from_agent(ticket, said, at(70))
    assert after == ticket
    assert effects == (RecordHelp(said.ticket, "refused", agent=said.agent, text=reason, outcome=said.kind),)


def test_a_repeated_accept_by_the_same_agent_is_harmless() -> None:
    ticket = connected()
    after, effects = helpdesk.from_agent(ticket, AgentSays(ID, "accept", "Ana"), at(70))
    assert after == ticket and len(effects) == 1 and isinstance(effects[0], Ignored)


def test_an_agent_may_resolve_a_ticket_nobody_accepted() -> None:
    ticket, effects = helpdesk.from_agent(waiting(), AgentSays(ID, "resolve", "Bo", "", "no_answer"), at(70))
    assert ticket is not None and ticket.phase is Phase.CLOSED and ticket.agent == ""
    assert effects == (RecordHelp(ID, "close", agent="Bo", outcome="no_answer", presses=1),)


@pytest.mark.parametrize("make, action", [
    (lambda: None, lambda t: helpdesk.reply(t, "card_declined", at(1))),
    (closed, lambda t: helpdesk.reply(t, "card_declined", at(1))),
    (waiting, lambda t: helpdesk.reply(t, "free_beer", at(1))),
    (waiting, lambda t: helpdesk.keep_waiting(t, T, at(1))),
    (waiting, lambda t: helpdesk.dismiss(t)),
    (lambda: None, lambda t: helpdesk.dismiss(t)),
    (closed, lambda t: helpdesk.courtesy(t, CourtesyGranted(ID, "B-1", at(99)), at(1))),
    (waiting, lambda t: helpdesk.courtesy(t, CourtesyGranted(OTHER, "B-1", at(99)), at(1))),
], ids=["reply-none", "reply-closed", "reply-unknown", "wait-not-overdue", "dismiss-open", "dismiss-none",
        "courtesy-closed", "courtesy-other"])
def test_illegal_parker_and_station_events_are_ignored(make, action) -> None:
    ticket = make()
    after, effects = action(ticket)
    assert after == ticket and len(effects) == 1 and isinstance(effects[0], Ignored)


def test_cancel_without_an_open_ticket_does_nothing() -> None:
    assert helpdesk.cancel(None, NOW) == (None, ())
    assert helpdesk.cancel(closed(), NOW) == (None, ())


def test_a_second_durable_id_for_one_call_is_closed() -> None:
    ticket, effects = helpdesk.opened(waiting(), OTHER)
    assert ticket is not None and ticket.id == ID
    assert effects == (RecordHelp(OTHER, "close", outcome="cancelled_by_parker"),)


def test_press_after_the_resolution_opens_a_new_call() -> None:
    ticket, effects = helpdesk.press(closed(), CONTEXT, T, at(70))
    assert ticket is not None and ticket.id is None and ticket.phase is Phase.WAITING
    assert effects == (OpenHelpTicket(CONTEXT),)


# ---- after a restart ----


def test_restore_brings_back_phase_agent_and_conversation() -> None:
    record = HelpTicketRecord(ID, "connected", NOW, at(30), "Ana", 2, (
        HelpMessageRecord("to_parker", "Ana", "Hello", at(40)), HelpMessageRecord("from_parker", None, "Thanks", at(45))))
    ticket = helpdesk.restore(record, T, at(300))
    assert (ticket.id, ticket.phase, ticket.agent, ticket.presses) == (ID, Phase.CONNECTED, "Ana", 2)
    assert [(line.author, line.text) for line in ticket.conversation] == [("agent", "Hello"), ("parker", "Thanks")]
    assert helpdesk.deadline(ticket, T) == at(300 + T.help_abandon_s), "timers restart at the restart"


def test_restore_puts_courtesy_grants_back_among_the_lines_in_time_order() -> None:
    session = SessionRecord("s1", "B-AB123", "Z", at(50), at(50 + 3600), 60, 0, "XXX", "courtesy", None, None, at(50))
    record = HelpTicketRecord(ID, "connected", NOW, at(30), "Ana", 1, (
        HelpMessageRecord("to_parker", "Ana", "Free parking for you", at(40)),
        HelpMessageRecord("from_parker", None, "Thanks", at(60))), (session,))
    ticket = helpdesk.restore(record, T, at(300))
    assert [(line.author, line.text, line.until) for line in ticket.conversation] == [
        ("agent", "Free parking for you", None), ("courtesy", "B-AB123", at(50 + 3600)), ("parker", "Thanks", None)]


def test_a_ticket_that_cannot_be_stored_is_told_honestly() -> None:
    ticket, _ = helpdesk.press(None, CONTEXT, T, NOW)
    ended, effects = helpdesk.failed(ticket, at(1))
    assert ended is not None and ended.phase is Phase.CLOSED and ended.outcome == helpdesk.UNREACHABLE
    assert effects == () and helpdesk.led(ended) == helpdesk.LED_OFF
    after, effects = helpdesk.failed(waiting(), at(1))
    assert after == waiting() and isinstance(effects[0], Ignored), "a stored ticket did not fail"


def test_an_open_ticket_untouched_for_the_abandon_time_is_stale_after_a_restart() -> None:
    record = HelpTicketRecord(ID, "waiting", NOW, None, None, 1, (
        HelpMessageRecord("from_parker", None, "My card is declined", at(60)),))
    assert not helpdesk.stale(record, T, at(60 + T.help_abandon_s - 1))
    assert helpdesk.stale(record, T, at(60 + T.help_abandon_s))
    granted = replace(record, courtesies=(
        SessionRecord("s1", "B-1", "Z", at(90), at(3600), 60, 0, "XXX", "courtesy", None, None, at(90)),))
    assert not helpdesk.stale(granted, T, at(60 + T.help_abandon_s)), "a courtesy grant is activity too"
