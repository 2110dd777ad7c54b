"""The alert bridge's TOML configuration: broker, timings, people, groups, webhooks, SMTP and routes, strictly checked."""
from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.messages import ACCOUNT
from bridge.model import Channel, Problem, Severity, Target

__all__ = ["BridgeSettings", "BrokerSettings", "ConfigError", "Group", "Person", "Route", "Rules", "SecretUnusable",
           "SmtpSettings", "Webhook", "WebhookFormat", "When", "check_files", "load", "parse", "read_secret"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = re.compile(rf"{LABEL}(?:\.{LABEL})*\.?|\[[0-9A-Fa-f:.]+\]")  # a DNS name, an IPv4 or a [bracketed IPv6] address
EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")
NIGHT = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
BROKER_PORTS = {"mqtt": 1883, "mqtts": 8883}
T = TypeVar("T")
NO_NAMES: tuple[str, ...] = ()


class ConfigError(ValueError):
    """The configuration is not usable; ``problems`` names every bad key, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SecretUnusable(ValueError):
    """A password or token file that cannot be read, is empty, or holds control characters (the text says which)."""


def read_secret(path: Path) -> str:
    """A password or token file's content without its trailing newlines; SecretUnusable says why it is not usable.

    The text never contains the secret.
    """
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SecretUnusable(f"{path}: cannot read it: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise SecretUnusable(f"{path}: not UTF-8 text") from None
    if not secret:
        raise SecretUnusable(f"{path}: empty")
    if not secret.isprintable():
        raise SecretUnusable(f"{path}: holds control characters (only a trailing newline is allowed)")
    return secret


class WebhookFormat(StrEnum):
    """The body a webhook gets: ntfy's (text and headers) or the bridge's JSON (docs/alerts.md)."""

    NTFY = "ntfy"
    JSON = "json"


class When(StrEnum):
    """The time window a route holds in, in the bridge's time zone."""

    ANY = "any"
    NIGHT = "night"
    DAY = "day"
    WEEKEND = "weekend"  # Saturday and Sunday
    WEEKDAY = "weekday"  # Monday to Friday


@dataclass(frozen=True)
class BrokerSettings:
    """Where the broker is and the bridge's account there."""

    host: str
    port: int
    tls: bool
    username: str | None
    password_file: Path | None
    ca: Path | None


@dataclass(frozen=True)
class BridgeSettings:
    """The bridge's own settings: its database and timings (seconds)."""

    database: Path
    grace_s: float
    lost_grace_s: float
    flap_window_s: float
    flap_threshold: int
    fleet_threshold: int
    station_cap: int
    fleet_window_s: float
    escalate_after_s: float
    crew_page_url: str
    night_start: time
    night_end: time
    timezone: ZoneInfo
    retry_s: float
    send_timeout_s: float
    give_up_s: float
    broker_down_alert_s: float
    settle_s: float


@dataclass(frozen=True)
class Person:
    """Someone who gets alerts: by e-mail, by a webhook (a ``[[webhooks]]`` name), or both."""

    name: str
    email: str | None
    webhook: str | None


@dataclass(frozen=True)
class Group:
    """People who get an alert together; ``escalate_to`` gets it next when nobody acknowledges it."""

    name: str
    members: tuple[str, ...]
    escalate_to: str | None


@dataclass(frozen=True)
class Webhook:
    """An HTTP endpoint that gets alerts as POST requests; ``token_file`` holds a bearer token."""

    name: str
    url: str
    format: WebhookFormat
    token_file: Path | None


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server the bridge sends through."""

    host: str
    port: int
    sender: str
    starttls: bool
    username: str | None
    password_file: Path | None
    ca: Path | None = None
    allow_plain_login: bool = False


@dataclass(frozen=True)
class Route:
    """A routing rule: an alert that matches every condition given goes to ``group``; empty conditions match all."""

    group: str
    zones: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()
    severities: frozenset[Severity] = frozenset()
    components: frozenset[str] = frozenset()
    problems: frozenset[Problem] = frozenset()
    when: When = When.ANY

    @property
    def catch_all(self) -> bool:
        """Whether it matches every alert at every time."""
        return not (self.zones or self.stations or self.severities or self.components or self.problems) \
            and self.when is When.ANY

    def matches(self, problem: Problem, severity: Severity, component: str | None,
                zones: Mapping[str, str | None]) -> bool:
        """Whether an alert matches, the time window aside; ``zones`` maps each of its stations to its zone.

        Station and zone patterns match when one of the alert's stations matches them both.
        """
        if self.problems and problem not in self.problems:
            return False
        if self.severities and severity not in self.severities:
            return False
        if self.components and component not in self.components:
            return False
        return any(_station_matches(self, station, zone) for station, zone in zones.items())


def _station_matches(route: Route, station: str, zone: str | None) -> bool:
    if route.stations and not any(fnmatchcase(station, pattern) for pattern in route.stations):
        return False
    return not route.zones or (zone is not None and any(fnmatchcase(zone, pattern) for pattern in route.zones))


@dataclass(frozen=True)
class Rules:
    """The whole configuration."""

    broker: BrokerSettings
    bridge: BridgeSettings
    people: Mapping[str, Person]
    groups: Mapping[str, Group]
    webhooks: Mapping[str, Webhook]
    smtp: SmtpSettings | None
    routes: tuple[Route, ...]

    def window_holds(self, when: When, now: datetime) -> bool:
        """Whether ``now`` is in the time window ``when`` (the bridge's time zone)."""
        local = now.astimezone(self.bridge.timezone)
        start, end, clock = self.bridge.night_start, self.bridge.night_end, local.time()
        night = start <= clock < end if start < end else (clock >= start or clock < end)
        return {When.ANY: True, When.NIGHT: night, When.DAY: not night, When.WEEKEND: local.weekday() >= 5,
                When.WEEKDAY: local.weekday() < 5}[when]

    def route(self, problem: Problem, severity: Severity, component: str | None, zones: Mapping[str, str | None],
              now: datetime) -> Route:
        """The first route that matches (the last one matches everything)."""
        for candidate in self.routes:
            if candidate.matches(problem, severity, component, zones) and self.window_holds(candidate.when, now):
                return candidate
        return self.routes[-1]

    def targets(self, group: str) -> list[Target]:
        """Everyone a group's message goes to, each address once, in the order of its members."""
        found: list[Target] = []
        for member in self.groups[group].members:
            person = self.people[member]
            for target in (Target(Channel.EMAIL, person.email) if person.email else None,
                           Target(Channel.WEBHOOK, person.webhook) if person.webhook else None):
                if target is not None and target not in found:
                    found.append(target)
        return found


def load(path: Path) -> Rules:
    """Read and check a configuration file; ConfigError names every problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse(data)


class _Table:
    """One TOML table being read: every key taken is checked, the keys left over are refused."""

    def __init__(self, where: str, data: object, problems: list[str]) -> None:
        self.where, self.problems = where, problems
        if not isinstance(data, dict):
            problems.append(f"{where}: must be a table")
            data = {}
        self.data: dict[str, Any] = data
        self.taken: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def bad(self, name: str, text: str) -> None:
        self.problems.append(f"{self.key(name)}: {text}")

    def get(self, name: str, default: T, check: Callable[[Any], T | None], what: str, *,
            required: bool = False) -> T:
        """The value of ``name`` as ``check`` converts it (None: wrong), else ``default`` (and the problem noted)."""
        self.taken.add(name)
        if name not in self.data:
            if required:
                self.bad(name, f"required ({what})")
            return default
        value = check(self.data[name])
        if value is None:
            self.bad(name, f"must be {what}, got {self.data[name]!r}")
            return default
        return value

    def done(self) -> None:
        for name in sorted(set(self.data) - self.taken):
            self.bad(name, "unknown key")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() and value.isprintable() else None


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and NAME.fullmatch(value) else None


def _email(value: Any) -> str | None:
    return value if isinstance(value, str) and EMAIL.fullmatch(value) and value.isprintable() else None


def _path(value: Any) -> Path | None:
    return Path(value) if isinstance(value, str) and value.isprintable() and Path(value).is_absolute() else None


def _file(value: Any) -> Path | None:
    """An absolute path that names a file, not a folder (no trailing ``/``, not ``/``)."""
    path = _path(value)
    return path if path is not None and path.name not in ("", ".", "..") and not str(value).endswith("/") else None


def _host(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 253 and HOST.fullmatch(value) else None


def _account(value: Any) -> str | None:
    return value if isinstance(value, str) and ACCOUNT.fullmatch(value) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _seconds(low: float, high: float) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high:
            return float(value)
        return None
    return check


def _count(low: int, high: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else None
    return check


def _texts(item: Callable[[Any], T | None]) -> Callable[[Any], tuple[T, ...] | None]:
    def check(value: Any) -> tuple[T, ...] | None:
        if not isinstance(value, list) or not value:
            return None
        items = [item(entry) for entry in value]
        return tuple(entry for entry in items if entry is not None) if None not in items else None
    return check


def _enum(kind: type[StrEnum]) -> Callable[[Any], Any]:
    return lambda value: kind(value) if isinstance(value, str) and value in kind.__members__.values() else None


def _url(schemes: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not value.isprintable() or " " in value:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (a bad port raises here)
        except ValueError:
            return None
        ok = parts.scheme in schemes and parts.hostname and not parts.fragment
        return value if ok else None
    return check


def _timezone(value: Any) -> ZoneInfo | None:
    try:
        return ZoneInfo(value) if isinstance(value, str) and value else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _night(value: Any) -> tuple[time, time] | None:
    found = NIGHT.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return None
    start, end = (time(int(found.group(1)), int(found.group(2))), time(int(found.group(3)), int(found.group(4))))
    return (start, end) if start != end else None


def _broker(table: _Table) -> BrokerSettings:
    url = table.get("url", "", _url(("mqtt", "mqtts")), "mqtt://host[:port] or mqtts://host[:port]", required=True)
    parts = urlsplit(url)
    if url and (parts.username or parts.password or parts.path not in ("", "/") or parts.query):
        table.bad("url", "only mqtt[s]://host[:port]: give the account with username and password_file")
    username = table.get("username", None, _account, "an account name ([A-Za-z0-9_.-], up to 64)")
    password_file = table.get("password_file", None, _file, "an absolute path of a file")
    if password_file and not username:
        table.bad("password_file", "needs username")
    ca = table.get("ca", None, _file, "an absolute path of a file")
    if ca and parts.scheme != "mqtts":
        table.bad("ca", "needs an mqtts:// url")
    table.done()
    return BrokerSettings(parts.hostname or "", parts.port or BROKER_PORTS.get(parts.scheme, 1883),
                          parts.scheme == "mqtts", username, password_file, ca)


def _bridge(table: _Table) -> BridgeSettings:
    day = 86_400.0
    night = table.get("night", (time(22), time(6)), _night, '"HH:MM-HH:MM", two different times')
    settings = BridgeSettings(
        database=table.get("database", Path(), _file, "an absolute path of a file", required=True),
        grace_s=table.get("grace_s", 120.0, _seconds(0, day), "0 to 86400 seconds"),
        lost_grace_s=table.get("lost_grace_s", 300.0, _seconds(0, day), "0 to 86400 seconds"),
        flap_window_s=table.get("flap_window_s", 900.0, _seconds(1, day), "1 to 86400 seconds"),
        flap_threshold=table.get("flap_threshold", 3, _count(2, 1000), "a whole number from 2 to 1000"),
        fleet_threshold=table.get("fleet_threshold", 5, _count(2, 100_000), "a whole number from 2 to 100000"),
        station_cap=table.get("station_cap", 5, _count(1, 1000), "a whole number from 1 to 1000"),
        fleet_window_s=table.get("fleet_window_s", 600.0, _seconds(1, day), "1 to 86400 seconds"),
        escalate_after_s=table.get("escalate_after_s", 900.0, _seconds(1, 7 * day), "1 to 604800 seconds"),
        crew_page_url=table.get("crew_page_url", "", _url(("https", "http")), "an http(s):// address without #",
                                required=True),
        night_start=night[0], night_end=night[1],
        timezone=table.get("timezone", ZoneInfo("UTC"), _timezone, "an IANA time zone such as Europe/Berlin"),
        retry_s=table.get("retry_s", 60.0, _seconds(1, 3600), "1 to 3600 seconds"),
        send_timeout_s=table.get("send_timeout_s", 10.0, _seconds(1, 120), "1 to 120 seconds"),
        give_up_s=table.get("give_up_s", day, _seconds(60, 30 * day), "60 to 2592000 seconds"),
        broker_down_alert_s=table.get("broker_down_alert_s", 300.0, _seconds(10, day), "10 to 86400 seconds"),
        settle_s=table.get("settle_s", 2.0, _seconds(0, 60), "0 to 60 seconds"))
    if urlsplit(settings.crew_page_url).query:
        table.bad("crew_page_url", "must have no ?query (the bridge adds ?station=...)")
    table.done()
    return settings


def _smtp(table: _Table) -> SmtpSettings:
    starttls = table.get("starttls", True, _bool, "true or false")
    username = table.get("username", None, _text, "a non-empty text")
    password_file = table.get("password_file", None, _file, "an absolute path of a file")
    if (username is None) != (password_file is None):
        table.problems.append(f"{table.where}: username and password_file go together")
    ca = table.get("ca", None, _file, "an absolute path of a file")
    if ca is not None and not starttls:
        table.bad("ca", "needs starttls = true")
    plain = table.get("allow_plain_login", False, _bool, "true or false")
    if username is not None and not starttls and not plain:
        table.bad("username", "a login over plain SMTP sends the password readable: use starttls = true, or set "
                              "allow_plain_login = true if the mail server is on this machine")
    smtp = SmtpSettings(host=table.get("host", "", _host, "a host name or [IPv6 address]", required=True),
                        port=table.get("port", 587 if starttls else 25, _count(1, 65535), "a port 1 to 65535"),
                        sender=table.get("from", "", _text, "a sender such as Alerts <alerts@example.org>",
                                         required=True),
                        starttls=starttls, username=username, password_file=password_file, ca=ca,
                        allow_plain_login=plain)
    table.done()
    return smtp


def _listed(data: dict[str, Any], name: str, problems: list[str]) -> list[_Table]:
    value = data.get(name, [])
    if not isinstance(value, list):
        problems.append(f"{name}: must be an array of tables ([[{name}]])")
        return []
    return [_Table(f"{name}[{index}]", item, problems) for index, item in enumerate(value)]


def _unique(table: _Table, things: dict[str, T], name: str, thing: T) -> None:
    if name in things:
        table.bad("name", f"{name!r} is named twice")
    things[name] = thing


def _people(tables: list[_Table], webhooks: Mapping[str, Webhook]) -> dict[str, Person]:
    people: dict[str, Person] = {}
    for table in tables:
        name = table.get("name", "", _account, "an account name ([A-Za-z0-9_.-], up to 64)", required=True)
        email = table.get("email", None, _email, "an e-mail address")
        webhook = table.get("webhook", None, _name, "the name of a [[webhooks]] entry")
        if webhook is not None and webhook not in webhooks:
            table.bad("webhook", f"no [[webhooks]] entry is named {webhook!r}")
        if email is None and webhook is None and "email" not in table.data and "webhook" not in table.data:
            table.problems.append(f"{table.where}: give email, webhook or both")
        table.done()
        if name:
            _unique(table, people, name, Person(name, email, webhook))
    return people


def _webhooks(tables: list[_Table]) -> dict[str, Webhook]:
    hooks: dict[str, Webhook] = {}
    for table in tables:
        hook = Webhook(name=table.get("name", "", _name, "a name ([A-Za-z0-9_.-], up to 64)", required=True),
                       url=table.get("url", "", _url(("https", "http")), "an http(s):// address", required=True),
                       format=table.get("format", WebhookFormat.JSON, _enum(WebhookFormat), '"ntfy" or "json"',
                                        required=True),
                       token_file=table.get("token_file", None, _file, "an absolute path of a file"))
        table.done()
        if hook.name:
            _unique(table, hooks, hook.name, hook)
    return hooks


def _groups(tables: list[_Table], people: Mapping[str, Person]) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    read: list[tuple[_Table, Group]] = []
    for table in tables:
        members = table.get("members", NO_NAMES, _texts(_account), "a non-empty list of [[people]] names", required=True)
        for member in members:
            if member not in people:
                table.bad("members", f"no [[people]] entry is named {member!r}")
        group = Group(table.get("name", "", _name, "a name ([A-Za-z0-9_.-], up to 64)", required=True), members,
                      table.get("escalate_to", None, _name, "the name of another group"))
        table.done()
        if group.name:
            _unique(table, groups, group.name, group)
            read.append((table, group))
    for table, group in read:
        if group.escalate_to is not None and group.escalate_to not in groups:
            table.bad("escalate_to", f"no [[groups]] entry is named {group.escalate_to!r}")
        elif _escalates_in_circle(group.name, groups):
            table.bad("escalate_to", f"escalating from {group.name!r} leads back to it (a circle)")
    return groups


def _escalates_in_circle(start: str, groups: Mapping[str, Group]) -> bool:
    seen, current = {start}, groups[start].escalate_to
    while current is not None and current in groups:
        if current in seen:
            return True
        seen.add(current)
        current = groups[current].escalate_to
    return False


def check_files(rules: Rules) -> list[str]:
    """The problems of the files a configuration names: secrets readable and clean, CA files readable."""
    problems: list[str] = []
    secrets = [("broker.password_file", rules.broker.password_file),
               ("smtp.password_file", rules.smtp.password_file if rules.smtp else None),
               *((f"webhooks {hook.name!r} token_file", hook.token_file) for hook in rules.webhooks.values())]
    for key, path in secrets:
        if path is not None:
            try:
                read_secret(path)
            except SecretUnusable as exc:
                problems.append(f"{key}: {exc}")
    for key, path in (("broker.ca", rules.broker.ca), ("smtp.ca", rules.smtp.ca if rules.smtp else None)):
        if path is not None:
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                problems.append(f"{key}: {path}: cannot read it: {exc.strerror or type(exc).__name__}")
    return problems


def _routes(tables: list[_Table], groups: Mapping[str, Group]) -> tuple[Route, ...]:
    routes: list[Route] = []
    for table in tables:
        group = table.get("group", "", _name, "the name of a [[groups]] entry", required=True)
        if group and group not in groups:
            table.bad("group", f"no [[groups]] entry is named {group!r}")
        route = Route(group=group,
                      zones=table.get("zones", NO_NAMES, _texts(_text), "a non-empty list of zone patterns"),
                      stations=table.get("stations", NO_NAMES, _texts(_text), "a non-empty list of station patterns"),
                      severities=frozenset(table.get("severities", (), _texts(_enum(Severity)),
                                                     "a non-empty list of critical, warning, info")),
                      components=frozenset(table.get("components", NO_NAMES, _texts(_name),
                                                     "a non-empty list of component names")),
                      problems=frozenset(table.get("problems", (), _texts(_enum(Problem)),
                                                   "a non-empty list of lost, fault, fleet_fault, fleet_lost, help")),
                      when=table.get("when", When.ANY, _enum(When), "any, night, day, weekend or weekday"))
        table.done()
        routes.append(route)
    if not routes:
        raise ConfigError(["routes: at least one [[routes]] entry is required, the last one without conditions"])
    for index, route in enumerate(routes[:-1]):
        if route.catch_all:
            tables[index].problems.append(f"routes[{index}]: matches everything, so the routes after it never apply "
                                          "(only the last route may be the fallback)")
    if not routes[-1].catch_all:
        tables[-1].problems.append(f"routes[{len(routes) - 1}]: the last route is the fallback and must have no "
                                   "conditions (no zones, stations, severities, components, problems; when = any)")
    return tuple(routes)


def parse(data: Mapping[str, Any]) -> Rules:
    """Check a configuration's tables (as tomllib reads them); ConfigError names every problem."""
    problems: list[str] = []
    top = _Table("", dict(data), problems)
    broker = _broker(_Table("broker", top.get("broker", {}, lambda v: v, "a table", required=True), problems))
    bridge = _bridge(_Table("bridge", top.get("bridge", {}, lambda v: v, "a table", required=True), problems))
    smtp_data = top.get("smtp", None, lambda v: v, "a table")
    smtp = _smtp(_Table("smtp", smtp_data, problems)) if smtp_data is not None else None
    for name in ("people", "groups", "webhooks", "routes"):
        top.taken.add(name)
    top.done()
    webhooks = _webhooks(_listed(dict(data), "webhooks", problems))
    people = _people(_listed(dict(data), "people", problems), webhooks)
    if smtp is None and any(person.email for person in people.values()):
        problems.append("smtp: required, since people have e-mail addresses")
    groups = _groups(_listed(dict(data), "groups", problems), people)
    try:
        routes = _routes(_listed(dict(data), "routes", problems), groups)
    except ConfigError as exc:
        problems.extend(exc.problems)
        routes = ()
    if problems:
        raise ConfigError(problems)
    return Rules(broker, bridge, people, groups, webhooks, smtp, routes)
