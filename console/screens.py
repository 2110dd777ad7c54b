"""The console's small screens (the keys of F1, the pick list of F9, closing once) and its fixed text panes."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

__all__ = ["KeysScreen", "OnceScreen", "PickScreen", "TextPane"]

TYPING_RULE = ("Letters never act: they are text in the chat and the search. "
               "Every action that changes a station asks for ctrl+y.")


Result = TypeVar("Result")


class OnceScreen(ModalScreen[Result]):
    """A modal screen that closes once: keys queued faster than the console handles them (enter twice, ctrl+y
    twice) would otherwise dismiss it twice, and the second dismiss would take the screen below with it."""

    def __init__(self) -> None:
        super().__init__()
        self._answered = False

    def close(self, result: Result | None) -> None:
        """Dismiss with ``result``, the first time only."""
        if not self._answered:
            self._answered = True
            self.dismiss(result)

    def action_close(self) -> None:
        """Close without a result."""
        self.close(None)


class KeysScreen(OnceScreen[None]):
    """Every key of the console and what it does; any of escape, F1 or enter closes it."""

    BINDINGS = [Binding("escape,f1,enter", "close", "Close")]  # noqa: RUF012 (Textual's class attribute)

    def __init__(self, bindings: Iterable[BindingType]) -> None:
        super().__init__()
        self._keys = [b for b in bindings if isinstance(b, Binding)]

    def compose(self) -> ComposeResult:
        """The keys, one per line."""
        lines = Text()
        for binding in self._keys:
            lines.append(f"{binding.key:<10}", style="bold")
            lines.append(f"{binding.description or binding.action}\n")
        lines.append(TYPING_RULE, style="dim")
        with Vertical(id="form"):
            yield Label(Text("Keys", style="bold"))
            yield Label(lines)


class PickScreen(OnceScreen[int | None]):
    """Choose one of ``options`` (arrows and enter, or a click); dismissed with its index, None on escape."""

    BINDINGS = [Binding("escape", "close", "Cancel")]  # noqa: RUF012 (Textual's class attribute)

    def __init__(self, title: str, options: list[Option]) -> None:
        super().__init__()
        self._title, self._options = title, options

    def compose(self) -> ComposeResult:
        """The title and the options."""
        with Vertical(id="form"):
            yield Label(Text(self._title, style="bold"))
            yield OptionList(*self._options, id="pick")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """The chosen option's index."""
        event.stop()
        self.close(event.option_index)


class TextPane(Widget):
    """A pane of a fixed size that shows one rich Text; a new text redraws it without a new layout of the screen
    (a Static's update lays the whole screen out again, which a ticking waiting time would do every second)."""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.text = Text()

    def show(self, text: Text) -> None:
        """Show ``text`` from the next frame on."""
        self.text = text
        self.refresh()

    def render(self) -> Text:
        """What the pane shows."""
        return self.text
