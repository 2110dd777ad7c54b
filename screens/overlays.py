"""Overlays drawn over a screen: the help call, the inactivity warning, and the dark asleep screen."""
from __future__ import annotations

import math
from datetime import datetime

import pygame

from kiosk.flow import Screen, State, deadline
from screens.widgets import Flex, Frame, rows

HELP = "help"
ASLEEP = "asleep"
WARNING = "warning"


def active(state: State) -> str | None:
    """Which overlay shows, in the order the state machine routes taps: help, asleep, warning."""
    if state.help is not None and state.screen is not Screen.PAYING:
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


def _card(frame: Frame) -> list[pygame.Rect]:
    m = frame.m
    card = frame.content().inflate(-m.px(60), -m.px(40))
    card.w, card.h = min(card.w, m.px(640)), min(card.h, m.px(360))
    card.center = frame.rect.center
    frame.scrim()
    frame.box(card, frame.palette.card, frame.palette.border, width=3)
    return rows(card.inflate(-m.px(40), -m.px(32)), [m.px(100), Flex(), m.primary], m.gap)


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the active help or warning overlay over the screen already drawn (its targets are dropped)."""
    _, m, p = frame._, frame.m, frame.palette
    kind = active(state)
    if kind == HELP and state.help is not None:
        title_box, body_box, button_box = _card(frame)
        frame.text(_("A person is being called"), title_box, size=m.title, bold=True, min_size=m.title_min, bg=p.card, align="center",
                   valign="middle")
        waited = max(0, int((now - state.help.since).total_seconds()))
        status = _("Please stay here.") if state.help.ticket_id is None else _("Your call has been received. Please stay here.")
        waiting = _("Waiting for {time}").format(time=f"{waited // 60:02d}:{waited % 60:02d}")
        frame.text(f"{status}\n{waiting}", body_box, size=m.body, bg=p.card, align="center", valign="middle")
        frame.button("help:cancel", _("Cancel call"), button_box.inflate(-m.px(140), 0))
    elif kind == WARNING:
        title_box, body_box, button_box = _card(frame)
        frame.text(_("Do you need more time?"), title_box, size=m.title, bold=True, min_size=m.title_min, bg=p.card, align="center",
                   valign="middle")
        body = _("The screen will reset in {seconds} s and your entries will be cleared.").format(
            seconds=seconds_left(state, now))
        frame.text(body, body_box, size=m.body, bg=p.card, align="center", valign="middle")
        frame.button("continue", _("Yes, continue"), button_box.inflate(-m.px(140), 0), primary=True)
