"""Welcome: zone, tariff in words, local time, Start, languages, contrast, help hint and notices."""
from __future__ import annotations

from datetime import datetime

import pygame

from kiosk.domain import faults
from kiosk.domain.journey import FreePeriod, State, fault_notices, free_now
from kiosk.domain.tariff import Tariff
from screens.i18n import (
    N_,
    day_names,
    format_clock,
    format_date,
    format_duration,
    format_money,
    format_soon,
    language_name,
    translator,
)
from screens.widgets import Flex, Frame, cols, rows

BUTTON_BROKEN = N_("The red help button is out of order: tap Help on the screen to reach a person.")
BUTTON_FAULTS = frozenset({"help_button", "gpio"})  # the red button cannot be pressed; Help on the screen still works
NOTICES = {
    "card_terminal": N_("Card payment may be slow or fail at the moment."),
    "help_button": BUTTON_BROKEN,
    "gpio": BUTTON_BROKEN,
}
STOPPED: dict[str, str] = {  # a payment method stopped while another one still takes payments
    faults.ParkerImpact.NO_CARD_PAYMENT: N_("Card payment is not available"),
    faults.ParkerImpact.NO_PAYMENT_METHOD: N_("One way of paying does not work at the moment."),
}
OTHER_NOTICE = N_("Some functions of this station may not work at the moment.")


def offered_languages(state: State) -> tuple[str, ...]:
    """The languages a parker can choose on screen: none when only one is configured."""
    available = state.settings.languages.available
    return available if len(available) > 1 else ()


def language_buttons(frame: Frame, state: State, boxes: list[pygame.Rect]) -> None:
    """One button per offered language, in its own name; the one on screen is primary."""
    for code, box in zip(offered_languages(state), boxes):
        frame.button(f"lang:{code}", language_name(code), box, primary=code == state.language)


def button_works(state: State) -> bool:
    """The red help button can be pressed: no fault of the button or of the GPIO it is read through."""
    return not {fault.component for fault in state.faults} & BUTTON_FAULTS


def _day_ranges(weekdays: frozenset[int], names: tuple[str, ...]) -> str:
    """'Mon-Fri', 'Sat', 'Mon, Wed-Thu' from weekday numbers (0 = Monday)."""
    runs: list[list[int]] = []
    for day in sorted(weekdays):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(names[r[0]] if len(r) == 1 else f"{names[r[0]]}-{names[r[-1]]}" for r in runs)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def tariff_lines(tariff: Tariff, language: str) -> list[str]:
    """The tariff in words: one line per rate band, then the maximum stay, daily cap and free times."""
    _ = translator(language)
    names = day_names(language)
    lines = []
    for band in sorted(tariff.bands, key=lambda b: (min(b.weekdays), b.start_minute)):
        if band.rate_per_hour:
            price = _("{price}/h").format(price=format_money(band.rate_per_hour, tariff.currency, language))
        else:
            price = _("free")
        lines.append(_("{days} {start}-{end}  {price}").format(
            days=_day_ranges(band.weekdays, names), start=_hhmm(band.start_minute), end=_hhmm(band.end_minute), price=price))
    lines.append(_("Maximum stay {duration}").format(duration=format_duration(tariff.maximum_minutes, language)))
    if tariff.daily_cap is not None:
        lines.append(_("At most {price} per day").format(price=format_money(tariff.daily_cap, tariff.currency, language)))
    lines.append(_("Free at other times"))
    return lines


def notice_lines(state: State) -> list[str]:
    """A parker-facing line for each fault that still lets parkers pay, with pay-by-app when configured."""
    _ = translator(state.language)
    lines = [_(STOPPED.get(fault.parker_impact) or NOTICES.get(fault.component, OTHER_NOTICE))
             for fault in fault_notices(state)]
    if lines and state.settings.links.app_url:
        lines.append(_("You can also pay by app."))
    return list(dict.fromkeys(lines))


def title(state: State, free: FreePeriod | None, now: datetime) -> str:
    """What Welcome says first: pay here, or, in the free period ``free``, until when parking is free."""
    _ = translator(state.language)
    if free is None:
        return _("Pay for your parking here")
    if free.until is None:
        return _("Parking is free now")
    return _("Parking is free now until {time}").format(
        time=format_soon(free.until, now, state.settings.zone.timezone, state.language))


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Welcome screen."""
    _, m, p = frame._, frame.m, frame.palette
    settings = state.settings
    frame.fill(p.bg)
    languages = offered_languages(state)
    if m.landscape:  # the languages share the header with the zone; the clock sits above Start
        header, body, footer = rows(frame.content(), [m.target, Flex(), m.target], m.gap)
        name_box, lang_row = cols(header, [Flex(), max(0, (m.px(112) + m.gap) * len(languages) - m.gap)], m.gap)
        hint_box, contrast_box, help_box = cols(footer, [Flex(), m.px(210), m.px(130)], m.gap)
    else:
        header, lang_row, body, hint_box, footer = rows(
            frame.content(), [m.target, m.target if languages else 0, Flex(), m.target, m.target], m.gap)
        name_box, clock_box = cols(header, [Flex(), m.px(230)], m.gap)
        contrast_box, help_box = cols(footer, [Flex(), Flex()], m.gap)
    lang_width = min(m.px(170), (lang_row.w - m.gap * (len(languages) - 1)) // max(1, len(languages)))
    lang_boxes = cols(lang_row, [*[lang_width] * len(languages), Flex()], m.gap)[:len(languages)]
    frame.text(settings.zone.name, name_box, size=m.px(32), bold=True, valign="middle")
    language_buttons(frame, state, lang_boxes)

    split = cols if m.landscape else rows
    info, start_box = split(body, [Flex(), m.px(330) if m.landscape else m.px(232)], m.gap * 2)
    if m.landscape:
        clock_box, start_box = rows(start_box, [m.px(30), Flex()], m.px(4))
    tz = settings.zone.timezone
    clock = f"{format_date(now, tz, state.language)}  {format_clock(now, tz)}"
    frame.text(clock, clock_box, size=m.body, bold=True, align="right", valign="middle")
    free = free_now(settings, now)
    lines, staff_says = notice_lines(state), state.notice
    prices_text = "\n".join(tariff_lines(settings.tariff_engine, state.language))
    heading_height, gap, pad_x, pad_y = m.px(40), m.px(6), m.px(20), m.px(12)
    width = info.w - 2 * pad_x
    room = info.h - heading_height - frame.height_of(prices_text, info.w, m.small) - 2 * gap  # prices keep their need
    if free is not None and free.until is not None:  # last of the station's lines, and only where it fits whole:
        with_free = [*lines, _("You only need to pay if you stay longer.")]  # the title says it is free already
        if frame.height_of("\n".join(with_free), width, m.small, bold=True) + 2 * pad_y <= room:
            lines = with_free
    station_says = "\n".join(lines)
    station_need = frame.height_of(station_says, width, m.small, bold=True) if station_says else 0
    staff_need = frame.height_of(staff_says, width, m.small, bold=True) if staff_says else 0
    notice_height = 0
    if station_need or staff_need:
        notice_height = max(0, min(station_need + staff_need + 2 * pad_y, room))
    heading, prices, notice_box = rows(info, [heading_height, Flex(), notice_height], gap)
    frame.text(_("Prices"), heading, size=m.body, bold=True, valign="bottom")
    frame.text(prices_text, prices, size=m.body)
    if notice_height:  # what the station knows first, whole; staff's notice below it, cut if it must be
        frame.box(notice_box, p.notice, p.on_notice)
        inner = notice_box.inflate(-2 * pad_x, -2 * pad_y)
        ours, theirs = rows(inner, [min(station_need, inner.h), Flex()], 0)
        for text, box in ((station_says, ours), (staff_says, theirs)):
            if text:
                frame.text(text, box, size=m.small, bold=True, fg=p.on_notice, bg=p.notice, valign="middle")

    title_box, button_box = rows(start_box, [Flex(), m.px(150) if m.landscape else m.px(120)], m.gap)
    frame.text(title(state, free, now), title_box, size=m.title, bold=True, min_size=m.title_min, valign="bottom")
    frame.button("start", _("Start"), button_box, primary=True, size=m.px(44))

    if button_works(state):
        radius = m.px(14)
        pygame.draw.circle(frame.surface, p.error, (hint_box.x + radius, hint_box.centery), radius)
        hint_box.x, hint_box.w = hint_box.x + 2 * radius + m.px(10), hint_box.w - 2 * radius - m.px(10)
        frame.text(_("Press the red button to talk to a person"), hint_box, size=m.small, bold=True, valign="middle")
    else:
        frame.text(_("Tap Help to talk to a person"), hint_box, size=m.small, bold=True, valign="middle")
    frame.button("contrast", _("High contrast"), contrast_box, primary=state.high_contrast)
    frame.button("help", _("Help"), help_box)
