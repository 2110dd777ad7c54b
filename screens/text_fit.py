"""Text from outside (agents, staff) drawn whole: made printable, long words cut onto lines, shrunk, then cut with '…'."""
from __future__ import annotations

import unicodedata

import pygame

from screens.fonts import LRU
from screens.theme import Color
from screens.widgets import Frame

__all__ = ["MISSING", "NO_BREAK", "line_count", "printable", "say", "unbreakable"]

MISSING = "\ufffd"  # drawn instead of a character the font has no glyph for
NO_BREAK = frozenset("\u00a0\u202f")  # spaces that keep their words on one line (French "\u00a0:", phone numbers)

_CLEAN: LRU[str] = LRU(256)
_BROKEN: LRU[str] = LRU(256)
_COUNTS: LRU[int] = LRU(512)


def printable(frame: Frame, text: str) -> str:
    """Text from outside (agents, staff) made safe to draw: no control characters; U+FFFD for a run the font lacks."""
    def clean() -> str:
        missing = set(frame.fonts.missing_glyphs(text.encode("utf-8", "replace").decode("utf-8")))
        out: list[str] = []
        for ch in text:
            kind = unicodedata.category(ch)
            if ch == "\n":
                out.append(ch)
            elif kind in ("Cc", "Zl", "Zp") or (ch.isspace() and ch not in NO_BREAK):
                out.append(" ")
            elif kind == "Cf" or (ch in missing and kind in ("Mn", "Me")):
                continue  # invisible formatting (direction marks, joiners) and marks the font cannot put on
            elif kind == "Cs" or ch in missing:
                if not out or out[-1] != MISSING:
                    out.append(MISSING)
            else:
                out.append(ch)
        paragraphs = (" ".join(word for word in line.split(" ") if word) for line in "".join(out).split("\n"))
        return "\n".join(p for p in paragraphs if p)
    return _CLEAN.get(text, clean)


def unbreakable(frame: Frame, text: str, width: int, size: int, bold: bool) -> str:
    """Text whose every word fits width: a longer word (a link, a line of emoji) is cut onto lines of its own."""
    def cut() -> str:
        paragraphs = []
        for paragraph in text.split("\n"):
            words = []
            for word in paragraph.split(" "):
                pieces = []
                while len(word) > 1 and frame.fonts.size(word, size, bold)[0] > width:
                    keep = _longest_prefix(frame, word, width, size, bold)
                    pieces.append(word[:keep])
                    word = word[keep:]
                words.append("\n".join(pieces + [word]))
            paragraphs.append(" ".join(words))
        return "\n".join(paragraphs)
    return _BROKEN.get((text, width, size, bold), cut)


def _longest_prefix(frame: Frame, word: str, width: int, size: int, bold: bool) -> int:
    low, high = 1, len(word)  # at least one character, even if it alone is too wide
    while low < high:
        middle = (low + high + 1) // 2
        if frame.fonts.size(word[:middle], size, bold)[0] <= width:
            low = middle
        else:
            high = middle - 1
    return low


def line_count(frame: Frame, text: str, width: int, size: int, bold: bool) -> int:
    """How many lines Frame.text wraps text into at this size (words kept whole, as Frame.text does)."""
    def count() -> int:
        total = 0
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if line and frame.fonts.size(candidate, size, bold)[0] > width:
                    total += 1
                    line = word
                else:
                    line = candidate
            total += 1
        return total
    return _COUNTS.get((text, width, size, bold), count)


def say(frame: Frame, text: str, rect: pygame.Rect, *, size: int, min_size: int | None = None, bold: bool = False,
        fg: Color | None = None, bg: Color | None = None, align: str = "left", valign: str = "top") -> pygame.Rect:
    """Draw any text inside rect: wrapped (long words cut), shrunk to min_size, then cut with '…'."""
    m = frame.m
    text = printable(frame, text)
    size, smallest = m.snap(size), m.snap(min(size, min_size or m.small))
    while True:
        fitted = unbreakable(frame, text, rect.w, size, bold)
        if line_count(frame, fitted, rect.w, size, bold) * frame.fonts.linesize(size, bold) <= rect.h:
            break
        if size <= smallest:
            break
        size = max(smallest, m.smaller(size))
    return frame.text(fitted, rect, size=size, min_size=size, bold=bold, fg=fg, bg=bg, align=align, valign=valign)
