"""Paying: plate, amount and expiry, 'present your card', the terminal's prompt in the parker's words, Cancel, help news."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.helpdesk import Phase
from kiosk.domain.journey import State, current_quote
from kiosk.domain.payment import PaymentPrompt
from screens.help import agent_name, say
from screens.i18n import N_, format_money, format_soon
from screens.widgets import Flex, Frame, cols, rows

PROMPTS = {
    PaymentPrompt.PRESENT_CARD: N_("The terminal is ready for your card."),
    PaymentPrompt.ENTER_PIN: N_("Enter your PIN on the terminal."),
    PaymentPrompt.WRONG_PIN: N_("Wrong PIN. Please try again on the terminal."),
    PaymentPrompt.REMOVE_CARD: N_("Please take your card."),
    PaymentPrompt.WAIT: N_("Please wait…"),
    PaymentPrompt.FOLLOW_TERMINAL: N_("Please follow the instructions on the terminal."),
}
SHOW_OWN_WORDS = frozenset({PaymentPrompt.ENTER_PIN, PaymentPrompt.FOLLOW_TERMINAL})  # they add something there


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Paying screen."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    payment = state.payment
    if m.landscape:
        top, until_box, title_box, status_box, footer = rows(frame.content(), [m.px(70), m.px(36), m.px(56), Flex(),
                                                                              m.primary], m.gap)
        banner, cancel = cols(footer, [Flex(), m.px(330)], m.gap)
    else:  # portrait: two lines for the title, the help news in a row of its own above Cancel
        top, until_box, title_box, status_box, banner, cancel = rows(
            frame.content(), [m.px(70), m.px(36), m.px(84), Flex(), m.px(90), m.primary], m.gap)
    plate_box, amount_box = cols(top, [m.px(230), Flex()], m.gap)
    if state.plate:
        frame.plate(state.plate, plate_box)  # the parker checks the plate once more before the card
    if payment is not None:
        frame.text(format_money(payment.amount, payment.currency, state.language), amount_box, size=m.huge, bold=True,
                   align="right", valign="middle")
    q = current_quote(state, now)
    if q is not None:
        tz = state.settings.zone.timezone
        frame.text(_("Parking until {time}").format(time=format_soon(q.expires, now, tz, state.language)), until_box,
                   size=m.body, bold=True, align="right", valign="middle")
    frame.text(_("Present your card to the terminal"), title_box, size=m.title, bold=True, min_size=m.title_min,
               align="center", valign="middle")

    frame.box(status_box, p.card, p.border)
    inner = status_box.inflate(-m.px(32), -m.px(16))
    if payment is not None and (payment.prompt is not None or payment.status_text):
        prompt = payment.prompt or PaymentPrompt.FOLLOW_TERMINAL
        said, own = rows(inner, [Flex(), m.px(44) if prompt in SHOW_OWN_WORDS and payment.status_text else 0], m.gap)
        frame.text(_(PROMPTS[prompt]), said, size=m.title, min_size=m.title_min, bold=True, bg=p.card, align="center",
                   valign="middle")
        if prompt in SHOW_OWN_WORDS and payment.status_text:
            frame.text(_("Card terminal: {text}").format(text=payment.status_text), own, size=m.body, fg=p.muted,
                       bg=p.card, align="center", valign="middle")
    else:
        frame.text(_("Waiting for the card terminal…"), inner, size=m.body, fg=p.muted, bg=p.card, align="center",
                   valign="middle")

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
