"""Plate: a big plate preview with a cursor, the format hint or a message, and the on-screen keyboard."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.journey import State, plate_valid
from screens.i18n import N_, Translate
from screens.widgets import Flex, Frame, Key, cols, rows

# Keys per row; the last row also gets Backspace and Clear. Every character of journey.KEYBOARD appears once.
LANDSCAPE_ROWS = ("1234567890", "ABCDEFGHIJ", "KLMNOPQRST", "UVWXYZ-")
PORTRAIT_ROWS = ("1234567", "890-", "ABCDEFG", "HIJKLMN", "OPQRSTU", "VWXYZ")
EDIT_ROW = {True: 3, False: 1}  # landscape?: index of the row that gets Backspace and Clear

MESSAGES = {
    "plate_too_long": N_("A plate has at most {n} characters."),
    "plate_invalid": N_("Please check the plate."),
}


def key_rows(landscape: bool, _: Translate, clear_aside: bool = False) -> list[list[Key]]:
    """The keyboard for the panel's orientation; clear_aside: Clear is a button of the footer, not a key."""
    layout = LANDSCAPE_ROWS if landscape else PORTRAIT_ROWS
    result = [[Key(f"key:{c}", c) for c in chars] for chars in layout]
    edit = [Key("backspace", "", 3.0)] if clear_aside else [Key("backspace", "", 1.5), Key("clear", _("Clear"), 1.5)]
    result[EDIT_ROW[landscape]] += edit
    return result


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Plate screen."""
    _, m, p = frame._, frame.m, frame.palette
    settings = state.settings
    frame.fill(p.bg)
    clear_aside = m.large_text  # "Clear" in large text is wider than its key: a button beside Cancel and Help
    clear_box = None
    if clear_aside and m.landscape:
        top, keys, footer = rows(frame.content(), [Flex(), 4 * m.px(56) + 3 * m.key_gap, m.primary], m.gap)
        widths: list[int | Flex] = [frame.button_width(label) for label in (_("Cancel"), _("Help"), _("Clear"))]
        cancel, help_box, clear_box, go = cols(footer, [*widths, Flex()], m.gap)  # Continue gets the rest
    elif clear_aside:  # the words above the keyboard get what one of them needs; Cancel moves beside Continue
        width = frame.content().w
        words_need = max(frame.height_of(_("Enter your licence plate"), width, m.title_min, True), *(
            frame.height_of(_(message).format(n=settings.plate.max_length), width, m.body, True)
            for message in MESSAGES.values()))  # a message takes the instruction's place
        top, keys, aside, footer = rows(frame.content(), [m.px(90) + 2 * m.gap + words_need, Flex(), m.target,
                                                          m.primary], m.gap)
        help_box, clear_box = cols(aside, [Flex(), Flex()], m.gap)
        cancel, go = cols(footer, [Flex(frame.button_width(_("Cancel"))), Flex(frame.button_width(_("Continue")))],
                          m.gap)
    elif m.landscape:
        top, keys, footer = rows(frame.content(), [m.px(96), Flex(), m.primary], m.gap)
        cancel, help_box, _gap, go = cols(footer, [Flex(160), Flex(130), Flex(170), Flex(270)], m.gap)
    else:  # portrait: Continue gets the whole width, Cancel and Help a row above it
        top, keys, aside, go = rows(frame.content(), [m.px(200), Flex(), m.target, m.primary], m.gap)
        cancel, help_box = cols(aside, [Flex(), Flex()], m.gap)

    split = cols if m.landscape else rows
    preview_size = (300 if m.large_text else 330) if m.landscape else (90 if m.large_text else 100)
    preview, words = split(top, [m.px(preview_size), Flex()], m.gap * 2)
    frame.plate(state.plate, preview, cursor=True)
    n = settings.plate.max_length
    hint = _("Up to {n} letters and digits, as on the plate").format(n=n)
    instruction = _("Enter your licence plate")
    if state.message in MESSAGES:  # a message replaces the hint; in large text, the instruction too
        detail, colour = _(MESSAGES[state.message]).format(n=n), p.error
    else:
        detail, colour = hint, p.muted
    title_height = frame.height_of(instruction, words.w, m.title_min, True)
    if m.large_text and title_height + frame.height_of(detail, words.w, m.body, state.message in MESSAGES) > words.h:
        if state.message in MESSAGES:
            instruction, colour = detail, p.error
        detail = ""
    title_box, detail_box = rows(words, [title_height if detail else words.h, Flex()], 0)
    frame.text(instruction, title_box, size=m.title, bold=True, min_size=m.title_min, fg=colour if not detail else None,
               valign="middle")
    if detail:
        frame.text(detail, detail_box, size=m.body, bold=state.message in MESSAGES, fg=colour)

    frame.keyboard(keys, key_rows(m.landscape, _, clear_aside))

    frame.button("cancel", _("Cancel"), cancel)
    frame.button("help", _("Help"), help_box)
    if clear_box is not None:
        frame.button("clear", _("Clear"), clear_box)
    frame.button("continue", _("Continue"), go, primary=True, enabled=plate_valid(settings, state.plate))
