"""Shared widgets: a Frame that draws and records targets and texts; layout, buttons, plate, keyboard, QR."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pygame
import segno

from screens.fonts import LRU, Fonts
from screens.i18n import Translate, translator
from screens.theme import Color, Metrics, Palette

ELLIPSIS = "…"
Layout = tuple[int, tuple[str, ...], bool]  # the size, the lines, and whether the text had to be cut to fit
_LAYOUTS: LRU[Layout] = LRU(1024)
_HEIGHTS: LRU[int] = LRU(256)
_QR_CODES: LRU[pygame.Surface] = LRU(8)
_SCRIMS: LRU[pygame.Surface] = LRU(2)


@dataclass(frozen=True)
class Flex:
    """A share of the space left over by fixed sizes in rows() and cols()."""

    weight: float = 1.0


def _split(start: int, length: int, sizes: Sequence[int | Flex], gap: int) -> list[tuple[int, int]]:
    fixed = sum(s for s in sizes if isinstance(s, int))
    weights = sum(s.weight for s in sizes if isinstance(s, Flex))
    spare = max(0, length - fixed - gap * (len(sizes) - 1))
    spans, pos = [], float(start)
    for s in sizes:
        size = s if isinstance(s, int) else spare * s.weight / weights
        spans.append((_pixel(pos), _pixel(pos + size) - _pixel(pos)))
        pos += size + gap
    return spans


def _pixel(position: float) -> int:
    """Round half up (not to even), so that equal gaps stay equal."""
    return math.floor(position + 0.5)


def rows(rect: pygame.Rect, sizes: Sequence[int | Flex], gap: int) -> list[pygame.Rect]:
    """Cut rect into horizontal bands, top to bottom: ints are fixed heights, Flex shares the rest."""
    return [pygame.Rect(rect.x, y, rect.w, h) for y, h in _split(rect.y, rect.h, sizes, gap)]


def cols(rect: pygame.Rect, sizes: Sequence[int | Flex], gap: int) -> list[pygame.Rect]:
    """Cut rect into vertical bands, left to right: ints are fixed widths, Flex shares the rest."""
    return [pygame.Rect(x, rect.y, w, rect.h) for x, w in _split(rect.x, rect.w, sizes, gap)]


def centred(row: pygame.Rect, width: int) -> pygame.Rect:
    """A box of this width (at most the row's) in the middle of row."""
    box = pygame.Rect(0, row.y, min(width, row.w), row.h)
    box.centerx = row.centerx
    return box


@dataclass(frozen=True)
class Block:
    """One paragraph of Frame.stack(): its text, size, weight and colour, and whether it may be left out."""

    text: str
    size: int
    bold: bool = False
    fg: Color | None = None
    optional: bool = False
    min_size: int | None = None  # the size it may shrink to when the blocks do not fit otherwise


@dataclass(frozen=True)
class Key:
    """One keyboard key: its target id, label and width in key units."""

    target: str
    label: str
    weight: float = 1.0


class Frame:
    """One frame being drawn: draws on a surface; records the tap targets, texts, their sizes, colour pairs and cuts."""

    def __init__(self, surface: pygame.Surface, fonts: Fonts, palette: Palette, language: str,
                 pressed: str | None = None, large_text: bool = False) -> None:
        self.surface = surface
        self.fonts = fonts
        self.palette = palette
        self.language = language
        self.pressed = pressed
        self.m = Metrics.for_panel(*surface.get_size(), large_text)
        self._: Translate = translator(language)
        self.targets: dict[str, pygame.Rect] = {}
        self.texts: list[str] = []
        self.sizes: dict[str, int] = {}
        self.cut: list[str] = []  # texts that did not fit their box even at their smallest size
        self.left_out: list[str] = []  # optional texts a stack() had no room for
        self.pairs: set[tuple[Color, Color]] = set()

    @property
    def rect(self) -> pygame.Rect:
        """The whole screen."""
        return self.surface.get_rect()

    def content(self) -> pygame.Rect:
        """The screen inside its margin."""
        return self.rect.inflate(-2 * self.m.margin, -2 * self.m.margin)

    def fill(self, color: Color, rect: pygame.Rect | None = None) -> None:
        """Paint a rectangle (default: the whole screen)."""
        self.surface.fill(color, rect)

    def box(self, rect: pygame.Rect, color: Color, border: Color | None = None, width: int = 2) -> None:
        """A rounded panel, optionally outlined."""
        radius = self.m.px(10)
        pygame.draw.rect(self.surface, color, rect, border_radius=radius)
        if border is not None:
            pygame.draw.rect(self.surface, border, rect, width=max(1, self.m.px(width)), border_radius=radius)

    # ---- text ----

    def text(self, text: str, rect: pygame.Rect, *, size: int, bold: bool = False, fg: Color | None = None,
             bg: Color | None = None, align: str = "left", valign: str = "top", min_size: int | None = None) -> pygame.Rect:
        """Draw text wrapped into rect, shrinking down to min_size (then cut with '…'); return the area used."""
        size = self.m.snap(size)
        size, lines, cut = self._fit(text, rect.w, rect.h, size, bold, self.m.snap(min(size, min_size or self.m.small)))
        if cut:
            self.cut.append(text)
        if not text or not lines:
            return pygame.Rect(rect.x, rect.y, rect.w, 0)
        fg = self.palette.fg if fg is None else fg
        bg = self.palette.bg if bg is None else bg
        step = self.fonts.linesize(size, bold)
        height = step * len(lines)
        y = {"top": rect.y, "middle": rect.centery - height // 2, "bottom": rect.bottom - height}[valign]
        used = pygame.Rect(rect.x, y, 0, height)
        for i, line in enumerate(lines):
            surface = self.fonts.render(line, size, bold, fg, bg)
            width = surface.get_width()
            x = {"left": rect.x, "center": rect.centerx - width // 2, "right": rect.right - width}[align]
            self.surface.blit(surface, (x, y + i * step))
            used.union_ip(pygame.Rect(x, y + i * step, width, step))
        for paragraph in text.split("\n"):
            self.texts.append(paragraph)
            self.sizes[paragraph] = size
        self.pairs.add((fg, bg))
        return used

    def stack(self, rect: pygame.Rect, blocks: Sequence[Block], *, bg: Color | None = None, gap: int = 0,
              align: str = "left", valign: str = "top") -> None:
        """Blocks top to bottom, each as tall as it needs. When they do not fit, those with a min_size shrink a step
        at a time down to it; when even that is too much, optional ones are left out, last first."""
        sizes = [self.m.snap(block.size) for block in blocks]
        floors = [self.m.snap(block.min_size or block.size) for block in blocks]
        shown = [i for i, block in enumerate(blocks) if block.text]

        def heights() -> dict[int, int]:
            return {i: self.height_of(blocks[i].text, rect.w, sizes[i], blocks[i].bold) for i in shown}

        def total() -> int:
            return sum(heights().values()) + gap * max(0, len(shown) - 1)
        while total() > rect.h and any(size > floor for size, floor in zip(sizes, floors)):
            sizes = [max(floor, self.m.smaller(size)) for size, floor in zip(sizes, floors)]
        for i in reversed(range(len(blocks))):
            if total() <= rect.h:
                break
            if blocks[i].optional and i in shown:
                shown.remove(i)
                self.left_out.append(blocks[i].text)
        y = {"top": rect.y, "middle": rect.centery - min(total(), rect.h) // 2,
             "bottom": rect.bottom - min(total(), rect.h)}[valign]
        for i, height in heights().items():
            block = blocks[i]
            box = pygame.Rect(rect.x, y, rect.w, max(0, min(height, rect.bottom - y)))
            self.text(block.text, box, size=sizes[i], bold=block.bold, fg=block.fg, bg=bg, align=align)
            y += height + gap

    def stack_height(self, width: int, blocks: Sequence[Block], gap: int = 0, shrunk: bool = True) -> int:
        """The height stack() needs for blocks at this width, each at its min_size (shrunk) or at its size."""
        heights = [self.height_of(b.text, width, (b.min_size if shrunk else None) or b.size, b.bold)
                   for b in blocks if b.text]
        return sum(heights) + gap * max(0, len(heights) - 1)

    def height_of(self, text: str, width: int, size: int, bold: bool = False) -> int:
        """The height ``text`` needs, wrapped to ``width`` at ``size`` (reference px scaled like text())."""
        size = self.m.snap(size)
        return _HEIGHTS.get((text, width, size, bold),
                            lambda: len(self._wrap(text, width, size, bold)) * self.fonts.linesize(size, bold))

    def _fit(self, text: str, width: int, height: int, size: int, bold: bool, min_size: int) -> Layout:
        key = (text, width, height, size, bold, min_size)
        return _LAYOUTS.get(key, lambda: self._layout(text, width, height, size, bold, min_size))

    def _layout(self, text: str, width: int, height: int, size: int, bold: bool, min_size: int) -> Layout:
        current = size
        while True:
            lines = self._wrap(text, width, current, bold)
            step = self.fonts.linesize(current, bold)
            fits = len(lines) * step <= height and all(self.fonts.size(line, current,
                                                                       bold)[0] <= width for line in lines)
            if fits or current <= min_size:
                break
            current = max(min_size, self.m.smaller(current))
        if fits:
            return current, tuple(lines), False
        keep = lines[:height // step]
        if not keep:
            return current, (), bool(text)
        last = keep[-1]
        while last and self.fonts.size(last + ELLIPSIS, current, bold)[0] > width:
            last = last[:-1]
        return current, tuple(keep[:-1] + [last + ELLIPSIS]), True

    def _wrap(self, text: str, width: int, size: int, bold: bool) -> list[str]:
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if line and self.fonts.size(candidate, size, bold)[0] > width:
                    lines.append(line)
                    line = word
                else:
                    line = candidate
            lines.append(line)
        return lines

    # ---- touch targets ----

    def colors(self, target: str, *, primary: bool = False, enabled: bool = True) -> tuple[Color, Color]:
        """(text, background) of a button in its current state (normal, pressed, disabled)."""
        p = self.palette
        pressed = self.pressed == target
        if not enabled:
            return p.on_disabled, p.disabled
        if primary:
            return (p.on_primary_pressed, p.primary_pressed) if pressed else (p.on_primary, p.primary)
        return p.on_secondary, (p.secondary_pressed if pressed else p.secondary)

    def button(self, target: str, label: str, rect: pygame.Rect, *, primary: bool = False, enabled: bool = True,
               size: int | None = None) -> tuple[Color, Color]:
        """A touch target; disabled ones are drawn muted and are not tappable. Returns its (text, background)."""
        fg, bg = self.colors(target, primary=primary, enabled=enabled)
        if not enabled:
            self.box(rect, bg, self.palette.on_disabled, width=1)
        else:
            self.box(rect, bg, None if primary else self.palette.border, width=2)
            self.targets[target] = pygame.Rect(rect)
        pad = self.m.px(6)
        self.text(label, rect.inflate(-2 * pad, -pad), size=size or self.m.button, bold=True, fg=fg, bg=bg,
                  align="center", valign="middle")
        return fg, bg

    def button_width(self, label: str) -> int:
        """The width a button needs to show label on one line at the smallest size a label may shrink to."""
        return self.fonts.size(label, self.m.small, True)[0] + self.m.px(16)

    def button_rows(self, width: int, labels: Sequence[str]) -> list[list[int]]:
        """The buttons' indexes in order, as many to a row as fit with each label on one line."""
        split: list[list[int]] = []
        used = 0
        for i, label in enumerate(labels):
            need = self.button_width(label)
            if split and used + self.m.gap + need <= width:
                split[-1].append(i)
                used += self.m.gap + need
            else:
                split.append([i])
                used = need
        return split

    def group_height(self, width: int, labels: Sequence[str]) -> int:
        """The height of button_group(), for laying out what surrounds it."""
        count = len(self.button_rows(width, labels)) if labels else 0
        return max(0, count * self.m.target + (count - 1) * self.m.gap)

    def button_group(self, rect: pygame.Rect, labels: Sequence[str]) -> list[pygame.Rect]:
        """A box per label, in rows of the rect's width, each as wide as its label needs plus a share of the rest."""
        split = self.button_rows(rect.w, labels)
        boxes: dict[int, pygame.Rect] = {}
        for band, row in zip(rows(rect, [self.m.target] * len(split), self.m.gap), split):
            weights: list[int | Flex] = [Flex(self.button_width(labels[i])) for i in row]
            boxes.update(zip(row, cols(band, weights, self.m.gap)))
        return [boxes[i] for i in range(len(labels))]

    def area(self, target: str, rect: pygame.Rect, bg: Color, pressed_bg: Color) -> Color:
        """An invisible touch target covering rect (e.g. the whole screen); returns the background drawn."""
        color = pressed_bg if self.pressed == target else bg
        self.fill(color, rect)
        self.targets[target] = pygame.Rect(rect)
        return color

    def scrim(self) -> None:
        """Dim everything drawn so far and drop its targets: an overlay's targets are the only ones."""
        size = self.surface.get_size()

        def make() -> pygame.Surface:
            veil = pygame.Surface(size)
            veil.fill((0, 0, 0))
            veil.set_alpha(180)
            return veil
        self.surface.blit(_SCRIMS.get(size, make), (0, 0))
        self.targets.clear()

    # ---- special widgets ----

    def plate(self, text: str, rect: pygame.Rect, *, cursor: bool = False) -> None:
        """A licence plate: white, black border, blue band on the left, the text large and centred."""
        p = self.palette
        border = self.m.px(4)
        pygame.draw.rect(self.surface, p.plate, rect, border_radius=self.m.px(8))
        band = pygame.Rect(rect.x, rect.y, max(self.m.px(14), min(rect.h * 3 // 10, rect.w // 10)), rect.h)
        pygame.draw.rect(self.surface, p.plate_band, band, border_top_left_radius=self.m.px(8),
                         border_bottom_left_radius=self.m.px(8))
        pygame.draw.rect(self.surface, p.on_plate, rect, width=border, border_radius=self.m.px(8))
        inner = pygame.Rect(band.right, rect.y, rect.right - band.right, rect.h).inflate(-2 * border - self.m.px(8),
                                                                                         -2 * border)
        size = rect.h * 62 // 100
        caret = self.m.px(4) if cursor else 0
        used = self.text(text, inner.inflate(-2 * caret, 0), size=size, bold=True, fg=p.on_plate, bg=p.plate,
                         align="center", valign="middle", min_size=self.m.small)
        if cursor:
            x = used.right + caret if text else inner.centerx
            cap = size * 3 // 4
            pygame.draw.rect(self.surface, p.on_plate, (x, inner.centery - cap // 2, caret, cap))

    def keyboard(self, rect: pygame.Rect, key_rows: Sequence[Sequence[Key]]) -> None:
        """Keys in rows; every row uses the same key unit so that columns line up."""
        gap = self.m.key_gap
        units = max(sum(k.weight for k in row) for row in key_rows)
        columns = max(len(row) for row in key_rows)
        unit = (rect.w - gap * (columns - 1)) / units
        for band, row in zip(rows(rect, [Flex()] * len(key_rows), gap), key_rows):
            x = float(rect.x)
            for key in row:
                width = key.weight * unit + (key.weight - 1) * gap
                cell = pygame.Rect(_pixel(x), band.y, _pixel(x + width) - _pixel(x), band.h)
                fg, _ = self.button(key.target, key.label, cell, size=self.m.key)
                if key.target == "backspace":
                    self._backspace_icon(cell, fg)
                x += width + gap

    def _backspace_icon(self, cell: pygame.Rect, color: Color) -> None:
        h = min(cell.h // 2, cell.w // 3)
        w = h * 3 // 2
        left, top = cell.centerx - w // 2, cell.centery - h // 2
        tip = h // 2
        outline = [(left, top + h // 2), (left + tip, top), (left + w, top), (left + w, top + h), (left + tip, top + h)]
        line = max(2, self.m.px(3))
        pygame.draw.polygon(self.surface, color, outline, width=line)
        cx, cy, r = left + tip + (w - tip) // 2, top + h // 2, h // 5
        pygame.draw.line(self.surface, color, (cx - r, cy - r), (cx + r, cy + r), line)
        pygame.draw.line(self.surface, color, (cx - r, cy + r), (cx + r, cy - r), line)

    def qr(self, data: str, caption: str, rect: pygame.Rect, bg: Color | None = None) -> None:
        """A QR code (dark on light, with its quiet zone) as large as fits, its caption just below, centred in rect."""
        line = self.height_of(caption, rect.w, self.m.small, True)
        side = min(rect.w, rect.h - line - self.m.px(4))
        p = self.palette
        code = _QR_CODES.get((data, side, p.qr_dark, p.qr_light), lambda: _qr_surface(data, side, p.qr_dark,
                                                                                      p.qr_light))
        placed = code.get_rect(centerx=rect.centerx, centery=rect.centery - (line + self.m.px(4)) // 2)
        self.surface.blit(code, placed)
        below = pygame.Rect(rect.x, placed.bottom + self.m.px(4), rect.w, line)
        self.text(caption, below, size=self.m.small, bold=True, bg=bg, align="center")


def _qr_surface(data: str, side: int, dark: Color, light: Color) -> pygame.Surface:
    matrix = [list(row) for row in segno.make_qr(data, error="m").matrix_iter(scale=1, border=4)]
    n = len(matrix)
    small = pygame.Surface((n, n))
    small.fill(light)
    for y, row in enumerate(matrix):
        for x, dot in enumerate(row):
            if dot:
                small.set_at((x, y), dark)
    module = max(1, side // n)
    return pygame.transform.scale(small, (n * module, n * module))
