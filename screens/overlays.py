"""Overlays drawn over a screen: the help call, the inactivity warning, the dark asleep screen, and large text's more."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import pygame

from kiosk.domain.journey import State, deadline, help_shown
from screens import help
from screens.widgets import Block, Flex, Frame, centred, cols, rows

HELP = "help"
ASLEEP = "asleep"
WARNING = "warning"
MORE = "more"


@dataclass(frozen=True)
class More:
    """What a screen has no room for in large text: a title, its lines, and a QR code's link and caption (or '')."""

    title: str
    lines: tuple[str, ...]
    qr: str = ""
    qr_caption: str = ""


def active(state: State) -> str | None:
    """Which overlay shows, in the order the state machine routes taps: help, asleep, warning, more."""
    if help_shown(state):
        return HELP
    if state.asleep:
        return ASLEEP
    if state.warning_since is not None:
        return WARNING
    if state.more is not None:
        return MORE
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
    if limit is not None and not m.large_text:  # large text needs the whole screen
        box.w, box.h = min(box.w, m.px(limit[0])), min(box.h, m.px(limit[1]))
    box.center = frame.rect.center
    frame.scrim()
    frame.box(box, frame.palette.card, frame.palette.border, width=3)
    return box.inflate(-m.px(24 if m.large_text else 40), -m.px(16 if m.large_text else 32))


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the active help or warning overlay over the screen already drawn (its targets are dropped)."""
    _, m, p = frame._, frame.m, frame.palette
    kind = active(state)
    if kind == HELP:
        help.draw(frame, card(frame, (16, 12), help.card_limit(state)), state, now)
    elif kind == WARNING:
        inner = card(frame, (60, 40), (640, 360))
        question = _("Do you need more time?")
        title_box, body_box, button_box = rows(inner, [max(m.px(100), frame.height_of(question, inner.w, m.title_min,
                                                                                         True)), Flex(), m.primary],
                                               m.gap)
        frame.text(question, title_box, size=m.title, bold=True, min_size=m.title_min, bg=p.card, align="center",
                   valign="middle")
        body = _("The screen will reset in {seconds} s and your entries will be cleared.").format(
            seconds=seconds_left(state, now))
        frame.text(body, body_box, size=m.body, bg=p.card, align="center", valign="middle")
        label = _("Yes, continue")
        frame.button("continue", label, centred(button_box, max(button_box.w - m.px(280),
                                                                     frame.button_width(label))), primary=True)


def draw_more(frame: Frame, more: More) -> None:
    """What the screen had no room for, over it, with Close."""
    _, m, p = frame._, frame.m, frame.palette
    inner = card(frame, (16, 12))
    title_box, body, close_row = rows(inner, [frame.height_of(more.title, inner.w, m.title_min, True), Flex(),
                                              m.target], m.gap)
    frame.text(more.title, title_box, size=m.title_min, bold=True, bg=p.card, valign="middle")
    text_box, qr_box = (cols if m.landscape else rows)(body, [Flex(), m.px(200) if more.qr else 0], m.gap * 2)
    frame.stack(text_box, [Block(line, m.body) for line in more.lines], bg=p.card, gap=m.px(6))
    if more.qr:
        frame.qr(more.qr, more.qr_caption, qr_box, bg=p.card)
    frame.button("more:close", _("Close"), centred(close_row, max(m.px(240), frame.button_width(_("Close")))),
                 primary=True)
