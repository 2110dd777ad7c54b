"""Licence plates as the station matches them: one plate, however a parker or an agent spells it."""
from __future__ import annotations

import unicodedata

__all__ = ["plate_key", "same_plate"]

_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1"})


def _normal(plate: str) -> str:
    """NFKC and upper case: a decomposed "MÜ" or a full-width "ＡＢ" is the plain one."""
    return unicodedata.normalize("NFKC", plate).upper()


def _letters_and_digits(plate: str) -> str:
    return "".join(ch for ch in _normal(plate) if ch.isalnum())  # "MÜ" keeps its Ü


def _groups(plate: str) -> list[int]:
    """The lengths of the letter-and-digit groups between separators ("B-AB12" -> [1, 4]); spaces never separate."""
    lengths, current = [], 0
    for ch in _normal(plate):
        if ch.isalnum():
            current += 1
        elif current and not ch.isspace():
            lengths.append(current)
            current = 0
    return [*lengths, current] if current else lengths


def plate_key(plate: str) -> str:
    """The key plates are found by: letters and digits only, upper case, O as 0 and I as 1 ("ab-1O3" -> "AB103").

    It folds more than some formats allow; same_plate decides. Sessions are stored with it
    (kiosk.storage.schema, migration 7): changing it needs a migration that keys them anew.
    """
    return _letters_and_digits(plate).translate(_LOOK_ALIKES)


def same_plate(a: str, b: str, look_alikes: bool) -> bool:
    """Two spellings are one plate: case, spaces and a missing separator never count; O/0 and I/1 only with ``look_alikes``.

    Separators count only where both spellings have them: "AB123CD" is "AB-123CD", but
    "B-AB12" (Berlin) is not "BA-B12" (Bamberg), two cars whose letters are the same.
    """
    if look_alikes:
        same = plate_key(a) == plate_key(b)
    else:
        same = _letters_and_digits(a) == _letters_and_digits(b)
    groups_a, groups_b = _groups(a), _groups(b)
    return same and (len(groups_a) == 1 or len(groups_b) == 1 or groups_a == groups_b)
