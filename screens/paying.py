"""Paying: the amount, 'present your card', the terminal's own status text, Cancel, and a word on a help call."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.helpdesk import Phase
from kiosk.domain.journey import State
from screens.help import agent_name, say
from screens.i18n import format_money
from screens.widgets import Flex, Frame, cols, rows


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Paying screen."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    payment = state.payment
    amount_box, title_box, status_box, footer = rows(frame.content(), [m.px(70), m.px(56), Flex(), m.primary], m.gap)
    if payment is not None:
        frame.text(format_money(payment.amount, payment.currency, state.language), amount_box, size=m.huge, bold=True,
                   align="center", valign="middle")
    frame.text(_("Present your card to the terminal"), title_box, size=m.title, bold=True, min_size=m.title_min,
               align="center", valign="middle")

    frame.box(status_box, p.card, p.border)
    inner = status_box.inflate(-m.px(32), -m.px(16))
    if payment is not None and payment.status_text:
        frame.text(payment.status_text, inner, size=m.title, min_size=m.title_min, bg=p.card, align="center",
                   valign="middle")
    else:
        frame.text(_("Waiting for the card terminal…"), inner, size=m.body, fg=p.muted, bg=p.card, align="center",
                   valign="middle")

    banner, cancel = cols(footer, [Flex(), m.px(330)], m.gap)
    ticket = state.help
    if ticket is not None and ticket.open:
        if ticket.phase is Phase.CONNECTED:
            notice = _("{agent} will talk to you after your payment.").format(agent=agent_name(ticket, _))
        else:
            notice = _("A person is being called. You can finish your payment first.")
        frame.box(banner, p.notice, p.on_notice)
        say(frame, notice, banner.inflate(-m.px(20), -m.px(8)), size=m.body, bold=True, fg=p.on_notice, bg=p.notice,
            valign="middle")
    if payment is not None and payment.committing:
        frame.button("cancel", _("Confirming your parking…"), cancel, enabled=False)
    elif payment is not None and payment.cancelling:
        frame.button("cancel", _("Cancelling…"), cancel, enabled=False)
    else:
        frame.button("cancel", _("Cancel"), cancel, enabled=payment is not None)
