"""Translations (gettext catalogues, English source, fallback to English) and Babel formatting."""
from __future__ import annotations

import functools
import gettext
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, get_day_names
from babel.numbers import format_currency, get_currency_precision

DOMAIN = "kiosk"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE_LANGUAGE = "en"

Translate = Callable[[str], str]


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (translated later with _())."""
    return message


@functools.lru_cache(maxsize=16)
def translation(language: str) -> gettext.NullTranslations:
    """The catalogue of a language (LOCALE_DIR/<lang>/LC_MESSAGES/kiosk.mo), English when missing."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def translator(language: str) -> Translate:
    """The _() of a language."""
    return translation(language).gettext


@functools.lru_cache(maxsize=16)
def locale(language: str) -> Locale:
    """The Babel locale of a language code; English when Babel does not know it."""
    try:
        return Locale.parse(language or SOURCE_LANGUAGE)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE_LANGUAGE)


@functools.lru_cache(maxsize=16)
def language_name(language: str) -> str:
    """A language's name in that language, as its button shows it ("Deutsch", "Français"); the code if unknown."""
    try:
        name = Locale.parse(language).get_display_name(language)
    except (UnknownLocaleError, ValueError):
        name = None
    return name[:1].upper() + name[1:] if name else language.upper()


@functools.lru_cache(maxsize=16)
def zone(tz: str | tzinfo) -> tzinfo:
    """A time zone from its IANA name (or an existing tzinfo)."""
    return ZoneInfo(tz) if isinstance(tz, str) else tz


@functools.lru_cache(maxsize=512)
def format_money(minor: int, currency: str, language: str) -> str:
    """An amount in integer minor units, formatted for the language, e.g. 200 EUR en -> '€2.00'."""
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return format_currency(amount, currency, locale=locale(language))


def format_duration(minutes: int, language: str = SOURCE_LANGUAGE) -> str:
    """A duration in words, e.g. 75 -> '1 h 15 min'."""
    _ = translator(language)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=rest)
    if hours:
        return _("{hours} h").format(hours=hours)
    return _("{minutes} min").format(minutes=rest)


def format_clock(dt: datetime, tz: str | tzinfo) -> str:
    """Local wall-clock time 'HH:MM' of an aware datetime."""
    return dt.astimezone(zone(tz)).strftime("%H:%M")


@functools.lru_cache(maxsize=64)
def _format_day(day: datetime, language: str) -> str:
    return format_skeleton("MMMEd", day, locale=locale(language))


def format_date(dt: datetime, tz: str | tzinfo, language: str) -> str:
    """The local date, short, e.g. 'Tue, Mar 3' (en) or 'Di., 3. März' (de)."""
    local = dt.astimezone(zone(tz))
    return _format_day(local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None), language)


def format_when(dt: datetime, now: datetime, tz: str | tzinfo, language: str) -> str:
    """'HH:MM' if dt is today (local), else the date and time."""
    if dt.astimezone(zone(tz)).date() == now.astimezone(zone(tz)).date():
        return format_clock(dt, tz)
    _ = translator(language)
    return _("{date}, {time}").format(date=format_date(dt, tz, language), time=format_clock(dt, tz))


def format_soon(dt: datetime, now: datetime, tz: str | tzinfo, language: str) -> str:
    """A time within the coming week, short: 'HH:MM' today, 'Mon 08:00' on another day of the week, else the date."""
    local, today = dt.astimezone(zone(tz)), now.astimezone(zone(tz))
    days = (local.date() - today.date()).days
    if days == 0:
        return format_clock(dt, tz)
    if 0 < days < 7:
        return f"{day_names(language)[local.weekday()]} {format_clock(dt, tz)}"
    return format_when(dt, now, tz, language)


@functools.lru_cache(maxsize=16)
def day_names(language: str) -> tuple[str, ...]:
    """Abbreviated weekday names, Monday first."""
    names = get_day_names("abbreviated", locale=locale(language))
    return tuple(names[i] for i in range(7))



def warm(languages: Iterable[str], currency: str) -> None:
    """Load the catalogues and Babel locale data of these languages now rather than at a parker's first tap."""
    sample = datetime(2026, 1, 5, 12, 0)
    for language in languages:
        translation(language)
        format_money(0, currency, language)
        day_names(language)
        _format_day(sample, language)
