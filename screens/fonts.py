"""The pinned Noto Sans font: one FreeType face for every size, with bounded caches of text sizes and rendered text."""
from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import fontpkg
import pygame
import pygame.freetype

from screens.theme import Color

FAMILY = "Noto Sans"
V = TypeVar("V")


class LRU(Generic[V]):
    """A bounded least-recently-used cache."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value for key, made (and the oldest entry evicted if full) when missing."""
        try:
            self._items.move_to_end(key)
            return self._items[key]
        except KeyError:
            value = make()
            self._items[key] = value
            if len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return value

    def __len__(self) -> int:
        return len(self._items)


class Fonts:
    """All text sizes from one FreeType face (one face per size would cost ~1.3 MB each), with cached results."""

    def __init__(self, text_capacity: int = 256) -> None:
        if not pygame.freetype.get_init():
            pygame.freetype.init()
        self.path = fontpkg.path(FAMILY)
        self._face = pygame.freetype.Font(self.path)
        self._face.pad = True
        self._face.antialiased = True
        self._face.strength = 1 / 18
        self._texts: LRU[pygame.Surface] = LRU(text_capacity)
        self._sizes: LRU[tuple[int, int]] = LRU(2048)
        self._linesizes: dict[int, int] = {}

    def linesize(self, size: int, bold: bool = False) -> int:
        """Distance between baselines of consecutive lines at this pixel size (synthetic bold does not change it)."""
        if size not in self._linesizes:
            self._linesizes[size] = self._face.get_sized_height(size)
        return self._linesizes[size]

    def size(self, text: str, size: int, bold: bool = False) -> tuple[int, int]:
        """Width and height of one line of text."""
        def measure() -> tuple[int, int]:
            rect = self._face.get_rect(text, style=self._style(bold), size=size)
            return rect.width, rect.height
        return self._sizes.get((text, size, bold), measure)

    def missing_glyphs(self, text: str) -> list[str]:
        """Characters of text (other than spaces) that the font cannot draw."""
        metrics = self._face.get_metrics(text, size=32)
        return [ch for ch, m in zip(text, metrics) if m is None and not ch.isspace()]

    def warm(self, sizes: Iterable[int]) -> None:
        """Render each size once now, not during a parker's first frames."""
        for size in sizes:
            for bold in (False, True):
                self.render("Hg", size, bold, (0, 0, 0), (255, 255, 255))

    def render(self, text: str, size: int, bold: bool, fg: Color, bg: Color) -> pygame.Surface:
        """One antialiased line of text on an opaque background, in the screen's pixel format once there is one.

        FreeType gives a surface with an alpha channel even on an opaque background: blitting
        that blends every pixel, 60 times slower than copying a converted one (docs/performance.md).
        """
        def draw() -> pygame.Surface:
            surface, _ = self._face.render(text, fg, bg, style=self._style(bold), size=size)
            return surface.convert() if pygame.display.get_surface() is not None else surface
        return self._texts.get((text, size, bold, fg, bg), draw)

    @staticmethod
    def _style(bold: bool) -> int:
        return pygame.freetype.STYLE_STRONG if bold else pygame.freetype.STYLE_DEFAULT


@functools.cache
def shared() -> Fonts:
    """The process-wide Fonts: its caches outlive any one Display."""
    return Fonts()
