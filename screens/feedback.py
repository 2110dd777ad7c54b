"""Feedback ('How was it?' on a 1-5 scale, skippable) and the Thanks screen that follows it."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.journey import State
from screens.i18n import N_
from screens.widgets import Flex, Frame, cols, rows

RATINGS = (N_("Very bad"), N_("Bad"), N_("OK"), N_("Good"), N_("Very good"))


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Feedback screen."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    title_box, scale, footer = rows(frame.content(), [m.px(80), Flex(), m.target], m.gap)
    frame.text(_("How was it?"), title_box, size=m.title, bold=True, min_size=m.title_min, align="center", valign="middle")
    split = cols if m.landscape else rows
    for value, (word, box) in enumerate(zip(RATINGS, split(scale, [Flex()] * len(RATINGS), m.gap)), start=1):
        label = _(word)
        frame.button(f"rate:{value}", f"{value}\n{label}", box, size=m.title)
    _space, skip = cols(footer, [Flex(), m.px(200)], m.gap)
    frame.button("skip", _("Skip"), skip)


def draw_thanks(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Thanks screen: one full-screen target to finish."""
    _, m, p = frame._, frame.m, frame.palette
    bg = frame.area("continue", frame.rect, p.bg, p.secondary_pressed)
    title_box, detail_box = rows(frame.content(), [Flex(), Flex()], m.gap)
    frame.text(_("Thank you"), title_box, size=m.px(64), bold=True, bg=bg, align="center", valign="bottom")
    frame.text(_("Have a good day."), detail_box, size=m.body, bg=bg, align="center", valign="top")
