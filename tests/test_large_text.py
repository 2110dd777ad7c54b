"""Large text: at least 4.8 mm capital height on the 7" panel, reachable, forgotten for the next parker, and lossless."""
from __future__ import annotations

import functools
from dataclasses import replace
from datetime import timedelta

import fontpkg
import pygame
import pygame.freetype
import pytest
from screen_states import MULTILINGUAL, NOW, PORTRAIT, draw, states

from kiosk.config import Settings
from kiosk.domain import journey
from kiosk.domain.events import FaultsChanged, HelpPressed, Tap, Tick
from kiosk.domain.journey import MorePage, Screen
from screens import fonts

PANEL_MM_PER_PX = 7 * 25.4 / (800**2 + 480**2) ** 0.5  # the 7" 800x480 panel: 0.19 mm a pixel
MINIMUM_MM = 4.8
FROM_OUTSIDE = {"help_connected_long"}  # a 500-character agent message shrinks below it rather than being cut
TECHNICIAN = {"service_menu", "service_menu_doctor"}  # the technician's menu, not a parker's: standard text always


@functools.cache
def cap_height_mm(size: int, scale: float) -> float:
    """The height of a capital H at this pixel size, measured, on the 7" panel."""
    face = pygame.freetype.Font(fontpkg.path(fonts.FAMILY))
    face.pad = False
    return face.get_rect("H", size=size).height / scale * PANEL_MM_PER_PX


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
@pytest.mark.parametrize(("settings", "size"), [(MULTILINGUAL, (800, 480)), (PORTRAIT, (720, 1280))],
                         ids=["landscape", "portrait"])
def test_every_text_is_at_least_4_8_mm_high_in_large_text(language: str, settings: Settings,
                                                           size: tuple[int, int]) -> None:
    scale = min(size) / 480
    for name, state in states(settings).items():
        if name in FROM_OUTSIDE | TECHNICIAN:
            continue
        frame = draw(replace(state, language=language, large_text=True), size)
        for text, px in frame.sizes.items():
            assert cap_height_mm(px, scale) >= MINIMUM_MM, (name, text[:40], px)


def test_standard_secondary_text_is_smaller_than_that() -> None:
    """The check can fail: the standard prices and notices are 2.7-3.3 mm, as the issue measured."""
    frame = draw(states(MULTILINGUAL)["welcome_notice"])
    assert min(cap_height_mm(px, 1.0) for px in frame.sizes.values()) < 3.0


@pytest.mark.parametrize("screen_state", ["welcome", "out_of_service"])
def test_large_text_and_high_contrast_are_on_welcome_and_out_of_service(screen_state: str) -> None:
    state = states(MULTILINGUAL)[screen_state]
    assert {"contrast", "large_text"} <= set(draw(state).targets)
    larger, _ = journey.step(state, Tap("large_text"), NOW)
    assert larger.large_text and "large_text" in draw(larger).targets, "and it can be turned off where it was on"
    assert not journey.step(larger, Tap("large_text"), NOW)[0].large_text


def test_the_next_parker_finds_standard_text() -> None:
    """Like the language and the contrast: forgotten when the screen sleeps and when a session ends."""
    state = journey.initial(MULTILINGUAL, NOW)
    chosen, _ = journey.step(state, Tap("large_text"), NOW)
    asleep, _ = journey.step(chosen, Tick(), NOW + timedelta(seconds=MULTILINGUAL.timeouts.sleep_s))
    assert asleep.asleep and not asleep.large_text
    started, _ = journey.step(chosen, Tap("start"), NOW)
    assert started.large_text, "kept through the parker's own journey"
    cancelled, _ = journey.step(started, Tap("cancel"), NOW)
    assert not cancelled.large_text
    out = states(MULTILINGUAL)["out_of_service"]
    chosen_out, _ = journey.step(out, Tap("large_text"), NOW)
    later = NOW + timedelta(seconds=MULTILINGUAL.timeouts.inactivity_s)
    assert journey.screen_deadline(chosen_out) == later
    assert not journey.step(chosen_out, Tick(), later)[0].large_text


@pytest.mark.parametrize(("settings", "size"), [(MULTILINGUAL, (800, 480)), (PORTRAIT, (720, 1280))],
                         ids=["landscape", "portrait"])
def test_what_large_text_has_no_room_for_is_one_tap_away(settings: Settings, size: tuple[int, int]) -> None:
    """The prices of Welcome and the other ways to pay of Out of service: a button opens them, Close closes."""
    for name, target, expected in (("welcome", "more:prices", "Mon-Fri 08:00-18:00  €2.00/h"),
                                   ("out_of_service", "more:other_ways", "Help line: +49 30 123456")):
        state = replace(states(settings)[name], large_text=True)
        shown = draw(state, size)
        assert target in shown.targets and expected not in shown.texts, name
        opened, _ = journey.step(state, Tap(target), NOW)
        page = draw(opened, size)
        assert set(page.targets) == {"more:close"} and expected in page.texts and page.cut == [], name
        assert journey.step(opened, Tap("start"), NOW)[0].more is not None, "only Close closes it"
        assert journey.step(opened, HelpPressed(), NOW)[0].help is not None, "the help button still works"
        closed, _ = journey.step(opened, Tap("more:close"), NOW)
        assert closed.more is None and target in draw(closed, size).targets


def test_a_screen_opens_only_its_own_pages() -> None:
    welcome = journey.initial(MULTILINGUAL, NOW)
    assert journey.step(welcome, Tap("more:other_ways"), NOW)[0].more is None
    assert journey.step(welcome, Tap("more:bogus"), NOW)[0].more is None
    assert journey.step(welcome, Tap("more:notices"), NOW)[0].more is MorePage.NOTICES


def test_welcomes_pay_by_app_notice_opens_the_apps_qr_code() -> None:
    """A fault's notice says parkers can also pay by app: the notice itself is the way to the code."""
    for size, settings in (((800, 480), MULTILINGUAL), ((720, 1280), PORTRAIT)):
        for large_text in (False, True):
            state = replace(states(settings)["welcome_notice"], large_text=large_text)
            shown = draw(state, size)
            assert "Or pay by app: tap here." in shown.texts
            assert "more:notices" in shown.targets
            opened, _ = journey.step(state, Tap("more:notices"), NOW)
            page = draw(opened, size)
            assert set(page.targets) == {"more:close"} and page.cut == []
            assert "Scan the code with your phone and pay for your parking in the app." in page.texts
    assert "more:notices" not in draw(states(MULTILINGUAL)["welcome"]).targets, "no fault, no notice"


def test_out_of_service_shows_everything_on_the_screen_when_it_fits() -> None:
    state = states(MULTILINGUAL)["out_of_service"]
    frame = draw(state)
    assert "more:other_ways" not in frame.targets and "Help line: +49 30 123456" in frame.texts


def test_a_new_screen_closes_the_page_over_it() -> None:
    opened = replace(journey.initial(MULTILINGUAL, NOW), large_text=True, more=MorePage.PRICES)
    asleep, _ = journey.step(opened, Tick(), NOW + timedelta(seconds=MULTILINGUAL.timeouts.sleep_s))
    assert asleep.more is None
    out = replace(states(MULTILINGUAL)["out_of_service"], more=MorePage.OTHER_WAYS)
    back = journey.step(out, FaultsChanged(()), NOW)[0]
    assert back.screen is Screen.WELCOME and back.more is None


LEAVE_OUT = {  # what a screen may leave out in large text for lack of room: repeated or secondary words
    "Maximum stay 3 h.",  # Duration's limit (Welcome's prices say it; a message takes its place)
    "Present your card to the terminal",  # Paying: the terminal's prompt says what to do
    "Card terminal: Karte bitte",  # Paying: the terminal shows its own words itself
    "Waiting for the card terminal…",
    "You can also pay by app: scan the QR code.",  # Declined: the QR code's caption says it
}


@pytest.mark.parametrize(("settings", "size"), [(MULTILINGUAL, (800, 480)), (PORTRAIT, (720, 1280))],
                         ids=["landscape", "portrait"])
def test_large_text_leaves_out_only_secondary_words(settings: Settings, size: tuple[int, int]) -> None:
    left_out = set()
    for name, state in states(settings).items():
        if name not in TECHNICIAN:  # its doctor's report leaves out the parts that are fine when short of room
            left_out |= set(draw(replace(state, large_text=True), size).left_out)
    assert left_out <= LEAVE_OUT
    if size == (800, 480):  # the 7" panel has no room for the terminal's own words beside its prompt
        assert draw(replace(states(settings)["paying"], large_text=True), size).left_out == ["Card terminal: Karte bitte"]
        assert draw(states(settings)["paying"], size).left_out == [], "standard text has room for all of it"
