"""The worked examples of docs/tariff.md, checked row by row against the tariff engine."""

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.domain.tariff import RateBand, Tariff, clamp_minutes, minutes_for_amount, quote, validate

BERLIN = ZoneInfo("Europe/Berlin")
DOC = Path(__file__).resolve().parents[1] / "docs" / "tariff.md"
WORKDAYS = frozenset({0, 1, 2, 3, 4})
NONE = "–"

STANDARD = Tariff(
    timezone="Europe/Berlin",
    currency="EUR",
    bands=(
        RateBand(WORKDAYS, 8 * 60, 18 * 60, 200),
        RateBand(WORKDAYS, 18 * 60, 20 * 60, 100),
        RateBand(frozenset({5}), 8 * 60, 14 * 60, 150),
    ),
    increment_minutes=15,
    minimum_minutes=15,
    maximum_minutes=180,
    daily_cap=1200,
)
TARIFFS = {
    "standard": STANDARD,
    "long-stay": replace(STANDARD, maximum_minutes=720),
    "24/7": Tariff("Europe/Berlin", "EUR", (RateBand(frozenset(range(7)), 0, 1440, 100),), 15, 15, 180, None),
}


@dataclass(frozen=True)
class Example:
    """One row of the worked-examples table, exactly as printed in the doc."""

    case: str
    tariff: str
    at: str
    request: str  # "60 min" -> quote; "pay 5.00" -> minutes_for_amount; "ask 50 min" -> clamp_minutes
    minutes: str
    price: str
    starts: str
    expires: str

    def cells(self, number: int) -> list[str]:
        """The table cells of this row in doc order."""
        return [str(number), self.case, self.tariff, self.at, self.request, self.minutes, self.price,
                self.starts, self.expires]


EXAMPLES = [
    Example("simple hour", "standard", "Mon 2026-03-02 09:00 +01:00", "60 min",
            "60", "2.00", "Mon 2026-03-02 09:00 +01:00", "Mon 2026-03-02 10:00 +01:00"),
    Example("two bands with different rates (18:00)", "standard", "Mon 2026-03-02 17:30 +01:00", "60 min",
            "60", "1.50", "Mon 2026-03-02 17:30 +01:00", "Mon 2026-03-02 18:30 +01:00"),
    Example("across the 20:00 end into the next morning", "standard", "Mon 2026-03-02 19:30 +01:00", "60 min",
            "60", "1.50", "Mon 2026-03-02 19:30 +01:00", "Tue 2026-03-03 08:30 +01:00"),
    Example("Saturday short band", "standard", "Sat 2026-03-07 10:00 +01:00", "60 min",
            "60", "1.50", "Sat 2026-03-07 10:00 +01:00", "Sat 2026-03-07 11:00 +01:00"),
    Example("over the weekend", "standard", "Sat 2026-03-07 13:00 +01:00", "180 min",
            "180", "5.50", "Sat 2026-03-07 13:00 +01:00", "Mon 2026-03-09 10:00 +01:00"),
    Example("Friday evening into Saturday, rounded once", "standard", "Fri 2026-03-06 19:45 +01:00", "180 min",
            "180", "4.38", "Fri 2026-03-06 19:45 +01:00", "Sat 2026-03-07 10:45 +01:00"),
    Example("purchase at night", "standard", "Tue 2026-03-03 22:00 +01:00", "30 min",
            "30", "1.00", "Wed 2026-03-04 08:00 +01:00", "Wed 2026-03-04 08:30 +01:00"),
    Example("purchase on Sunday", "standard", "Sun 2026-03-08 15:00 +01:00", "60 min",
            "60", "2.00", "Mon 2026-03-09 08:00 +01:00", "Mon 2026-03-09 09:00 +01:00"),
    Example("odd-second start", "standard", "Mon 2026-03-02 09:13:27 +01:00", "15 min",
            "15", "0.50", "Mon 2026-03-02 09:13:27 +01:00", "Mon 2026-03-02 09:28:27 +01:00"),
    Example("odd-second start across 18:00, rounded up", "standard", "Mon 2026-03-02 17:50:27 +01:00", "15 min",
            "15", "0.41", "Mon 2026-03-02 17:50:27 +01:00", "Mon 2026-03-02 18:05:27 +01:00"),
    Example("amount to duration", "standard", "Mon 2026-03-02 09:00 +01:00", "pay 5.00",
            "150", "5.00", "Mon 2026-03-02 09:00 +01:00", "Mon 2026-03-02 11:30 +01:00"),
    Example("amount to duration, remainder not used", "standard", "Mon 2026-03-02 09:00 +01:00", "pay 3.10",
            "90", "3.00", "Mon 2026-03-02 09:00 +01:00", "Mon 2026-03-02 10:30 +01:00"),
    Example("amount to duration in the cheaper evening", "standard", "Mon 2026-03-02 18:00 +01:00", "pay 2.00",
            "120", "2.00", "Mon 2026-03-02 18:00 +01:00", "Mon 2026-03-02 20:00 +01:00"),
    Example("amount below one increment", "standard", "Mon 2026-03-02 09:00 +01:00", "pay 0.40",
            "0", NONE, NONE, NONE),
    Example("amount beyond the maximum stay", "standard", "Mon 2026-03-02 09:00 +01:00", "pay 10.00",
            "180", "6.00", "Mon 2026-03-02 09:00 +01:00", "Mon 2026-03-02 12:00 +01:00"),
    Example("below the minimum (clamp)", "standard", "Mon 2026-03-02 09:00 +01:00", "ask 5 min",
            "15", "0.50", "Mon 2026-03-02 09:00 +01:00", "Mon 2026-03-02 09:15 +01:00"),
    Example("off the grid, rounded up (clamp)", "standard", "Mon 2026-03-02 09:00 +01:00", "ask 50 min",
            "60", "2.00", "Mon 2026-03-02 09:00 +01:00", "Mon 2026-03-02 10:00 +01:00"),
    Example("above the maximum (clamp)", "standard", "Mon 2026-03-02 09:00 +01:00", "ask 240 min",
            "180", "6.00", "Mon 2026-03-02 09:00 +01:00", "Mon 2026-03-02 12:00 +01:00"),
    Example("daily cap reached", "long-stay", "Mon 2026-03-02 08:00 +01:00", "600 min",
            "600", "12.00", "Mon 2026-03-02 08:00 +01:00", "Mon 2026-03-02 18:00 +01:00"),
    Example("daily cap on the second day only", "long-stay", "Mon 2026-03-02 16:00 +01:00", "720 min",
            "720", "18.00", "Mon 2026-03-02 16:00 +01:00", "Tue 2026-03-03 16:00 +01:00"),
    Example("DST spring forward over the weekend", "standard", "Sat 2026-03-28 13:30 +01:00", "60 min",
            "60", "1.75", "Sat 2026-03-28 13:30 +01:00", "Mon 2026-03-30 08:30 +02:00"),
    Example("DST spring forward, round the clock", "24/7", "Sun 2026-03-29 01:30 +01:00", "120 min",
            "120", "2.00", "Sun 2026-03-29 01:30 +01:00", "Sun 2026-03-29 04:30 +02:00"),
    Example("DST fall back, round the clock", "24/7", "Sun 2026-10-25 01:30 +02:00", "120 min",
            "120", "2.00", "Sun 2026-10-25 01:30 +02:00", "Sun 2026-10-25 02:30 +01:00"),
    Example("DST fall back, bought in the repeated hour", "24/7", "Sun 2026-10-25 02:30 +02:00", "60 min",
            "60", "1.00", "Sun 2026-10-25 02:30 +02:00", "Sun 2026-10-25 02:30 +01:00"),
]


def parse_local(text: str) -> datetime:
    """'Mon 2026-03-02 09:00 +01:00' -> aware datetime."""
    clock, offset = text[4:].rsplit(" ", 1)
    return datetime.fromisoformat(clock + offset)


def show(instant: datetime) -> str:
    """Aware datetime -> Berlin wall clock as printed in the doc."""
    local = instant.astimezone(BERLIN)
    clock = "%H:%M:%S" if local.second else "%H:%M"
    return local.strftime(f"%a %Y-%m-%d {clock} ") + local.isoformat()[-6:]


def parse_amount(text: str) -> int:
    """'5.00' -> 500 minor units, without floats."""
    units, cents = text.split(".")
    return int(units) * 100 + int(cents)


def show_amount(amount: int) -> str:
    """500 minor units -> '5.00'."""
    return f"{amount // 100}.{amount % 100:02d}"


def doc_rows() -> list[list[str]]:
    """Cells of the numbered rows of the worked-examples table in docs/tariff.md."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows.append(cells)
    return rows


def test_example_tariffs_are_valid() -> None:
    for tariff in TARIFFS.values():
        assert validate(tariff) == []


def test_doc_table_matches_examples() -> None:
    assert doc_rows() == [example.cells(number) for number, example in enumerate(EXAMPLES, start=1)]


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.case for example in EXAMPLES])
def test_example(example: Example) -> None:
    tariff = TARIFFS[example.tariff]
    at = parse_local(example.at)
    assert show(at) == example.at
    if example.request.startswith("pay "):
        minutes = minutes_for_amount(tariff, at, parse_amount(example.request.removeprefix("pay ")))
    elif example.request.startswith("ask "):
        minutes = clamp_minutes(tariff, int(example.request.removeprefix("ask ").removesuffix(" min")))
    else:
        minutes = int(example.request.removesuffix(" min"))
    assert str(minutes) == example.minutes
    if minutes == 0:
        assert (example.price, example.starts, example.expires) == (NONE, NONE, NONE)
        return
    result = quote(tariff, at, minutes)
    assert (show_amount(result.price), show(result.starts), show(result.expires)) == (
        example.price, example.starts, example.expires)
