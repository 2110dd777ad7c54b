"""Welcome: zone, tariff in words, local time, Start, languages, contrast, help hint and notices."""
from __future__ import annotations

from dataclasses import dataclass
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
from screens.overlays import More
from screens.widgets import Block, Flex, Frame, cols, rows

BUTTON_BROKEN = N_("The red help button is out of order: tap Help on the screen to reach a person.")
BUTTON_FAULTS = frozenset({"help_button", "gpio"})  # the red button cannot be pressed; Help on the screen still works
NOTICES = {
    "card_terminal": N_("Card payment may be slow or fail at the moment."),
    "help_button": BUTTON_BROKEN,
    "gpio": BUTTON_BROKEN,
    "help": N_("Help by voice is not available at the moment: tap Help to write to a person."),
}
STOPPED: dict[str, str] = {  # a payment method stopped while another one still takes payments
    faults.ParkerImpact.NO_CARD_PAYMENT: N_("Card payment is not available"),
    faults.ParkerImpact.NO_PAYMENT_METHOD: N_("One way of paying does not work at the moment."),
}
OTHER_NOTICE = N_("Some functions of this station may not work at the moment.")
BY_APP = N_("Or pay by app: tap here.")
ALL_NOTICES = N_("More notices: tap here.")
NOTICES_TARGET = "more:notices"


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
    """A parker-facing line for each fault that still lets parkers pay (a broken help button first: the hint may
    give way to notices), with pay-by-app when configured."""
    _ = translator(state.language)
    lines = [_(STOPPED.get(fault.parker_impact) or NOTICES.get(fault.component, OTHER_NOTICE))
             for fault in sorted(fault_notices(state), key=lambda fault: fault.component not in BUTTON_FAULTS)]
    if lines and state.settings.links.app_url:
        lines.append(_(BY_APP))
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


@dataclass(frozen=True)
class Boxes:
    """Where each part of Welcome goes; a part without room (or not shown in this mode) gets None."""

    name: pygame.Rect | None
    languages: pygame.Rect
    clock: pygame.Rect | None
    prices: pygame.Rect | None
    notices: pygame.Rect
    headline: pygame.Rect
    start: pygame.Rect
    hint: pygame.Rect | None
    tools: pygame.Rect
    more: pygame.Rect | None = None  # the button to the prices, where they have no room


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Welcome screen."""
    _, m, p = frame._, frame.m, frame.palette
    settings = state.settings
    frame.fill(p.bg)
    free = free_now(settings, now)
    headline = title(state, free, now)
    names = [language_name(code) for code in offered_languages(state)]
    tools = [_("High contrast"), _("Large text"), _("Help")]
    layout = _landscape if m.landscape and not m.large_text else _landscape_large if m.landscape else _portrait
    boxes = layout(frame, state, free, headline, names, tools)
    if boxes.name is not None:
        frame.text(settings.zone.name, boxes.name, size=m.heading, bold=True, valign="middle")
    language_buttons(frame, state, frame.button_group(boxes.languages, names) if names else [])
    if boxes.clock is not None:
        tz = settings.zone.timezone
        clock = f"{format_date(now, tz, state.language)}  {format_clock(now, tz)}"
        frame.text(clock, boxes.clock, size=m.body, bold=True, align="right", valign="middle")
    if boxes.more is not None:
        frame.button("more:prices", _("Prices"), boxes.more)
    if boxes.prices is not None:
        prices_text = _prices_text(state)
        heading, prices = rows(boxes.prices, [frame.height_of(_("Prices"), boxes.prices.w, m.body, True), Flex()],
                               m.px(6))
        frame.text(_("Prices"), heading, size=m.body, bold=True, valign="bottom")
        frame.text(prices_text, prices, size=m.body)
    notices(frame, state, free, boxes.notices)
    frame.text(headline, boxes.headline, size=m.title, bold=True, min_size=m.title_min, valign="bottom")
    frame.button("start", _("Start"), boxes.start, primary=True, size=max(m.title, m.px(44)))
    if boxes.hint is not None:
        help_hint(frame, state, boxes.hint)
    contrast_box, large_box, help_box = frame.button_group(boxes.tools, tools)
    reading_buttons(frame, state, contrast_box, large_box)
    frame.button("help", _("Help"), help_box)


def _landscape(frame: Frame, state: State, free: FreePeriod | None, headline: str, names: list[str],
               tools: list[str]) -> Boxes:
    """Zone and languages on top; prices and notices beside the clock, headline, Start and hint; reading aids below."""
    m = frame.m
    header, body, footer = rows(frame.content(), [m.target, Flex(), m.target], m.gap)
    name, languages = cols(header, [Flex(), max(0, (m.px(112) + m.gap) * len(names) - m.gap)], m.gap)
    info, right = cols(body, [Flex(), m.px(330)], m.gap * 2)
    hint = frame.height_of(frame._(hint_text(state)), right.w - m.px(38), m.small, True)
    clock, start_area, hint_box = rows(right, [m.px(30), Flex(), hint], m.px(4))
    headline_height = frame.height_of(headline, right.w, m.title, True)  # as large as leaves Start its height
    if start_area.h - headline_height - m.gap < m.px(110):
        headline_height = frame.height_of(headline, right.w, m.title_min, True)
    headline_box, start = rows(start_area, [headline_height, Flex()], m.gap)
    prices, notice_box, more = _prices_or_button(frame, state, free, info)
    return Boxes(name, languages, clock, prices, notice_box, headline_box, start, hint_box, footer, more)


def _landscape_large(frame: Frame, state: State, free: FreePeriod | None, headline: str, names: list[str],
                     tools: list[str]) -> Boxes:
    """Large text: no prices or clock (Duration prices every choice); the zone, then the hint, give way to notices."""
    m, content = frame.m, frame.content()
    languages, body, footer = rows(content, [frame.group_height(content.w, names), Flex(),
                                             frame.group_height(content.w, tools)], m.gap)
    room = body.h - m.primary - m.target - 2 * m.gap  # the headline's height above Start and Prices
    width = max(m.px(330), max(frame.fonts.size(word, m.title_min, True)[0] for word in headline.split()) + m.px(4))
    while frame.height_of(headline, width, m.title_min, True) > room and width < body.w // 2:
        width += m.px(10)  # a wider column rather than a cut headline
    info, right = cols(body, [Flex(), width], m.gap * 2)
    headline_box, start, more = rows(right, [Flex(), m.primary, m.target], m.gap)
    hint = frame.height_of(frame._(hint_text(state)), info.w - m.px(38), m.small, True)
    name = frame.height_of(state.settings.zone.name, info.w, m.heading, True)
    notice = notice_need(frame, state, free, info.w, info.h)
    with_hint = notice + hint + m.gap <= info.h
    with_name = with_hint and notice + hint + name + 2 * m.gap <= info.h
    *kept, notice_box = rows(info, [*([name] if with_name else []), *([hint] if with_hint else []), Flex()], m.gap)
    name_box = kept.pop(0) if with_name else None
    hint_box = kept.pop(0) if with_hint else None
    return Boxes(name_box, languages, None, None, notice_box, headline_box, start, hint_box, footer, more)


def _portrait(frame: Frame, state: State, free: FreePeriod | None, headline: str, names: list[str],
              tools: list[str]) -> Boxes:
    """One column: zone (and clock), languages, prices, notices, headline, Start, hint, reading aids and Help.

    Large text has no prices or clock; the zone, then the hint (Help is on screen anyway), give their room to notices.
    """
    m, content = frame.m, frame.content()
    large = m.large_text
    hint = frame.height_of(frame._(hint_text(state)), content.w - m.px(38), m.small, True)
    start = m.primary if large else m.px(120)
    start_height = frame.height_of(headline, content.w, m.title_min if large else m.title, True) + m.gap + start
    fixed = [frame.group_height(content.w, names), start_height, frame.group_height(content.w, tools)]
    room = content.h - sum(fixed) - m.gap * 3
    notice = notice_need(frame, state, free, content.w, room)
    with_name = not large or notice + m.target + hint + 2 * m.gap <= room
    with_hint = not large or notice + hint + m.gap <= room
    header, languages, middle, start_area, hint_box, footer = rows(content, [
        m.target if with_name else 0, fixed[0], Flex(), start_height, hint if with_hint else 0, fixed[2]], m.gap)
    name, clock = cols(header, [Flex(), 0 if large else m.px(230)], m.gap)
    headline_box, start_box = rows(start_area, [Flex(), start], m.gap)
    if large:  # the prices are behind a button beside Start
        start_box, beside = cols(start_box, [Flex(), frame.button_width(frame._("Prices")) + m.px(24)], m.gap)
        return Boxes(name if with_name else None, languages, None, None, middle, headline_box, start_box,
                     hint_box if with_hint else None, footer, beside)
    prices, notice_box, button = _prices_or_button(frame, state, free, middle)
    return Boxes(name, languages, clock, prices, notice_box, headline_box, start_box, hint_box, footer, button)


def prices_page(frame: Frame, state: State, now: datetime) -> More:
    """The prices on a page of their own, where Welcome has no room for them."""
    _ = frame._
    return More(_("Prices"), tuple(Block(line, frame.m.body) for line in tariff_lines(state.settings.tariff_engine,
                                                                                       state.language)))


def notices_page(frame: Frame, state: State, now: datetime) -> More:
    """Every notice whole, and the app's QR code when there is an app, from the notice box."""
    _, m = frame._, frame.m
    app_url = state.settings.links.app_url
    blocks = [Block(_("Scan the code with your phone and pay for your parking in the app."), m.body)] if app_url \
        else []  # beside the code
    blocks.extend(Block(line, m.body) for line in notice_lines(state) if line != _(BY_APP))
    if state.notice:
        blocks.append(Block(state.notice, m.body, min_size=m.smallest))  # staff's words: may shrink to be read whole
    return More(_("Notices"), tuple(blocks), app_url, _("Pay by app"))


def _prices_text(state: State) -> str:
    return "\n".join(tariff_lines(state.settings.tariff_engine, state.language))


def hint_text(state: State) -> str:
    """How to reach a person (untranslated): the red button while it works, else Help on the screen."""
    return N_("Press the red button to talk to a person") if button_works(state) else N_("Tap Help to talk to a person")


def _notice_texts(frame: Frame, state: State, free: FreePeriod | None, width: int, room: int) -> tuple[str, str]:
    """What the station says (its fault lines, and the free line where it fits whole) and what staff say."""
    lines = notice_lines(state)
    if free is not None and free.until is not None:  # last of the station's lines, and only where it fits whole:
        with_free = [*lines, frame._("You only need to pay if you stay longer.")]  # the title says it is free
        if frame.height_of("\n".join(with_free), width - 2 * frame.m.px(20), frame.m.small, bold=True) \
                + 2 * frame.m.px(12) <= room:
            lines = with_free
    return "\n".join(lines), state.notice


def notice_need(frame: Frame, state: State, free: FreePeriod | None, width: int, room: int,
                staff: bool = True) -> int:
    """The height the notice box needs at this width (0 when there is nothing to say); room: what it may get;
    staff False: for the station's own lines alone."""
    m = frame.m
    station_says, staff_says = _notice_texts(frame, state, free, width, room)
    text = "\n".join(t for t in (station_says, staff_says if staff else "") if t)
    return frame.height_of(text, width - 2 * m.px(20), m.small, bold=True) + 2 * m.px(12) if text else 0


def _prices_or_button(frame: Frame, state: State, free: FreePeriod | None,
                      area: pygame.Rect) -> tuple[pygame.Rect | None, pygame.Rect, pygame.Rect | None]:
    """The prices above the notices where both fit: the station's notices whole, and staff's at least as "More
    notices"; else the notices and a Prices button below them. Returns the prices', the notices' and the button's."""
    m = frame.m
    notice = notice_need(frame, state, free, area.w, area.h)
    floor = notice_need(frame, state, free, area.w, area.h, staff=False)  # what must be whole
    if state.notice:  # staff's notice needs at least the line to the notices page
        more_line = frame.height_of(frame._(ALL_NOTICES), area.w - 2 * m.px(20), m.small, True)
        floor += more_line if floor else more_line + 2 * m.px(12)
    prices = frame.height_of(frame._("Prices"), area.w, m.body, True) + m.px(6) + frame.height_of(
        _prices_text(state), area.w, m.small)
    if prices + (floor + m.gap if floor else 0) <= area.h:
        height = min(notice, max(0, area.h - prices - m.gap))
        prices_box, notice_box = rows(area, [Flex(), height], m.gap if height else 0)
        return prices_box, notice_box, None
    notice_box, button_row = rows(area, [Flex(), m.target], m.gap)
    width = min(button_row.w, max(m.px(200), frame.button_width(frame._("Prices"))))
    return None, notice_box, pygame.Rect(button_row.x, button_row.y, width, button_row.h)


def notices(frame: Frame, state: State, free: FreePeriod | None, room: pygame.Rect) -> None:
    """The station's notices in a box at the top of room, whole, then staff's notice. Where they do not all fit, the
    station's lines that do and "More notices": the box then opens them all, as it does the app."""
    _, m, p = frame._, frame.m, frame.palette
    station_says, staff_says = _notice_texts(frame, state, free, room.w, room.h)
    need = notice_need(frame, state, free, room.w, room.h)
    if not need:
        return
    box = pygame.Rect(room.x, room.y, room.w, min(need, room.h))
    inner = box.inflate(-2 * m.px(20), -2 * m.px(12))
    lines = station_says.split("\n") if station_says else []
    if frame.height_of("\n".join(t for t in (station_says, staff_says) if t), inner.w, m.small, bold=True) > inner.h:
        while lines and frame.height_of("\n".join([*lines, _(ALL_NOTICES)]), inner.w, m.small, bold=True) > inner.h:
            lines.pop()  # whole lines only, and a way to the rest
        lines, staff_says = [*lines, _(ALL_NOTICES)], ""
    tappable = bool({_(BY_APP), _(ALL_NOTICES)} & set(lines))
    bg = p.notice_pressed if tappable and frame.pressed == NOTICES_TARGET else p.notice
    frame.box(box, bg, p.on_notice, width=3 if tappable else 2)
    if tappable:
        frame.targets[NOTICES_TARGET] = pygame.Rect(box)
    station_says = "\n".join(lines)
    station_need = frame.height_of(station_says, inner.w, m.small, bold=True) if station_says else 0
    ours, theirs = rows(inner, [min(station_need, inner.h), Flex()], 0)
    for text, place in ((station_says, ours), (staff_says, theirs)):
        if text:
            frame.text(text, place, size=m.small, bold=True, fg=p.on_notice, bg=bg, valign="middle")


def help_hint(frame: Frame, state: State, box: pygame.Rect) -> None:
    """How to reach a person: the red button while it works, else Help on the screen."""
    m, p = frame.m, frame.palette
    if button_works(state):
        radius = m.px(14)
        pygame.draw.circle(frame.surface, p.error, (box.x + radius, box.centery), radius)
        box = pygame.Rect(box.x + 2 * radius + m.px(10), box.y, box.w - 2 * radius - m.px(10), box.h)
    frame.text(frame._(hint_text(state)), box, size=m.small, bold=True, valign="middle")


def reading_buttons(frame: Frame, state: State, contrast_box: pygame.Rect, large_box: pygame.Rect) -> None:
    """The two reading aids, each primary while it is on."""
    frame.button("contrast", frame._("High contrast"), contrast_box, primary=state.high_contrast)
    frame.button("large_text", frame._("Large text"), large_box, primary=state.large_text)
