"""The console's dialogs: forms and confirmations that only ctrl+y (or a click on its button) can confirm."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select

from console.screens import OnceScreen

__all__ = ["CONFIRM_KEY", "ConfirmScreen", "Field", "FormScreen", "length_check", "number_check"]

CONFIRM_KEY = "ctrl+y"


@dataclass(frozen=True)
class Field:
    """One field of a FormScreen: an Input, or a Select when ``choices`` are given; ``check`` names a problem."""

    name: str
    label: str
    value: str = ""
    choices: tuple[str, ...] = ()
    check: Callable[[str], str | None] | None = None


class _Dialog(OnceScreen[dict[str, str] | None]):
    """A modal dialog confirmed only by ctrl+y or its Confirm button; escape or Cancel close it.

    Enter never confirms: an agent typing into the wrong place cannot change a station.
    """

    BINDINGS = [  # noqa: RUF012 (Textual reads BINDINGS as a class attribute)
        Binding("escape", "cancel", "Cancel"),
        Binding(CONFIRM_KEY, "confirm", "Confirm", priority=True),
    ]

    def __init__(self, title: str, verb: str) -> None:
        super().__init__()
        self._title, self._verb = title, verb

    def buttons(self) -> ComposeResult:
        """Confirm and Cancel, with their keys."""
        with Horizontal(id="buttons"):
            confirm = Button(f"{self._verb} (ctrl+y)", variant="warning", id="confirm")
            confirm.can_focus = False  # reached by ctrl+y or a click, never by tab and enter
            yield confirm
            yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Confirm confirms, Cancel closes."""
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.close(None)

    def action_cancel(self) -> None:
        """Close without a result."""
        self.close(None)

    def action_confirm(self) -> None:
        """Close with the dialog's result."""
        raise NotImplementedError


class ConfirmScreen(_Dialog):
    """A question about an action that changes a station; Cancel has the focus. Dismissed with ``{}`` when confirmed."""

    def __init__(self, title: str, detail: str, verb: str) -> None:
        super().__init__(title, verb)
        self._detail = detail

    def compose(self) -> ComposeResult:
        """The question, what it does, Confirm and Cancel."""
        with Vertical(id="form"):
            yield Label(Text(self._title, style="bold"))
            yield Label(Text(self._detail))
            yield from self.buttons()

    def on_mount(self) -> None:
        """Cancel has the focus, so that enter cancels."""
        self.query_one("#cancel", Button).focus()

    def action_confirm(self) -> None:
        """Confirmed."""
        self.close({})


class FormScreen(_Dialog):
    """A modal form; dismissed with ``{name: value}`` (stripped) when confirmed and every check passes."""

    def __init__(self, title: str, fields: list[Field], verb: str = "Send",
                 check: Callable[[dict[str, str]], str | None] | None = None) -> None:
        super().__init__(title, verb)
        self._fields, self._check = fields, check

    def compose(self) -> ComposeResult:
        """The title, one labelled widget per field, a line for problems, Confirm and Cancel."""
        with Vertical(id="form"):
            yield Label(Text(self._title, style="bold"))
            for field in self._fields:
                yield Label(Text(field.label))
                if field.choices:
                    yield Select([(c, c) for c in field.choices], value=field.value or field.choices[0],
                                 allow_blank=False, id=f"field-{field.name}")
                else:
                    yield Input(field.value, id=f"field-{field.name}")
            yield Label(Text(f"ctrl+y to {self._verb.lower()}, esc to cancel", style="dim"), id="problem")
            yield from self.buttons()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter moves to the next field, if there is one; it never confirms."""
        event.stop()
        fields = [self.query_one(f"#field-{field.name}") for field in self._fields]
        later = fields[fields.index(event.input) + 1:] if event.input in fields else []
        if later:
            later[0].focus()

    def action_confirm(self) -> None:
        """Check every field; close with the values, or name the first problem."""
        values = {}
        for field in self._fields:
            value = str(self.query_one(f"#field-{field.name}").value).strip()  # type: ignore[attr-defined]
            problem = field.check(value) if field.check else None
            if problem:
                self.query_one("#problem", Label).update(Text(f"{field.label}: {problem}", style="bold red"))
                return
            values[field.name] = value
        problem = self._check(values) if self._check else None
        if problem:
            self.query_one("#problem", Label).update(Text(problem, style="bold red"))
            return
        self.close(values)


def length_check(low: int, high: int) -> Callable[[str], str | None]:
    """A Field check: from ``low`` to ``high`` characters."""
    return lambda value: None if low <= len(value) <= high else f"{low} to {high} characters"


def number_check(low: int, high: int) -> Callable[[str], str | None]:
    """A Field check: a whole number from ``low`` to ``high``."""
    return lambda value: None if value.isdigit() and low <= int(value) <= high else \
        f"a whole number from {low} to {high}"
