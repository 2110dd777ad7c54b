"""Declined: why the payment did not go through, in the parker's words, and what to do next."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.journey import State
from kiosk.domain.payment import DeclineReason
from screens.i18n import N_
from screens.widgets import Block, Flex, Frame, cols, rows

REASONS: dict[str, str] = {
    DeclineReason.DECLINED: N_("Your card was declined by the bank."),
    DeclineReason.UNREADABLE: N_("Your card could not be read."),
    DeclineReason.EXPIRED: N_("Your card has expired."),
    DeclineReason.ABORTED: N_("The payment was cancelled."),
    DeclineReason.FAILED: N_("The card terminal had a problem."),
    DeclineReason.NO_ANSWER: N_("The card terminal did not answer. You have not been charged."),
    DeclineReason.NOT_STORED: N_("Your parking could not be saved. You have not been charged."),
}
OTHER_REASON = N_("The payment did not go through.")

NEXT_STEPS: dict[str, str] = {
    DeclineReason.DECLINED: N_("Please use another card."),
    DeclineReason.UNREADABLE: N_("Please try again: hold the card flat on the reader, or use another card."),
    DeclineReason.EXPIRED: N_("Please use another card."),
    DeclineReason.ABORTED: N_("Try again when you are ready."),
}
OTHER_NEXT_STEP = N_("Please try again. If it happens again, use another card or press Help.")

def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Declined screen."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    decline = state.decline
    reason = decline.reason if decline is not None else ""
    app_url = state.settings.links.app_url
    content = frame.content()
    others = [_("Change time"), _("Help"), _("Done")]
    if m.landscape and not m.large_text:
        main, footer = rows(content, [Flex(), m.primary], m.gap)
        retry, change, help_box, _space, done = cols(footer, [Flex(220), Flex(190), Flex(120), Flex(48), Flex(150)],
                                                     m.gap)
    else:  # portrait and large text: Try again alone in the last row, the other choices above it
        main, others_row, retry = rows(content, [Flex(), frame.group_height(content.w, others), m.primary], m.gap)
        change, help_box, done = frame.button_group(others_row, others)
    split = cols if m.landscape else rows
    info, app = split(main, [Flex(), m.px(220) if app_url else 0], m.gap * 2)
    by_app = _("You can also pay by app: scan the QR code.") if app_url else ""  # the QR code's caption says it too
    frame.stack(info, [Block(_(REASONS.get(reason, OTHER_REASON)), m.title, bold=True, fg=p.error,
                             min_size=m.title_min), Block(_(NEXT_STEPS.get(reason, OTHER_NEXT_STEP)), m.body,
                                                          min_size=m.small),
                       Block(by_app, m.body, min_size=m.small, optional=True)],
                gap=m.gap, valign="middle" if m.large_text else "top")
    if app_url:
        frame.qr(app_url, _("Pay by app"), app)

    frame.button("retry", _("Try again"), retry, primary=True)
    frame.button("change", others[0], change)
    frame.button("help", others[1], help_box)
    frame.button("done", others[2], done)
