"""The technician's service menu as the screen shows it: what it offers, what it knows and what it last did."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from kiosk.domain.doctor import Report

__all__ = ["TARGET_PREFIX", "MenuAction", "Opener", "ServiceMenu", "target_of"]

TARGET_PREFIX = "service:"  # the menu's tap targets: service:{action}


class MenuAction(StrEnum):
    """What a technician can do from the menu (its buttons, in order)."""

    TERMINAL_STATUS = "terminal_status"
    END_OF_DAY = "end_of_day"
    TEST_PAYMENT = "test_payment"
    LED_TEST = "led_test"
    DOCTOR = "doctor"
    LEAVE = "leave"


class Opener(StrEnum):
    """Who opened the menu: the cabinet door in service mode, or staff with the `service-menu` command."""

    DOOR = "door"
    STAFF = "staff"


@dataclass(frozen=True)
class ServiceMenu:
    """The menu on screen: the station's facts when it opened, the action running, and what the last ones said.

    ``about`` holds lines of facts (station id, firmware, addresses, link), ``answer`` the last
    action's lines, ``report`` the doctor's last report; ``led_on`` is the LED test, ``presses``
    counts help button presses since the menu opened (the button test).
    """

    opened: datetime
    opener: Opener
    about: tuple[str, ...] = ()
    running: MenuAction | None = None
    answer: tuple[str, ...] = ()
    report: Report | None = None
    led_on: bool = False
    presses: int = 0
    button_down: bool = False

    def pressed(self, down: bool) -> ServiceMenu:
        """The help button went down (counted) or up."""
        return replace(self, presses=self.presses + (1 if down and not self.button_down else 0), button_down=down)


def target_of(action: MenuAction) -> str:
    """The tap target of ``action``'s button."""
    return TARGET_PREFIX + action.value
