"""Help calls while the database is unusable: the ticket kept in memory, its MQTT messages sent straight away."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kiosk.domain.helpdesk import ACTIONS, STEPS
from kiosk.domain.refusals import TicketNotOpen, check_choice, check_text
from kiosk.mqtt.contract import (
    HELP_FROM_PARKER,
    HELP_REQUEST,
    HELP_REQUEST_EXPIRY_S,
    HELP_STATE,
    from_parker,
    help_request,
    help_state,
)

__all__ = ["DirectHelp", "Message"]

# (topic, payload, retained, expiry_s): what the uplink publishes, QoS 1.
Message = tuple[str, str, bool, int | None]


@dataclass(frozen=True)
class _Call:
    id: str
    opened: datetime
    context: dict[str, Any]
    since: datetime  # when the call entered ``state``
    state: str = "waiting"
    agent: str | None = None
    overdue: bool = False
    outcome: str | None = None


class DirectHelp:
    """The one help call a station without storage can hold, as the same help/* messages a stored ticket earns.

    Nothing here is durable and there are no ``event/help`` (events need the database's
    sequence numbers): agents see the call through ``help/request`` and the retained
    ``help/state``, and can answer it; a restart forgets it.
    """

    def __init__(self, station_id: str) -> None:
        """No call held yet; help/request will name ``station_id``."""
        self._station_id = station_id
        self._call: _Call | None = None

    def holds(self, ticket_id: str) -> bool:
        """This is the call held here (its steps must come here too, even once the store works again)."""
        return self._call is not None and self._call.id == ticket_id

    def open(self, context: dict[str, Any], now: datetime) -> tuple[str, list[Message]]:
        """A new call (it replaces any earlier one): its id, help/state and help/request."""
        self._call = _Call(str(uuid.uuid4()), now, context, now)
        request = help_request(self._call.id, self._station_id, now, context)
        return self._call.id, [self._state(), (HELP_REQUEST, request, False, HELP_REQUEST_EXPIRY_S)]

    def step(self, ticket_id: str, action: str, now: datetime, *, agent: str = "", text: str = "",
             outcome: str = "", choice: str = "") -> list[Message]:
        """The messages of one step (Store.record_help's actions).

        TicketNotOpen for a call this station does not hold (or holds closed); InvalidValue for a bad argument.
        """
        check_choice("action", action, ACTIONS)
        call = self._call
        if call is None or call.id != ticket_id or call.state == "closed":
            raise TicketNotOpen(f"help ticket {ticket_id!r} is not open")
        if action in ("message", "refused"):
            return []  # a stored ticket reports these as events only
        if action == "reply":
            check_text("text", text)
            return [(HELP_FROM_PARKER, from_parker(ticket_id, text, choice, now), False, None)]
        named: str | None = call.agent
        if action == "accept":
            named = check_text("agent", agent)
        elif action == "close":
            check_text("outcome", outcome)
            named = agent or call.agent
        step = STEPS[action]
        self._call = replace(call, state=call.state if step.phase is None else step.phase.value,
                             since=call.since if step.phase is None else now, agent=named,
                             outcome=outcome if action == "close" else call.outcome,
                             overdue=call.overdue if step.overdue is None else step.overdue)
        return [self._state()]

    def _state(self) -> Message:
        call = self._call
        assert call is not None
        payload = help_state(call.id, call.state, call.since, call.opened, call.agent, call.overdue, call.context,
                             call.outcome)
        return HELP_STATE, payload, True, None
