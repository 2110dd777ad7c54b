"""What parkers are told while the station is out of service: may they park meanwhile, and when is it back."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["LATEST_BACK", "Outage", "ParkingWhileOut", "parse_back_at"]

LATEST_BACK = timedelta(days=366)  # a return further ahead is no information for parkers (and 9999 breaks dates)
YEARS = range(2000, 3000)  # what a stored or sent time may say; beyond it local time cannot be computed


class ParkingWhileOut(StrEnum):
    """Whether parking must be paid while this station takes no payments."""

    UNKNOWN = "unknown"  # say nothing about it
    FREE = "free"  # parkers may park without paying until the station works again
    PAID = "paid"  # parking must still be paid: by app or at another pay station


@dataclass(frozen=True)
class Outage:
    """What staff said with the `mode` command: parking meanwhile (None: the configured default) and when it is back."""

    parking: ParkingWhileOut | None = None
    back_at: datetime | None = None

    def to_json(self) -> dict[str, str]:
        """The outage as plain data (what the store keeps)."""
        data = {}
        if self.parking is not None:
            data["parking"] = self.parking.value
        if self.back_at is not None:
            data["back_at"] = self.back_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Outage:
        """The outage from to_json()'s data; ValueError if it is not."""
        parking, back_at = data.get("parking"), data.get("back_at")
        return cls(None if parking is None else ParkingWhileOut(str(parking)),
                   None if back_at is None else parse_back_at(str(back_at)))


def parse_back_at(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset (e.g. 2026-12-06T14:00:00+01:00); ValueError if it is not one."""
    when = datetime.fromisoformat(text)
    if when.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +01:00)")
    if when.year not in YEARS:
        raise ValueError(f"{text!r} is not a time of this millennium")
    return when
