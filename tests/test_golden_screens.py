"""Golden screenshots: every screen state, in four languages, both orientations and both reading aids, pixel for pixel.

tests/golden/screens.json holds the SHA-256 of every frame's pixels; docs/images/screens/ holds a contact sheet
per orientation, look and language for reviewers. Fonts and pygame-ce are pinned, so the pixels are the same on
every machine. After an intended change of a screen, regenerate both with

    KIOSK_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_screens.py

and look at the sheets before committing them.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import replace
from pathlib import Path

import pygame
import pytest
from screen_states import FONTS, MULTILINGUAL, PORTRAIT, draw, states

from kiosk.config import Settings
from kiosk.domain import journey

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "tests" / "golden" / "screens.json"
SHEETS = ROOT / "docs" / "images" / "screens"
LANGUAGES = ("en", "de", "fr", "es")
ORIENTATIONS: dict[str, tuple[Settings, tuple[int, int]]] = {
    "landscape": (MULTILINGUAL, (800, 480)),
    "portrait": (PORTRAIT, (720, 1280)),
}
LOOKS = {"standard": {}, "high_contrast": {"high_contrast": True}, "large_text": {"large_text": True}}
UPDATE = os.environ.get("KIOSK_UPDATE_GOLDEN") == "1"
COLUMNS = 7
THUMB_SCALE = 4  # a sheet shows each frame at a quarter of its size


def frames(orientation: str, look: str, language: str) -> dict[str, pygame.Surface]:
    """Every screen state's frame for this orientation, look and language."""
    settings, size = ORIENTATIONS[orientation]
    chosen = LOOKS[look]
    result = {}
    for name, state in states(settings).items():
        shown: journey.State = replace(state, language=language, **chosen)
        result[name] = draw(shown, size).surface
    return result


def digest(surface: pygame.Surface) -> str:
    return hashlib.sha256(pygame.image.tobytes(surface, "RGB")).hexdigest()


def sheet(drawn: dict[str, pygame.Surface]) -> pygame.Surface:
    """The frames as thumbnails in a grid, each named below."""
    width, height = next(iter(drawn.values())).get_size()
    thumb = (width // THUMB_SCALE, height // THUMB_SCALE)
    label, pad = 16, 6
    rows = math.ceil(len(drawn) / COLUMNS)
    out = pygame.Surface((COLUMNS * (thumb[0] + pad) + pad, rows * (thumb[1] + label + pad) + pad))
    out.fill((255, 255, 255))
    for i, (name, surface) in enumerate(drawn.items()):
        x, y = pad + (i % COLUMNS) * (thumb[0] + pad), pad + (i // COLUMNS) * (thumb[1] + label + pad)
        out.blit(pygame.transform.smoothscale(surface, thumb), (x, y))
        pygame.draw.rect(out, (120, 120, 120), (x - 1, y - 1, thumb[0] + 2, thumb[1] + 2), 1)
        out.blit(FONTS.render(name, 12, False, (0, 0, 0), (255, 255, 255)), (x, y + thumb[1] + 2))
    return out


def sheet_path(orientation: str, look: str, language: str) -> Path:
    return SHEETS / f"{orientation}-{look}-{language}.png"


def test_every_combination_is_recorded_and_has_its_sheet() -> None:
    golden = json.loads(MANIFEST.read_text())
    names = set(states(MULTILINGUAL))
    for orientation in ORIENTATIONS:
        for look in LOOKS:
            for language in LANGUAGES:
                key = f"{orientation}/{look}/{language}"
                assert set(golden.get(key, {})) == names, f"{key}: regenerate (see the module's docstring)"
                assert sheet_path(orientation, look, language).exists(), key


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("look", list(LOOKS))
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_every_screen_is_its_golden_picture(orientation: str, look: str, language: str, tmp_path: Path) -> None:
    drawn = frames(orientation, look, language)
    key = f"{orientation}/{look}/{language}"
    got = {name: digest(surface) for name, surface in drawn.items()}
    if UPDATE:
        golden = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
        golden[key] = got
        MANIFEST.parent.mkdir(exist_ok=True)
        MANIFEST.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        SHEETS.mkdir(parents=True, exist_ok=True)
        pygame.image.save(sheet(drawn), str(sheet_path(orientation, look, language)))
    want = json.loads(MANIFEST.read_text()).get(key, {})
    differ = sorted(name for name in got if want.get(name) != got[name])
    for name in differ:
        pygame.image.save(drawn[name], str(tmp_path / f"{name}.png"))
    assert not differ, f"{key}: {differ} differ from the golden pictures; see {tmp_path} and the module's docstring"
