"""The help ticket lifecycle as a pure state machine: waiting -> connected -> closed, honest timeouts, its voice call."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from kiosk.config import TimeoutSettings
from kiosk.domain.events import (
    AgentSays,
    AnswerCall,
    CallOffered,
    CallProgress,
    CourtesyGranted,
    Effect,
    EndCall,
    Ignored,
    OpenHelpTicket,
    PlaceCall,
    RecordHelp,
    RefuseCall,
)
from kiosk.domain.records import HelpTicketRecord
from kiosk.domain.voice import Call, CallDirection, CallPhase, FailReason, fail_reason, may_call_back


class LedPattern(StrEnum):
    """What the help button's LED shows."""

    OFF = "off"
    BLINKING = "blinking"
    STEADY = "steady"


LED_OFF, LED_BLINKING, LED_STEADY = LedPattern.OFF, LedPattern.BLINKING, LedPattern.STEADY

# What the parker can answer with one tap; the English text is what the agent reads.
QUICK_REPLIES: dict[str, str] = {
    "card_declined": "My card is declined",
    "plate_not_found": "I can't find my plate",
    "machine_broken": "The machine is not working",
    "other": "Something else",
}
# How an agent may close a ticket (help/to-parker "resolve").
OUTCOMES = ("solved", "courtesy", "technician", "no_answer", "other")
# How the station itself closes a ticket.
CANCELLED_BY_PARKER = "cancelled_by_parker"
ABANDONED = "abandoned"
UNREACHABLE = "unreachable"  # the ticket could not be stored, so no agent can be reached this way


class AgentKind(StrEnum):
    """What an agent says on help/to-parker (``type``; AgentSays.kind)."""

    ACCEPT = "accept"
    MESSAGE = "message"
    RESOLVE = "resolve"


AGENT_KINDS = tuple(kind.value for kind in AgentKind)


class HelpAction(StrEnum):
    """One step of a ticket the station records (RecordHelp.action; ``action`` of the help event)."""

    ACCEPT = "accept"
    MESSAGE = "message"
    REPLY = "reply"
    OVERDUE = "overdue"
    WAIT = "wait"
    CLOSE = "close"
    REFUSED = "refused"
    CALL = "call"


class Phase(StrEnum):
    """Where a ticket is (the ``state`` of help/state)."""

    WAITING = "waiting"
    CONNECTED = "connected"
    CLOSED = "closed"


class StepChange(NamedTuple):
    """What one recorded step (a RecordHelp action) does to a ticket; None leaves that part as it was."""

    phase: Phase | None
    overdue: bool | None


# The one table of the recorded steps and the ticket state each leads to, kept by the store
# (kiosk.storage.help) and by a call held without storage (kiosk.mqtt.direct_help) alike.
STEPS: dict[str, StepChange] = {
    "accept": StepChange(Phase.CONNECTED, False),
    "message": StepChange(None, None),  # a line to the parker
    "reply": StepChange(None, None),  # a line from the parker
    "overdue": StepChange(None, True),  # nobody answered in time
    "wait": StepChange(None, False),  # the parker keeps waiting
    "close": StepChange(Phase.CLOSED, False),
    "refused": StepChange(None, None),  # an agent's step refused: reported, the ticket unchanged
    "call": StepChange(None, None),  # the voice call changed phase; the ticket's own phase is the agents' (accept)
}
ACTIONS = tuple(STEPS)


@dataclass(frozen=True)
class Line:
    """One line of the conversation on screen: ``author`` is agent, parker or courtesy (text = the plate)."""

    author: str
    text: str
    at: datetime
    until: datetime | None = None


@dataclass(frozen=True)
class Ticket:
    """The parker's help call as the station sees it; ``id`` is None until the ticket is durable."""

    opened: datetime
    since: datetime
    answer_due: datetime
    last_activity: datetime
    phase: Phase = Phase.WAITING
    id: str | None = None
    agent: str = ""
    overdue: bool = False
    presses: int = 1
    conversation: tuple[Line, ...] = ()
    outcome: str = ""
    resolution: str = ""
    call: Call | None = None  # the latest voice call (None: voice is off, or none was placed yet)
    wants_call: bool = True  # a press asked for a voice call not placed yet (placed once the ticket is on screen)
    spoken: bool = False  # a person answered one of its voice calls: nobody is "not answering yet"

    @property
    def open(self) -> bool:
        """Waiting or connected: the call is still going on."""
        return self.phase is not Phase.CLOSED

    @property
    def on_the_phone(self) -> bool:
        """A voice call is being placed or is going on: the screen's and the ticket's own timers wait for it."""
        return self.call is not None and self.call.live


Result = tuple[Ticket | None, tuple[Effect, ...]]


def press(ticket: Ticket | None, context: dict[str, object], timeouts: TimeoutSettings, now: datetime) -> Result:
    """The help button (or the on-screen Help): open a ticket, or join the open one."""
    if ticket is None or not ticket.open:
        fresh = Ticket(opened=now, since=now, answer_due=now + timedelta(seconds=timeouts.help_answer_s),
                       last_activity=now)
        return fresh, (OpenHelpTicket(context),)
    joined = replace(ticket, presses=ticket.presses + 1, last_activity=now, wants_call=not ticket.on_the_phone)
    if ticket.overdue:
        return keep_waiting(joined, timeouts, now)
    return joined, ()


def opened(ticket: Ticket | None, ticket_id: str) -> Result:
    """The ticket is durable; a call the parker already cancelled is closed at once."""
    if ticket is None or ticket.id is not None:
        return ticket, (RecordHelp(ticket_id, HelpAction.CLOSE, outcome=CANCELLED_BY_PARKER),)
    if not ticket.open:  # abandoned in the instant before it was durable
        return replace(ticket, id=ticket_id), (RecordHelp(ticket_id, HelpAction.CLOSE, outcome=ticket.outcome),)
    return replace(ticket, id=ticket_id), ()


def failed(ticket: Ticket | None, now: datetime) -> Result:
    """The ticket could not be stored: say so honestly (the screen offers the phone number) instead of waiting."""
    if ticket is None or ticket.id is not None or not ticket.open:
        return ticket, (Ignored("ticket failed", "no call waiting to be stored"),)
    return replace(ticket, phase=Phase.CLOSED, since=now, outcome=UNREACHABLE, overdue=False), ()


def from_agent(ticket: Ticket | None, said: AgentSays, now: datetime) -> Result:
    """An agent's accept, message or resolve; anything illegal is refused with a reason the agent sees."""
    if ticket is None or ticket.id != said.ticket:
        return ticket, _refuse(said, "not the open ticket of this station")
    if not ticket.open:
        return ticket, _refuse(said, "the ticket is closed")
    taken = ticket.phase is Phase.CONNECTED and ticket.agent != said.agent
    if taken:
        return ticket, _refuse(said, f"taken by {ticket.agent}")
    if said.kind == AgentKind.ACCEPT:
        if ticket.phase is Phase.CONNECTED:
            return ticket, (Ignored(said, "already accepted by this agent"),)
        accepted = replace(ticket, phase=Phase.CONNECTED, since=now, agent=said.agent, overdue=False,
                           last_activity=now)
        return accepted, (RecordHelp(ticket.id, HelpAction.ACCEPT, agent=said.agent),)
    if said.kind == AgentKind.MESSAGE:
        if ticket.phase is Phase.WAITING:
            return ticket, _refuse(said, "accept the ticket first")
        line = Line("agent", said.text, now)
        talked = replace(ticket, conversation=ticket.conversation + (line,), last_activity=now)
        return talked, (RecordHelp(ticket.id, HelpAction.MESSAGE, agent=said.agent, text=said.text),)
    if said.kind == AgentKind.RESOLVE:
        return _close(ticket, now, said.outcome, agent=said.agent, text=said.text)
    return ticket, _refuse(said, f"unknown kind {said.kind!r}")


def reply(ticket: Ticket | None, choice: str, now: datetime) -> Result:
    """The parker tapped a quick reply; the agent reads it (also while still waiting for one)."""
    text = QUICK_REPLIES.get(choice)
    if ticket is None or ticket.id is None or not ticket.open or text is None:
        return ticket, (Ignored(choice, "no open ticket or unknown quick reply"),)
    line = Line("parker", text, now)
    answered = replace(ticket, conversation=ticket.conversation + (line,), last_activity=now)
    return answered, (RecordHelp(ticket.id, HelpAction.REPLY, text=text, choice=choice),)


def keep_waiting(ticket: Ticket, timeouts: TimeoutSettings, now: datetime) -> Result:
    """The parker chose to keep waiting after being told nobody answered yet: the answer timer starts again."""
    if not ticket.overdue or ticket.id is None:
        return ticket, (Ignored("keep waiting", "the ticket is not overdue"),)
    waiting = replace(ticket, overdue=False, answer_due=now + timedelta(seconds=timeouts.help_answer_s),
                      last_activity=now)
    return waiting, (RecordHelp(ticket.id, HelpAction.WAIT),)


def cancel(ticket: Ticket | None, now: datetime) -> Result:
    """The parker ended the call, hanging up a voice call (a ticket not yet durable is closed when it becomes so)."""
    if ticket is None or not ticket.open or ticket.id is None:
        return None, ()
    return None, (*_hang_up(ticket, now)[1],
                  RecordHelp(ticket.id, HelpAction.CLOSE, outcome=CANCELLED_BY_PARKER, presses=ticket.presses))


def dismiss(ticket: Ticket | None) -> Result:
    """The parker read the resolution and tapped OK."""
    if ticket is None or ticket.open:
        return ticket, (Ignored("dismiss", "the call is still open"),)
    return None, ()


def courtesy(ticket: Ticket | None, granted: CourtesyGranted, now: datetime) -> Result:
    """Staff granted free parking during this call: the parker sees it in the conversation."""
    if ticket is None or ticket.id != granted.ticket or not ticket.open:
        return ticket, (Ignored(granted, "no such open ticket on screen"),)
    line = Line("courtesy", granted.plate, now, until=granted.expires)
    return replace(ticket, conversation=ticket.conversation + (line,), last_activity=now), ()


def deadline(ticket: Ticket | None, timeouts: TimeoutSettings) -> datetime | None:
    """When the ticket next needs a tick: overdue notice, abandonment, a voice call's ring timeout, or the end of the
    resolution screen. While a voice call is placed or going on, only its ring timeout runs."""
    if ticket is None:
        return None
    if not ticket.open:
        return ticket.since + timedelta(seconds=timeouts.help_closed_s)
    if ticket.call is not None and ticket.call.live:
        return ticket.call.ring_due if ticket.call.answered is None else None
    abandon = ticket.last_activity + timedelta(seconds=timeouts.help_abandon_s)
    if ticket.phase is Phase.WAITING and not ticket.overdue and not ticket.spoken:
        return min(ticket.answer_due, abandon)
    return abandon


def tick(ticket: Ticket | None, timeouts: TimeoutSettings, now: datetime) -> Result:
    """Apply whatever timer is due."""
    due = deadline(ticket, timeouts)
    if ticket is None or due is None or now < due:
        return ticket, ()
    if not ticket.open:
        return None, ()
    if ticket.call is not None and ticket.call.live:  # no answer within voice.ring_timeout_s: on as text
        never_rang = ticket.call.phase is CallPhase.DIALLING  # not even a ring back: nobody is there
        return _hang_up(ticket, now, FailReason.UNREACHABLE if never_rang else FailReason.NO_ANSWER)
    if now >= ticket.last_activity + timedelta(seconds=timeouts.help_abandon_s):
        return _close(ticket, now, ABANDONED)
    if ticket.id is None:  # not durable yet: tell the parker anyway, record it once the id is known
        return replace(ticket, overdue=True), ()
    return replace(ticket, overdue=True), (RecordHelp(ticket.id, HelpAction.OVERDUE),)


def led(ticket: Ticket | None) -> LedPattern:
    """The help button's LED: blinking while waiting (a voice call ringing), steady while an agent is connected (or
    talking), else off."""
    if ticket is None or not ticket.open:
        return LedPattern.OFF
    if ticket.call is not None and ticket.call.live:
        return LedPattern.STEADY if ticket.call.phase is CallPhase.TALKING else LedPattern.BLINKING
    return LedPattern.STEADY if ticket.phase is Phase.CONNECTED else LedPattern.BLINKING


def dial(ticket: Ticket | None, ring_s: int, now: datetime) -> Result:
    """Place the voice call a press asked for, once the ticket is durable (the journey calls this when the ticket is
    on screen and voice is on): the intercom dials, and gives up after ``ring_s`` seconds without an answer."""
    if ticket is None or ticket.id is None or not ticket.open or not ticket.wants_call or ticket.on_the_phone:
        return ticket, ()
    call = Call(CallPhase.DIALLING, now, ring_due=now + timedelta(seconds=ring_s))
    placed = replace(ticket, call=call, wants_call=False, last_activity=now, overdue=False)
    return placed, (PlaceCall(ticket.id), RecordHelp(ticket.id, HelpAction.CALL, call=call))


def call_progress(ticket: Ticket | None, event: CallProgress, now: datetime) -> Result:
    """The intercom's word on the ticket's voice call: ringing, talking, or closed (ended if it was answered, else
    failed with the reason). A call that closes leaves the ticket open: it goes on as text until an agent resolves it."""
    call = ticket.call if ticket is not None else None
    if ticket is None or call is None or ticket.id != event.ticket or not call.live or not ticket.open:
        return ticket, (Ignored(event, "no voice call going on for this ticket"),)
    if call.id and event.call_id and event.call_id != call.id:
        return ticket, (Ignored(event, f"not the ticket's call {call.id}"),)
    known = replace(call, id=call.id or event.call_id, uri=call.uri or event.uri)
    if event.phase is CallPhase.RINGING and call.phase is CallPhase.DIALLING:
        changed = replace(known, phase=CallPhase.RINGING)
    elif event.phase is CallPhase.TALKING and call.phase is not CallPhase.TALKING:
        changed = replace(known, phase=CallPhase.TALKING, answered=now)
    elif event.phase in (CallPhase.ENDED, CallPhase.FAILED):
        changed = _closed_call(known, event.reason)
    else:
        return ticket, (Ignored(event, f"the call is {call.phase}"),)
    updated = replace(ticket, call=changed, last_activity=now, spoken=ticket.spoken or changed.answered is not None)
    return updated, (RecordHelp(ticket.id, HelpAction.CALL, call=changed),)


def offered(ticket: Ticket | None, event: CallOffered, allowed: tuple[str, ...], shown: bool, ring_s: int,
            now: datetime) -> Result:
    """Someone calls the station: an allowed agent calling back for the open ticket on screen is answered (given up
    if it is not talking within ``ring_s``); anyone else, or anyone while a call goes on or a payment runs
    (``shown`` False), is refused."""
    refusal = None
    if not may_call_back(event.caller, allowed):
        refusal = "not an agent allowed to call back (voice.callback_from)"
    elif ticket is None or ticket.id is None or not ticket.open:
        refusal = "no open help ticket"
    elif not shown:
        refusal = "the parker is paying"
    elif ticket.on_the_phone:
        refusal = "a voice call is going on"
    if refusal is not None or ticket is None or ticket.id is None:
        return ticket, (RefuseCall(event.call_id, refusal or "no open help ticket"),)
    call = Call(CallPhase.RINGING, now, ring_due=now + timedelta(seconds=ring_s), direction=CallDirection.CALLBACK,
                id=event.call_id, uri=event.caller)
    answering = replace(ticket, call=call, wants_call=False, last_activity=now, overdue=False)  # somebody came
    return answering, (AnswerCall(ticket.id, event.call_id), RecordHelp(ticket.id, HelpAction.CALL, call=call))


def stale(record: HelpTicketRecord, timeouts: TimeoutSettings, now: datetime) -> bool:
    """An open ticket from before a restart that nobody touched for help_abandon_s: the parker is long gone. One whose
    voice call was going on when the station stopped is not: the parker was talking until then."""
    if record.on_call:
        return False
    last = max([record.opened, *([record.accepted] if record.accepted else []), *(m.created for m in record.messages),
                *(grant.created for grant in record.courtesies)])
    return now - last >= timedelta(seconds=timeouts.help_abandon_s)


def restore(record: HelpTicketRecord, timeouts: TimeoutSettings, now: datetime) -> Ticket:
    """The open ticket the station had before a restart, back on screen; its timers start again now."""
    said = [Line("agent" if m.direction == "to_parker" else "parker", m.text, m.created) for m in record.messages]
    granted = [Line("courtesy", s.plate, s.created, until=s.expires) for s in record.courtesies]
    lines = tuple(sorted(said + granted, key=lambda line: line.at))  # stable: same-time lines keep their order
    phase = Phase(record.state)
    return Ticket(opened=record.opened, since=record.accepted or record.opened,
                  answer_due=now + timedelta(seconds=timeouts.help_answer_s), last_activity=now, phase=phase,
                  id=record.id, agent=record.agent or "", presses=record.presses, conversation=lines,
                  wants_call=False,  # a voice call did not survive the restart; a press calls again
                  spoken=record.spoken)


def _close(ticket: Ticket, now: datetime, outcome: str, agent: str = "", text: str = "") -> Result:
    hung_up, hang_up = _hang_up(ticket, now)
    closed = replace(hung_up or ticket, phase=Phase.CLOSED, since=now, outcome=outcome, resolution=text, overdue=False)
    if ticket.id is None:
        return closed, ()
    return closed, (*hang_up, RecordHelp(ticket.id, HelpAction.CLOSE, agent=agent or ticket.agent, text=text,
                                         outcome=outcome, presses=ticket.presses))


def _hang_up(ticket: Ticket, now: datetime, reason: FailReason = FailReason.CANCELLED) -> Result:
    """The station ends the ticket's live voice call (none: nothing to do); the ticket's timers start again now."""
    call = ticket.call
    if call is None or not call.live or ticket.id is None:
        return ticket, ()
    closed = _closed_call(call, "ended by the station" if call.phase is CallPhase.TALKING else reason)
    hung_up = replace(ticket, call=closed, last_activity=now)
    return hung_up, (EndCall(ticket.id), RecordHelp(ticket.id, HelpAction.CALL, call=closed))


def _closed_call(call: Call, sip_reason: str) -> Call:
    """A live call closed: ended when it was answered, else failed with why (a FailReason)."""
    if call.answered is not None:
        return replace(call, phase=CallPhase.ENDED, reason=sip_reason or "hung up")
    return replace(call, phase=CallPhase.FAILED, reason=fail_reason(sip_reason))


def _refuse(said: AgentSays, reason: str) -> tuple[Effect, ...]:
    return (RecordHelp(said.ticket, HelpAction.REFUSED, agent=said.agent, text=reason, outcome=said.kind),)


def courtesy_reason_suffix(ticket_id: str) -> str:
    """How a courtesy session's reason names the help ticket it was granted in (found again after a restart)."""
    return f" (help ticket {ticket_id})"
