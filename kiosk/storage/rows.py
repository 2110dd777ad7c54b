"""Validation of the store's arguments and rows made into records, shared by the store's parts."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import peewee as pw

from kiosk.domain.refusals import InvalidValue, check_choice, check_int, check_text
from kiosk.mqtt.contract import json_text
from kiosk.storage.schema import utc

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["check_choice", "check_int", "check_json_object", "check_json_text", "check_parking", "check_text",
           "to_record"]

R = TypeVar("R", bound="DataclassInstance")


def check_json_object(name: str, value: Any) -> str:
    """Compact JSON of a dict; anything else, or a dict that is not JSON-serialisable, raises InvalidValue."""
    if not isinstance(value, dict):
        raise InvalidValue(f"{name} must be a dict, got {type(value).__name__}")
    try:
        return json_text(value)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"{name} is not JSON-serialisable: {exc}") from exc


def check_json_text(name: str, value: Any) -> str:
    """``value`` if it is non-empty JSON text; InvalidValue otherwise."""
    check_text(name, value)
    try:
        json.loads(value)
    except ValueError as exc:
        raise InvalidValue(f"{name} must be JSON text: {exc}") from exc
    return value


def check_parking(plate: str, zone: str, minutes: int, starts: datetime, expires: datetime) -> None:
    """Where and when a session parks: plate, zone, minutes >= 1, and ``expires`` after ``starts``."""
    check_text("plate", plate)
    check_text("zone", zone)
    check_int("minutes", minutes, 1)
    if utc(expires, "expires") <= utc(starts, "starts"):
        raise InvalidValue(f"expires {expires} must be after starts {starts}")


def to_record(cls: type[R], row: pw.Model, **extra: Any) -> R:
    """The record ``cls`` (a dataclass) of a peewee row: its fields read from the row's columns, or ``extra``."""
    names = (f.name for f in fields(cls) if f.name not in extra)
    return cls(**{name: getattr(row, name) for name in names}, **extra)
