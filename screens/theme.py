"""Colours (normal and high contrast), sizes scaled from the panel, and the WCAG contrast ratio."""
from __future__ import annotations

import functools
from dataclasses import dataclass

Color = tuple[int, int, int]

# Design reference: the 800x480 7" panel. Sizes below are in reference pixels, scaled so that a panel
# is at least the reference of its orientation (Metrics.for_panel): 48 px is about 9 mm on the 7" panel.
REFERENCE_LANDSCAPE = (800, 480)  # the 7" panel
REFERENCE_PORTRAIT = (480, 800)  # the 7" panel turned (the 720x1280 Touch Display 2 gets x1.5 either way)
# Every text size (reference px). Text only uses these, so a few Font objects serve every
# frame and can all be warmed up at start (a new Font's first use costs about 13 ms).
TEXT_LADDER = (72, 64, 60, 56, 52, 48, 44, 40, 36, 32, 30, 28, 26, 24, 22, 20)


@dataclass(frozen=True)
class Palette:
    """Every colour the screens use; text is only drawn in the pairs listed by text_pairs()."""

    bg: Color
    fg: Color
    muted: Color
    card: Color
    border: Color
    primary: Color
    on_primary: Color
    primary_pressed: Color
    on_primary_pressed: Color
    secondary: Color
    on_secondary: Color
    secondary_pressed: Color
    disabled: Color
    on_disabled: Color
    error: Color
    notice: Color
    on_notice: Color
    notice_pressed: Color
    alert: Color
    on_alert: Color
    plate: Color
    on_plate: Color
    plate_band: Color
    sleep: Color
    on_sleep: Color
    sleep_pressed: Color
    qr_dark: Color
    qr_light: Color

    def text_pairs(self) -> list[tuple[str, Color, Color]]:
        """(name, foreground, background) of every text colour pair the widgets may draw."""
        return [
            ("fg/bg", self.fg, self.bg),
            ("muted/bg", self.muted, self.bg),
            ("error/bg", self.error, self.bg),
            ("fg/card", self.fg, self.card),
            ("muted/card", self.muted, self.card),
            ("error/card", self.error, self.card),
            ("fg/secondary_pressed", self.fg, self.secondary_pressed),
            ("on_primary/primary", self.on_primary, self.primary),
            ("on_primary_pressed/primary_pressed", self.on_primary_pressed, self.primary_pressed),
            ("on_secondary/secondary", self.on_secondary, self.secondary),
            ("on_secondary/secondary_pressed", self.on_secondary, self.secondary_pressed),
            ("on_disabled/disabled", self.on_disabled, self.disabled),
            ("on_notice/notice", self.on_notice, self.notice),
            ("on_notice/notice_pressed", self.on_notice, self.notice_pressed),
            ("on_alert/alert", self.on_alert, self.alert),
            ("on_plate/plate", self.on_plate, self.plate),
            ("on_sleep/sleep", self.on_sleep, self.sleep),
            ("on_sleep/sleep_pressed", self.on_sleep, self.sleep_pressed),
            ("qr_dark/qr_light", self.qr_dark, self.qr_light),
        ]


NORMAL = Palette(
    bg=(244, 246, 248), fg=(17, 24, 39), muted=(68, 76, 90), card=(255, 255, 255), border=(100, 108, 122),
    primary=(0, 80, 179), on_primary=(255, 255, 255), primary_pressed=(0, 46, 110), on_primary_pressed=(255, 255, 255),
    secondary=(255, 255, 255), on_secondary=(17, 24, 39), secondary_pressed=(200, 218, 250),
    disabled=(226, 229, 234), on_disabled=(84, 92, 105),
    error=(168, 0, 28), notice=(255, 240, 196), on_notice=(61, 45, 0), notice_pressed=(255, 214, 110),
    alert=(168, 0, 28), on_alert=(255, 255, 255),
    plate=(255, 255, 255), on_plate=(0, 0, 0), plate_band=(0, 51, 153),
    sleep=(0, 0, 0), on_sleep=(170, 170, 170), sleep_pressed=(40, 40, 40),
    qr_dark=(0, 0, 0), qr_light=(255, 255, 255),
)

HIGH_CONTRAST = Palette(
    bg=(0, 0, 0), fg=(255, 255, 255), muted=(225, 225, 225), card=(0, 0, 0), border=(255, 255, 255),
    primary=(255, 214, 0), on_primary=(0, 0, 0), primary_pressed=(255, 255, 255), on_primary_pressed=(0, 0, 0),
    secondary=(0, 0, 0), on_secondary=(255, 255, 255), secondary_pressed=(70, 70, 70),
    disabled=(0, 0, 0), on_disabled=(190, 190, 190),
    error=(255, 160, 150), notice=(0, 0, 0), on_notice=(255, 214, 0), notice_pressed=(50, 50, 50),
    alert=(255, 214, 0), on_alert=(0, 0, 0),
    plate=(255, 255, 255), on_plate=(0, 0, 0), plate_band=(0, 51, 153),
    sleep=(0, 0, 0), on_sleep=(200, 200, 200), sleep_pressed=(50, 50, 50),
    qr_dark=(0, 0, 0), qr_light=(255, 255, 255),
)


def palette(high_contrast: bool) -> Palette:
    """The palette for the parker's contrast choice."""
    return HIGH_CONTRAST if high_contrast else NORMAL


def minimum_contrast(high_contrast: bool) -> float:
    """The contrast ratio every text pair must reach: 4.5 (WCAG AA), 7 in high-contrast mode."""
    return 7.0 if high_contrast else 4.5


def _luminance(color: Color) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in color[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: Color, b: Color) -> float:
    """WCAG 2 contrast ratio of two colours, from 1 (same) to 21 (black on white)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@dataclass(frozen=True)
class TextSizes:
    """The text sizes of one reading mode, in reference pixels."""

    title: int
    title_min: int
    huge: int
    heading: int
    body: int
    small: int
    button: int
    key: int


# Noto Sans caps are 0.714 em and the 7" panel's pixel is 0.19 mm: 20 px text has 2.7 mm caps,
# 36 px text 4.9 mm. Large text keeps every text at 36 px or more (docs/screens.md).
STANDARD_TEXT = TextSizes(title=36, title_min=28, huge=48, heading=32, body=24, small=20, button=26, key=30)
LARGE_TEXT = TextSizes(title=48, title_min=36, huge=56, heading=44, body=36, small=36, button=36, key=44)


@dataclass(frozen=True)
class Metrics:
    """Sizes in panel pixels, scaled from the 800x480 design reference (see for_panel)."""

    width: int
    height: int
    scale: float
    large_text: bool = False

    @classmethod
    @functools.lru_cache(maxsize=8)
    def for_panel(cls, width: int, height: int, large_text: bool = False) -> Metrics:
        """Metrics for a panel of this size and reading mode (one shared instance each).

        The scale makes the panel at least as large as its orientation's reference in reference pixels, so a
        16:10 panel (1280x800) gets a taller canvas rather than a narrower one than the layouts were measured on,
        and a 7" panel turned to portrait keeps the 7" panel's sizes.
        """
        ref_w, ref_h = REFERENCE_LANDSCAPE if width >= height else REFERENCE_PORTRAIT
        return cls(width, height, min(width / ref_w, height / ref_h), large_text)

    @property
    def landscape(self) -> bool:
        """True when the panel is wider than tall."""
        return self.width >= self.height

    @property
    def text(self) -> TextSizes:
        """The reference text sizes of this reading mode."""
        return LARGE_TEXT if self.large_text else STANDARD_TEXT

    def px(self, reference: float) -> int:
        """A reference-pixel size on this panel."""
        return max(1, round(reference * self.scale))

    @functools.cached_property
    def text_sizes(self) -> tuple[int, ...]:
        """The text sizes of this panel, largest first."""
        return tuple(self.px(size) for size in TEXT_LADDER)

    def snap(self, size: int) -> int:
        """The largest text size not above size (the smallest one if size is below them all)."""
        return next((s for s in self.text_sizes if s <= size), self.text_sizes[-1])

    def smaller(self, size: int) -> int:
        """The next text size below size (or size itself if it is the smallest)."""
        return next((s for s in self.text_sizes if s < size), size)

    # Touch targets (docs/screens.md: >= 9 mm, primary 12-15 mm, gaps >= 2 mm).
    @property
    def target(self) -> int:
        """Height of an ordinary touch target."""
        return self.px(56)

    @property
    def primary(self) -> int:
        """Height of a primary action."""
        return self.px(76)

    @property
    def gap(self) -> int:
        """Space between touch targets and blocks."""
        return self.px(12)

    @property
    def key_gap(self) -> int:
        """Space between keyboard keys."""
        return self.px(10)

    @property
    def margin(self) -> int:
        """Space around the screen's content."""
        return self.px(12)

    # Text sizes (font pixel size).
    @property
    def title(self) -> int:
        """The main instruction."""
        return self.px(self.text.title)

    @property
    def title_min(self) -> int:
        """The smallest size a main instruction may shrink to."""
        return self.px(self.text.title_min)

    @property
    def huge(self) -> int:
        """The one number that matters (price, expiry)."""
        return self.px(self.text.huge)

    @property
    def heading(self) -> int:
        """A name at the top of a screen (the zone)."""
        return self.px(self.text.heading)

    @property
    def body(self) -> int:
        """Ordinary text."""
        return self.px(self.text.body)

    @property
    def small(self) -> int:
        """Secondary text; the smallest size text may shrink to."""
        return self.px(self.text.small)

    @property
    def smallest(self) -> int:
        """The smallest text of all (the standard secondary size), only for words from outside that fit no other way."""
        return self.px(STANDARD_TEXT.small)

    @property
    def button(self) -> int:
        """Button labels."""
        return self.px(self.text.button)

    @property
    def key(self) -> int:
        """Keyboard key labels."""
        return self.px(self.text.key)
