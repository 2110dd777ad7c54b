"""Station configuration: one TOML file (or an MQTT cfg/desired mapping) -> frozen, validated settings."""

import codecs
import dataclasses
import functools
import re
import tomllib
import types
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from babel.numbers import get_currency_precision, list_currencies

from kiosk.domain.outage import ParkingWhileOut
from kiosk.domain.tariff import RateBand, Tariff
from kiosk.domain.tariff import validate as validate_tariff

T = TypeVar("T")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_QUICK_PICKS = 4  # Duration's one row of quick picks (the screens give it one row)
VOICE_CODECS = ("opus", "G722", "PCMA", "PCMU")  # baresip's names; Debian's baresip-core has all four


@dataclass(frozen=True)
class Check:
    """Annotated metadata: a predicate on the converted value and what was expected."""

    predicate: Any
    expected: str


def between(low: int, high: int) -> Check:
    """An integer in [low, high]."""
    return Check(lambda v: low <= v <= high, f"an integer from {low} to {high}")


def one_of(*choices: Any) -> Check:
    """One of a fixed set of values."""
    return Check(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def matches(pattern: str, expected: str) -> Check:
    """A string matching a regular expression."""
    compiled = re.compile(pattern)
    return Check(lambda v: bool(compiled.fullmatch(v)), expected)


def _valid_regex(value: str) -> bool:
    try:
        re.compile(value)
    except (re.error, OverflowError, RecursionError, ValueError):
        return False
    return True


def _valid_timezone(value: str) -> bool:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


Port = Annotated[int, between(1, 65535)]
Seconds = Annotated[int, between(1, 86400)]
GpioPin = Annotated[int, between(0, 27)]


@dataclass(frozen=True)
class StationSettings:
    """Identity of this station: also its MQTT client id and topic segment."""

    id: Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
                               "letters, digits, '_', '.', '-' (1-64, no '/', '+', '#')")] = "SIM-0001"


@dataclass(frozen=True)
class ZoneSettings:
    """The parking zone this station sells."""

    name: Annotated[str, matches(r".{1,40}", "1 to 40 characters")] = "Demo Zone"
    timezone: Annotated[str, Check(_valid_timezone, "an IANA time zone such as 'Europe/Berlin'")] = "Europe/Berlin"
    currency: Annotated[str, Check(lambda v: v in list_currencies(), "an ISO 4217 currency code such as 'EUR'")] = "EUR"


@dataclass(frozen=True)
class BandSettings:
    """One rate band as written in the file (converted to a tariff RateBand)."""

    days: tuple[Annotated[str, one_of(*WEEKDAYS)], ...]
    start: Annotated[str, matches(r"([01]\d|2[0-3]):[0-5]\d", "a time 'HH:MM' from 00:00 to 23:59")]
    end: Annotated[str, matches(r"([01]\d|2[0-3]):[0-5]\d|24:00", "a time 'HH:MM' from 00:01 to 24:00")]
    rate_per_hour: Annotated[str, matches(r"\d{1,6}(\.\d{1,3})?", "an amount like \"2.00\" (a string, in major units)")]


@dataclass(frozen=True)
class TariffSettings:
    """Tariff as written in the file: bands plus purchase rules."""

    bands: tuple[BandSettings, ...] = (
        BandSettings(("mon", "tue", "wed", "thu", "fri"), "08:00", "18:00", "2.00"),
        BandSettings(("mon", "tue", "wed", "thu", "fri"), "18:00", "20:00", "1.00"),
        BandSettings(("sat",), "08:00", "14:00", "1.50"),
    )
    increment_minutes: Annotated[int, between(1, 240)] = 15
    minimum_minutes: Annotated[int, between(1, 1440)] = 15
    maximum_minutes: Annotated[int, between(1, 10080)] = 180
    daily_cap: Annotated[str, matches(r"\d{1,6}(\.\d{1,3})?", "an amount like \"12.00\"")] | None = None
    quick_picks_minutes: tuple[Annotated[int, between(1, 10080)], ...] = (30, 60, 120)


@dataclass(frozen=True)
class PlateSettings:
    """Which licence plates the keyboard accepts."""

    pattern: Annotated[str, Check(_valid_regex, "a valid regular expression")] = r"[A-Z0-9](-?[A-Z0-9]){1,9}"
    max_length: Annotated[int, between(2, 16)] = 10
    look_alikes: bool = True  # O and 0, I and 1 are one character when plates are matched


@dataclass(frozen=True)
class LanguageSettings:
    """Languages offered on the Welcome screen."""

    default: Annotated[str, matches(r"[a-z]{2}", "a two-letter language code")] = "en"
    available: tuple[Annotated[str, matches(r"[a-z]{2}", "a two-letter language code")], ...] = ("en", "de", "fr", "es")


@dataclass(frozen=True)
class ScreenSettings:
    """The touch panel."""

    width: Annotated[int, between(320, 3840)] = 800
    height: Annotated[int, between(240, 3840)] = 480
    orientation: Annotated[str, one_of("landscape", "portrait")] = "landscape"
    fullscreen: bool = True


@dataclass(frozen=True)
class TerminalSettings:
    """The ZVT card terminal on a serial line."""

    port: Annotated[str, matches(r"/.+", "an absolute device path such as '/dev/ttyUSB0'")] = "/dev/ttyUSB0"
    baud: Annotated[int, one_of(9600, 19200, 38400, 57600, 115200)] = 9600
    password: Annotated[str, matches(r"\d{6}", "six digits")] = "000000"
    payment_timeout_s: Annotated[int, between(30, 600)] = 180
    status_interval_s: Seconds = 60
    vending_window_s: Annotated[int, between(5, 255)] = 30
    line_quiet_ms: Annotated[int, between(100, 60000)] = 6000
    charset: Annotated[str, Check(_is_codec, "a character set such as 'cp437' or 'iso8859-15'")] = "cp437"


@dataclass(frozen=True)
class GpioSettings:
    """BCM pin numbers of the help button, its LED and the cabinet door switch."""

    help_button: GpioPin = 17
    help_led: GpioPin = 27
    door_switch: GpioPin = 22
    button_stuck_s: Annotated[int, between(5, 600)] = 30
    debounce_ms: Annotated[int, between(5, 500)] = 50


@dataclass(frozen=True)
class StorageSettings:
    """Where the station keeps its SQLite database."""

    database: Annotated[str, matches(r"/.+", "an absolute file path")] = "/var/lib/kiosk/kiosk.db"


@dataclass(frozen=True)
class MqttSettings:
    """The operator's broker (an empty host means: keep everything in the outbox)."""

    host: str = ""
    port: Port = 8883
    tls: bool = True
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    username: str = ""
    password_file: str = ""
    keepalive_s: Annotated[int, between(5, 3600)] = 30
    reconnect_max_s: Annotated[int, between(1, 600)] = 60
    window: Annotated[int, between(1, 1000)] = 100
    outbox_keep_days: Annotated[int, between(1, 3650)] = 14
    outbox_warn_rows: Annotated[int, between(100, 10_000_000)] = 10_000
    telemetry_interval_s: Annotated[int, between(5, 86400)] = 300


@dataclass(frozen=True)
class TimeoutSettings:
    """How long screens wait for the parker."""

    inactivity_s: Annotated[int, between(10, 600)] = 60
    warning_s: Annotated[int, between(5, 120)] = 15
    sleep_s: Annotated[int, between(10, 86400)] = 300
    paid_s: Annotated[int, between(5, 600)] = 30
    declined_s: Annotated[int, between(5, 600)] = 60
    feedback_s: Annotated[int, between(5, 600)] = 20
    help_answer_s: Annotated[int, between(15, 1800)] = 90
    help_abandon_s: Annotated[int, between(60, 7200)] = 900
    help_closed_s: Annotated[int, between(5, 120)] = 15


@dataclass(frozen=True)
class LinkSettings:
    """Where parkers can go when the station cannot help them itself."""

    receipt_url: Annotated[str, matches(r"https?://\S+",
                                        "an http(s) URL; {station} and {payment} are filled in")] = "https://receipts.example.org/{station}/{payment}"
    app_url: Annotated[str, matches(r"(https?://\S+)?", "an http(s) URL or empty")] = "https://pay.example.org/zone"
    help_phone: Annotated[str, matches(r"[0-9+()/. -]{0,32}", "a phone number: digits, spaces and + ( ) / . -, "
                                                                 "at most 32 characters")] = ""
    nearest_station: Annotated[str, matches(r"[^\n]{0,80}", "one line of at most 80 characters")] = ""


@dataclass(frozen=True)
class OutageSettings:
    """What Out of service tells parkers about parking meanwhile, unless the `mode` command says otherwise."""

    parking: Annotated[str, one_of(*(choice.value for choice in ParkingWhileOut))] = ParkingWhileOut.UNKNOWN.value


SIP_URI = r"sips?:[^\s<>\"]{1,200}"
SipUri = Annotated[str, matches(SIP_URI, "a SIP URI such as 'sip:help@pbx.example.org'")]
SipUriOrEmpty = Annotated[str, matches(f"({SIP_URI})?", "a SIP URI such as 'sip:help@pbx.example.org', or empty")]
AUDIO_DEVICE = matches(r"[a-z0-9_]+(,[^\s]{1,200})?", "a baresip audio module and device without spaces, such as "
                                                      "'alsa,default'")


@dataclass(frozen=True)
class VoiceSettings:
    """Help by voice: a SIP call to the agents through baresip (docs/help-desk.md). Off: help is text only."""

    enabled: bool = False
    destination: SipUriOrEmpty = ""  # the agents' queue, hunt group or softphone; required when enabled
    registrar: SipUriOrEmpty = ""  # empty: no registration (calls go straight to destination)
    user: Annotated[str, matches(r"[A-Za-z0-9_.!~*'()&=+$,;?/-]{0,64}", "a SIP user name (no spaces, @ or :)")] = ""
    password_file: Annotated[str, matches(r"(/.+)?", "an absolute file path or empty")] = ""
    transport: Annotated[str, one_of("udp", "tcp", "tls")] = "udp"
    listen: Annotated[str, matches(r"(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}",
                                   "an address and port such as '0.0.0.0:5060'")] = "0.0.0.0:5060"
    control_port: Port = 4444  # baresip's ctrl_tcp, on 127.0.0.1 only
    rtp_ports: Annotated[str, matches(r"\d{1,5}-\d{1,5}", "a port range such as '10000-10100'")] = "10000-10100"
    audio_source: Annotated[str, AUDIO_DEVICE] = "alsa,default"
    audio_player: Annotated[str, AUDIO_DEVICE] = "alsa,default"
    ring_timeout_s: Annotated[int, between(10, 300)] = 30
    codecs: tuple[Annotated[str, one_of(*VOICE_CODECS)], ...] = ("opus", "G722", "PCMA", "PCMU")
    srtp: Annotated[str, one_of("off", "optional", "required")] = "off"
    callback_from: tuple[SipUri, ...] = ()  # agents allowed to call the station back for an open ticket
    program: Annotated[str, matches(r"[^\s]{1,200}", "a program name or path")] = "baresip"


@dataclass(frozen=True)
class UpdateSettings:
    """Remote updates (docs/updates.md): where releases live, whose signatures count, how long a new one proves itself."""

    root: Annotated[str, matches(r"/.+", "an absolute folder path")] = "/var/lib/kiosk/updates"
    keys: Annotated[str, matches(r"/.+", "an absolute folder path")] = "/etc/kiosk/release-keys"
    healthy_s: Annotated[int, between(1, 3600)] = 120
    ca_file: Annotated[str, matches(r"(/.+)?", "an absolute file path or empty")] = ""  # empty: the system's CAs
    max_bundle_mb: Annotated[int, between(10, 4000)] = 500


@dataclass(frozen=True)
class Settings:
    """Every setting of the station, validated and immutable."""

    station: StationSettings = field(default_factory=StationSettings)
    zone: ZoneSettings = field(default_factory=ZoneSettings)
    tariff: TariffSettings = field(default_factory=TariffSettings)
    plate: PlateSettings = field(default_factory=PlateSettings)
    languages: LanguageSettings = field(default_factory=LanguageSettings)
    screen: ScreenSettings = field(default_factory=ScreenSettings)
    terminal: TerminalSettings = field(default_factory=TerminalSettings)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    links: LinkSettings = field(default_factory=LinkSettings)
    outage: OutageSettings = field(default_factory=OutageSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    updates: UpdateSettings = field(default_factory=UpdateSettings)
    version: Annotated[int, between(0, 2**31 - 1)] = 0

    @functools.cached_property
    def tariff_engine(self) -> Tariff:
        """The tariff in engine form (amounts in minor units)."""
        return _build_tariff(self)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where and what was expected."""

    source: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}"


class ConfigError(Exception):
    """A configuration was rejected; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load(path: Path) -> Settings:
    """Read and validate a TOML file; raise ConfigError naming the file and each bad key."""
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([Problem(source, "(file)", f"cannot read: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(source, "(file)", f"not UTF-8 text: {exc.reason}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(source, "(syntax)", f"not valid TOML: {exc}")]) from exc
    return from_mapping(raw, source)


def from_mapping(raw: Mapping[str, Any], source: str) -> Settings:
    """Validate a mapping (parsed TOML or remote JSON) into Settings, collecting every problem."""
    problems: list[Problem] = []
    settings = _convert(raw, Settings, "", source, problems)
    if not problems:
        problems.extend(_cross_checks(settings, source))
    if problems:
        raise ConfigError(problems)
    return settings


def validate_as(raw: Any, cls: type[T], source: str) -> T:
    """Validate plain data into the dataclass ``cls`` by the rules of the TOML file; raise ConfigError."""
    problems: list[Problem] = []
    value = _convert(raw, cls, "", source, problems)
    if problems:
        raise ConfigError(problems)
    return value


def to_mapping(settings: Settings) -> dict[str, Any]:
    """The settings as plain data (tuples become lists), e.g. for `cfg/reported`."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value
    return plain(settings)


def _convert(value: Any, annotation: Any, key: str, source: str, problems: list[Problem]) -> Any:
    """Convert `value` to `annotation`, appending a Problem for each mismatch."""
    checks: tuple[Check, ...] = ()
    if get_origin(annotation) is Annotated:
        annotation, *meta = get_args(annotation)
        checks = tuple(m for m in meta if isinstance(m, Check))
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, options[0], key, source, problems)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _convert_dataclass(value, annotation, key, source, problems)
    if origin is tuple:
        item_type = get_args(annotation)[0]
        if not isinstance(value, list):
            problems.append(Problem(source, key, f"expected a list, got {_describe(value)}"))
            return ()
        return tuple(_convert(v, item_type, f"{key}[{i}]", source, problems) for i, v in enumerate(value))
    if annotation is int and (isinstance(value, bool) or not isinstance(value, int)):
        problems.append(Problem(source, key, f"expected an integer, got {_describe(value)}"))
        return 0
    if annotation is bool and not isinstance(value, bool):
        problems.append(Problem(source, key, f"expected true or false, got {_describe(value)}"))
        return False
    if annotation is str and not isinstance(value, str):
        problems.append(Problem(source, key, f"expected a string, got {_describe(value)}"))
        return ""
    for check in checks:
        if not check.predicate(value):
            problems.append(Problem(source, key, f"expected {check.expected}, got {value!r}"))
    return value


def _convert_dataclass(value: Any, cls: type, key: str, source: str, problems: list[Problem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(Problem(source, key or "(top level)", f"expected a table, got {_describe(value)}"))
        return None
    hints = get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    for unknown in sorted(set(value) - names):
        problems.append(Problem(source, _join(key, unknown),
                                "unknown key; valid keys here: " + ", ".join(sorted(names))))
    kwargs: dict[str, Any] = {}
    missing = False  # every missing key is named, not only the first
    for f in dataclasses.fields(cls):
        if f.name in value:
            kwargs[f.name] = _convert(value[f.name], hints[f.name], _join(key, f.name), source, problems)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(Problem(source, _join(key, f.name), "missing; this key is required"))
            missing = True
    return None if missing else cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a decimal number", str: "a string", list: "a list",
             dict: "a table"}
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"


class AmountError(ValueError):
    """A text is not an amount of the currency: not a number, or more decimals than its minor unit allows."""


def parse_amount(text: str, currency: str) -> int:
    """Exact conversion of a major-unit string like "2.50" to integer minor units; AmountError if it is none."""
    digits = get_currency_precision(currency)
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise AmountError(f"not an amount: {text!r}") from exc
    if not amount.is_finite():
        raise AmountError(f"not an amount: {text!r}")
    minor = amount.scaleb(digits)
    if minor != minor.to_integral_value():
        raise AmountError(f"{text!r} has more than {digits} decimals for {currency}")
    return int(minor)


def _minute_of_day(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _build_tariff(settings: Settings) -> Tariff:
    currency = settings.zone.currency
    t = settings.tariff
    return Tariff(
        timezone=settings.zone.timezone,
        currency=currency,
        bands=tuple(
            RateBand(
                weekdays=frozenset(WEEKDAYS.index(d) for d in band.days),
                start_minute=_minute_of_day(band.start),
                end_minute=_minute_of_day(band.end),
                rate_per_hour=parse_amount(band.rate_per_hour, currency),
            )
            for band in t.bands
        ),
        increment_minutes=t.increment_minutes,
        minimum_minutes=t.minimum_minutes,
        maximum_minutes=t.maximum_minutes,
        daily_cap=None if t.daily_cap is None else parse_amount(t.daily_cap, currency),
    )


def _cross_checks(settings: Settings, source: str) -> list[Problem]:
    """Rules that involve more than one key."""
    problems: list[Problem] = []
    currency = settings.zone.currency
    for i, band in enumerate(settings.tariff.bands):
        if not band.days:
            problems.append(Problem(source, f"tariff.bands[{i}].days", "expected at least one weekday"))
        if band.end != "24:00" and _minute_of_day(band.end) <= _minute_of_day(band.start):
            problems.append(Problem(source, f"tariff.bands[{i}]",
                                    f"end {band.end} must be after start {band.start} (split bands that cross midnight)"))
        try:
            parse_amount(band.rate_per_hour, currency)
        except AmountError as exc:
            problems.append(Problem(source, f"tariff.bands[{i}].rate_per_hour", str(exc)))
    if settings.tariff.daily_cap is not None:
        try:
            parse_amount(settings.tariff.daily_cap, currency)
        except AmountError as exc:
            problems.append(Problem(source, "tariff.daily_cap", str(exc)))
    if problems:
        return problems
    problems.extend(Problem(source, "tariff", message) for message in validate_tariff(settings.tariff_engine))
    t = settings.tariff
    if len(t.quick_picks_minutes) > MAX_QUICK_PICKS:
        problems.append(Problem(source, "tariff.quick_picks_minutes",
                                f"at most {MAX_QUICK_PICKS} (one row of buttons), got {len(t.quick_picks_minutes)}"))
    for i, pick in enumerate(t.quick_picks_minutes):
        if pick % t.increment_minutes or not t.minimum_minutes <= pick <= t.maximum_minutes:
            problems.append(Problem(source, f"tariff.quick_picks_minutes[{i}]",
                                    f"expected a multiple of {t.increment_minutes} between {t.minimum_minutes} "
                                    f"and {t.maximum_minutes}, got {pick}"))
    if settings.languages.default not in settings.languages.available:
        problems.append(Problem(source, "languages.default",
                                f"expected one of languages.available {list(settings.languages.available)}, "
                                f"got {settings.languages.default!r}"))
    landscape = settings.screen.width >= settings.screen.height
    if landscape != (settings.screen.orientation == "landscape"):
        problems.append(Problem(source, "screen.orientation",
                                f"{settings.screen.orientation!r} does not match "
                                f"{settings.screen.width}x{settings.screen.height}"))
    if settings.timeouts.warning_s >= settings.timeouts.inactivity_s:
        problems.append(Problem(source, "timeouts.warning_s", "expected less than timeouts.inactivity_s"))
    mqtt = settings.mqtt
    if mqtt.host and bool(mqtt.cert_file) != bool(mqtt.key_file):
        problems.append(Problem(source, "mqtt.cert_file", "cert_file and key_file go together"))
    if mqtt.host and mqtt.password_file and not mqtt.username:
        problems.append(Problem(source, "mqtt.username", "password_file needs a username"))
    problems.extend(Problem(source, f"voice.{key}", message) for key, message in _voice_problems(settings.voice))
    return problems


def _voice_problems(voice: VoiceSettings) -> list[tuple[str, str]]:
    """What does not go together in the voice section (only when it is enabled)."""
    if not voice.enabled:
        return []
    problems = []
    if not voice.destination:
        problems.append(("destination", "required when voice is enabled"))
    if voice.registrar and not voice.user:
        problems.append(("user", "a registrar needs a user"))
    if voice.password_file and not voice.user:
        problems.append(("user", "password_file needs a user"))
    if not voice.codecs:
        problems.append(("codecs", "expected at least one codec"))
    low, high = (int(port) for port in voice.rtp_ports.split("-"))
    if not 1024 <= low < high <= 65535:
        problems.append(("rtp_ports", f"expected a range within 1024-65535, low before high, got {voice.rtp_ports!r}"))
    listen_port = int(voice.listen.rsplit(":", 1)[1])
    if not 1 <= listen_port <= 65534:  # baresip also listens for TLS on the next port
        problems.append(("listen", f"expected a port from 1 to 65534, got {listen_port}"))
    if voice.control_port in (listen_port, listen_port + 1):
        problems.append(("control_port", "must differ from the SIP ports (listen and the next one)"))
    return problems
