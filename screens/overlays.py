"""Overlays drawn over a screen: the help call, the inactivity warning, and the dark asleep screen."""
from __future__ import annotations

import math
from datetime import datetime

import pygame

from kiosk.domain.journey import State, deadline, help_shown
from screens import help
from screens.widgets import Flex, Frame, rows

HELP = "help"
ASLEEP = "asleep"
WARNING = "warning"


def active(state: State) -> str | None:
    """Which overlay shows, in the order the state machine routes taps: help, asleep, warning."""
    if help_shown(state):
        return HELP
    if state.asleep:
        return ASLEEP
    if state.warning_since is not None:
        return WARNING
    return None


def seconds_left(state: State, now: datetime) -> int:
    """Whole seconds until the inactivity warning resets the screen (never negative)."""
    due = deadline(state)
    return 0 if due is None else max(0, math.ceil((due - now).total_seconds()))


def draw_asleep(frame: Frame, state: State, now: datetime) -> None:
    """A dark screen; a touch anywhere only wakes the station."""
    p = frame.palette
    bg = frame.area("wake", frame.rect, p.sleep, p.sleep_pressed)
    frame.text(frame._("Touch the screen to start"), frame.content(), size=frame.m.body, fg=p.on_sleep, bg=bg,
               align="center", valign="middle")


def card(frame: Frame, inset: tuple[int, int], limit: tuple[int, int] | None = None) -> pygame.Rect:
    """Dim the screen and draw a centred card (inset and limit in reference px); return the card's inside."""
    m = frame.m
    box = frame.content().inflate(-m.px(inset[0]), -m.px(inset[1]))
    if limit is not None:
        box.w, box.h = min(box.w, m.px(limit[0])), min(box.h, m.px(limit[1]))
    box.center = frame.rect.center
    frame.scrim()
    frame.box(box, frame.palette.card, frame.palette.border, width=3)
    return box.inflate(-m.px(40), -m.px(32))


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the active help or warning overlay over the screen already drawn (its targets are dropped)."""
    _, m, p = frame._, frame.m, frame.palette
    kind = active(state)
    if kind == HELP:
        help.draw(frame, card(frame, (16, 12), help.card_limit(state)), state, now)
    elif kind == WARNING:
        title_box, body_box, button_box = rows(card(frame, (60, 40), (640, 360)), [m.px(100), Flex(), m.primary], m.gap)
        frame.text(_("Do you need more time?"), title_box, size=m.title, bold=True, min_size=m.title_min, bg=p.card,
                   align="center",
                   valign="middle")
        body = _("The screen will reset in {seconds} s and your entries will be cleared.").format(
            seconds=seconds_left(state, now))
        frame.text(body, body_box, size=m.body, bg=p.card, align="center", valign="middle")
        frame.button("continue", _("Yes, continue"), button_box.inflate(-m.px(140), 0), primary=True)
