"""The pinned Noto Sans font, with bounded caches of Font objects, text sizes and rendered text."""
from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Callable, Generic, Hashable, Iterable, TypeVar

import fontpkg
import pygame

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
    """Font objects per (size, bold) and rendered text surfaces, both cached."""

    def __init__(self, text_capacity: int = 768) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self.path = fontpkg.path(FAMILY)
        self._fonts: LRU[pygame.font.Font] = LRU(48)
        self._texts: LRU[pygame.Surface] = LRU(text_capacity)
        self._sizes: LRU[tuple[int, int]] = LRU(4096)

    def font(self, size: int, bold: bool = False) -> pygame.font.Font:
        """The font at this pixel size."""
        return self._fonts.get((size, bold), lambda: self._open(size, bold))

    def _open(self, size: int, bold: bool) -> pygame.font.Font:
        font = pygame.font.Font(self.path, size)
        font.bold = bold
        return font

    def size(self, text: str, size: int, bold: bool = False) -> tuple[int, int]:
        """Width and height of one line of text."""
        return self._sizes.get((text, size, bold), lambda: self.font(size, bold).size(text))

    def warm(self, sizes: Iterable[int]) -> None:
        """Open and first-use the regular and bold fonts of these sizes now, not during a parker's first frames."""
        for size in sizes:
            for bold in (False, True):
                self.size("Hg", size, bold)

    def render(self, text: str, size: int, bold: bool, fg: Color, bg: Color) -> pygame.Surface:
        """One antialiased line of text on an opaque background (opaque blits are fastest)."""
        return self._texts.get((text, size, bold, fg, bg), lambda: self.font(size, bold).render(text, True, fg, bg))



@functools.cache
def shared() -> Fonts:
    """The process-wide Fonts: its caches outlive any one Display."""
    return Fonts()
