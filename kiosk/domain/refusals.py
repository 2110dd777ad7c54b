"""Expected refusals: bad input or the wrong moment (ValueError subclasses), and the checks that raise them.

A refusal writes nothing and is answered, not crashed on; a bare ValueError elsewhere stays a
bug, so callers catch ``Refused``, never ValueError.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "InvalidValue", "NotOwed", "Refused", "TicketNotOpen", "UnknownRecord", "WrongState", "check_choice", "check_int",
    "check_text",
]


class Refused(ValueError):
    """The store refused a request and wrote nothing: bad input or the wrong moment, not a failing disk."""


class InvalidValue(Refused):
    """An argument the store does not take: wrong type, empty text, out of range, a naive datetime, not JSON."""


class UnknownRecord(Refused):
    """No row has that key: an unknown payment, session, help ticket, command or fault."""


class WrongState(Refused):
    """The row exists but is not in the state the step needs (e.g. a payment that is no longer pending)."""


class NotOwed(WrongState):
    """The payment is not an approved one that the terminal has not confirmed: nothing to settle."""


class TicketNotOpen(WrongState):
    """The help ticket is not open here: unknown, or already closed."""


def check_text(name: str, value: Any) -> str:
    """``value`` if it is a string with more than white space; InvalidValue otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an integer (not a bool) from ``minimum`` to ``maximum``; InvalidValue otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidValue(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidValue(f"{name} must be an integer <= {maximum}, got {value!r}")
    return value


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``; InvalidValue otherwise."""
    if value not in allowed:
        raise InvalidValue(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value
