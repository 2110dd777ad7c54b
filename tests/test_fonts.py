"""Rendered text: the same pixels as FreeType's, in the screen's own pixel format so that blits only copy."""
from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame

from kiosk.config import Settings
from screens.display import Display
from screens.fonts import Fonts

INK, PAPER = (20, 30, 40), (250, 240, 230)


def test_text_is_converted_to_the_screen_format_with_freetypes_pixels() -> None:
    pygame.display.quit()  # whatever an earlier test left: no screen yet
    before = Fonts().render("Pay here ÄÖÜ", 28, True, INK, PAPER)  # no screen yet: FreeType's own surface
    assert before.get_flags() & pygame.SRCALPHA
    display = Display(Settings(), headless=True)
    try:
        after = Fonts().render("Pay here ÄÖÜ", 28, True, INK, PAPER)
        screen = pygame.display.get_surface()
        assert not after.get_flags() & pygame.SRCALPHA
        assert (after.get_bitsize(), after.get_masks()) == (screen.get_bitsize(), screen.get_masks())
        assert after.get_size() == before.get_size()
        pixels = [(x, y) for x in range(after.get_width()) for y in range(after.get_height())]
        assert all(after.get_at(xy)[:3] == before.get_at(xy)[:3] for xy in pixels)
        assert {before.get_at(xy)[3] for xy in pixels} == {255}  # opaque: dropping alpha loses nothing
        assert len({after.get_at(xy)[:3] for xy in pixels}) > 2  # antialiased ink on paper, not a blank
    finally:
        display.close()
