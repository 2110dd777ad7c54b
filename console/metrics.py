"""The console's help and fault figures as pure computations: the records, medians and p90s, and fault periods."""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "AGENT_OUTCOMES",
    "RATINGS",
    "CallFigures",
    "CallRecord",
    "FaultChange",
    "FaultPeriod",
    "Grouping",
    "HelpMetrics",
    "Outcome",
    "RatingFigures",
    "RepairStats",
    "VoiceFigures",
    "help_metrics",
    "median",
    "p90",
    "repair_stats",
    "replay",
]

RATINGS = (1, 2, 3, 4, 5)  # the CSAT scale of event/feedback


class Outcome(StrEnum):
    """How a help call closed (``outcome`` of event/help ``close``): an agent's resolution, or the station's."""

    SOLVED = "solved"
    COURTESY = "courtesy"
    TECHNICIAN = "technician"
    NO_ANSWER = "no_answer"
    OTHER = "other"
    CANCELLED_BY_PARKER = "cancelled_by_parker"
    ABANDONED = "abandoned"
    SUPERSEDED_AT_RESTART = "superseded_at_restart"


AGENT_OUTCOMES = frozenset({Outcome.SOLVED, Outcome.COURTESY, Outcome.TECHNICIAN, Outcome.NO_ANSWER, Outcome.OTHER})


class Grouping(StrEnum):
    """What help figures are grouped by."""

    STATION = "station"
    AGENT = "agent"
    ALL = "all"


def median(values: Sequence[float]) -> float | None:
    """statistics.median, or None without values."""
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank (the value at rank ceil(0.9 n) of the sorted values), or None."""
    if not values:
        return None
    ranked = sorted(values)
    return float(ranked[math.ceil(0.9 * len(ranked)) - 1])


@dataclass(frozen=True)
class VoiceFigures:
    """A call's voice figures from its ``close`` event: calls placed, seconds to the first answer, seconds talked."""

    calls: int
    answer_s: float | None
    talk_s: float | None
    outcome: str | None


@dataclass(frozen=True)
class CallFigures:
    """What the help figures need of one closed call; ``agent`` is who closed it, else who accepted it."""

    station: str
    agent: str | None
    outcome: str
    accepted: bool
    time_to_accept_s: float | None
    time_to_resolve_s: float | None

    @property
    def resolved(self) -> bool:
        """Closed by an agent with an agent's outcome."""
        return self.outcome in AGENT_OUTCOMES

    @property
    def abandoned(self) -> bool:
        """The station closed it as abandoned, or the parker cancelled before anyone accepted."""
        return self.outcome == Outcome.ABANDONED or (self.outcome == Outcome.CANCELLED_BY_PARKER and not self.accepted)


@dataclass(frozen=True)
class RatingFigures:
    """What the help figures need of one rating; ``agent`` is the agent of the rated journey's help call, if any."""

    station: str
    agent: str | None
    rating: int


@dataclass(frozen=True)
class CallRecord:
    """One help call as the station's events told it (open, accept, close); None where no event said it."""

    station: str
    ticket: str
    opened: datetime | None
    accepted: datetime | None
    closed: datetime | None
    agent: str | None
    outcome: str | None
    presses: int | None
    time_to_accept_s: float | None
    time_to_resolve_s: float | None
    plate: str | None
    screen: str | None
    zone: str | None
    voice: VoiceFigures | None


@dataclass(frozen=True)
class HelpMetrics:
    """The help figures of one station, one agent, or all (``key`` None); see docs/help-desk.md (History and metrics).

    ``ratings`` counts the CSAT ratings 1..5. Per agent, a rating counts for the agent of the help
    call the parker had in the journey rated.
    """

    key: str | None
    calls: int
    accepted: int
    resolved: int
    abandoned: int
    resolution_rate: float | None
    accept_median_s: float | None
    accept_p90_s: float | None
    resolve_median_s: float | None
    resolve_p90_s: float | None
    ratings: tuple[int, ...]
    csat_average: float | None


def help_metrics(calls: Iterable[CallFigures], ratings: Iterable[RatingFigures], group: Grouping) -> list[HelpMetrics]:
    """The figures of closed ``calls`` and of ``ratings``, one row per key, by key (ALL: one row)."""
    key_of: dict[Grouping, Callable[[CallFigures | RatingFigures], str | None]] = {
        Grouping.STATION: lambda figures: figures.station,
        Grouping.AGENT: lambda figures: figures.agent,
        Grouping.ALL: lambda figures: None,
    }
    by_key: dict[str | None, list[CallFigures]] = defaultdict(list)
    for call in calls:
        key = key_of[group](call)
        if key is not None or group is Grouping.ALL:
            by_key[key].append(call)
    rated: dict[str | None, list[int]] = defaultdict(list)
    for rating in ratings:
        key = key_of[group](rating)
        if key is not None or group is Grouping.ALL:
            rated[key].append(rating.rating)
    keys = set(by_key) | set(rated) | ({None} if group is Grouping.ALL else set())
    return [_figures(key, by_key.get(key, []), rated.get(key, [])) for key in sorted(keys, key=lambda k: k or "")]


def _figures(key: str | None, calls: list[CallFigures], ratings: list[int]) -> HelpMetrics:
    resolved = [call for call in calls if call.resolved]
    to_accept = [call.time_to_accept_s for call in calls if call.time_to_accept_s is not None]
    to_resolve = [call.time_to_resolve_s for call in resolved if call.time_to_resolve_s is not None]
    return HelpMetrics(
        key=key, calls=len(calls), accepted=sum(call.accepted for call in calls), resolved=len(resolved),
        abandoned=sum(call.abandoned for call in calls),
        resolution_rate=len(resolved) / len(calls) if calls else None,
        accept_median_s=median(to_accept), accept_p90_s=p90(to_accept),
        resolve_median_s=median(to_resolve), resolve_p90_s=p90(to_resolve),
        ratings=tuple(ratings.count(score) for score in RATINGS),
        csat_average=statistics.fmean(ratings) if ratings else None)


@dataclass(frozen=True)
class FaultChange:
    """A fault raised (or still active) or cleared, as an event or the retained ``fault/{component}`` said it."""

    at: datetime
    active: bool
    code: str
    severity: str
    message: str
    parker_impact: str


@dataclass(frozen=True)
class FaultPeriod:
    """A fault of one component, from when it was raised to when it was cleared (None: still active)."""

    station: str
    component: str
    code: str
    severity: str
    message: str
    parker_impact: str
    opened: datetime
    closed: datetime | None

    @property
    def time_to_repair(self) -> timedelta | None:
        """Closed minus opened; None while the fault is active."""
        return None if self.closed is None else self.closed - self.opened


def replay(station: str, component: str, changes: Iterable[FaultChange]) -> list[FaultPeriod]:
    """The periods that ``changes`` (oldest first, no fault active before the first) make of one component.

    A raise opens a period; a raise of the code already active continues it (its severity,
    message and impact become the latest said); a raise of another code closes the period and
    opens the new code's at that moment (as the station does); a clear closes the period.
    """
    periods: list[FaultPeriod] = []
    current: FaultPeriod | None = None
    for change in changes:
        if current is not None and change.active and change.code == current.code:
            current = FaultPeriod(station, component, current.code, change.severity, change.message,
                                  change.parker_impact, current.opened, None)
            continue
        if current is not None:
            periods.append(FaultPeriod(station, component, current.code, current.severity, current.message,
                                       current.parker_impact, current.opened, change.at))
            current = None
        if change.active:
            current = FaultPeriod(station, component, change.code, change.severity, change.message,
                                  change.parker_impact, change.at, None)
    return periods + ([current] if current is not None else [])


@dataclass(frozen=True)
class RepairStats:
    """Time to repair of one component over its closed periods; ``still_open`` counts its active ones."""

    component: str
    repaired: int
    still_open: int
    mean_s: float | None
    median_s: float | None


def repair_stats(periods: Iterable[FaultPeriod]) -> list[RepairStats]:
    """Mean and median time to repair per component, by component."""
    repairs: dict[str, list[float]] = defaultdict(list)
    still_open: dict[str, int] = defaultdict(int)
    for period in periods:
        repair = period.time_to_repair
        if repair is None:
            still_open[period.component] += 1
        else:
            repairs[period.component].append(repair.total_seconds())
    return [RepairStats(component, len(repairs.get(component, [])), still_open.get(component, 0),
                        statistics.fmean(repairs[component]) if repairs.get(component) else None,
                        median(repairs.get(component, [])))
            for component in sorted(set(repairs) | set(still_open))]
