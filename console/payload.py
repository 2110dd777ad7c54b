"""Reading a station's MQTT payloads for the console: every field checked, every text made safe to show."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal, overload

__all__ = ["MAX_ID", "MAX_TEXT", "Invalid", "clean", "identifier", "integer", "json_object", "station_level", "text",
           "timestamp"]

MAX_TEXT = 500  # characters kept of any text a station sends (the station accepts 500 from agents)
MAX_ID = 100


class Invalid(ValueError):
    """A message that does not fit the MQTT contract."""


def json_object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object, or Invalid."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Invalid(f"expected a JSON object, got {type(value).__name__}")
    return value


def clean(value: str, limit: int = MAX_TEXT) -> str:
    """At most ``limit`` characters, lone surrogates and control characters (escape sequences) replaced."""
    value = value[:limit].encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c.isprintable() else " " for c in value)


@overload
def text(data: Any, key: str, *, required: Literal[True]) -> str: ...


@overload
def text(data: Any, key: str, *, required: bool = False) -> str | None: ...


def text(data: Any, key: str, *, required: bool = False) -> str | None:
    """``data[key]`` cleaned when it is a string; None (or Invalid when ``required``) otherwise."""
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, str):
        return clean(value)
    if required:
        raise Invalid(f"{key}: missing or not a string")
    return None


def identifier(value: Any, what: str) -> str:
    """A station, component or ticket id: used in topics and shown as is, so it must be plain."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID or not value.isprintable():
        raise Invalid(f"{what}: not a plain string of 1 to {MAX_ID} characters")
    return value


def station_level(level: str) -> bool:
    """Whether a topic's station level can name a station: station ids start with a letter or digit.

    The levels starting with ``_`` are the alert bridge's trees (``_alerts``, ``_ack/{user}``), never a
    station, even where their topics match a station's (``_ack/fault/x`` is ``+/fault/+``).
    """
    return not level.startswith("_")


def integer(data: Any, key: str) -> int | None:
    """``data[key]`` when it is an integer (not a boolean)."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or an offset; none means UTC) as an aware UTC time, or None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(iso)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
