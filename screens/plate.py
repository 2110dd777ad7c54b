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


def key_rows(landscape: bool, _: Translate) -> list[list[Key]]:
    """The keyboard for the panel's orientation."""
    layout = LANDSCAPE_ROWS if landscape else PORTRAIT_ROWS
    result = [[Key(f"key:{c}", c) for c in chars] for chars in layout]
    result[EDIT_ROW[landscape]] += [Key("backspace", "", 1.5), Key("clear", _("Clear"), 1.5)]
    return result


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the Plate screen."""
    _, m, p = frame._, frame.m, frame.palette
    settings = state.settings
    frame.fill(p.bg)
    if m.landscape:
        top, keys, footer = rows(frame.content(), [m.px(96), Flex(), m.primary], m.gap)
        cancel, help_box, _gap, go = cols(footer, [Flex(160), Flex(130), Flex(170), Flex(270)], m.gap)
    else:  # portrait: Continue gets the whole width, Cancel and Help a row above it
        top, keys, aside, go = rows(frame.content(), [m.px(200), Flex(), m.target, m.primary], m.gap)
        cancel, help_box = cols(aside, [Flex(), Flex()], m.gap)

    split = cols if m.landscape else rows
    preview, words = split(top, [m.px(330) if m.landscape else m.px(100), Flex()], m.gap * 2)
    frame.plate(state.plate, preview, cursor=True)
    title_box, detail_box = rows(words, [m.px(48), Flex()], 0)
    frame.text(_("Enter your licence plate"), title_box, size=m.title, bold=True, min_size=m.title_min, valign="middle")
    n = settings.plate.max_length
    if state.message in MESSAGES:
        frame.text(_(MESSAGES[state.message]).format(n=n), detail_box, size=m.body, bold=True, fg=p.error)
    else:
        hint = _("Up to {n} letters and digits, as on the plate").format(n=n)
        frame.text(hint, detail_box, size=m.body, fg=p.muted)

    frame.keyboard(keys, key_rows(m.landscape, _))

    frame.button("cancel", _("Cancel"), cancel)
    frame.button("help", _("Help"), help_box)
    frame.button("continue", _("Continue"), go, primary=True, enabled=plate_valid(settings, state.plate))
