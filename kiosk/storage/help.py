"""The store's help tickets: each step committed with its help/state, help/request, from-parker and event rows."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from kiosk.domain.helpdesk import ACTIONS, STEPS, courtesy_reason_suffix
from kiosk.domain.records import HelpMessageRecord, HelpTicketRecord, SessionRecord
from kiosk.domain.refusals import InvalidValue
from kiosk.domain.voice import LIVE, Call, CallPhase, FailReason
from kiosk.mqtt.contract import (
    HELP_FROM_PARKER,
    HELP_REQUEST,
    HELP_REQUEST_EXPIRY_S,
    HELP_STATE,
    from_parker,
    help_request,
    help_state,
    time_text,
    voice_state,
)
from kiosk.storage.core import StoreCore
from kiosk.storage.errors import TicketNotOpen
from kiosk.storage.rows import check_choice, check_int, check_json_object, check_text, to_record
from kiosk.storage.schema import HelpMessage, HelpTicket, ParkingSession, utc

__all__ = ["HELP_ACTIONS", "HELP_REQUEST_EXPIRY_S", "RESTART_OUTCOME", "HelpTickets", "courtesy_reason_suffix"]

log = logging.getLogger("kiosk.storage.store")

HELP_ACTIONS = ACTIONS  # the steps record_help takes: kiosk.domain.helpdesk.STEPS
RESTART_OUTCOME = "superseded_at_restart"
RESTART_CALL_REASON = "the station restarted"
LIVE_STATES = frozenset(phase.value for phase in LIVE)


class HelpTickets:
    """Parkers' help tickets: each step committed with its outbox rows (see docs/help-desk.md)."""

    def __init__(self, core: StoreCore) -> None:
        """Keep help tickets in ``core``'s database; help/request names ``core``'s station."""
        self._core = core

    def open_help_ticket(self, context: dict[str, Any], now: datetime) -> str:
        """Open a ticket in state ``waiting``: help/state, help/request (for the agents' queue) and the event."""
        context_json = check_json_object("context", context)
        utc(now, "now")
        ticket_id = str(uuid.uuid4())
        core = self._core
        with core.write():
            HelpTicket.insert(id=ticket_id, state="waiting", opened_at=now, context=context_json).execute(core.db)
            ticket = core.one(HelpTicket, ticket_id, "help ticket")
            self._report_state(ticket, now)
            core.insert_outbox(HELP_REQUEST, help_request(ticket_id, core.station_id, now, context), 1, False, None,
                               now, expiry_s=HELP_REQUEST_EXPIRY_S)
            core.add_event("help", {"ticket": ticket_id, "action": "open", "state": "waiting", "context": context}, now)
        log.info("help ticket %s opened", ticket_id)
        return ticket_id

    def record_help(self, ticket_id: str, action: str, now: datetime, *, agent: str = "", text: str = "",
                    outcome: str = "", choice: str = "", presses: int = 0, call: Call | None = None) -> bool:
        """Commit one step of an open ticket with its outbox rows; False if nothing was written.

        ``accept`` (agent), ``message`` (agent, text: to the parker), ``reply`` (text, choice: from
        the parker, also on help/from-parker), ``overdue`` and ``wait`` (nobody answered in time;
        the parker keeps waiting), ``close`` (outcome; agent and text when an agent resolved;
        the event carries the ticket's metrics), ``refused`` (agent, outcome = what was refused,
        text = why; an event only, also for a ticket this station does not know, so that the agent
        hears why), ``call`` (the voice call as it is now: help/state's ``voice``, the ticket's voice
        metrics). TicketNotOpen for any other step of a ticket that is unknown or closed.
        """
        check_choice("action", action, HELP_ACTIONS)
        utc(now, "now")
        with self._core.write():
            ticket = HelpTicket.select().where(HelpTicket.id == ticket_id).first(self._core.db)
            if action == "refused":  # answered even for a ticket this station does not know (or an unreadable one)
                log.warning("help %s from %r refused for ticket %r: %s", outcome or "message", agent, ticket_id, text)
                data = {"ticket": ticket_id or None, "action": "refused", "refused": outcome or None,
                        "agent": agent or None, "reason": text}
                self._core.add_event("help", data, now)
                return True
            if ticket is None or ticket.state == "closed":
                raise TicketNotOpen(f"help ticket {ticket_id!r} is not open")
            if action == "call":
                data = self._call(ticket, call, now)
            else:
                data = self._step(ticket, action, now, agent, text, outcome, choice, presses)
            self._core.add_event("help", {"ticket": ticket_id, "action": action, **data}, now)
        log.info("help ticket %s: %s", ticket_id, action)
        return True

    def open_help_ticket_record(self, now: datetime) -> HelpTicketRecord | None:
        """The ticket that was open when the station stopped, to show it again; older open ones are closed."""
        utc(now, "now")
        core = self._core
        with core.write():
            rows = list(HelpTicket.select().where(HelpTicket.state != "closed").order_by(HelpTicket.opened_at.desc())
                        .execute(core.db))
            ended = [self._end_call_at_restart(row, now) for row in rows]  # no call survives a restart
            for stale in rows[1:]:
                self._step(core.one(HelpTicket, stale.id, "help ticket"), "close", now, "", "", RESTART_OUTCOME, "", 0)
                core.add_event("help", {"ticket": stale.id, "action": "close", "outcome": RESTART_OUTCOME}, now)
            if len(rows) > 1 or (ended and ended[0]):  # help/state is the current ticket again, as it is now
                self._report_state(core.one(HelpTicket, rows[0].id, "help ticket"), now)
        if not rows:
            return None
        ticket = rows[0]
        query = HelpMessage.select().where(HelpMessage.ticket_id == ticket.id).order_by(HelpMessage.id)
        granted = (ParkingSession.select().where(ParkingSession.kind == "courtesy",
                                                 ParkingSession.reason.endswith(courtesy_reason_suffix(ticket.id)))
                   .order_by(ParkingSession.created, ParkingSession.id))
        with core.guard():
            messages = tuple(HelpMessageRecord(m.direction, m.agent, m.text, m.created) for m in query.execute(core.db))
            courtesies = tuple(to_record(SessionRecord, row) for row in granted.execute(core.db))
        voice = json.loads(ticket.voice) if ticket.voice else {}
        return HelpTicketRecord(ticket.id, ticket.state, ticket.opened_at, ticket.accepted_at, ticket.agent,
                                ticket.presses, messages, courtesies, spoken=voice.get("answer_s") is not None,
                                on_call=ended[0])

    def _step(self, ticket: HelpTicket, action: str, now: datetime, agent: str, text: str, outcome: str,
              choice: str, presses: int) -> dict[str, Any]:
        """Apply one step to the ticket row (inside the caller's transaction); the event data it earns."""
        core = self._core
        if action in ("message", "reply"):
            check_text("text", text)
            direction = "to_parker" if action == "message" else "from_parker"
            HelpMessage.insert(ticket_id=ticket.id, direction=direction, text=text, created=now,
                               agent=agent or None).execute(core.db)
            if action == "message":
                return {"state": ticket.state, "agent": agent, "text": text}
            core.insert_outbox(HELP_FROM_PARKER, from_parker(ticket.id, text, choice, now), 1, False, None, now)
            return {"state": ticket.state, "text": text, "choice": choice}
        step = STEPS[action]
        changes: dict[str, Any] = {}
        if step.phase is not None:
            changes["state"] = step.phase.value
        if action == "accept":
            changes.update(accepted_at=now, agent=check_text("agent", agent))
        elif action == "close":
            changes.update(closed_at=now, outcome=check_text("outcome", outcome))
            if agent:
                changes["agent"] = agent
            if presses:
                changes["presses"] = check_int("presses", presses, 1)
        if step.overdue is not None:
            changes["overdue"] = step.overdue
        HelpTicket.update(**changes).where(HelpTicket.id == ticket.id).execute(core.db)
        updated = core.one(HelpTicket, ticket.id, "help ticket")
        self._report_state(updated, now)
        data: dict[str, Any] = {"state": updated.state, "agent": updated.agent}
        if action == "close":
            accepted = updated.accepted_at
            data.update(outcome=outcome, text=text, presses=updated.presses,
                        time_to_accept_s=None if accepted is None else _seconds(updated.opened_at, accepted),
                        time_to_resolve_s=_seconds(updated.opened_at, now))
            if updated.voice:  # only a ticket that had a voice call
                data["voice"] = voice_metrics(json.loads(updated.voice))
        return data

    def _call(self, ticket: HelpTicket, call: Call | None, now: datetime) -> dict[str, Any]:
        """Keep the ticket's voice call as it is now, with the ticket's voice metrics; the event data it earns."""
        if call is None:
            raise InvalidValue("call: required for the call step")
        kept = call_kept(json.loads(ticket.voice) if ticket.voice else None, call, ticket.opened_at, now)
        changes: dict[str, Any] = {"voice": json.dumps(kept)}
        if call.live:  # a call placed or answered: nobody is "not answering" any more
            changes["overdue"] = False
        HelpTicket.update(**changes).where(HelpTicket.id == ticket.id).execute(self._core.db)
        self._report_state(self._core.one(HelpTicket, ticket.id, "help ticket"), now)
        return _call_event_data(ticket.state, kept)

    def _end_call_at_restart(self, ticket: HelpTicket, now: datetime) -> bool:
        """A voice call the ticket had going when the station stopped is over: say so (ended, or failed cancelled)
        with its event; True if there was one. Its talk time is not known and not counted."""
        kept = json.loads(ticket.voice) if ticket.voice else None
        if kept is None or kept.get("state") not in LIVE_STATES:
            return False
        answered = kept.get("answered") is not None
        kept.update(state=CallPhase.ENDED.value if answered else CallPhase.FAILED.value,
                    reason=RESTART_CALL_REASON if answered else FailReason.CANCELLED.value, since=time_text(now))
        HelpTicket.update(voice=json.dumps(kept)).where(HelpTicket.id == ticket.id).execute(self._core.db)
        self._core.add_event("help", {"ticket": ticket.id, "action": "call", **_call_event_data(ticket.state, kept)},
                             now)
        return True

    def _report_state(self, ticket: HelpTicket, now: datetime) -> None:
        began = {"waiting": ticket.opened_at, "connected": ticket.accepted_at, "closed": ticket.closed_at}
        voice = voice_state(json.loads(ticket.voice)) if ticket.voice else None
        payload = help_state(ticket.id, ticket.state, began[ticket.state] or now, ticket.opened_at, ticket.agent,
                             bool(ticket.overdue), json.loads(ticket.context), ticket.outcome, voice)
        self._core.insert_outbox(HELP_STATE, payload, 1, True, None, now)


def call_kept(before: dict[str, Any] | None, call: Call, opened: datetime, now: datetime) -> dict[str, Any]:
    """What a ticket keeps of its voice calls after ``call``'s step: the latest call (help/state's ``voice``) and the
    metrics (calls placed or answered, seconds from the press to the first answer, seconds talked, how the last
    ended)."""
    kept = dict(before or {"calls": 0, "answer_s": None, "talk_s": 0})
    if kept.get("started") != time_text(call.started):  # a new call: placed, or an agent calling back
        kept.update(calls=kept["calls"] + 1, started=time_text(call.started), answered=None)
    if call.answered is not None and kept.get("answered") is None:
        kept["answered"] = time_text(call.answered)
        if kept["answer_s"] is None:
            kept["answer_s"] = _seconds(opened, call.answered)
    if call.phase is CallPhase.ENDED and call.answered is not None:
        kept["talk_s"] += _seconds(call.answered, now)
    kept.update(call=call.id or None, uri=call.uri or None, state=call.phase.value, reason=call.reason or None,
                direction=call.direction.value, since=time_text(now))
    return kept


def voice_metrics(kept: dict[str, Any]) -> dict[str, Any]:
    """The voice metrics of a closing ticket's event: calls, answer_s, talk_s, and outcome (``answered`` if a person
    answered any call, else why the last one failed)."""
    outcome = "answered" if kept.get("answer_s") is not None else kept.get("reason") or kept.get("state")
    return {"calls": kept.get("calls", 0), "answer_s": kept.get("answer_s"), "talk_s": kept.get("talk_s", 0),
            "outcome": outcome}


def _call_event_data(ticket_state: str, kept: dict[str, Any]) -> dict[str, Any]:
    """The data of an event/help ``call`` step: the ticket's state and its latest call as kept."""
    return {"state": ticket_state, "call": kept.get("call"), "uri": kept.get("uri"), "call_state": kept.get("state"),
            "reason": kept.get("reason"), "direction": kept.get("direction")}


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds()))
