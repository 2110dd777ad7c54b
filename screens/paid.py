"""Paid: 'Parking until HH:MM' large, plate and zone, the amount, an e-receipt QR code, and Done."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from kiosk.config import Settings
from kiosk.domain.journey import State
from screens.i18n import format_money, format_when
from screens.widgets import Flex, Frame, cols, rows


def receipt_url(settings: Settings, payment_id: str) -> str:
    """The e-receipt link: links.receipt_url with {station} and {payment} filled in."""
    return (settings.links.receipt_url.replace("{station}", quote(settings.station.id, safe=""))
            .replace("{payment}", quote(payment_id, safe="")))


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Paid screen."""
    _, m, p = frame._, frame.m, frame.palette
    frame.fill(p.bg)
    session = state.session
    main, footer = rows(frame.content(), [Flex(), m.primary], m.gap)
    has_receipt = session is not None and session.payment_id is not None
    split = cols if m.landscape else rows
    info, receipt = split(main, [Flex(), m.px(240) if has_receipt else 0], m.gap * 2)
    if session is not None:
        tz = state.settings.zone.timezone
        accepted = _("Payment accepted. Thank you!")
        until = _("Parking until {time}").format(time=format_when(session.expires, now, tz, state.language))
        paid = _("Paid {price}").format(price=format_money(session.amount, session.currency, state.language)) \
            if session.amount > 0 else ""
        plate_height = m.px(64)
        needs = [frame.height_of(accepted, info.w, m.body, True), frame.height_of(paid, info.w, m.body) if paid else 0]
        until_size = m.huge
        spare = info.h - sum(needs) - plate_height - 3 * m.gap
        if frame.height_of(until, info.w, until_size, True) > spare:
            until_size = m.title_min
        accepted_box, until_box, plate_row, amount_box, _rest = rows(
            info, [max(m.px(40), needs[0]), max(m.px(130) if not m.large_text else 0,
                                                 frame.height_of(until, info.w, until_size, True)),
                   plate_height, max(m.px(44), needs[1]), Flex()], m.gap)
        frame.text(accepted, accepted_box, size=m.body, bold=True, valign="middle")
        frame.text(until, until_box, size=until_size, bold=True, min_size=m.title_min, valign="middle")
        plate_box, zone_box = cols(plate_row, [m.px(230), Flex()], m.gap)
        frame.plate(session.plate, plate_box)
        frame.text(session.zone, zone_box, size=m.body, bold=True, valign="middle")
        if paid:
            frame.text(paid, amount_box, size=m.body, valign="middle")
    if session is not None and session.payment_id is not None:
        frame.qr(receipt_url(state.settings, session.payment_id), _("Scan for your receipt"), receipt)

    _space, done = cols(footer, [Flex(), m.px(260)], m.gap)
    frame.button("done", _("Done"), done, primary=True)
