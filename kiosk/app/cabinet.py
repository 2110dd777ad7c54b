"""The cabinet's own health on the loop thread: a stuck help button and the door policy (tamper outside service mode)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kiosk.app.faults import FaultBoard
from kiosk.domain.events import DoorChanged, HelpButtonFreed, HelpButtonStuck

__all__ = ["CABINET_EVENTS", "Cabinet"]

log = logging.getLogger(__name__)

CABINET_EVENTS = (HelpButtonStuck, HelpButtonFreed, DoorChanged)


class Cabinet:
    """Turns the help button's and the door's events into faults for staff; they are not steps of the journey."""

    def __init__(self, faults: FaultBoard) -> None:
        self._faults = faults
        self._door_open = False
        self._handlers: dict[type, Callable[[Any, datetime], None]] = {
            HelpButtonStuck: self._stuck,
            HelpButtonFreed: self._freed,
            DoorChanged: self._door,
        }

    def handle(self, event: HelpButtonStuck | HelpButtonFreed | DoorChanged, now: datetime) -> None:
        """One cabinet event."""
        self._handlers[type(event)](event, now)

    @property
    def door_open(self) -> bool:
        """The cabinet door is open (as the door switch last said)."""
        return self._door_open

    def check_door(self, now: datetime) -> None:
        """An open cabinet door outside service mode is a tamper alarm; closing it (or service mode) clears it."""
        if self._door_open and not self._faults.in_service_mode():
            self._faults.raise_fault("door", "open", now)
        else:
            self._faults.clear_fault("door", now)

    def _stuck(self, event: HelpButtonStuck, now: datetime) -> None:
        self._faults.raise_fault("help_button", "stuck", now, f"held for {event.held_s} s")

    def _freed(self, event: HelpButtonFreed, now: datetime) -> None:
        self._faults.clear_fault("help_button", now)

    def _door(self, event: DoorChanged, now: datetime) -> None:
        log.info("cabinet door %s", "opened" if event.open else "closed")
        self._door_open = event.open
        self.check_door(now)
