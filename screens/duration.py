"""Duration: minus/plus and quick picks, always with the price, 'Parking until' and the limits in words."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pygame

from kiosk.domain.journey import FreePeriod, State, current_quote, free_now, minute_range, purchase_start
from kiosk.domain.tariff import Quote
from screens.i18n import N_, format_clock, format_duration, format_money, format_soon, format_when, translator, zone
from screens.widgets import Block, Flex, Frame, cols, rows

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


@dataclass(frozen=True)
class Boxes:
    """Where each part of Duration goes; None: not shown in this layout."""

    title: pygame.Rect
    plate: pygame.Rect | None
    minus: pygame.Rect
    card: pygame.Rect
    plus: pygame.Rect
    picks: pygame.Rect | None
    back: pygame.Rect
    cancel: pygame.Rect
    help: pygame.Rect
    pay: pygame.Rect


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Duration screen."""
    _, m, p = frame._, frame.m, frame.palette
    tariff = state.settings.tariff_engine
    language = state.language
    low, high = minute_range(state)
    q = current_quote(state, now)
    picks = quick_picks(state)
    pick_names = [format_duration(pick, language) for pick in picks]
    free = free_now(state.settings, now) if state.existing is None else None
    frame.fill(p.bg)
    heading = title(state, free, now)
    price = q.price if q is not None else 0
    pay_label = _("Pay {price}").format(price=format_money(price, tariff.currency, language)) if price else _("Pay")
    labels = [_("Back"), _("No need to pay now") if free is not None else _("Cancel"), _("Help"), pay_label]
    heading_fg = None
    if m.large_text and state.message in MESSAGES:  # large text: a message takes the title's place until a tap
        heading, heading_fg = _(MESSAGES[state.message]), p.error
    blocks = []
    if q is not None:
        until_size = m.title if m.large_text or not m.landscape else m.px(32)  # landscape: the notes' room first
        blocks.append(Block(until_text(state, q, now), until_size, bold=True, min_size=m.title_min))
    if state.message in MESSAGES and not m.large_text:
        blocks.append(Block(_(MESSAGES[state.message]), m.small, bold=True, fg=p.error))
    blocks.extend(Block(note, m.small, fg=p.muted, optional=m.large_text) for note in notes(state, q, free, now))
    amount_height = frame.fonts.linesize(m.huge, True) if m.large_text else m.px(60)
    layout = _large_landscape if m.landscape and m.large_text else _landscape if m.landscape else _portrait
    boxes = layout(frame, heading, labels, pick_names, low < high, amount_height + m.px(12) + frame.stack_height(
        frame.content().w - m.px(24), [block for block in blocks if not block.optional], gap=m.px(4)))

    frame.text(heading, boxes.title, size=m.title, bold=True, min_size=m.title_min, fg=heading_fg, valign="middle")
    if boxes.plate is not None:
        frame.plate(state.plate, boxes.plate)
    if boxes.minus.h:  # large text in portrait has no steppers when no time can be bought
        frame.button("minus", "\u2212", boxes.minus, enabled=state.minutes > low, size=m.px(60))
        frame.button("plus", "+", boxes.plus, enabled=state.minutes < high, size=m.px(60))
    frame.box(boxes.card, p.card, p.border)
    inner = boxes.card.inflate(-m.px(24), -m.px(8))
    amount_row, words = rows(inner, [amount_height, Flex()], m.px(4))
    length_box, price_box = cols(amount_row, [Flex(), Flex()], m.gap)
    frame.text(format_duration(state.minutes, language), length_box, size=m.title, bold=True, bg=p.card, valign="middle")
    if q is not None:
        frame.text(format_money(q.price, tariff.currency, language), price_box, size=m.huge, bold=True, bg=p.card,
                   align="right", valign="middle")
    frame.stack(words, blocks, bg=p.card, gap=m.px(4))

    if boxes.picks is not None:
        for pick, name, box in zip(picks, pick_names, frame.button_group(boxes.picks, pick_names)):
            frame.button(f"pick:{pick}", name, box, primary=pick == state.minutes)
    frame.button("back", labels[0], boxes.back)
    frame.button("cancel", labels[1], boxes.cancel)
    frame.button("help", labels[2], boxes.help)
    frame.button("pay", pay_label, boxes.pay, primary=True, enabled=price > 0)


def title(state: State, free: FreePeriod | None, now: datetime) -> str:
    """The question, or what the parker has already, or that parking is free until when."""
    _ = translator(state.language)
    tz, language = state.settings.zone.timezone, state.language
    if state.existing is not None and state.existing.plate != state.plate:  # found under another spelling
        return _("{plate} already has parking until {time}, extend by:").format(
            plate=state.existing.plate, time=format_when(state.existing.expires, now, tz, language))
    if state.existing is not None:
        return _("You already have parking until {time}, extend by:").format(
            time=format_when(state.existing.expires, now, tz, language))
    if free is not None and free.until is not None:
        return _("Free until {time}: pay only for the time after").format(time=format_soon(free.until, now, tz,
                                                                                             language))
    return _("How long do you want to park?")


def until_text(state: State, q: Quote, now: datetime) -> str:
    """Until when the time being bought lasts, and from when if it starts after a free period."""
    _ = translator(state.language)
    tz, language = state.settings.zone.timezone, state.language
    if q.starts > purchase_start(state, now):  # the time bought starts after a free period: say when
        same_day = q.expires.astimezone(zone(tz)).date() == q.starts.astimezone(zone(tz)).date()
        end = format_clock(q.expires, tz) if same_day else format_soon(q.expires, now, tz, language)
        return _("From {start} until {end}").format(start=format_soon(q.starts, now, tz, language), end=end)
    return _("Parking until {time}").format(time=format_soon(q.expires, now, tz, language))


def _landscape(frame: Frame, heading: str, labels: list[str], picks: list[str], stepping: bool,
               card_need: int) -> Boxes:
    m = frame.m
    top = m.px(84) if frame.height_of(heading, frame.content().w - m.px(222), m.title_min, True) > m.target \
        else m.target
    sizes: list[int | Flex] = [top, Flex(), frame.group_height(frame.content().w, picks), m.primary] if picks \
        else [top, Flex(), m.primary]
    header, main, *pick_row, footer = rows(frame.content(), sizes, m.gap)
    title_box, plate_box = cols(header, [Flex(), m.px(210)], m.gap)
    back, cancel, help_box, pay = cols(footer, [Flex(130), Flex(150), Flex(120), Flex(340)], m.gap)
    minus, card, plus = cols(main, [m.px(110), Flex(), m.px(110)], m.gap)
    return Boxes(title_box, plate_box, minus, card, plus, pick_row[0] if picks else None, back, cancel, help_box, pay)


def _large_landscape(frame: Frame, heading: str, labels: list[str], picks: list[str], stepping: bool,
                     card_need: int) -> Boxes:
    """Large text: the title gets the whole width (Paying shows the plate), no quick picks (the steppers stay), and
    the secondary actions get a row of their own when they do not fit beside Pay."""
    m, content = frame.m, frame.content()
    needs = [frame.button_width(label) for label in labels]
    one_row = sum(needs) + 3 * m.gap <= content.w
    footer = m.primary if one_row else m.target + m.gap + m.primary
    header, main, actions = rows(content, [frame.height_of(heading, content.w, m.title_min, True), Flex(), footer],
                                 m.gap)
    if one_row:
        back, cancel, help_box, pay = cols(actions, [*needs[:3], Flex()], m.gap)
    else:
        aside, pay = rows(actions, [m.target, m.primary], m.gap)
        back, cancel, help_box = cols(aside, [Flex(need) for need in needs[:3]], m.gap)
    card, steppers = cols(main, [Flex(), m.px(96)], m.gap)  # + above -, so that the card gets the width
    plus, minus = rows(steppers, [Flex(), Flex()], m.gap)
    return Boxes(header, None, minus, card, plus, None, back, cancel, help_box, pay)


def _portrait(frame: Frame, heading: str, labels: list[str], picks: list[str], stepping: bool,
              card_need: int) -> Boxes:
    """Portrait: the title above the plate, the steppers under the card, Pay alone in the last row; in large text
    the quick picks give their room to the card when it needs it (the steppers stay)."""
    m, content = frame.m, frame.content()
    aside_height = frame.group_height(content.w, [labels[i] for i in _aside_order(frame)])
    title_height = max(m.px(100), frame.height_of(heading, content.w, m.title_min, True))
    steppers_height = (m.target if stepping else 0) if m.large_text else m.px(110)
    plate_height = m.px(64) if m.large_text else m.target  # the plate's characters as large as the text
    fixed = [title_height, plate_height, steppers_height, aside_height, m.primary]
    picks_height = frame.group_height(content.w, picks)
    if m.large_text and content.h - sum(fixed) - picks_height - 6 * m.gap < card_need:
        picks = []
    sizes: list[int | Flex] = [title_height, plate_height, Flex(), steppers_height,
                               *([picks_height] if picks else []), aside_height, m.primary]
    title_box, plate_row, card, steppers, *pick_row, aside, pay = rows(content, sizes, m.gap)
    plate_box = cols(plate_row, [m.px(210), Flex()], m.gap)[0]
    minus, plus = cols(steppers, [Flex(), Flex()], m.gap)
    back, cancel, help_box = _aside(frame, aside, labels)
    return Boxes(title_box, plate_box, minus, card, plus, pick_row[0] if picks else None, back, cancel, help_box, pay)


def _aside_order(frame: Frame) -> list[int]:
    """Back, Cancel, Help; in large text Back and Help first, so that a long Cancel gets a row of its own."""
    return [0, 2, 1] if frame.m.large_text else [0, 1, 2]


def _aside(frame: Frame, row: pygame.Rect, labels: list[str]) -> list[pygame.Rect]:
    """The boxes of Back, Cancel and Help in their group, in that order."""
    order = _aside_order(frame)
    boxes = frame.button_group(row, [labels[i] for i in order])
    return [boxes[order.index(i)] for i in range(3)]
