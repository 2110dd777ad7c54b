"""The fleet pane's order and filters: stations worst first, kept sorted as they change, filtered and counted."""
from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from console.views import Standing, StationView

__all__ = ["FleetFilter", "FleetIndex", "SeverityFilter", "StateFilter"]


class StateFilter(StrEnum):
    """The fleet pane's state filter."""

    ALL = "all states"
    ONLINE = "online"
    OFFLINE = "offline"
    LOST = "lost"
    OUT_OF_SERVICE = "out of service"
    UNKNOWN = "unknown"


class SeverityFilter(StrEnum):
    """The fleet pane's severity filter: stations whose worst active fault has this severity."""

    ALL = "all severities"
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    NONE = "no fault"


@dataclass(frozen=True)
class FleetFilter:
    """What the fleet pane shows: ``zone`` None for all; ``stations`` None for no search, else the search's hits."""

    zone: str | None = None
    state: StateFilter = StateFilter.ALL
    severity: SeverityFilter = SeverityFilter.ALL
    stations: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        """True when nothing is filtered out."""
        return self == FleetFilter()

    def admits(self, station: StationView) -> bool:
        """Whether the station passes every filter."""
        if self.stations is not None and station.station not in self.stations:
            return False
        if self.zone is not None and station.zone != self.zone:
            return False
        return _STATE_TESTS[self.state](station) and _SEVERITY_TESTS[self.severity](station)


_STATE_TESTS: dict[StateFilter, Callable[[StationView], bool]] = {
    StateFilter.ALL: lambda s: True,
    StateFilter.ONLINE: lambda s: s.state == "online",
    StateFilter.OFFLINE: lambda s: s.state == "offline",
    StateFilter.LOST: lambda s: s.state == "lost",
    StateFilter.OUT_OF_SERVICE: lambda s: any(f.parker_impact == "out_of_service" for f in s.faults),
    StateFilter.UNKNOWN: lambda s: s.state == "unknown",
}
_SEVERITY_TESTS: dict[SeverityFilter, Callable[[StationView], bool]] = {
    SeverityFilter.ALL: lambda s: True,
    SeverityFilter.CRITICAL: lambda s: s.worst_severity == "critical",
    SeverityFilter.WARNING: lambda s: s.worst_severity == "warning",
    SeverityFilter.INFO: lambda s: s.worst_severity == "info",
    SeverityFilter.NONE: lambda s: not s.faults,
}

SortKey = tuple[int, str]


class FleetIndex:
    """Every station worst first (:class:`Standing`, then id), updated one station at a time in O(log n) compares.

    :meth:`row` and :meth:`position` answer in O(1) without a filter; with one, the filtered
    order is rebuilt once after changes (O(n)), on the first question asked.
    """

    def __init__(self) -> None:
        self._views: dict[str, StationView] = {}
        self._keys: dict[str, SortKey] = {}
        self._order: list[SortKey] = []
        self._standings: Counter[Standing] = Counter()
        self._zones: Counter[str] = Counter()
        self._filter = FleetFilter()
        self._filtered: list[str] | None = None
        self._filtered_at: dict[str, int] = {}

    def update(self, views: Iterable[StationView]) -> None:
        """Take the stations' new views (new stations are added)."""
        for view in views:
            key = (int(view.standing), view.station)
            old_view = self._views.get(view.station)
            old_key = self._keys.get(view.station)
            if old_view is not None and old_key is not None:
                self._standings[old_view.standing] -= 1
                if old_view.zone:
                    self._zones[old_view.zone] -= 1
                if old_key != key:
                    del self._order[bisect.bisect_left(self._order, old_key)]
            if old_key != key:
                bisect.insort(self._order, key)
            self._views[view.station], self._keys[view.station] = view, key
            self._standings[view.standing] += 1
            if view.zone:
                self._zones[view.zone] += 1
        if not self._filter.everything:
            self._filtered = None

    @property
    def filter(self) -> FleetFilter:
        """The filter in force."""
        return self._filter

    def set_filter(self, fleet_filter: FleetFilter) -> None:
        """Show only the stations ``fleet_filter`` admits."""
        self._filter, self._filtered = fleet_filter, None

    def __len__(self) -> int:
        """How many stations the filter admits."""
        return len(self._order) if self._filter.everything else len(self._shown())

    @property
    def total(self) -> int:
        """How many stations are known."""
        return len(self._order)

    def row(self, index: int) -> StationView:
        """The ``index``-th station shown (IndexError beyond the end)."""
        station = self._order[index][1] if self._filter.everything else self._shown()[index]
        return self._views[station]

    def position(self, station: str) -> int | None:
        """Where the station is shown, None if the filter hides it or it is unknown."""
        key = self._keys.get(station)
        if key is None:
            return None
        if self._filter.everything:
            return bisect.bisect_left(self._order, key)
        self._shown()
        return self._filtered_at.get(station)

    def view(self, station: str) -> StationView | None:
        """The station's latest view."""
        return self._views.get(station)

    def counts(self) -> dict[Standing, int]:
        """How many stations stand where, over the whole fleet (not only the filtered ones)."""
        return {standing: count for standing, count in self._standings.items() if count}

    def zones(self) -> list[str]:
        """The zones stations named, sorted."""
        return sorted(zone for zone, count in self._zones.items() if count)

    def _shown(self) -> list[str]:
        if self._filtered is None:
            admits = self._filter.admits
            self._filtered = [station for _, station in self._order if admits(self._views[station])]
            self._filtered_at = {station: i for i, station in enumerate(self._filtered)}
        return self._filtered
