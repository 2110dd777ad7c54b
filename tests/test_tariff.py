"""Tests of the tariff engine: properties over random tariffs, DST behaviour, validation and edge cases."""

import time as clock
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kiosk.domain.tariff import (
    SEARCH_DAYS,
    Quote,
    RateBand,
    Tariff,
    clamp_minutes,
    is_chargeable,
    minutes_for_amount,
    next_chargeable,
    quote,
    validate,
)

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")  # Tokyo has no DST
INCREMENTS = (1, 5, 10, 15, 30, 60)
EVERY_DAY = frozenset(range(7))
WORKDAYS = frozenset(range(5))
SUNDAY = frozenset({6})
MICROSECONDS_PER_HOUR = 3_600_000_000
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STANDARD = Tariff(
    timezone="Europe/Berlin",
    currency="EUR",
    bands=(
        RateBand(WORKDAYS, 480, 1080, 200),
        RateBand(WORKDAYS, 1080, 1200, 100),
        RateBand(frozenset({5}), 480, 840, 150),
    ),
    increment_minutes=15,
    minimum_minutes=15,
    maximum_minutes=180,
    daily_cap=1200,
)
ALL_DAY = Tariff("Europe/Berlin", "EUR", (RateBand(EVERY_DAY, 0, 1440, 100),), 15, 15, 1500, None)

Interval = tuple[date, datetime, datetime, int]


# --- an independent model of the documented rules --------------------------------------------


def transition_days(name: str) -> list[date]:
    """Local days in 2024-2028 on which the UTC offset of `name` changes."""
    zone = ZoneInfo(name)
    days = []
    day = date(2024, 1, 1)
    while day.year < 2029:
        following = day + timedelta(days=1)
        if datetime.combine(day, time(), zone).utcoffset() != datetime.combine(following, time(), zone).utcoffset():
            days.append(day)
        day = following
    return days


TRANSITIONS = {name: transition_days(name) for name in ZONES}


def band_edge(zone: ZoneInfo, day: date, minute: int) -> datetime:
    """Local wall-clock time `minute` after midnight of `day`, read with fold=0, as UTC."""
    wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def band_intervals(tariff: Tariff, first: datetime, last: datetime) -> list[Interval]:
    """(local day, UTC start, UTC end, rate) of every band occurrence on the local days around [first, last]."""
    zone = ZoneInfo(tariff.timezone)
    day = first.astimezone(zone).date() - timedelta(days=1)
    intervals = []
    while day <= last.astimezone(zone).date() + timedelta(days=1):
        for band in tariff.bands:
            if day.weekday() in band.weekdays:
                start, end = band_edge(zone, day, band.start_minute), band_edge(zone, day, band.end_minute)
                intervals.append((day, start, end, band.rate_per_hour))
        day += timedelta(days=1)
    return intervals


def chargeable_time(intervals: list[Interval], start: datetime, end: datetime) -> timedelta:
    """Length of the union of the intervals within [start, end)."""
    total = timedelta()
    reach = start
    for piece_start, piece_end in sorted((max(s, start), min(e, end)) for _, s, e, _ in intervals):
        piece_start = max(piece_start, reach)
        if piece_start < piece_end:
            total += piece_end - piece_start
            reach = piece_end
    return total


def first_chargeable(intervals: list[Interval], at: datetime) -> datetime | None:
    """The earliest chargeable instant at or after `at`, in UTC."""
    at = at.astimezone(UTC)  # an instant in a repeated local hour never compares equal across zones (PEP 495)
    return min((max(s, at) for _, s, e, _ in intervals if s < e and e > at), default=None)


def expected_price(tariff: Tariff, result: Quote) -> int | None:
    """Exact per-day charges, each capped, rounded up once; None where band instants overlap (DST gap edges)."""
    intervals = sorted((i for i in band_intervals(tariff, result.starts, result.expires) if i[1] < i[2]),
                       key=lambda i: i[1])
    if any(later[1] < earlier[2] for earlier, later in zip(intervals, intervals[1:])):
        return None
    day_charges: dict[date, int] = {}
    for day, start, end, rate in intervals:
        start, end = max(start, result.starts), min(end, result.expires)
        if start < end:
            day_charges[day] = day_charges.get(day, 0) + rate * ((end - start) // timedelta(microseconds=1))
    cap = tariff.daily_cap
    total = sum(charge if cap is None else min(charge, cap * MICROSECONDS_PER_HOUR) for charge in day_charges.values())
    return -(-total // MICROSECONDS_PER_HOUR)


# --- strategies --------------------------------------------------------------------------------

minute_of_day = st.one_of(st.integers(0, 96).map(lambda quarter: quarter * 15), st.integers(0, 1440))


@st.composite
def tariffs(draw: st.DrawFn, capped: bool = False) -> Tariff:
    """Valid tariffs: weekdays split into groups, each group with non-overlapping bands."""
    group_of_day = draw(st.lists(st.integers(0, 2), min_size=7, max_size=7))
    bands = []
    for group in sorted(set(group_of_day)):
        weekdays = frozenset(day for day in range(7) if group_of_day[day] == group)
        cuts = sorted(draw(st.sets(minute_of_day, min_size=2, max_size=6)))
        for start, end in zip(cuts, cuts[1:]):
            if draw(st.integers(0, 3)):  # leave about one gap in four free
                bands.append(RateBand(weekdays, start, end, draw(st.integers(0, 600))))
    assume(bands)
    weekly = sum(len(band.weekdays) * (band.end_minute - band.start_minute) for band in bands)
    increment = draw(st.sampled_from([step for step in INCREMENTS if step <= weekly] or [1]))
    steps = max(1, min(1440, 3 * weekly) // increment)  # keeps one purchase within a few weeks
    maximum = increment * draw(st.integers(1, steps))
    minimum = increment * draw(st.integers(1, maximum // increment))
    cap = draw(st.integers(0, 3000)) if capped else draw(st.none() | st.integers(0, 3000))
    tariff = Tariff(draw(st.sampled_from(ZONES)), "EUR", tuple(bands), increment, minimum, maximum, cap)
    assert validate(tariff) == []
    return tariff


@st.composite
def instants(draw: st.DrawFn, timezone: str) -> datetime:
    """Aware instants in 2024-2028, half of them within a day of a DST transition (where the zone has one)."""
    zone = ZoneInfo(timezone)
    near_transition = draw(st.booleans())
    if TRANSITIONS[timezone] and near_transition:
        midnight = datetime.combine(draw(st.sampled_from(TRANSITIONS[timezone])), time(), zone)
        at = midnight.astimezone(UTC) + timedelta(seconds=draw(st.integers(-86_400, 2 * 86_400)))
    else:
        at = draw(st.datetimes(datetime(2024, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)))
    return at.astimezone(draw(st.sampled_from([UTC, zone])))


@st.composite
def purchases(draw: st.DrawFn, capped: bool = False) -> tuple[Tariff, datetime, int, int]:
    """A tariff, an instant and two durations on its grid, shorter <= longer <= maximum."""
    tariff = draw(tariffs(capped))
    steps = tariff.maximum_minutes // tariff.increment_minutes
    shorter, longer = sorted(draw(st.lists(st.integers(1, steps), min_size=2, max_size=2)))
    increment = tariff.increment_minutes
    return tariff, draw(instants(tariff.timezone)), shorter * increment, longer * increment


# --- properties --------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(purchases())
def test_more_minutes_never_cost_less_or_expire_earlier(purchase: tuple[Tariff, datetime, int, int]) -> None:
    tariff, at, shorter, longer = purchase
    first, second = quote(tariff, at, shorter), quote(tariff, at, longer)
    assert first.price <= second.price
    assert at <= first.expires <= second.expires


@PROPERTY_SETTINGS
@given(purchases())
def test_quote_runs_exactly_the_bought_chargeable_time(purchase: tuple[Tariff, datetime, int, int]) -> None:
    tariff, at, minutes, _ = purchase
    result = quote(tariff, at, minutes)
    intervals = band_intervals(tariff, at, result.expires)
    assert result.minutes == minutes
    assert result.starts.tzinfo is UTC and result.expires.tzinfo is UTC
    assert at <= result.starts <= result.expires
    assert result.starts == first_chargeable(intervals, at)
    assert chargeable_time(intervals, result.starts, result.expires) == timedelta(minutes=minutes)


@PROPERTY_SETTINGS
@given(purchases())
def test_price_is_exact_sum_of_capped_days_rounded_up_once(purchase: tuple[Tariff, datetime, int, int]) -> None:
    tariff, at, minutes, _ = purchase
    result = quote(tariff, at, minutes)
    expected = expected_price(tariff, result)
    if expected is not None:
        assert result.price == expected


@PROPERTY_SETTINGS
@given(purchases(capped=True))
def test_no_local_day_is_charged_more_than_the_cap(purchase: tuple[Tariff, datetime, int, int]) -> None:
    tariff, at, minutes, _ = purchase
    assert tariff.daily_cap is not None
    capped = quote(tariff, at, minutes)
    uncapped = quote(replace(tariff, daily_cap=None), at, minutes)
    days = {day for day, start, end, _ in band_intervals(tariff, capped.starts, capped.expires)
            if max(start, capped.starts) < min(end, capped.expires)}
    assert capped.expires == uncapped.expires
    assert capped.price <= uncapped.price
    assert capped.price <= tariff.daily_cap * len(days)
    if len(days) == 1:
        assert capped.price == min(uncapped.price, tariff.daily_cap)


@PROPERTY_SETTINGS
@given(purchases(), st.integers(-100, 5000))
def test_minutes_for_amount_inverts_quote(purchase: tuple[Tariff, datetime, int, int], amount: int) -> None:
    tariff, at, minutes, _ = purchase
    increment = tariff.increment_minutes
    assert minutes_for_amount(tariff, at, quote(tariff, at, minutes).price) >= minutes
    bought = minutes_for_amount(tariff, at, amount)
    assert bought % increment == 0 and 0 <= bought <= tariff.maximum_minutes
    if bought > 0:
        assert quote(tariff, at, bought).price <= amount
    if bought < tariff.maximum_minutes:
        assert quote(tariff, at, bought + increment).price > amount


@PROPERTY_SETTINGS
@given(tariffs().flatmap(lambda tariff: st.tuples(st.just(tariff), instants(tariff.timezone))))
def test_is_chargeable_and_next_chargeable_follow_the_bands(case: tuple[Tariff, datetime]) -> None:
    tariff, at = case
    first = first_chargeable(band_intervals(tariff, at, at + timedelta(days=SEARCH_DAYS + 1)), at)
    assert is_chargeable(tariff, at) == (first == at.astimezone(UTC))
    expected = first if first is not None and first - at <= timedelta(days=SEARCH_DAYS) else None
    assert next_chargeable(tariff, at) == expected


# --- daylight saving time ----------------------------------------------------------------------


def test_spring_forward_uses_instant_not_wall_clock_arithmetic() -> None:
    at = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    result = quote(ALL_DAY, at, 120)
    wall_clock = at + timedelta(minutes=120)  # same-zone datetime arithmetic: 03:30 local, only 1 h later
    assert result.expires == datetime(2026, 3, 29, 2, 30, tzinfo=UTC)
    assert result.expires.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 4, 30)
    assert wall_clock.replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)
    assert result.expires != wall_clock
    assert result.price == 200


def test_fall_back_uses_instant_not_wall_clock_arithmetic() -> None:
    at = datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN)  # summer time
    result = quote(ALL_DAY, at, 120)
    wall_clock = at + timedelta(minutes=120)  # 03:30 winter time, 3 h later
    assert result.expires == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    local = result.expires.astimezone(BERLIN)
    assert (local.hour, local.minute, local.utcoffset()) == (2, 30, timedelta(hours=1))
    assert result.expires != wall_clock
    assert result.price == 200


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 3, 30), 24), (date(2026, 10, 25), 25)])
def test_all_day_band_lasts_the_local_day(day: date, hours: int) -> None:
    midnight = datetime.combine(day, time(), BERLIN)
    next_midnight = datetime.combine(day + timedelta(days=1), time(), BERLIN)
    result = quote(ALL_DAY, midnight, hours * 60)
    assert result.expires == next_midnight
    assert result.price == hours * 100


def test_daily_cap_on_the_25_hour_day() -> None:
    capped = replace(ALL_DAY, daily_cap=1200)
    assert quote(capped, datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN), 1500).price == 1200
    assert quote(capped, datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN), 1500).price == 2400


def test_band_edge_in_skipped_hour_uses_fold_0() -> None:
    tariff = replace(ALL_DAY, bands=(RateBand(SUNDAY, 150, 360, 100),))  # Sunday 02:30-06:00
    start = next_chargeable(tariff, datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN))
    assert start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert start.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)
    assert not is_chargeable(tariff, datetime(2026, 3, 29, 3, 15, tzinfo=BERLIN))


def test_band_edge_in_repeated_hour_uses_first_occurrence() -> None:
    tariff = replace(ALL_DAY, bands=(RateBand(SUNDAY, 0, 150, 100),))  # Sunday 00:00-02:30
    assert is_chargeable(tariff, datetime(2026, 10, 25, 0, 29, tzinfo=UTC))  # 02:29 summer time
    assert not is_chargeable(tariff, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 summer time
    assert not is_chargeable(tariff, datetime(2026, 10, 25, 1, 15, tzinfo=UTC))  # 02:15 winter time


def test_band_overlap_created_by_skipped_hour_is_counted_once_at_the_earlier_rate() -> None:
    # On 2026-03-29 the end 02:30 becomes 03:30 summer time, after the next band's start at 03:00.
    tariff = replace(ALL_DAY, bands=(RateBand(SUNDAY, 0, 150, 100), RateBand(SUNDAY, 180, 300, 300)))
    result = quote(tariff, datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN), 240)
    assert result.expires == datetime(2026, 3, 29, 3, 0, tzinfo=UTC)  # 05:00 summer time
    assert result.price == 250 + 450  # 2.5 h at 1.00, then 1.5 h at 3.00


# --- argument handling and edge cases ----------------------------------------------------------

NAIVE = datetime(2026, 3, 2, 9, 0)


@pytest.mark.parametrize("call", [
    lambda: quote(STANDARD, NAIVE, 60),
    lambda: minutes_for_amount(STANDARD, NAIVE, 500),
    lambda: is_chargeable(STANDARD, NAIVE),
    lambda: next_chargeable(STANDARD, NAIVE),
], ids=["quote", "minutes_for_amount", "is_chargeable", "next_chargeable"])
def test_naive_datetimes_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call()


@pytest.mark.parametrize("minutes", [0, -15, 20, 195])
def test_quote_rejects_minutes_off_the_grid_or_above_maximum(minutes: int) -> None:
    with pytest.raises(ValueError):
        quote(STANDARD, datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN), minutes)


def test_quote_does_not_enforce_the_minimum() -> None:
    tariff = replace(STANDARD, minimum_minutes=60)
    assert quote(tariff, datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN), 15).price == 50


def test_quote_accepts_any_time_zone_for_at() -> None:
    local = quote(STANDARD, datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN), 60)
    utc = quote(STANDARD, datetime(2026, 3, 2, 8, 0, tzinfo=UTC), 60)
    assert local == utc
    assert local.starts.tzinfo is UTC


def test_tariff_without_bands_has_no_chargeable_time() -> None:
    empty = replace(STANDARD, bands=())
    at = datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN)
    assert not is_chargeable(empty, at)
    assert next_chargeable(empty, at) is None
    with pytest.raises(ValueError, match="no chargeable time"):
        quote(empty, at, 15)


@pytest.mark.parametrize(("asked", "clamped"), [
    (-10, 15), (0, 15), (1, 15), (15, 15), (16, 30), (50, 60), (180, 180), (181, 180), (1000, 180),
])
def test_clamp_minutes(asked: int, clamped: int) -> None:
    assert clamp_minutes(STANDARD, asked) == clamped


@pytest.mark.parametrize(("amount", "minutes"), [(-100, 0), (0, 0), (49, 0), (50, 15), (99, 15), (100_000, 180)])
def test_minutes_for_amount_edges(amount: int, minutes: int) -> None:
    assert minutes_for_amount(STANDARD, datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN), amount) == minutes


def test_free_band_sells_the_maximum_for_nothing() -> None:
    free = replace(STANDARD, bands=(RateBand(EVERY_DAY, 0, 1440, 0),))
    assert minutes_for_amount(free, datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN), 0) == 180


def test_quote_of_a_day_takes_well_under_a_millisecond() -> None:
    at = datetime(2026, 3, 2, 9, 13, 27, tzinfo=BERLIN)
    runs = 200
    began = clock.perf_counter()
    for _ in range(runs):
        quote(ALL_DAY, at, 1440)
    assert (clock.perf_counter() - began) / runs < 0.001


# --- validate ----------------------------------------------------------------------------------


def with_band(index: int, **changes: Any) -> Tariff:
    """STANDARD with one band changed."""
    bands = list(STANDARD.bands)
    bands[index] = replace(bands[index], **changes)
    return replace(STANDARD, bands=tuple(bands))


def test_valid_tariff_has_no_problems() -> None:
    assert validate(STANDARD) == []
    assert validate(ALL_DAY) == []


@pytest.mark.parametrize(("tariff", "problem"), [
    (replace(STANDARD, bands=()), "bands: at least one band is required, otherwise nothing can be sold"),
    (replace(STANDARD, timezone="Europe/Atlantis"), "timezone: unknown time zone 'Europe/Atlantis'"),
    (replace(STANDARD, timezone="../../etc/passwd"), "timezone: unknown time zone '../../etc/passwd'"),
    (replace(STANDARD, currency="euro"), "currency: 'euro' is not a three-letter ISO 4217 code"),
    (with_band(2, weekdays=frozenset()), "band[2]: no weekdays"),
    (with_band(2, weekdays=frozenset({5, 7})), "band[2]: weekdays 7 out of range 0..6 (0 = Monday)"),
    (with_band(0, start_minute=-1), "band[0]: start_minute -1 out of range 0..1439"),
    (with_band(1, end_minute=1441), "band[1]: end_minute 1441 out of range 1..1440"),
    (with_band(2, end_minute=480), "band[2]: end_minute 480 must be after start_minute 480"),
    (with_band(2, start_minute=840, end_minute=480), "band[2]: end_minute 480 must be after start_minute 840"),
    (with_band(1, rate_per_hour=-100), "band[1]: rate_per_hour -100 is negative"),
    (with_band(1, rate_per_hour=1.5), "band[1]: rate_per_hour 1.5 must be an integer amount in minor units"),
    (with_band(1, start_minute=1020), "band[1]: overlaps band[0] on Mon, Tue, Wed, Thu, Fri"),
    (replace(STANDARD, bands=STANDARD.bands + (RateBand(frozenset({4, 6}), 780, 900, 100),)),
     "band[3]: overlaps band[0] on Fri"),
    (replace(STANDARD, increment_minutes=0), "increment_minutes: 0 must be a positive whole number of minutes"),
    (replace(STANDARD, minimum_minutes=20), "minimum_minutes: 20 must be a positive multiple of increment_minutes 15"),
    (replace(STANDARD, minimum_minutes=0), "minimum_minutes: 0 must be a positive multiple of increment_minutes 15"),
    (replace(STANDARD, maximum_minutes=200), "maximum_minutes: 200 must be a positive multiple of increment_minutes 15"),
    (replace(STANDARD, minimum_minutes=60, maximum_minutes=30), "maximum_minutes: 30 is less than minimum_minutes 60"),
    (replace(STANDARD, daily_cap=-1), "daily_cap: -1 is negative"),
    (replace(STANDARD, daily_cap=12.0), "daily_cap: 12.0 must be an integer amount in minor units"),  # type: ignore[arg-type]
], ids=[
    "no-bands", "unknown-timezone", "malformed-timezone", "currency", "no-weekdays", "weekday-range",
    "start-range", "end-range", "empty-band", "end-before-start", "negative-rate", "fractional-rate",
    "overlap", "overlap-one-day", "increment", "minimum-off-grid", "minimum-zero", "maximum-off-grid",
    "maximum-below-minimum", "negative-cap", "fractional-cap",
])
def test_validate_reports_each_problem(tariff: Tariff, problem: str) -> None:
    assert validate(tariff) == [problem]


def test_validate_accepts_adjacent_bands_and_same_hours_on_other_days() -> None:
    tariff = replace(STANDARD, bands=(
        RateBand(WORKDAYS, 480, 1080, 200),
        RateBand(WORKDAYS, 1080, 1440, 100),
        RateBand(frozenset({5, 6}), 480, 1080, 150),
    ))
    assert validate(tariff) == []


def test_validate_reports_all_problems_at_once() -> None:
    tariff = replace(with_band(0, rate_per_hour=-1), timezone="Nowhere/City", daily_cap=-5)
    assert validate(tariff) == [
        "timezone: unknown time zone 'Nowhere/City'",
        "band[0]: rate_per_hour -1 is negative",
        "daily_cap: -5 is negative",
    ]
