"""Free-time honesty: in a free period the station says so first, and never sells later time as if it were now."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pygame
import pytest
from screen_states import FONTS, MULTILINGUAL, states

from kiosk.domain import journey
from kiosk.domain.events import Tap
from kiosk.domain.journey import Screen
from screens import display as display_module
from screens import theme
from screens.widgets import Frame

SATURDAY_EVENING = datetime(2026, 3, 7, 16, 31, tzinfo=UTC)  # 17:31 in Berlin: free until Monday 08:00
MONDAY_DAWN = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 06:00: free until 08:00
MONDAY_MORNING = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00: charged


def drawn(state: journey.State, now: datetime, size: tuple[int, int] = (800, 480)) -> Frame:
    frame = Frame(pygame.Surface(size), FONTS, theme.palette(state.high_contrast), state.language,
                  large_text=state.large_text)
    display_module.draw(frame, state, now)
    return frame


def at(screen: Screen, now: datetime, language: str = "en") -> journey.State:
    base = replace(states(MULTILINGUAL)["welcome"], language=language, entered=now, last_input=now)
    return replace(base, screen=screen, plate="B-AB123", minutes=60) if screen is Screen.DURATION else base


def test_the_free_period_and_its_end() -> None:
    settings = MULTILINGUAL
    assert journey.free_now(settings, SATURDAY_EVENING) == journey.FreePeriod(datetime(2026, 3, 9, 7, 0, tzinfo=UTC))
    assert journey.free_now(settings, MONDAY_DAWN) == journey.FreePeriod(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
    assert journey.free_now(settings, MONDAY_MORNING) is None


def test_welcome_says_parking_is_free_now_instead_of_pay_here() -> None:
    texts = drawn(at(Screen.WELCOME, SATURDAY_EVENING), SATURDAY_EVENING).texts
    assert "Parking is free now until Mon 08:00" in texts and "You only need to pay if you stay longer." in texts
    assert "Pay for your parking here" not in texts
    charged = drawn(at(Screen.WELCOME, MONDAY_MORNING), MONDAY_MORNING).texts
    assert "Pay for your parking here" in charged and "You only need to pay if you stay longer." not in charged


def test_duration_in_a_free_period_says_when_the_bought_time_starts_and_offers_not_to_pay() -> None:
    frame = drawn(at(Screen.DURATION, SATURDAY_EVENING), SATURDAY_EVENING)
    assert "Free until Mon 08:00: pay only for the time after" in frame.texts
    assert "From Mon 08:00 until 09:00" in frame.texts, "the main line says the time starts on Monday"
    assert "No need to pay now" in frame.texts and "cancel" in frame.targets
    state, effects = journey.step(at(Screen.DURATION, SATURDAY_EVENING), Tap("cancel"), SATURDAY_EVENING)
    assert state.screen is Screen.WELCOME and effects == ()


@pytest.mark.parametrize("large_text", [False, True], ids=["standard", "large_text"])
@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
@pytest.mark.parametrize("now", [SATURDAY_EVENING, MONDAY_DAWN], ids=["saturday_evening", "monday_dawn"])
@pytest.mark.parametrize("size", [(800, 480), (720, 1280), (1280, 800), (480, 800)],
                         ids=["landscape", "portrait", "1280x800", "480x800"])
def test_nothing_of_it_is_cut_on_either_panel(language: str, now: datetime, size: tuple[int, int],
                                              large_text: bool) -> None:
    """With a message on Duration too: the free period's title, dates and "No need to pay now" leave it room."""
    for screen in (Screen.WELCOME, Screen.DURATION):
        for message in ("", "cancelled_not_charged"):
            state = replace(at(screen, now, language), large_text=large_text, message=message)
            assert drawn(state, now, size).cut == [], (screen, language, message)


def test_the_renderer_knows_what_it_cut() -> None:
    frame = Frame(pygame.Surface((800, 480)), FONTS, theme.NORMAL, "en")
    frame.text("fits", pygame.Rect(0, 0, 400, 60), size=24)
    frame.text("a sentence far too long for a box this small " * 3, pygame.Rect(0, 0, 120, 30), size=24)
    assert frame.cut == ["a sentence far too long for a box this small " * 3]


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
def test_a_free_period_never_pushes_out_a_faults_alternative(language: str) -> None:
    """Saturday evening with a slow card terminal and an app: the fault, its alternative and the prices stay whole."""
    state = replace(at(Screen.WELCOME, SATURDAY_EVENING, language), faults=states(MULTILINGUAL)["welcome_notice"].faults)
    for high_contrast in (False, True):
        assert drawn(replace(state, high_contrast=high_contrast), SATURDAY_EVENING).cut == [], (language, high_contrast)
