"""Baseline for the idle benchmark: the same screen redrawn at 60 fps, as a naive kiosk loop would."""
from __future__ import annotations

from datetime import UTC, datetime

import common  # noqa: F401  (sets the SDL dummy driver)
import pygame

from kiosk.config import Settings
from kiosk.domain import journey
from screens.display import Display


def main() -> None:
    """Redraw Welcome 60 times a second until killed."""
    settings = Settings()
    display = Display(settings, headless=True)
    state = journey.initial(settings, datetime.now(UTC))
    clock = pygame.time.Clock()
    print("ready", flush=True)
    while True:
        display.render(state, datetime.now(UTC))
        clock.tick(60)


if __name__ == "__main__":
    main()
