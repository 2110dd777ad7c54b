"""The fleet pane: a virtual list that draws only the visible rows of a FleetIndex, so 50,000 stations cost 40 rows."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.fleet import FleetIndex
from console.views import StationView

__all__ = ["FleetList"]

MAX_STRIPS = 2_000  # rows kept drawn: a few screens of them
CURSOR = Style(reverse=True)
CURSOR_UNFOCUSED = Style(underline=True)


class FleetList(ScrollView, can_focus=True):
    """Rows of ``index`` drawn by ``render_row(view)``; the cursor stays on its station while the order changes."""

    BINDINGS = [  # noqa: RUF012 (Textual reads BINDINGS as a class attribute)
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to ``station`` (by the agent, or because the list changed under it)."""

        def __init__(self, station: str | None) -> None:
            super().__init__()
            self.station = station

    def __init__(self, index: FleetIndex, render_row: Callable[[StationView], Text], *, id: str) -> None:
        super().__init__(id=id)
        self._index, self._render_row = index, render_row
        self._cursor = 0
        self.station: str | None = None
        self._strips: OrderedDict[tuple[StationView, int, Style | None], Strip] = OrderedDict()
        self._drawn: tuple[object, ...] = ()

    def rows_changed(self) -> None:
        """The index changed: size the list again, keep the cursor on its station, redraw the visible rows."""
        rows = len(self._index)
        top = round(self.scroll_offset.y)
        was_visible = top <= self._cursor < top + self.size.height
        self.virtual_size = Size(self.size.width, rows)
        position = self._index.position(self.station) if self.station is not None else None
        if position is not None:
            self._cursor = position
        else:
            self._cursor = min(self._cursor, max(rows - 1, 0))
            self._announce()
        if was_visible:  # the agent's station moved (worst first): the view follows it
            self.scroll_to_region(Region(0, self._cursor, 1, 1), animate=False, immediate=True)
        if self._visible() != self._drawn:  # rows changed off screen cost no redraw
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """One visible row (drawn once per content, width and cursor style: kept in a small cache)."""
        row = round(self.scroll_offset.y) + y
        width = self.size.width
        if y == 0:
            self._drawn = self._visible()
        if row >= len(self._index):
            return Strip.blank(width)
        view = self._index.row(row)
        style = (CURSOR if self.has_focus else CURSOR_UNFOCUSED) if row == self._cursor else None
        key = (view, width, style)
        strip = self._strips.get(key)
        if strip is None:
            line = self._render_row(view)
            line.truncate(width, pad=True)
            if style is not None:
                line.stylize(style)
            segments = [Segment(s.text, s.style) for s in line.render(self.app.console)]
            strip = self._strips[key] = Strip(segments, width).crop(0, width)
            if len(self._strips) > MAX_STRIPS:
                self._strips.popitem(last=False)
        return strip

    def _visible(self) -> tuple[object, ...]:
        """What the visible rows show: their views, the cursor, the focus, the size and the scroll position."""
        top, height = round(self.scroll_offset.y), self.size.height
        rows = tuple(self._index.row(i) for i in range(top, min(top + height, len(self._index))))
        return rows, self._cursor, self.has_focus, self.size, top

    def on_focus(self) -> None:
        """Show the cursor as focused."""
        self.refresh()

    def on_blur(self) -> None:
        """Show the cursor as not focused."""
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        """A click on a row puts the cursor there (a click on the border does nothing)."""
        offset = event.get_content_offset(self)
        if offset is not None:
            self._move_to(round(self.scroll_offset.y) + offset.y)

    def action_move(self, step: int) -> None:
        """Up or down one row."""
        self._move_to(self._cursor + step)

    def action_page(self, direction: int) -> None:
        """Up or down one screen."""
        self._move_to(self._cursor + direction * max(self.size.height - 1, 1))

    def action_jump(self, row: int) -> None:
        """To the first (0) or last (-1) row."""
        self._move_to(row if row >= 0 else len(self._index) - 1)

    def select(self, station: str) -> bool:
        """Put the cursor on ``station``; False if the filter hides it."""
        position = self._index.position(station)
        if position is None:
            return False
        self._move_to(position)
        return True

    def _move_to(self, row: int) -> None:
        rows = len(self._index)
        if not rows:
            return
        self._cursor = max(0, min(row, rows - 1))
        self._announce()
        self.scroll_to_region(Region(0, self._cursor, 1, 1), animate=False, immediate=True)
        self.refresh()

    def _announce(self) -> None:
        station = self._index.row(self._cursor).station if len(self._index) else None
        if station != self.station:
            self.station = station
            self.post_message(self.Highlighted(station))
