"""The console's alerts: signals coalesced into notices, acknowledged, repeated at night, calls escalated (pure)."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from enum import Enum, StrEnum

__all__ = ["KEPT_SUMMARIES", "AlertDesk", "AlertKind", "AlertSettings", "AlertSettingsError", "CallState", "Notice",
           "Severity", "Signal"]

log = logging.getLogger(__name__)

KEPT_SUMMARIES = 16  # summary ids that acknowledge() still knows


class AlertKind(Enum):
    """What happened. The first four ring the bell; the last two only inform this console's agent."""

    NEW_CALL = "new_call"  # a call offered to this console
    CALL_ESCALATED = "call_escalated"  # a call nobody accepted in escalate_after_s, or overdue at its station
    STATION_LOST = "station_lost"  # the broker noticed a station vanish
    CRITICAL_FAULT = "critical_fault"  # a new critical fault at a station
    ACCEPT_TAKEN = "accept_taken"  # this agent's accept lost the race to a colleague
    REFUSED = "refused"  # a station refused this agent's request


class Severity(StrEnum):
    """A notice's severity, spelled as Textual's ``notify`` takes it."""

    INFORMATION = "information"
    WARNING = "warning"
    ERROR = "error"


class AlertSettingsError(ValueError):
    """Alert settings out of range; the message names every bad value."""


@dataclass(frozen=True)
class AlertSettings:
    """How alerts are coalesced, repeated, escalated and bounded; checked when made.

    ``night_start``/``night_end`` are local wall-clock times; the night may cross midnight
    (22:00–06:00) and is ``night_start <= t < night_end`` otherwise. ``repeat_s=None`` never repeats.
    """

    coalesce_s: float = 2.0  # a notice gathers the signals of this many seconds after its first new station
    repeat_s: float | None = 300.0  # at night, ring an unacknowledged alert again after this many seconds
    night_start: time = time(22, 0)
    night_end: time = time(6, 0)
    escalate_after_s: float = 60.0  # a call waiting this long unaccepted escalates to every console
    max_open: int = 100  # alerts held at once; past it the least pressing one is dropped
    max_notices: int = 5  # notices per due() call at most, the last one a summary of the rest
    named: int = 5  # stations (or alerts) named in a message
    max_parts: int = 10_000  # station/subject pairs remembered per alert; past it the oldest are forgotten

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not _seconds(self.coalesce_s, 0, 60):
            problems.append(f"coalesce_s must be 0 to 60 seconds, got {self.coalesce_s!r}")
        if self.repeat_s is not None and not _seconds(self.repeat_s, 1, 86_400):
            problems.append(f"repeat_s must be None or 1 to 86400 seconds, got {self.repeat_s!r}")
        if not _seconds(self.escalate_after_s, 1, 86_400):
            problems.append(f"escalate_after_s must be 1 to 86400 seconds, got {self.escalate_after_s!r}")
        for name in ("night_start", "night_end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                problems.append(f"{name} must be a local datetime.time without tzinfo, got {value!r}")
        if self.night_start == self.night_end:
            problems.append("night_start and night_end must differ (repeat_s=None turns repeats off)")
        for name, least in (("max_open", 1), ("max_notices", 2), ("named", 1), ("max_parts", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                problems.append(f"{name} must be a whole number of at least {least}, got {value!r}")
        if problems:
            raise AlertSettingsError("; ".join(problems))


@dataclass(frozen=True)
class Signal:
    """One thing that happened at a station; ``subject`` is the fault name or the ticket id (None for ``lost``)."""

    kind: AlertKind
    station: str
    subject: str | None
    detail: str
    at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.kind, AlertKind):
            raise ValueError(f"kind must be an AlertKind, got {self.kind!r}")
        if not isinstance(self.station, str) or not self.station:
            raise ValueError(f"station must be a non-empty string, got {self.station!r}")
        _aware(self.at, "at")


@dataclass(frozen=True)
class CallState:
    """An open ticket as escalation sees it: ``waiting`` means nobody accepted it yet."""

    ticket: str
    station: str
    opened: datetime
    waiting: bool
    overdue: bool

    def __post_init__(self) -> None:
        _aware(self.opened, "opened")


@dataclass(frozen=True)
class Notice:
    """What to show (and, if ``rings``, ring the bell and notify the desktop for).

    ``id`` acknowledges it; ``kind`` is None for a summary of several alerts. ``count`` is the
    signals gathered since the alert opened, ``stations`` every station remembered in order of
    arrival, ``active`` the station/subject pairs whose condition still holds. ``repeat`` marks a
    night repeat of an unacknowledged alert.
    """

    id: str
    kind: AlertKind | None
    title: str
    message: str
    stations: tuple[str, ...]
    count: int
    active: int
    rings: bool
    severity: Severity
    first_at: datetime
    last_at: datetime
    repeat: bool = False


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _where(stations: tuple[str, ...]) -> str:
    return stations[0] if len(stations) == 1 else f"{len(stations)} stations"


def _lost_title(count: int, stations: tuple[str, ...], subject: str | None) -> str:
    if len(stations) == 1:
        return f"Station {stations[0]} lost" + (f" {count} times" if count > 1 else "")
    return f"{len(stations)} stations lost"


def _fault_title(count: int, stations: tuple[str, ...], subject: str | None) -> str:
    return f"{_plural(count, 'new critical fault')}{f': {subject}' if subject else ''} at {_where(stations)}"


@dataclass(frozen=True)
class _Kind:
    """How one kind of alert behaves and reads."""

    rank: int  # order in a due() answer: lower first
    rings: bool
    severity: Severity
    kept: bool  # stays open until acknowledged; otherwise shown once and forgotten
    coalesces: bool  # gathers for coalesce_s; otherwise shown at the next due()
    by_subject: bool  # one alert per subject (fault name); otherwise one per kind
    done: str  # what a resolved station/subject pair is called
    title: Callable[[int, tuple[str, ...], str | None], str]


_KINDS: dict[AlertKind, _Kind] = {
    AlertKind.CALL_ESCALATED: _Kind(0, True, Severity.ERROR, True, True, False, "answered",
                                    lambda n, s, _: f"{_plural(n, 'call')} waiting too long at {_where(s)}"),
    AlertKind.NEW_CALL: _Kind(1, True, Severity.WARNING, True, True, False, "answered",
                              lambda n, s, _: f"{_plural(n, 'new call')} at {_where(s)}"),
    AlertKind.STATION_LOST: _Kind(2, True, Severity.ERROR, True, True, False, "back online", _lost_title),
    AlertKind.CRITICAL_FAULT: _Kind(3, True, Severity.ERROR, True, True, True, "cleared", _fault_title),
    AlertKind.REFUSED: _Kind(4, False, Severity.WARNING, False, False, False, "over",
                             lambda n, s, _: f"{_plural(n, 'request')} refused at {_where(s)}"),
    AlertKind.ACCEPT_TAKEN: _Kind(5, False, Severity.WARNING, False, False, False, "over",
                                  lambda n, s, _: f"{_plural(n, 'call')} taken by a colleague at {_where(s)}"),
}

_Part = tuple[str, str | None]  # (station, subject)
_Key = tuple[AlertKind, str | None]  # (kind, subject or None)


@dataclass(eq=False)
class _Alert:
    """One open alert: its station/subject pairs (True while the condition holds) and its gathering window."""

    id: str
    seq: int
    kind: AlertKind
    subject: str | None
    first_at: datetime
    last_at: datetime
    detail: str = ""
    count: int = 0
    parts: dict[_Part, bool] = field(default_factory=dict)
    resolved: dict[_Part, None] = field(default_factory=dict)  # resolved parts, oldest first
    stations: dict[str, int] = field(default_factory=dict)  # station -> its parts, in order of arrival
    news: set[_Part] = field(default_factory=set)  # parts new in the current window
    window: tuple[datetime, datetime] | None = None  # (opened, closes) while gathering
    notified_at: datetime | None = None
    names: tuple[str, ...] | None = None  # cached tuple of ``stations``

    @property
    def active(self) -> int:
        """Parts whose condition still holds."""
        return len(self.parts) - len(self.resolved)

    def station_names(self) -> tuple[str, ...]:
        """Every station remembered, in order of arrival."""
        if self.names is None:
            self.names = tuple(self.stations)
        return self.names

    def add_part(self, part: _Part, limit: int) -> bool:
        """Record a signal's part; True if it is new (a duplicate only becomes active again)."""
        active = self.parts.get(part)
        if active is not None:
            if not active:
                self.parts[part] = True
                del self.resolved[part]
            return False
        if len(self.parts) >= limit:
            self._forget(next(iter(self.resolved)) if self.resolved else next(iter(self.parts)))
        self.parts[part] = True
        self.news.add(part)
        station = part[0]
        if station not in self.stations:
            self.names = None
        self.stations[station] = self.stations.get(station, 0) + 1
        return True

    def resolve(self, part: _Part) -> bool:
        """The part's condition ended: True if it was active."""
        if self.parts.get(part) is not True:
            return False
        self.parts[part] = False
        self.resolved[part] = None
        return True

    def _forget(self, part: _Part) -> None:
        del self.parts[part]
        self.resolved.pop(part, None)
        self.news.discard(part)
        station = part[0]
        left = self.stations[station] - 1
        if left:
            self.stations[station] = left
        else:
            del self.stations[station]
            self.names = None


class AlertDesk:
    """Turns signals into few, coalesced notices and keeps the open alerts until an agent acknowledges them.

    Rules (docs/help-desk.md, "Alerts"):

    - An alert is one per kind, and per fault name for critical faults. It opens with its first
      signal and stays open (listed, counted) until acknowledged; shown-once kinds (REFUSED,
      ACCEPT_TAKEN) are forgotten once shown.
    - A signal whose (station, subject) is new to the alert opens a window if none is open; the
      window closes ``coalesce_s`` after that signal and the next :meth:`due` shows the alert once,
      with everything gathered so far. A duplicate (a pair already in the alert, resolved or not)
      counts but opens no window and rings nothing.
    - A window's notice rings when its kind rings and one of its new pairs still holds; a window
      whose new pairs all ended before it closed is shown as information, without ringing.
    - At night an alert with a pair still holding rings again ``repeat_s`` after it was last shown.
    - :meth:`due` returns at most ``max_notices`` notices: the most pressing first, the rest
      folded into one summary.
    """

    def __init__(self, settings: AlertSettings | None = None, tz: tzinfo | None = None) -> None:
        """``tz`` decides what night is; None means the system's local time (daylight saving included)."""
        self.settings = settings or AlertSettings()
        self._tz = tz
        self._alerts: dict[_Key, _Alert] = {}
        self._seq = 0
        self._summaries: dict[str, tuple[str, ...]] = {}
        self._escalated: set[str] = set()
        self._listed: dict[str, str] = {}  # ticket -> station, from the last escalations() call
        self._evicted = 0
        self._evicted_logged = 0

    # ---- input ----

    def add(self, signal: Signal) -> None:
        """Take one signal (cheap: nothing is shown before :meth:`due`)."""
        spec = _KINDS[signal.kind]
        at = signal.at.astimezone(UTC)
        key = (signal.kind, signal.subject if spec.by_subject else None)
        alert = self._alerts.get(key) or self._open(key, at)
        alert.count += 1
        alert.last_at = max(alert.last_at, at)
        alert.detail = signal.detail
        if alert.add_part((signal.station, signal.subject), self.settings.max_parts) and alert.window is None:
            alert.window = (at, at + timedelta(seconds=self.settings.coalesce_s if spec.coalesces else 0))

    def resolve(self, kind: AlertKind, station: str, subject: str | None) -> bool:
        """The condition ended (fault cleared, station back, call answered): that pair stops ringing and counting.

        An alert whose every pair ended leaves :attr:`unacknowledged` and never repeats, but stays
        listed until acknowledged. True if the pair was open and holding.
        """
        alert = self._alerts.get((kind, subject if _KINDS[kind].by_subject else None))
        return alert is not None and alert.resolve((station, subject))

    def escalations(self, calls: Iterable[CallState], now: datetime) -> list[Signal]:
        """Check every open ticket the console sees (about once a second); return the calls to escalate.

        A waiting ticket escalates once, when it has waited ``escalate_after_s`` since it opened or
        its station marks it overdue; add the signals returned. Every console runs this on the
        same tickets, so every console escalates. A ticket listed as no longer waiting, or listed
        at the previous call and gone now, has its NEW_CALL and CALL_ESCALATED pairs resolved.
        """
        now = _aware(now, "now").astimezone(UTC)
        after = timedelta(seconds=self.settings.escalate_after_s)
        listed: dict[str, str] = {}
        signals: list[Signal] = []
        for call in calls:
            listed[call.ticket] = call.station
            if not call.waiting:
                self._answered(call.station, call.ticket)
            elif call.ticket not in self._escalated and (call.overdue or now - call.opened.astimezone(UTC) >= after):
                self._escalated.add(call.ticket)
                detail = (f"The call at {call.station} is overdue: the station told the parker nobody answered in time."
                          if call.overdue else
                          f"Nobody accepted the call at {call.station} within {_duration(self.settings.escalate_after_s)}.")
                signals.append(Signal(AlertKind.CALL_ESCALATED, call.station, call.ticket, detail, now))
        for ticket, station in self._listed.items():
            if ticket not in listed:
                self._answered(station, ticket)
        self._escalated &= listed.keys()
        self._listed = listed
        return signals

    def acknowledge(self, notice_id: str | None) -> int:
        """Acknowledge one alert (or the alerts of a summary notice) by id; None: every alert shown so far.

        Returns how many alerts left the open list. Acknowledging all keeps the alerts whose
        window is open: they gather a condition nobody has seen yet (a first one, or a new station).
        """
        if notice_id is None:
            keys = [key for key, alert in self._alerts.items()
                    if _KINDS[alert.kind].kept and alert.notified_at is not None and alert.window is None]
        else:
            ids = self._summaries.pop(notice_id, None) or (notice_id,)
            keys = [key for key, alert in self._alerts.items() if alert.id in ids and _KINDS[alert.kind].kept]
        for key in keys:
            del self._alerts[key]
        return len(keys)

    # ---- output ----

    def due(self, now: datetime) -> list[Notice]:
        """What to show now: alerts whose window closed and night repeats; at most ``max_notices``."""
        now = _aware(now, "now").astimezone(UTC)
        repeat = self.settings.repeat_s
        night = repeat is not None and self._night(now)
        ready: list[tuple[_Alert, bool]] = []
        for alert in self._alerts.values():
            if alert.window is not None:
                opened, closes = alert.window
                if now >= closes or now < opened:  # closed, or the clock stepped back
                    ready.append((alert, False))
            elif night and repeat is not None and _KINDS[alert.kind].rings and alert.active \
                    and alert.notified_at is not None:
                if now < alert.notified_at:  # the clock stepped back: count again from now
                    alert.notified_at = now
                elif (now - alert.notified_at).total_seconds() >= repeat:
                    ready.append((alert, True))
        notices = [self._shown(alert, again, now) for alert, again in ready]
        notices.sort(key=lambda n: (not n.rings, _KINDS[n.kind].rank if n.kind else 0, n.first_at, n.id))
        if self._evicted > self._evicted_logged:
            log.warning("%d alerts dropped: more than %d were open (acknowledge some)",
                        self._evicted - self._evicted_logged, self.settings.max_open)
            self._evicted_logged = self._evicted
        cap = self.settings.max_notices
        if len(notices) <= cap:
            return notices
        return notices[:cap - 1] + [self._summary(notices[cap - 1:])]

    @property
    def unacknowledged(self) -> int:
        """Open alerts with a condition still holding."""
        return sum(1 for alert in self._alerts.values() if _KINDS[alert.kind].kept and alert.active)

    @property
    def evicted(self) -> int:
        """Alerts dropped so far because ``max_open`` were open."""
        return self._evicted

    @property
    def held(self) -> int:
        """Items the desk holds (alerts, their pairs and stations, summaries, tickets): bounded by the settings."""
        per_alert = sum(1 + len(a.parts) + len(a.resolved) + len(a.stations) + len(a.news) for a in self._alerts.values())
        return per_alert + len(self._summaries) + len(self._escalated) + len(self._listed)

    def open_notices(self) -> list[Notice]:
        """Every open alert, newest first (at most ``max_open``), for an alerts pane; none of them rings."""
        kept = [a for a in self._alerts.values() if _KINDS[a.kind].kept]
        kept.sort(key=lambda a: (a.first_at, a.seq), reverse=True)
        return [self._notice(a, rings=False, repeat=False) for a in kept]

    # ---- inside ----

    def _open(self, key: _Key, at: datetime) -> _Alert:
        if len(self._alerts) >= self.settings.max_open:
            victim = min(self._alerts, key=lambda k: (self._alerts[k].active > 0, self._alerts[k].window is not None,
                                                      self._alerts[k].last_at, self._alerts[k].seq))
            del self._alerts[victim]
            self._evicted += 1
        self._seq += 1
        alert = self._alerts[key] = _Alert(f"A{self._seq}", self._seq, key[0], key[1], at, at)
        return alert

    def _answered(self, station: str, ticket: str) -> None:
        self.resolve(AlertKind.NEW_CALL, station, ticket)
        self.resolve(AlertKind.CALL_ESCALATED, station, ticket)

    def _shown(self, alert: _Alert, again: bool, now: datetime) -> Notice:
        """The notice of an alert shown now; its window closes (a shown-once alert is forgotten)."""
        spec = _KINDS[alert.kind]
        rings = spec.rings and (again or any(alert.parts.get(part) for part in alert.news))
        notice = self._notice(alert, rings, again)
        alert.window, alert.notified_at = None, now
        alert.news.clear()
        if not spec.kept:
            del self._alerts[(alert.kind, alert.subject)]
        return notice

    def _notice(self, alert: _Alert, rings: bool, repeat: bool) -> Notice:
        spec = _KINDS[alert.kind]
        names = alert.station_names()
        if len(names) == 1:
            message = alert.detail or names[0]
            message += f" ({spec.done})" if not alert.active else ""
        else:
            message = ", ".join(names[:self.settings.named])
            message += f" and {len(names) - self.settings.named} more" if len(names) > self.settings.named else ""
            message += f" ({len(alert.resolved)} {spec.done})" if alert.resolved else ""
        if repeat:
            message = f"Unacknowledged since {self._local(alert.first_at):%H:%M}. {message}"
        return Notice(alert.id, alert.kind, spec.title(alert.count, names, alert.subject), message, names,
                      alert.count, alert.active, rings, spec.severity if alert.active else Severity.INFORMATION,
                      alert.first_at, alert.last_at, repeat)

    def _summary(self, notices: list[Notice]) -> Notice:
        """One notice for the alerts past the cap; acknowledging its id acknowledges them all."""
        self._seq += 1
        summary_id = f"S{self._seq}"
        self._summaries[summary_id] = tuple(n.id for n in notices)
        while len(self._summaries) > KEPT_SUMMARIES:
            del self._summaries[next(iter(self._summaries))]
        named = self.settings.named
        message = "; ".join(n.title for n in notices[:named])
        message += f"; and {len(notices) - named} more" if len(notices) > named else ""
        stations = tuple(dict.fromkeys(s for n in notices for s in n.stations))[:self.settings.max_parts]
        rank = {Severity.INFORMATION: 0, Severity.WARNING: 1, Severity.ERROR: 2}
        return Notice(summary_id, None, f"{len(notices)} more alerts", message, stations,
                      sum(n.count for n in notices), sum(n.active for n in notices), any(n.rings for n in notices),
                      max((n.severity for n in notices), key=rank.__getitem__), min(n.first_at for n in notices),
                      max(n.last_at for n in notices), all(n.repeat for n in notices))

    def _local(self, at: datetime) -> datetime:
        return at.astimezone(self._tz) if self._tz is not None else at.astimezone()

    def _night(self, now: datetime) -> bool:
        wall = self._local(now).time()
        start, end = self.settings.night_start, self.settings.night_end
        return start <= wall < end if start < end else (wall >= start or wall < end)


def _seconds(value: object, least: float, most: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and least <= value <= most


def _aware(at: datetime, name: str) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at!r}")
    return at


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole} s" if whole < 120 else f"{whole // 60} min" + (f" {whole % 60} s" if whole % 60 else "")
