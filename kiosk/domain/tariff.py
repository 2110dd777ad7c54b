"""Tariff engine: price and expiry of chargeable parking time bought at the pay station."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEARCH_DAYS = 14
"""How far ahead (in days) the engine looks for chargeable time before giving up."""

_SEARCH = timedelta(days=SEARCH_DAYS)
_MICROSECOND = timedelta(microseconds=1)
_MICROSECONDS_PER_MINUTE = 60_000_000
_MICROSECONDS_PER_HOUR = 3_600_000_000
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class TariffError(ValueError):
    """A purchase the tariff cannot price: minutes off its grid or beyond the maximum stay, or no chargeable time.

    A naive datetime is a programming error, not a refusal: it raises a plain ValueError.
    """


@dataclass(frozen=True)
class RateBand:
    """A chargeable period on some weekdays with a price per hour."""

    weekdays: frozenset[int]  # date.weekday(): 0 = Monday ... 6 = Sunday
    start_minute: int  # local wall-clock minutes after midnight, 0..1439, inclusive
    end_minute: int  # exclusive, start_minute < end_minute <= 1440 (1440 = next midnight)
    rate_per_hour: int  # minor units per hour, >= 0


@dataclass(frozen=True)
class Tariff:
    """Pricing rules of a parking zone: chargeable bands, purchase grid and optional daily cap."""

    timezone: str  # IANA name, e.g. "Europe/Berlin"
    currency: str  # ISO 4217, e.g. "EUR"
    bands: tuple[RateBand, ...]  # the chargeable (enforcement) hours; time outside every band is free
    increment_minutes: int  # purchasable durations are multiples of this (> 0)
    minimum_minutes: int  # smallest purchase (a multiple of increment, > 0)
    maximum_minutes: int  # maximum stay: most chargeable minutes in one purchase (multiple of increment, >= minimum)
    daily_cap: int | None  # optional: most charged per local calendar day per purchase, minor units


@dataclass(frozen=True)
class Quote:
    """Price and validity of a purchase of chargeable minutes."""

    minutes: int  # chargeable minutes bought
    price: int  # minor units
    starts: datetime  # when bought time starts running (aware, UTC): `at` if chargeable then, else next band start
    expires: datetime  # aware UTC instant when the bought chargeable time is used up


@dataclass(frozen=True)
class _Segment:
    """A stretch of chargeable time [start, end) at one rate, from a band of local day `day`."""

    day: date
    start: datetime
    end: datetime
    rate: int


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _band_problems(band: RateBand) -> list[str]:
    problems: list[str] = []
    if not band.weekdays:
        problems.append("no weekdays")
    bad_days = sorted(str(day) for day in band.weekdays if not (_is_int(day) and 0 <= day <= 6))
    if bad_days:
        problems.append(f"weekdays {', '.join(bad_days)} out of range 0..6 (0 = Monday)")
    start_ok = _is_int(band.start_minute) and 0 <= band.start_minute <= 1439
    end_ok = _is_int(band.end_minute) and 1 <= band.end_minute <= 1440
    if not start_ok:
        problems.append(f"start_minute {band.start_minute!r} out of range 0..1439")
    if not end_ok:
        problems.append(f"end_minute {band.end_minute!r} out of range 1..1440")
    if start_ok and end_ok and band.end_minute <= band.start_minute:
        problems.append(f"end_minute {band.end_minute} must be after start_minute {band.start_minute}")
    if not _is_int(band.rate_per_hour):
        problems.append(f"rate_per_hour {band.rate_per_hour!r} must be an integer amount in minor units")
    elif band.rate_per_hour < 0:
        problems.append(f"rate_per_hour {band.rate_per_hour} is negative")
    return problems


def _overlap_problems(bands: tuple[RateBand, ...], well_formed: list[bool]) -> list[str]:
    problems: list[str] = []
    for j, later in enumerate(bands):
        for i, earlier in enumerate(bands[:j]):
            if not (well_formed[i] and well_formed[j]):
                continue
            common = earlier.weekdays & later.weekdays
            if common and earlier.start_minute < later.end_minute and later.start_minute < earlier.end_minute:
                days = ", ".join(_DAY_NAMES[day] for day in sorted(common))
                problems.append(f"band[{j}]: overlaps band[{i}] on {days}")
    return problems


def _grid_problems(tariff: Tariff) -> list[str]:
    increment, minimum, maximum = tariff.increment_minutes, tariff.minimum_minutes, tariff.maximum_minutes
    if not (_is_int(increment) and increment > 0):
        return [f"increment_minutes: {increment!r} must be a positive whole number of minutes"]
    problems: list[str] = []
    minimum_ok = _is_int(minimum) and minimum > 0 and minimum % increment == 0
    if not minimum_ok:
        problems.append(f"minimum_minutes: {minimum!r} must be a positive multiple of increment_minutes {increment}")
    if not (_is_int(maximum) and maximum > 0 and maximum % increment == 0):
        problems.append(f"maximum_minutes: {maximum!r} must be a positive multiple of increment_minutes {increment}")
    elif minimum_ok and maximum < minimum:
        problems.append(f"maximum_minutes: {maximum} is less than minimum_minutes {minimum}")
    return problems


def validate(tariff: Tariff) -> list[str]:
    """Human-readable problems with a tariff; an empty list means it is valid.

    Messages start with the field they concern ('timezone: ...', 'band[1]: ...').
    The other functions of this module assume a valid tariff.
    """
    problems: list[str] = []
    try:
        ZoneInfo(tariff.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        problems.append(f"timezone: unknown time zone {tariff.timezone!r}")
    currency = tariff.currency
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()
            and currency.isupper()):
        problems.append(f"currency: {currency!r} is not a three-letter ISO 4217 code")
    if not tariff.bands:
        problems.append("bands: at least one band is required, otherwise nothing can be sold")
    band_problems = [_band_problems(band) for band in tariff.bands]
    for index, messages in enumerate(band_problems):
        problems.extend(f"band[{index}]: {message}" for message in messages)
    problems.extend(_overlap_problems(tariff.bands, [not messages for messages in band_problems]))
    problems.extend(_grid_problems(tariff))
    if tariff.daily_cap is not None:
        if not _is_int(tariff.daily_cap):
            problems.append(f"daily_cap: {tariff.daily_cap!r} must be an integer amount in minor units")
        elif tariff.daily_cap < 0:
            problems.append(f"daily_cap: {tariff.daily_cap} is negative")
    return problems


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} is a naive datetime; a timezone-aware one is required")
    return at.astimezone(UTC)


def _edge(zone: ZoneInfo, day: date, minute: int) -> datetime:
    """UTC instant of local wall-clock `minute` of `day` (1440 = next midnight); fold=0 for gaps and repeats."""
    day += timedelta(days=minute // 1440)
    minute %= 1440
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)


def _segments(tariff: Tariff, since: datetime) -> Iterator[_Segment]:
    """Chargeable stretches from UTC instant `since` on, in time order and never overlapping.

    Stops once more than SEARCH_DAYS days after `since` (or after the last stretch) had no chargeable time.
    """
    zone = ZoneInfo(tariff.timezone)
    day = since.astimezone(zone).date() - timedelta(days=1)  # a band of the previous local day may still run
    covered = since
    while _edge(zone, day, 0) <= covered + _SEARCH:
        edges = sorted(
            (_edge(zone, day, band.start_minute), _edge(zone, day, band.end_minute), band.rate_per_hour)
            for band in tariff.bands
            if day.weekday() in band.weekdays
        )
        for start, end, rate in edges:
            start = max(start, covered)
            if start < end:
                yield _Segment(day, start, end, rate)
                covered = end
        day += timedelta(days=1)


def _check_minutes(tariff: Tariff, minutes: int) -> None:
    increment = tariff.increment_minutes
    if not _is_int(minutes) or minutes <= 0 or minutes % increment:
        raise TariffError(f"minutes must be a positive multiple of {increment}, got {minutes!r}")
    if minutes > tariff.maximum_minutes:
        raise TariffError(f"{minutes} minutes exceed the maximum stay of {tariff.maximum_minutes}")


def quote(tariff: Tariff, at: datetime, minutes: int) -> Quote:
    """Price and expiry for `minutes` chargeable minutes bought at instant `at`.

    Bought time runs only inside bands. Each local day's charge is the exact sum of
    rate * time over its bands, limited to daily_cap; the total is rounded up once to
    a whole minor unit. Raises ValueError if `at` is naive; TariffError if minutes is not a
    positive multiple of increment_minutes or exceeds maximum_minutes (minimum_minutes is not
    enforced here; see clamp_minutes), or if the tariff has no chargeable time.
    """
    _check_minutes(tariff, minutes)
    at_utc = _utc(at)
    remaining = minutes * _MICROSECONDS_PER_MINUTE
    cap = None if tariff.daily_cap is None else tariff.daily_cap * _MICROSECONDS_PER_HOUR
    day_charges: dict[date, int] = {}  # minor units * microseconds / hour, exact
    starts: datetime | None = None
    for segment in _segments(tariff, at_utc):
        if starts is None:
            starts = segment.start
        used = min(remaining, (segment.end - segment.start) // _MICROSECOND)
        day_charges[segment.day] = day_charges.get(segment.day, 0) + segment.rate * used
        remaining -= used
        if remaining == 0:
            total = sum(charge if cap is None else min(charge, cap) for charge in day_charges.values())
            price = -(-total // _MICROSECONDS_PER_HOUR)
            return Quote(minutes, price, starts, segment.start + used * _MICROSECOND)
    raise TariffError(f"tariff has no chargeable time within {SEARCH_DAYS} days")


def minutes_for_amount(tariff: Tariff, at: datetime, amount: int) -> int:
    """The longest duration (multiple of increment, <= maximum_minutes) whose price at `at` is <= amount.

    Returns 0 if even one increment costs more. Binary search, relying on price
    never decreasing with more minutes.
    """
    _utc(at)  # rejects a naive `at` even when no quote is needed
    increment = tariff.increment_minutes
    low, high = 0, tariff.maximum_minutes // increment
    while low < high:
        middle = (low + high + 1) // 2
        if quote(tariff, at, middle * increment).price <= amount:
            low = middle
        else:
            high = middle - 1
    return low * increment


def clamp_minutes(tariff: Tariff, minutes: int) -> int:
    """Round up to the increment grid and clamp to [minimum_minutes, maximum_minutes]."""
    increment = tariff.increment_minutes
    rounded = -(-minutes // increment) * increment
    return min(max(rounded, tariff.minimum_minutes), tariff.maximum_minutes)


def is_chargeable(tariff: Tariff, at: datetime) -> bool:
    """Whether instant `at` lies inside a band (bought time would be running)."""
    at_utc = _utc(at)
    segment = next(_segments(tariff, at_utc), None)
    return segment is not None and segment.start == at_utc


def next_chargeable(tariff: Tariff, at: datetime) -> datetime | None:
    """`at` (in UTC) if chargeable, else the start of the next band within SEARCH_DAYS days, else None."""
    at_utc = _utc(at)
    segment = next(_segments(tariff, at_utc), None)
    if segment is None or segment.start - at_utc > _SEARCH:
        return None
    return segment.start
