"""Licence plates as the station matches them: one plate, however a parker or an agent spells it."""
from __future__ import annotations

__all__ = ["plate_key", "same_plate"]

_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1"})


def _letters_and_digits(plate: str) -> str:
    return "".join(ch for ch in plate.upper() if ch.isalnum())  # "MÜ" keeps its Ü


def plate_key(plate: str) -> str:
    """The key plates are found by: letters and digits only, upper case, O as 0 and I as 1 ("ab-1O3" -> "AB103").

    It folds more than some formats allow; same_plate decides. Sessions are stored with it
    (kiosk.storage.schema, migration 7): changing it needs a migration that keys them anew.
    """
    return _letters_and_digits(plate).translate(_LOOK_ALIKES)


def same_plate(a: str, b: str, look_alikes: bool) -> bool:
    """Two spellings are one plate: separators, spaces and case never count; O/0 and I/1 only with ``look_alikes``."""
    if look_alikes:
        return plate_key(a) == plate_key(b)
    return _letters_and_digits(a) == _letters_and_digits(b)
