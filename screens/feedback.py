"""Feedback ('How was it?' on a 1-5 scale, skippable) and the Thanks screen that follows it."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.journey import State
from screens.i18n import N_
from screens.widgets import Flex, Frame, cols, rows

RATINGS = (N_("Very bad"), N_("Bad"), N_("OK"), N_("Good"), N_("Very good"))


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Feedback screen: the scale left to right, or top to bottom in portrait and in large text."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    labels = ["\n".join((str(value), _(word))) for value, word in enumerate(RATINGS, start=1)]
    if m.landscape and m.large_text:  # one line per rating, worst at the top; Skip beside the question
        header, scale = rows(frame.content(), [m.target, Flex()], m.gap)
        title_box, skip = cols(header, [Flex(), frame.button_width(_("Skip")) + m.px(40)], m.gap)
        labels = [label.replace("\n", "  ") for label in labels]
        boxes = rows(scale, [Flex()] * len(RATINGS), m.key_gap)
    else:
        content = frame.content()
        title_height = max(m.px(80), frame.height_of(_("How was it?"), content.w, m.title_min, True))
        title_box, scale, footer = rows(content, [title_height, Flex(), m.target], m.gap)
        boxes = (cols if m.landscape else rows)(scale, [Flex()] * len(RATINGS), m.gap)
        skip = cols(footer, [Flex(), max(m.px(200), frame.button_width(_("Skip")))], m.gap)[1]
    frame.text(_("How was it?"), title_box, size=m.title, bold=True, min_size=m.title_min,
               align="left" if m.landscape and m.large_text else "center", valign="middle")
    for value, (label, box) in enumerate(zip(labels, boxes), start=1):
        frame.button(f"rate:{value}", label, box, size=m.title)
    frame.button("skip", _("Skip"), skip)


def draw_thanks(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Thanks screen: one full-screen target to finish."""
    _, m, p = frame._, frame.m, frame.palette
    bg = frame.area("continue", frame.rect, p.bg, p.secondary_pressed)
    title_box, detail_box = rows(frame.content(), [Flex(), Flex()], m.gap)
    frame.text(_("Thank you"), title_box, size=m.px(64), bold=True, bg=bg, align="center", valign="bottom")
    frame.text(_("Have a good day."), detail_box, size=m.body, bg=bg, align="center", valign="top")
