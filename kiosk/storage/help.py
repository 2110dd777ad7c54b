"""The store's help tickets: each step committed with its help/state, help/request, from-parker and event rows."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from kiosk.domain.helpdesk import HelpAction, Phase
from kiosk.domain.records import HelpMessageRecord, HelpTicketRecord, SessionRecord
from kiosk.storage.schema import HelpMessage, HelpTicket, ParkingSession, _utc
from kiosk.storage.rows import _choice, _int, _json, _record, _text, _ts, help_request, help_state

log = logging.getLogger("kiosk.storage.store")

HELP_REQUEST_EXPIRY_S = 120  # MQTT.md: a request nobody took within about two minutes leaves the broker
HELP_ACTIONS = tuple(HelpAction)
RESTART_OUTCOME = "superseded_at_restart"


def courtesy_reason_suffix(ticket_id: str) -> str:
    """How a courtesy session's reason names the help ticket it was granted in (found again after a restart)."""
    return f" (help ticket {ticket_id})"


class HelpStore:
    """Help ticket methods of ``kiosk.storage.store.Store`` (which provides the transactions and the outbox)."""

    def open_help_ticket(self, context: dict[str, Any], now: datetime) -> str:
        """Open a ticket in state ``waiting``: help/state, help/request (for the agents' queue) and the event."""
        if not isinstance(context, dict):
            raise ValueError(f"context must be a dict, got {type(context).__name__}")
        try:
            context_json = _json(context)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"context is not JSON-serialisable: {exc}") from exc
        _utc(now, "now")
        ticket_id = str(uuid.uuid4())
        with self._write():
            HelpTicket.insert(id=ticket_id, state=Phase.WAITING, opened_at=now, context=context_json).execute(self._db)
            ticket = self._one(HelpTicket, ticket_id, "help ticket")
            self._report_help_state(ticket, now)
            self._insert_outbox("help/request", help_request(ticket_id, self._station_id, now, context), 1, False, None,
                                now, expiry_s=HELP_REQUEST_EXPIRY_S)
            self._event("help", {"ticket": ticket_id, "action": "open", "state": "waiting", "context": context}, now)
        log.info("help ticket %s opened", ticket_id)
        return ticket_id

    def record_help(self, ticket_id: str, action: str, now: datetime, *, agent: str = "", text: str = "",
                    outcome: str = "", choice: str = "", presses: int = 0) -> bool:
        """Commit one step of an open ticket with its outbox rows; False if nothing was written.

        ``accept`` (agent), ``message`` (agent, text: to the parker), ``reply`` (text, choice: from
        the parker, also on help/from-parker), ``overdue`` and ``wait`` (nobody answered in time;
        the parker keeps waiting), ``close`` (outcome; agent and text when an agent resolved;
        the event carries the ticket's metrics), ``refused`` (agent, outcome = what was refused,
        text = why; an event only, and only for a ticket this station knows).
        """
        _choice("action", action, HELP_ACTIONS)
        _utc(now, "now")
        with self._write():
            ticket = HelpTicket.select().where(HelpTicket.id == ticket_id).first(self._db)
            if action == HelpAction.REFUSED:
                if ticket is None:
                    log.warning("help %s from %r refused for unknown ticket %r: %s", outcome, agent, ticket_id, text)
                    return False
                data = {"ticket": ticket_id, "action": "refused", "refused": outcome, "agent": agent, "reason": text}
                self._event("help", data, now)
                return True
            if ticket is None or ticket.state == Phase.CLOSED:
                raise ValueError(f"help ticket {ticket_id!r} is not open")
            data = self._help_step(ticket, action, now, agent, text, outcome, choice, presses)
            self._event("help", {"ticket": ticket_id, "action": action, **data}, now)
        log.info("help ticket %s: %s", ticket_id, action)
        return True

    def open_help_ticket_record(self, now: datetime) -> HelpTicketRecord | None:
        """The ticket that was open when the station stopped, to show it again; older open ones are closed."""
        _utc(now, "now")
        with self._write():
            rows = list(HelpTicket.select().where(HelpTicket.state != Phase.CLOSED)
                        .order_by(HelpTicket.opened_at.desc()).execute(self._db))
            for stale in rows[1:]:
                self._help_step(stale, HelpAction.CLOSE, now, "", "", RESTART_OUTCOME, "", 0)
                self._event("help", {"ticket": stale.id, "action": "close", "outcome": RESTART_OUTCOME}, now)
            if len(rows) > 1:  # help/state is the current ticket again, not the last one closed
                self._report_help_state(rows[0], now)
        if not rows:
            return None
        ticket = rows[0]
        query = HelpMessage.select().where(HelpMessage.ticket_id == ticket.id).order_by(HelpMessage.id)
        granted = (ParkingSession.select().where(ParkingSession.kind == "courtesy",
                                                 ParkingSession.reason.endswith(courtesy_reason_suffix(ticket.id)))
                   .order_by(ParkingSession.created, ParkingSession.id))
        with self._guard():
            messages = tuple(HelpMessageRecord(m.direction, m.agent, m.text, m.created) for m in query.execute(self._db))
            courtesies = tuple(_record(SessionRecord, row) for row in granted.execute(self._db))
        return HelpTicketRecord(ticket.id, ticket.state, ticket.opened_at, ticket.accepted_at, ticket.agent,
                                ticket.presses, messages, courtesies)

    def _help_step(self, ticket: HelpTicket, action: str, now: datetime, agent: str, text: str, outcome: str,
                   choice: str, presses: int) -> dict[str, Any]:
        """Apply one step to the ticket row (inside the caller's transaction); the event data it earns."""
        if action in (HelpAction.MESSAGE, HelpAction.REPLY):
            _text("text", text)
            direction = "to_parker" if action == HelpAction.MESSAGE else "from_parker"
            HelpMessage.insert(ticket_id=ticket.id, direction=direction, text=text, created=now,
                               agent=agent or None).execute(self._db)
            if action == HelpAction.MESSAGE:
                return {"state": ticket.state, "agent": agent, "text": text}
            self._insert_outbox("help/from-parker", _json({"ticket": ticket.id, "text": text, "choice": choice,
                                                           "ts": _ts(now)}), 1, False, None, now)
            return {"state": ticket.state, "text": text, "choice": choice}
        changes: dict[str, Any] = {}
        if action == HelpAction.ACCEPT:
            _text("agent", agent)
            changes = {"state": Phase.CONNECTED, "accepted_at": now, "agent": agent, "overdue": False}
        elif action in (HelpAction.OVERDUE, HelpAction.WAIT):
            changes = {"overdue": action == HelpAction.OVERDUE}
        elif action == HelpAction.CLOSE:
            _text("outcome", outcome)
            changes = {"state": Phase.CLOSED, "closed_at": now, "outcome": outcome, "overdue": False}
            if agent:
                changes["agent"] = agent
            if presses:
                changes["presses"] = _int("presses", presses, 1)
        HelpTicket.update(**changes).where(HelpTicket.id == ticket.id).execute(self._db)
        updated = self._one(HelpTicket, ticket.id, "help ticket")
        self._report_help_state(updated, now)
        data: dict[str, Any] = {"state": updated.state, "agent": updated.agent}
        if action == HelpAction.CLOSE:
            accepted = updated.accepted_at
            data.update(outcome=outcome, text=text, presses=updated.presses,
                        time_to_accept_s=None if accepted is None else _seconds(updated.opened_at, accepted),
                        time_to_resolve_s=_seconds(updated.opened_at, now))
        return data

    def _report_help_state(self, ticket: HelpTicket, now: datetime) -> None:
        began = {"waiting": ticket.opened_at, "connected": ticket.accepted_at, "closed": ticket.closed_at}
        payload = help_state(ticket.id, ticket.state, began[ticket.state] or now, ticket.opened_at, ticket.agent,
                             bool(ticket.overdue), json.loads(ticket.context), ticket.outcome)
        self._insert_outbox("help/state", payload, 1, True, None, now)


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds()))
