"""Overlays drawn over a screen: the help call, the inactivity warning, the dark asleep screen, and pages of more."""
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
    """A page over a screen: a title, its paragraphs, and a QR code's link and caption (or '')."""

    title: str
    blocks: tuple[Block, ...]
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


def draw_more(frame: Frame, more: More, part: int) -> None:
    """A page over the screen with Close; what does not fit is on further parts, one after another by Next page."""
    _, m, p = frame._, frame.m, frame.palette
    inner = card(frame, (16, 12))
    close = _("Close")

    def turn(shown: int, parts: int) -> str:
        label = _("Next page ({page}/{pages})") if shown + 1 < parts else _("First page ({page}/{pages})")
        return label.format(page=shown + 1, pages=parts)
    buttons = m.target
    while True:  # the buttons' height and the number of parts depend on each other; the height only grows
        title_box, body, footer = rows(inner, [frame.height_of(more.title, inner.w, m.title_min, True), Flex(),
                                               buttons], m.gap)
        text_box, qr_box = (cols if m.landscape else rows)(body, [Flex(), m.px(200) if more.qr else 0], m.gap * 2)
        parts = _parts(frame, list(more.blocks), text_box if more.qr else body, body)
        needed = m.target if len(parts) == 1 else max(frame.group_height(inner.w, [turn(i, len(parts)), close])
                                                      for i in range(len(parts)))
        if needed <= buttons:
            break
        buttons = needed
    frame.text(more.title, title_box, size=m.title_min, bold=True, bg=p.card, valign="middle")
    shown = part % len(parts)
    if shown == 0 and more.qr:
        frame.qr(more.qr, more.qr_caption, qr_box, bg=p.card)
    frame.stack(text_box if shown == 0 and more.qr else body, parts[shown], bg=p.card, gap=m.px(6))
    if len(parts) == 1:
        frame.button("more:close", close, centred(footer, max(m.px(240), frame.button_width(close))), primary=True)
        return
    label = turn(shown, len(parts))
    turn_box, close_box = frame.button_group(footer, [label, close])
    frame.button("more:next", label, turn_box, primary=True)
    frame.button("more:close", close, close_box)


def _parts(frame: Frame, blocks: list[Block], first: pygame.Rect, rest: pygame.Rect) -> list[list[Block]]:
    """The blocks in order, as many to a part as fit whole at their size: the first part in ``first``, the others in
    ``rest``. A block too tall for a part of its own is alone in one, where it shrinks to its min_size."""
    gap = frame.m.px(6)
    parts: list[list[Block]] = [[]]
    for block in blocks:
        room = first if len(parts) == 1 else rest
        too_tall = frame.stack_height(room.w, [*parts[-1], block], gap, shrunk=False) > room.h
        if too_tall and (parts[-1] or room is not rest):  # one that cannot fit beside the code goes to the next part
            parts.append([])
        parts[-1].append(block)
    return parts
