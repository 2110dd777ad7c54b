"""Out of service: says so and why in parker words, and offers the alternatives, help among them when it works."""
from __future__ import annotations

from datetime import datetime

import pygame

from kiosk.domain import faults
from kiosk.domain.journey import State, blocking_impact
from screens.i18n import N_, translator
from screens.welcome import BUTTON_BROKEN, button_works, language_buttons, offered_languages
from screens.widgets import Flex, Frame, cols, rows

TITLES = {
    faults.ParkerImpact.NO_CARD_PAYMENT: N_("Card payment is not available"),
    faults.ParkerImpact.NO_PAYMENT_METHOD: N_("Payment is not available"),
    faults.ParkerImpact.OUT_OF_SERVICE: N_("This pay station is out of service"),
}
REASONS = {
    faults.ParkerImpact.NO_CARD_PAYMENT:
        N_("The card terminal is not working, so you cannot pay by card here at the moment."),
    faults.ParkerImpact.NO_PAYMENT_METHOD: N_("This station cannot take payments at the moment."),
    faults.ParkerImpact.OUT_OF_SERVICE: N_("This station cannot take payments at the moment."),
}
def alternatives(state: State) -> list[str]:
    """Other ways to pay or get help, from the configured links."""
    _ = translator(state.language)
    links = state.settings.links
    result = []
    if links.app_url:
        result.append(_("Pay by app: scan the QR code."))
    if links.nearest_station:
        result.append(_("Nearest pay station: {place}").format(place=links.nearest_station))
    if links.help_phone:
        result.append(_("Help line: {phone}").format(phone=links.help_phone))
    if not any(fault.component == "storage" for fault in state.faults):  # no help call without storage (Help says so)
        result.append(_("The help button still works: press the red button to talk to a person.")
                      if button_works(state) else _(BUTTON_BROKEN))
    if state.notice:
        result.insert(0, state.notice)
    return result


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Out of service screen."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    kind = blocking_impact(state)
    band = frame.rect.copy()
    band.h = m.px(90)
    frame.fill(p.alert, band)
    frame.text(_(TITLES[kind]), band.inflate(-2 * m.margin, -m.px(8)), size=m.title, bold=True, fg=p.on_alert,
               min_size=m.title_min,
               bg=p.alert, valign="middle")

    content = frame.content()
    body = pygame.Rect(content.x, band.bottom + m.gap, content.w, content.bottom - band.bottom - m.gap)
    languages = offered_languages(state)
    lang_in_row = bool(languages) and not m.landscape  # portrait: the languages get a row of their own
    main, lang_row, footer = rows(body, [Flex(), m.target if lang_in_row else 0, m.target], m.gap)
    app_url = state.settings.links.app_url
    split = cols if m.landscape else rows
    info, app = split(main, [Flex(), m.px(220) if app_url else 0], m.gap * 2)
    why_box, more_box = rows(info, [m.px(72) if m.landscape else m.px(110), Flex()], m.gap)
    frame.text(_(REASONS[kind]), why_box, size=m.body, bold=True)
    frame.text("\n".join(alternatives(state)), more_box, size=m.body)
    if app_url:
        frame.qr(app_url, _("Pay by app"), app)
    if lang_in_row:
        lang_width = (lang_row.w - m.gap * (len(languages) - 1)) // len(languages)
        lang_boxes = cols(lang_row, [lang_width] * len(languages), m.gap)
        _space, help_box = cols(footer, [Flex(), m.px(200)], m.gap)
    else:
        *lang_boxes, _space, help_box = cols(footer, [*[m.px(112)] * len(languages), Flex(), m.px(200)], m.gap)
    language_buttons(frame, state, lang_boxes)
    frame.button("help", _("Help"), help_box)
