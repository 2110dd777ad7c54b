"""A simulated intercom for `kiosk run --simulate`: an agent who answers after a few seconds; no SIP, no sound."""
from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

from kiosk.domain.events import CallProgress, Event, IntercomHealth
from kiosk.domain.voice import CallPhase

__all__ = ["SimulatedIntercom"]

log = logging.getLogger(__name__)

RING_S = 3.0  # the simulated agent lets it ring this long, then answers


class SimulatedIntercom:
    """The intercom port (kiosk.ports.Intercom) with a pretend agent: ringing, then talking until the station
    hangs up. Callbacks never come; an incoming call is refused. Honest about itself in the log."""

    def __init__(self, post: Callable[[Event], None], ring_s: float = RING_S) -> None:
        self._post = post
        self._ring_s = ring_s
        self._lock = threading.Lock()
        self._calls: dict[str, str] = {}  # ticket -> call id
        self._timers: list[threading.Timer] = []
        self._ids = itertools.count(1)

    def start(self) -> None:
        """The pretend user agent is up at once."""
        log.warning("help by voice is SIMULATED: no call leaves this station")
        self._post(IntercomHealth(None))

    def dial(self, ticket_id: str) -> None:
        """Ring the pretend agent, who answers after ring_s."""
        call_id = f"simulated-{next(self._ids)}"
        uri = "sip:agent@simulated.invalid"
        with self._lock:
            self._calls[ticket_id] = call_id
        self._post(CallProgress(ticket_id, CallPhase.RINGING, call_id, uri))
        timer = threading.Timer(self._ring_s, self._answered, (ticket_id, call_id, uri))
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def hang_up(self, ticket_id: str) -> None:
        """The station hangs up: the call ended."""
        with self._lock:
            call_id = self._calls.pop(ticket_id, None)
        if call_id is not None:
            self._post(CallProgress(ticket_id, CallPhase.ENDED, call_id, reason="hung up by the station"))

    def answer(self, ticket_id: str, call_id: str) -> None:
        """No callback ever comes to a simulated station."""

    def refuse(self, call_id: str) -> None:
        """No callback ever comes to a simulated station."""

    def close(self) -> None:
        """Stop the pretend agent's timers."""
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    def _answered(self, ticket_id: str, call_id: str, uri: str) -> None:
        with self._lock:
            live = self._calls.get(ticket_id) == call_id
        if live:
            self._post(CallProgress(ticket_id, CallPhase.TALKING, call_id, uri))
