"""The touchscreen: draws the journey State, turns touches (and desktop keys) into kiosk events."""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable
from datetime import datetime

import pygame

from kiosk.config import Settings
from kiosk.domain.doctor import Finding, Health, Part
from kiosk.domain.events import Event, HelpPressed, HelpReleased, Tap
from kiosk.domain.journey import KEYBOARD, MorePage, Screen, State
from screens import (
    declined,
    duration,
    feedback,
    fonts,
    i18n,
    out_of_service,
    overlays,
    paid,
    paying,
    plate,
    service,
    welcome,
)
from screens.fonts import Fonts
from screens.theme import Metrics, palette
from screens.widgets import Frame

Draw = Callable[[Frame, State, datetime], None]

SCREENS: dict[Screen, Draw] = {
    Screen.WELCOME: welcome.draw,
    Screen.PLATE: plate.draw,
    Screen.DURATION: duration.draw,
    Screen.PAYING: paying.draw,
    Screen.PAID: paid.draw,
    Screen.DECLINED: declined.draw,
    Screen.FEEDBACK: feedback.draw,
    Screen.THANKS: feedback.draw_thanks,
    Screen.OUT_OF_SERVICE: out_of_service.draw,
}
MORE: dict[MorePage, Callable[[Frame, State, datetime], overlays.More]] = {  # the pages over a screen
    MorePage.PRICES: welcome.prices_page,
    MorePage.NOTICES: welcome.notices_page,
    MorePage.OTHER_WAYS: out_of_service.more,
}
CONTINUE_KEYS = (pygame.K_RETURN, pygame.K_KP_ENTER)
NO_SCREEN_DRIVERS = ("offscreen", "dummy")  # SDL drivers that draw into memory only
SERVICE_VIEW = "service"  # the view key of the technician's menu (press feedback starts afresh)

log = logging.getLogger(__name__)


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the state's screen and its overlay, if any, onto frame (the technician's service menu over all)."""
    if state.service is not None:
        service.draw(frame, state, now)
        return
    kind = overlays.active(state)
    if kind == overlays.ASLEEP:
        overlays.draw_asleep(frame, state, now)
        return
    SCREENS[state.screen](frame, state, now)
    if kind == overlays.MORE and state.more is not None:
        overlays.draw_more(frame, MORE[state.more](frame, state, now), state.more_part)
    elif kind is not None:
        overlays.draw(frame, state, now)


def frame_for(surface: pygame.Surface, fonts: Fonts, state: State, pressed: str | None = None) -> Frame:
    """A Frame on surface in the parker's language, contrast and text size (the technician's menu: standard size)."""
    large_text = state.large_text and state.service is None
    return Frame(surface, fonts, palette(state.high_contrast), state.language, pressed, large_text)


class Display:
    """The touchscreen: draws State, turns touches into Tap events."""

    def __init__(self, settings: Settings, *, headless: bool, help_key: Callable[[bool], None] | None = None) -> None:
        """help_key, when given, gets the desktop help keys (True on key down, False on key up) instead of wait()."""
        self.quit_requested = False
        self._help_key = help_key
        size = (settings.screen.width, settings.screen.height)
        fullscreen = settings.screen.fullscreen and not headless
        self.problem: str | None = None if headless else _show(size, fullscreen)
        if self.problem is not None:
            log.error("no display: %s; the station runs on without a screen and reports display/unavailable",
                      self.problem)
        if headless or self.problem is not None:
            pygame.display.quit()
            os.environ["SDL_VIDEODRIVER"] = "dummy"
            pygame.display.init()
            self._surface = pygame.display.set_mode(size)
        else:
            shown = pygame.display.get_surface()
            assert shown is not None  # _show opened it
            self._surface = shown
        self._headless = headless or self.problem is not None
        self._driver = pygame.display.get_driver()
        if not self._headless:
            pygame.display.set_caption(f"Pay station {settings.station.id}")
            pygame.mouse.set_visible(not fullscreen)
        self._wake_type = pygame.event.custom_type()
        self._woken = threading.Event()
        self._fonts = fonts.shared()
        self._fonts.warm(Metrics.for_panel(*self._surface.get_size()).text_sizes)
        i18n.warm(settings.languages.available, settings.zone.currency)
        self._state: State | None = None
        self._now: datetime | None = None
        self._view: tuple[Screen, str | None] | None = None
        self._pressed: str | None = None
        self._inside = False
        self._finger: int | None = None
        self._help_keys: set[int] = set()
        self._targets: dict[str, pygame.Rect] = {}
        self._texts: list[str] = []

    # ---- drawing ----

    def render(self, state: State, now: datetime) -> None:
        """Draw the full frame for this state; remember state and now for press feedback."""
        view = (state.screen, SERVICE_VIEW if state.service is not None else overlays.active(state))
        if view != self._view:
            self._pressed, self._inside = None, False
        self._state, self._now, self._view = state, now, view
        self._draw()

    def _draw(self) -> None:
        assert self._state is not None and self._now is not None
        state = self._state
        frame = frame_for(self._surface, self._fonts, state, self._pressed if self._inside else None)
        draw(frame, state, self._now)
        self._targets, self._texts = frame.targets, frame.texts
        if not self._headless:
            pygame.display.flip()

    def examine(self) -> Finding:
        """The doctor's finding: the SDL driver and size, or why nothing can be seen."""
        width, height = self._surface.get_size()
        if self.problem is not None:
            return Finding(Part.DISPLAY, Health.FAIL, f"no display: {self.problem}")
        if self._headless:
            return Finding(Part.DISPLAY, Health.WARN, f"headless: nothing is shown ({width}x{height} in memory)")
        return Finding(Part.DISPLAY, Health.OK, f"{self._driver}, {width}x{height}")

    def targets(self) -> dict[str, pygame.Rect]:
        """Enabled tap targets of the last frame, by id."""
        return {target: pygame.Rect(rect) for target, rect in self._targets.items()}

    def texts(self) -> list[str]:
        """Every text string drawn in the last frame, in drawing order."""
        return list(self._texts)

    def screenshot(self, path: pathlib.Path) -> None:
        """Save the last frame as a PNG."""
        pygame.image.save(self._surface, str(path))

    # ---- touch ----

    def press(self, x: int, y: int) -> None:
        """Pointer down: highlight the target under it and redraw at once."""
        self._pressed = next((t for t, r in self._targets.items() if r.collidepoint(x, y)), None)
        self._inside = self._pressed is not None
        if self._inside and self._state is not None:
            self._draw()

    def _drag(self, x: int, y: int) -> None:
        """Pointer moved while down: the highlight follows whether it is still inside the pressed target."""
        if self._pressed is None:
            return
        inside = self._pressed in self._targets and self._targets[self._pressed].collidepoint(x, y)
        if inside != self._inside:
            self._inside = inside
            self._draw()

    def release(self, x: int, y: int) -> list[Event]:
        """Pointer up: Tap(target) only if released inside the same target that was pressed."""
        target, self._pressed = self._pressed, None
        self._inside = False
        if target is None:
            return []
        rect = self._targets.get(target)
        if self._state is not None:
            self._draw()
        return [Tap(target)] if rect is not None and rect.collidepoint(x, y) else []

    # ---- waiting for input ----

    def wake(self) -> None:
        """Make a blocked wait() return now; safe from any thread."""
        if self._headless:
            self._woken.set()
        else:
            with contextlib.suppress(pygame.error):  # closed already: nobody waits any more
                pygame.event.post(pygame.event.Event(self._wake_type))

    def wait(self, timeout: float | None) -> list[Event]:
        """Block up to timeout seconds (None: forever) for input; return its events, or [] on timeout or wake."""
        if self._headless:
            if self._woken.wait(timeout):
                self._woken.clear()
            return []
        end = None if timeout is None else time.monotonic() + timeout
        events: list[Event] = []
        while True:
            if end is None:
                first = pygame.event.wait()
            else:
                remaining = int((end - time.monotonic()) * 1000)
                first = pygame.event.wait(remaining) if remaining > 0 else pygame.event.poll()
            if first.type == pygame.NOEVENT:
                return events
            stop = False
            for event in [first, *pygame.event.get()]:
                stop = self._translate(event, events) or stop
            if events or stop:
                return events

    def _translate(self, event: pygame.event.Event, out: list[Event]) -> bool:
        """Append the kiosk events for one SDL event; True if wait() must return now."""
        if event.type == self._wake_type:
            return True
        if event.type in (pygame.QUIT, pygame.WINDOWCLOSE):
            self.quit_requested = True
            return True
        if event.type == pygame.WINDOWEXPOSED:
            pygame.display.flip()
        elif event.type in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP, pygame.MOUSEMOTION):
            self._mouse(event, out)
        elif event.type in (pygame.FINGERDOWN, pygame.FINGERUP, pygame.FINGERMOTION):
            self._touch(event, out)
        elif event.type in (pygame.KEYDOWN, pygame.KEYUP):
            self._key(event, out)
        return False

    def _mouse(self, event: pygame.event.Event, out: list[Event]) -> None:
        if getattr(event, "touch", False):
            return  # SDL's mouse copy of a touch; the FINGER event is handled instead
        if event.type == pygame.MOUSEMOTION:
            if event.buttons[0]:
                self._drag(*event.pos)
        elif event.button == pygame.BUTTON_LEFT:
            if event.type == pygame.MOUSEBUTTONDOWN:
                self.press(*event.pos)
            else:
                out.extend(self.release(*event.pos))

    def _touch(self, event: pygame.event.Event, out: list[Event]) -> None:
        width, height = self._surface.get_size()
        x, y = int(event.x * width), int(event.y * height)  # finger coordinates are normalised to 0..1
        if event.type == pygame.FINGERDOWN:
            if self._finger is None:
                self._finger = event.finger_id
                self.press(x, y)
        elif event.finger_id == self._finger:
            if event.type == pygame.FINGERMOTION:
                self._drag(x, y)
            else:
                self._finger = None
                out.extend(self.release(x, y))

    def _key(self, event: pygame.event.Event, out: list[Event]) -> None:
        on_plate = self._state is not None and self._state.screen is Screen.PLATE
        if event.type == pygame.KEYUP:
            if event.key in self._help_keys:
                self._help_keys.discard(event.key)
                self._help_button(False, out)
        elif event.key == pygame.K_F1 or (event.key == pygame.K_h and not on_plate):
            if event.key not in self._help_keys:
                self._help_keys.add(event.key)
                self._help_button(True, out)
        elif event.key == pygame.K_BACKSPACE:
            out.append(Tap("backspace"))
        elif event.key in CONTINUE_KEYS:
            out.append(Tap("continue"))
        elif on_plate and event.unicode and event.unicode.upper() in KEYBOARD:
            out.append(Tap(f"key:{event.unicode.upper()}"))

    def _help_button(self, down: bool, out: list[Event]) -> None:
        """A help key went down or up: HelpPressed/HelpReleased, or help_key(level), held while any help key is."""
        if self._help_key is None:
            out.append(HelpPressed() if down else HelpReleased())
        elif len(self._help_keys) == (1 if down else 0):  # the first key down, the last key up
            self._help_key(down)

    def close(self) -> None:
        """Release the display."""
        pygame.display.quit()


def _show(size: tuple[int, int], fullscreen: bool) -> str | None:
    """Open the window or the panel; why it cannot be seen, or None when it can.

    SDL falls back to drawing into memory (its offscreen driver) when no screen is found and no
    driver is asked for: the station would run with nobody seeing it. That is a problem too;
    a memory driver asked for by name (SDL_VIDEODRIVER=dummy, as the tests do) is not.
    """
    try:
        pygame.display.init()
        pygame.display.set_mode(size, pygame.FULLSCREEN if fullscreen else 0)
    except pygame.error as exc:
        asked = os.environ.get("SDL_VIDEODRIVER", "")
        return f"SDL {asked or 'video'}: {exc}"
    driver = pygame.display.get_driver()
    if driver in NO_SCREEN_DRIVERS and os.environ.get("SDL_VIDEODRIVER") != driver:
        return f"SDL found no screen and chose its {driver} driver (set SDL_VIDEODRIVER, e.g. kmsdrm)"
    return None
