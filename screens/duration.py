"""Duration: minus/plus and quick picks, always with the price, 'Parking until' and the limits in words."""
from __future__ import annotations

from datetime import datetime, timedelta

import pygame

from kiosk.domain.journey import FreePeriod, State, current_quote, free_now, minute_range, purchase_start
from kiosk.domain.tariff import Quote
from screens.i18n import N_, format_clock, format_duration, format_money, format_soon, format_when, translator, zone
from screens.widgets import Flex, Frame, cols, rows

MESSAGES = {
    "max_stay_reached": N_("You have reached the maximum stay. No more time can be bought."),
    "nothing_to_pay": N_("There is nothing to pay for this time."),
    "cancelled_not_charged": N_("Payment cancelled. You have not been charged."),
}


def notes(state: State, q: Quote | None, free: FreePeriod | None, now: datetime) -> list[str]:
    """The limits and special cases of the quote ``q`` on screen, in words (``free``: the free period the title names)."""
    _ = translator(state.language)
    tariff = state.settings.tariff_engine
    tz, language = state.settings.zone.timezone, state.language
    result = []
    if q is not None:
        said_in_title = free is not None and free.until is not None
        if q.starts > purchase_start(state, now) and not said_in_title:
            result.append(_("Parking is free until {time}, your time starts then.").format(
                time=format_when(q.starts, now, tz, language)))
        elif q.expires - q.starts > timedelta(minutes=q.minutes):
            result.append(_("Only charged hours count; the free hours in between are included."))
        if q.price == 0:
            result.append(_("No charge for this time."))
    result.append(_("Maximum stay {duration}.").format(duration=format_duration(tariff.maximum_minutes, language)))
    return result


def quick_picks(state: State) -> list[int]:
    """The configured quick picks that can be bought now."""
    low, high = minute_range(state)
    return [pick for pick in state.settings.tariff.quick_picks_minutes if 0 < pick and low <= pick <= high]


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Duration screen."""
    _, m, p = frame._, frame.m, frame.palette
    tariff = state.settings.tariff_engine
    tz, language = state.settings.zone.timezone, state.language
    low, high = minute_range(state)
    q = current_quote(state, now)
    picks = quick_picks(state)
    free = free_now(state.settings, now) if state.existing is None else None
    frame.fill(p.bg)
    top = m.px(84) if state.existing is not None or free is not None else m.target
    if m.landscape:
        sizes: list[int | Flex] = [top, Flex(), m.target, m.primary] if picks else [top, Flex(), m.primary]
        header, main, *pick_row, footer = rows(frame.content(), sizes, m.gap)
        title_box, plate_box = cols(header, [Flex(), m.px(210)], m.gap)
        back, cancel, help_box, pay = cols(footer, [Flex(130), Flex(150), Flex(120), Flex(340)], m.gap)
    else:  # portrait: the title above the plate, Pay alone in the last row
        sizes = [m.px(100), m.target, Flex(), *([m.target] if picks else []), m.primary, m.primary]
        title_box, plate_row, main, *pick_row, aside, pay = rows(frame.content(), sizes, m.gap)
        plate_box = cols(plate_row, [m.px(210), Flex()], m.gap)[0]
        back, cancel, help_box = cols(aside, [Flex(150), Flex(300), Flex(150)], m.gap)
    if state.existing is not None and state.existing.plate != state.plate:  # found under another spelling
        title = _("{plate} already has parking until {time}, extend by:").format(
            plate=state.existing.plate, time=format_when(state.existing.expires, now, tz, language))
    elif state.existing is not None:
        title = _("You already have parking until {time}, extend by:").format(
            time=format_when(state.existing.expires, now, tz, language))
    elif free is not None and free.until is not None:
        title = _("Free until {time}: pay only for the time after").format(time=format_soon(free.until, now, tz,
                                                                                              language))
    else:
        title = _("How long do you want to park?")
    frame.text(title, title_box, size=m.title, bold=True, min_size=m.title_min, valign="middle")
    frame.plate(state.plate, plate_box)

    if m.landscape:
        minus, card, plus = cols(main, [m.px(110), Flex(), m.px(110)], m.gap)
    else:
        card, steppers = rows(main, [Flex(), m.px(110)], m.gap)
        minus, plus = cols(steppers, [Flex(), Flex()], m.gap)
    frame.button("minus", "\u2212", minus, enabled=state.minutes > low, size=m.px(60))
    frame.button("plus", "+", plus, enabled=state.minutes < high, size=m.px(60))
    frame.box(card, p.card, p.border)
    inner = card.inflate(-m.px(24), -m.px(8))
    amount_row, until_box, notes_box = rows(inner, [m.px(60), m.px(44) if m.landscape else m.px(84), Flex()], m.px(4))
    length_box, price_box = cols(amount_row, [Flex(), Flex()], m.gap)
    frame.text(format_duration(state.minutes, language), length_box, size=m.title, bold=True, bg=p.card, valign="middle")
    if q is not None:
        frame.text(format_money(q.price, tariff.currency, language), price_box, size=m.huge, bold=True, bg=p.card,
                   align="right", valign="middle")
        if q.starts > purchase_start(state, now):  # the time bought starts after a free period: say when
            same_day = q.expires.astimezone(zone(tz)).date() == q.starts.astimezone(zone(tz)).date()
            end = format_clock(q.expires, tz) if same_day else format_soon(q.expires, now, tz, language)
            until = _("From {start} until {end}").format(start=format_soon(q.starts, now, tz, language), end=end)
        else:
            until = _("Parking until {time}").format(time=format_soon(q.expires, now, tz, language))
        frame.text(until, until_box, size=m.title, bold=True, min_size=m.title_min, bg=p.card, valign="middle")
    if state.message in MESSAGES:
        used = frame.text(_(MESSAGES[state.message]), notes_box, size=m.small, bold=True, fg=p.error, bg=p.card)
        notes_box = pygame.Rect(notes_box.x, used.bottom, notes_box.w, notes_box.bottom - used.bottom)
    frame.text("\n".join(notes(state, q, free, now)), notes_box, size=m.small, fg=p.muted, bg=p.card)

    if picks:
        for pick, box in zip(picks, cols(pick_row[0], [Flex()] * len(picks), m.gap)):
            frame.button(f"pick:{pick}", format_duration(pick, language), box, primary=pick == state.minutes)

    frame.button("back", _("Back"), back)
    frame.button("cancel", _("No need to pay now") if free is not None else _("Cancel"), cancel)
    frame.button("help", _("Help"), help_box)
    price = q.price if q is not None else 0
    payable = price > 0
    label = _("Pay {price}").format(price=format_money(price, tariff.currency, language)) if payable else _("Pay")
    frame.button("pay", label, pay, primary=True, enabled=payable)
