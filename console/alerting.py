"""The console's alert wiring: what the board saw into the alert desk, conditions that ended, escalations, the bar."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from rich.text import Text

from console.alerts import AlertDesk, AlertKind, CallState, Notice, Signal
from console.board import Board
from console.notify import Notifier
from console.views import StationView, TicketState, TicketView

__all__ = ["Alerting"]


class Alerting:
    """Feeds the :class:`AlertDesk` from the board and the fleet, and says what is due (no UI of its own)."""

    def __init__(self, desk: AlertDesk, board: Board, notifier: Notifier | None) -> None:
        self.desk, self._board, self._notifier = desk, board, notifier

    def resolve_over(self, signals: Iterable[Signal]) -> None:
        """A condition raised and over within one batch (a door opened and shut, lost and back) rings nothing."""
        for signal in signals:
            view = self._board.station(signal.station)
            if view is None:
                continue
            if signal.kind is AlertKind.STATION_LOST and view.state != "lost":
                self.desk.resolve(AlertKind.STATION_LOST, signal.station, None)
            elif signal.kind is AlertKind.CRITICAL_FAULT and not any(
                    f.name == signal.subject and f.severity == "critical" for f in view.faults):
                self.desk.resolve(AlertKind.CRITICAL_FAULT, signal.station, signal.subject)

    def resolve_changed(self, views: Iterable[StationView], before: Callable[[str], StationView | None]) -> None:
        """Stations back online and critical faults cleared (``before``: a station's view before the change)."""
        for view in views:
            if view.state != "lost":
                self.desk.resolve(AlertKind.STATION_LOST, view.station, None)
            old = before(view.station)
            if old is not None:
                still = {f.name for f in view.faults if f.severity == "critical"}
                for gone in {f.name for f in old.faults if f.severity == "critical"} - still:
                    self.desk.resolve(AlertKind.CRITICAL_FAULT, view.station, gone)

    def due(self, queue: Iterable[TicketView], now: datetime) -> list[Notice]:
        """Escalate calls waiting too long, then what is due now; ringing ones also go to the desktop."""
        calls = [CallState(t.ticket, t.station, t.opened, t.state is TicketState.WAITING, t.overdue) for t in queue]
        for signal in self.desk.escalations(calls, now):
            self.desk.add(signal)
        notices = self.desk.due(now)
        if self._notifier is not None and any(notice.rings for notice in notices):
            self._notifier.ring(notices)
        return notices

    def bar(self) -> Text:
        """The alerts bar: how many are unacknowledged, and the latest two."""
        count = self.desk.unacknowledged
        if not count:
            return Text("No unacknowledged alert.", style="dim")
        text = Text(f"🔔 {count} unacknowledged (ctrl+g acknowledges): ", style="bold red")
        text.append(" | ".join(f"{n.title}: {n.message}" for n in self.desk.open_notices()[:2]))
        return text
