"""Out of service: says so and why in parker words, and offers the alternatives, help among them when it works."""
from __future__ import annotations

from datetime import datetime

import pygame

from kiosk.domain import faults
from kiosk.domain.journey import State, blocking_impact, parking_while_out
from kiosk.domain.outage import ParkingWhileOut
from screens.i18n import N_, format_soon, language_name, translator
from screens.overlays import More
from screens.welcome import BUTTON_BROKEN, button_works, language_buttons, offered_languages, reading_buttons
from screens.widgets import Block, Flex, Frame, centred, cols, rows

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
PARKING = {
    ParkingWhileOut.FREE: N_("You may park here without paying until this station works again."),
    ParkingWhileOut.PAID: N_("Parking must still be paid: by app or at another pay station."),
}


def meanwhile(state: State, now: datetime) -> list[str]:
    """Whether parking is free meanwhile, and when the station is expected back (a past time: not)."""
    _ = translator(state.language)
    result = []
    parking = parking_while_out(state)
    if parking in PARKING:
        result.append(_(PARKING[parking]))
    back = state.outage.back_at if state.outage is not None else None
    if back is not None and back > now:
        result.append(_("Expected back in service: {time}").format(
            time=format_soon(back, now, state.settings.zone.timezone, state.language)))
    return result


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
    return result


def more(frame: Frame, state: State, now: datetime) -> More:
    """What the screen had no room for (with the QR code) on a page of its own."""
    _ = frame._
    rest = _split(frame, state, now, _areas(frame, state)[1])[1]
    blocks = rest or [Block(line, frame.m.body) for line in alternatives(state)]  # all shown on screen: again here
    by_app = _("Pay by app: scan the QR code.")  # the QR code's caption says it on this page
    return More(_("Other ways to pay or get help"), tuple(block for block in blocks if block.text != by_app),
                state.settings.links.app_url, _("Pay by app"))


def _areas(frame: Frame, state: State) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect, str]:
    """The title band, the main area, the buttons' area, and the title."""
    _, m = frame._, frame.m
    title = _(TITLES[blocking_impact(state)])
    band = frame.rect.copy()
    band.h = max(m.px(90), frame.height_of(title, band.w - 2 * m.margin, m.title_min, True) + m.px(16))
    content = frame.content()
    body = pygame.Rect(content.x, band.bottom + m.gap, content.w, content.bottom - band.bottom - m.gap)
    main, footer = rows(body, [Flex(), frame.group_height(body.w, _tools(frame, state))], m.gap)
    return band, main, footer, title


def _tools(frame: Frame, state: State) -> list[str]:
    """The buttons' labels: the languages, the reading aids and Help."""
    _ = frame._
    return [*(language_name(code) for code in offered_languages(state)), _("High contrast"), _("Large text"),
            _("Help")]


def _split(frame: Frame, state: State, now: datetime, main: pygame.Rect) -> tuple[list[Block], list[Block] | None]:
    """The paragraphs the screen shows, and the rest for its More page (None: no More page). All of them when they
    fit beside the QR code; else as many as fit, in order, above the button to the rest and the QR code."""
    m = frame.m
    staff = [Block(state.notice, m.body, min_size=m.smallest)] if state.notice else []  # staff's words may shrink
    blocks = [Block(frame._(REASONS[blocking_impact(state)]), m.body, bold=True), *staff,
              *(Block(line, m.body) for line in meanwhile(state, now) + alternatives(state))]
    info = _beside_qr(frame, state, main)[0]
    if frame.stack_height(info.w, blocks, m.px(6), shrunk=False) <= info.h:
        return blocks, None
    room = rows(main, [Flex(), _more_height(frame, main.w)], m.gap)[0].h
    shown = 0
    while shown < len(blocks) and frame.stack_height(main.w, blocks[:shown + 1], m.px(6), shrunk=False) <= room:
        shown += 1
    return blocks[:shown], blocks[shown:]


def _beside_qr(frame: Frame, state: State, main: pygame.Rect) -> list[pygame.Rect]:
    """The text's area and the QR code's: beside it in landscape, above it in portrait."""
    m = frame.m
    return (cols if m.landscape else rows)(main, [Flex(), m.px(220) if state.settings.links.app_url else 0],
                                           m.gap * 2)


def _more_height(frame: Frame, width: int) -> int:
    """The height of the button to the More page: its label may need two lines."""
    m = frame.m
    return max(m.target, frame.height_of(frame._("Other ways to pay or get help"), width - m.px(12), m.button, True)
               + m.px(8))


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Out of service screen: what does not fit is on a page of its own, behind a button."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    band, main, footer, title = _areas(frame, state)
    frame.fill(p.alert, band)
    frame.text(title, band.inflate(-2 * m.margin, -m.px(8)), size=m.title, bold=True, fg=p.on_alert,
               min_size=m.title_min, bg=p.alert, valign="middle")
    shown, rest = _split(frame, state, now, main)
    app_url = state.settings.links.app_url
    if rest is None:  # everything on the screen itself, the QR code beside (or below) it
        info, app = _beside_qr(frame, state, main)
        frame.stack(info, shown, gap=m.px(6))
        if app_url:
            frame.qr(app_url, _("Pay by app"), app)
    else:
        label = _("Other ways to pay or get help")
        info, more_row = rows(main, [Flex(), _more_height(frame, main.w)], m.gap)
        frame.stack(info, shown, gap=m.px(6))
        frame.button("more:other_ways", label, centred(more_row, max(m.px(300), min(more_row.w, frame.button_width(label)))))
    *lang_boxes, contrast_box, large_box, help_box = frame.button_group(footer, _tools(frame, state))
    language_buttons(frame, state, lang_boxes)
    reading_buttons(frame, state, contrast_box, large_box)
    frame.button("help", _("Help"), help_box)
