"""The shipped translations: complete, with the template's placeholders, drawable, compiled, and named in their own words."""
from __future__ import annotations

import ast
import re
import string
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pygame
import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from screen_states import FONTS, MULTILINGUAL, NOW, PORTRAIT, draw, states

from kiosk.config import ScreenSettings, Settings
from kiosk.domain import journey
from kiosk.domain.events import Tap, Tick
from screens import i18n

LOCALE = Path(i18n.LOCALE_DIR)
SHIPPED = ("de", "fr", "es")
SCREENS = LOCALE.parent


def template_ids() -> set[str]:
    with (LOCALE / "kiosk.pot").open("rb") as template:
        return {m.id for m in read_po(template) if m.id}


def catalogue(language: str) -> dict[str, str]:
    with (LOCALE / language / "LC_MESSAGES" / "kiosk.po").open("rb") as po:
        read = read_po(po)
    assert not read.fuzzy, f"{language}: the catalogue is marked fuzzy"
    assert not any(m.fuzzy for m in read if m.id), f"{language}: fuzzy messages are not shown"
    return {m.id: m.string for m in read if m.id}


def placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name is not None}


def test_the_shipped_languages_are_the_four_offered_by_default() -> None:
    shipped = {p.parent.parent.name for p in LOCALE.glob("*/LC_MESSAGES/kiosk.po")}
    assert shipped == set(SHIPPED)
    assert Settings().languages.available == ("en", *SHIPPED), "English is the source language"


@pytest.mark.parametrize("language", SHIPPED)
def test_every_message_of_the_template_is_translated(language: str) -> None:
    translated = catalogue(language)
    assert set(translated) == template_ids(), f"update {language} as docs/screens.md says (pybabel update ...)"
    missing = sorted(message for message, text in translated.items() if not text.strip())
    assert missing == [], f"{language}: not translated: {missing}"


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_the_placeholders_and_can_be_drawn(language: str) -> None:
    for message, text in catalogue(language).items():
        assert placeholders(text) == placeholders(message), (language, message, text)
        assert FONTS.missing_glyphs(text) == [], (language, text)
        assert text == text.strip() and "  " not in text.replace("  {price}", ""), (language, text)


@pytest.mark.parametrize("language", SHIPPED)
def test_the_compiled_catalogue_is_the_source_catalogue(language: str) -> None:
    """provisioning/setup.sh compiles them; a stale .mo would show yesterday's words."""
    compiled = LOCALE / language / "LC_MESSAGES" / "kiosk.mo"
    assert compiled.exists(), "compile with: .venv/bin/pybabel compile --domain kiosk --directory screens/locale"
    with compiled.open("rb") as mo:
        shown = {m.id: m.string for m in read_mo(mo) if m.id}
    assert shown == catalogue(language), "the .mo is stale: compile again (provisioning/setup.sh does it)"


def test_a_station_speaks_each_language() -> None:
    assert [i18n.translator(code)("Help") for code in ("en", *SHIPPED)] == ["Help", "Hilfe", "Aide", "Ayuda"]
    assert i18n.translator("it")("Help") == "Help", "a language without a catalogue falls back to English"


def test_language_buttons_name_each_language_in_its_own_words() -> None:
    assert [i18n.language_name(code) for code in ("en", *SHIPPED)] == ["English", "Deutsch", "Français", "Español"]
    assert i18n.language_name("xx") == "XX"


def test_no_translated_text_is_built_inside_an_f_string() -> None:
    """Babel extracts _() inside f-strings on Python 3.13 but not on 3.11: the template must not depend on it."""
    found = []
    for path in SCREENS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                for call in ast.walk(node):
                    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("_", "N_"):
                        found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_french_punctuation_keeps_its_space_unbroken() -> None:
    """A French colon or question mark never starts a line: the space before it does not break."""
    for message, text in catalogue("fr").items():
        assert not re.search(r" [:;?!]", text), (message, text)


@pytest.mark.parametrize("language", ["en", *SHIPPED])
@pytest.mark.parametrize(("settings", "size"), [(MULTILINGUAL, (800, 480)), (PORTRAIT, (720, 1280))],
                         ids=["landscape_800x480", "portrait_720x1280"])
def test_no_text_is_cut_in_any_language_or_orientation(language: str, settings: Settings, size: tuple[int, int]) -> None:
    """Every screen state, in standard and large text, normal and high contrast, on both panels."""
    for name, state in states(settings).items():
        for high_contrast, large_text in ((False, False), (True, False), (False, True), (True, True)):
            frame = draw(replace(state, language=language, high_contrast=high_contrast, large_text=large_text), size)
            assert frame.cut == [], (name, language, high_contrast, large_text)


def test_out_of_service_offers_the_languages_and_forgets_the_choice_for_the_next_parker() -> None:
    state = states(MULTILINGUAL)["out_of_service"]
    assert {"lang:en", "lang:de", "lang:fr", "lang:es", "help"} <= set(draw(state).targets)
    chosen, _ = journey.step(state, Tap("lang:fr"), NOW)
    assert chosen.language == "fr" and "Cet horodateur est hors service" in draw(chosen).texts
    later = NOW + timedelta(seconds=chosen.settings.timeouts.inactivity_s)
    assert journey.screen_deadline(chosen) == later
    left, _ = journey.step(chosen, Tick(), later)
    assert (left.screen, left.language) == (journey.Screen.OUT_OF_SERVICE, "en")
    assert journey.screen_deadline(left) is None, "nothing to forget: no more ticks"


PANELS = [(1024, 600), (1280, 800), (1920, 1080), (800, 600), (600, 1024), (800, 1280), (480, 800)]


@pytest.mark.parametrize("size", PANELS, ids=[f"{w}x{h}" for w, h in PANELS])
def test_no_text_is_cut_on_other_panels(size: tuple[int, int]) -> None:
    """Common panels of other sizes and shapes: a 16:10 one once got a canvas narrower than the layouts knew."""
    width, height = size
    orientation = "landscape" if width >= height else "portrait"
    settings = replace(MULTILINGUAL, screen=ScreenSettings(width, height, orientation, False))
    screen = pygame.Rect((0, 0), size)
    for name, state in states(settings).items():
        for language in ("en", *SHIPPED):
            for large_text in (False, True):
                frame = draw(replace(state, language=language, large_text=large_text), size)
                assert frame.cut == [], (name, language, large_text)
                assert all(screen.contains(rect) for rect in frame.targets.values()), (name, language, large_text)
