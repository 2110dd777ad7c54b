"""Paying: plate, amount and expiry, 'present your card', the terminal's prompt in the parker's words, Cancel, help news."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.helpdesk import Phase
from kiosk.domain.journey import State, current_quote
from kiosk.domain.payment import PaymentPrompt
from screens.help import agent_name
from screens.i18n import N_, format_money, format_soon, translator
from screens.text_fit import printable, say
from screens.widgets import Block, Flex, Frame, cols, rows

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
    """Draw the Paying screen: large text puts the instruction into the status card, under the terminal's prompt."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    payment = state.payment
    content = frame.content()
    notice = printable(frame, help_news(state))  # an agent's name comes from outside
    large = m.large_text
    amount_height = frame.fonts.linesize(m.huge, True) if large else m.px(70)
    q = current_quote(state, now)
    until = "" if q is None else _("Parking until {time}").format(
        time=format_soon(q.expires, now, state.settings.zone.timezone, state.language))
    until_height = frame.height_of(until, content.w, m.body, True) if large else m.px(36)
    label = cancel_label(state)
    if m.landscape:
        cancel_width = max(m.px(220), min(m.px(330), frame.button_width(label)),  # the banner gets the rest
                           max(frame.button_width(word) for word in label.split()))
        banner_text = content.w - cancel_width - m.gap - m.px(20)  # as the banner's text is drawn below
        news = frame.height_of(notice, banner_text, m.body, True) + m.px(8) if notice else 0
        own = frame.height_of(label, cancel_width - m.px(12), m.button, True) + m.px(8)
        title_height = 0 if large else m.px(56)
        top, until_box, title_box, status_box, footer = rows(
            content, [amount_height, until_height, title_height, Flex(), max(m.primary, news, own)], m.gap)
        banner, cancel = cols(footer, [Flex(), cancel_width], m.gap)
    else:  # portrait: the help news in a row of its own above Cancel
        news = frame.height_of(notice, content.w - m.px(20), m.body, True) + m.px(8) if notice else 0
        title_height = 0 if large else m.px(84)
        own = frame.height_of(label, content.w - m.px(12), m.button, True) + m.px(8)
        top, until_box, title_box, status_box, banner, cancel = rows(
            content, [amount_height, until_height, title_height, Flex(), news, max(m.primary, own)], m.gap)
    plate_box, amount_box = cols(top, [m.px(230), Flex()], m.gap)
    if state.plate:
        frame.plate(state.plate, plate_box)  # the parker checks the plate once more before the card
    if payment is not None:
        frame.text(format_money(payment.amount, payment.currency, state.language), amount_box, size=m.huge, bold=True,
                   align="right", valign="middle")
    if until:
        frame.text(until, until_box, size=m.body, bold=True, align="right", valign="middle")
    instruction = _("Present your card to the terminal")
    if title_height:
        frame.text(instruction, title_box, size=m.title, bold=True, min_size=m.title_min, align="center",
                   valign="middle")

    frame.box(status_box, p.card, p.border)
    inner = status_box.inflate(-m.px(32), -m.px(16))
    blocks = []
    prompted = payment is not None and (payment.prompt is not None or bool(payment.status_text))
    if payment is not None and prompted:
        prompt = payment.prompt or PaymentPrompt.FOLLOW_TERMINAL
        blocks.append(Block(_(PROMPTS[prompt]), m.title, bold=True, min_size=m.title_min))
        if prompt in SHOW_OWN_WORDS and payment.status_text:
            blocks.append(Block(_("Card terminal: {text}").format(text=payment.status_text), m.body, fg=p.muted,
                                optional=True))
    else:
        blocks.append(Block(_("Waiting for the card terminal…"), m.body, fg=p.muted, optional=large))
    if large:  # the instruction first, then the terminal's prompt, which may stand alone for lack of room
        blocks.insert(0, Block(instruction, m.title, bold=True, min_size=m.title_min, optional=prompted))
    frame.stack(inner, blocks, bg=p.card, gap=m.gap, align="center", valign="middle")

    if notice:
        frame.box(banner, p.notice, p.on_notice)
        say(frame, notice, banner.inflate(-m.px(20), -m.px(8)), size=m.body, bold=True, fg=p.on_notice, bg=p.notice,
            valign="middle")
    frame.button("cancel", label, cancel, enabled=payment is not None and not (payment.committing or
                                                                               payment.cancelling))


def cancel_label(state: State) -> str:
    """Cancel, or why it cannot be tapped now (the payment is being confirmed or cancelled)."""
    _ = translator(state.language)
    payment = state.payment
    if payment is not None and payment.committing:
        return _("Confirming your parking…")
    if payment is not None and payment.cancelling:
        return _("Cancelling…")
    return _("Cancel")


def help_news(state: State) -> str:
    """What the banner says of an open help call while the parker pays ('' when there is none)."""
    _ = translator(state.language)
    ticket = state.help
    if ticket is None or not ticket.open:
        return ""
    if ticket.phase is Phase.CONNECTED:
        return _("{agent} will talk to you after your payment.").format(agent=agent_name(ticket, _))
    return _("A person is being called. You can finish your payment first.")
