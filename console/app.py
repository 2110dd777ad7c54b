"""The agents' console: a Textual terminal UI over console.board and console.agent_link (``kiosk console``)."""
from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.agent_link import AgentLink, NotConnected
from console.alerts import AlertDesk, AlertKind, CallState, Signal
from console.board import Board
from console.command import history_path
from console.crew import CREW_COMMANDS, CrewCommand, describe_reply
from console.fleet import FleetFilter, FleetIndex, SeverityFilter, StateFilter
from console.history import History, HistoryUnusable
from console.intake import Intake
from console.notify import DesktopNotifier, Notifier
from console.panes import call_summary, conversation, local, station_detail, station_row, ticket_cells, ticket_details
from console.payload import clean
from console.views import Standing, StationView, TicketState, TicketView

try:
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.containers import Horizontal, Vertical, VerticalScroll
    from textual.css.query import NoMatches
    from textual.message import Message
    from textual.widgets import DataTable, Footer, Header, Input, RichLog, Select, Static
    from textual.widgets.option_list import Option

    from console.fleet_list import FleetList
    from console.forms import ConfirmScreen, Field, FormScreen, length_check, number_check
    from console.metrics_screen import MetricsScreen
    from console.screens import KeysScreen, PickScreen
except ImportError as exc:  # the console extra is not installed: main() says so, the classes below stay unused
    TEXTUAL_MISSING: ImportError | None = exc
    if not TYPE_CHECKING:  # type-checked as installed (the console extra), so only at run time
        App = Message = object
else:
    TEXTUAL_MISSING = None

log = logging.getLogger(__name__)

INSTALL_HINT = "install the console extra: pip install 'kiosk[console]'"
OUTCOMES = ("solved", "courtesy", "technician", "no_answer", "other")  # help/to-parker resolve (MQTT contract)
COURTESY_MINUTES = 60
COURTESY_REASON = "help ticket"
MAX_CHAT = 500  # what the station accepts on help/to-parker and for its commands' arguments
MAX_NOTICE = 200
MAX_PLATE = 16
MAX_COURTESY_MINUTES = 10080
BATCH_DELAY_S = 0.05  # messages arriving together are applied and shown together
BATCH_BUDGET_S = 0.02  # the UI thread applies messages for at most this long before it reads keys again
LOADING_QUIET_S = 0.75  # no retained message for this long after subscribing: the fleet is loaded
TICK_S = 0.5  # queue times, escalations and due alerts
MAX_REPLIES = 5
MAX_CALLS_SHOWN = 3  # command replies kept per station for its detail pane
ALERT_STYLE = {"error": "bold red", "warning": "yellow", "information": ""}

LinkFactory = Callable[[Callable[[str, bytes, bool], None], Callable[[bool, str], None]], AgentLink]


class QueueFilter(Enum):
    """Which open tickets the help queue lists (ctrl+o cycles)."""

    ALL = "all"
    OFFERED = "offered to me"
    OVERDUE = "overdue"


QUEUE_TESTS: dict[QueueFilter, Callable[[TicketView], bool]] = {
    QueueFilter.ALL: lambda t: True,
    QueueFilter.OFFERED: lambda t: t.offered_to_me,
    QueueFilter.OVERDUE: lambda t: t.overdue,
}


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


class Relayed(Message):
    """A call handed from another thread (paho's, a timer's, logging's) to the UI thread."""

    def __init__(self, call: Callable[..., None], *args: Any) -> None:
        super().__init__()
        self.call, self.args = call, args


class ConsoleApp(App):
    """Fleet, help queue, the selected ticket with its conversation, and the agent's actions on it.

    ``link_factory(on_message, on_state)`` makes the AgentLink (called at once, so bad settings
    fail before the screen opens); it is started when the app is mounted and stopped when it ends.
    Messages arrive on paho's thread into an :class:`Intake` and are applied on the UI thread in
    batches; only what changed is drawn again. Letters never act: actions are on function keys
    and ctrl keys, and every action that changes a station asks for ctrl+y.
    """

    TITLE = "Pay-station console"
    BINDINGS = [
        Binding("f1", "keys", "Keys"),
        Binding("f2", "chat", "Chat"),
        Binding("f3", "accept", "Accept"),
        Binding("f4", "next_call", "Next call"),
        Binding("f5", "resolve", "Resolve"),
        Binding("f6", "courtesy", "Courtesy"),
        Binding("f7", "cancel_journey", "End journey"),
        Binding("f8", "notice", "Notice"),
        Binding("f9", "crew", "Station cmds"),
        Binding("ctrl+g", "acknowledge", "Ack alerts"),
        Binding("ctrl+f", "search", "Search"),
        Binding("ctrl+o", "queue_filter", "Queue filter"),
        Binding("ctrl+t", "metrics", "Metrics"),
        Binding("escape", "focus_queue", "Queue", show=False),
        Binding("ctrl+q", "quit", "Quit"),
    ]
    CSS = """
    #left { width: 3fr; }
    #right { width: 2fr; }
    #filters { height: 3; }
    #search { width: 2fr; }
    #zone, #state, #severity { width: 1fr; }
    #fleet, #station, #queue, #details, #conversation-box, #activity { border: round $primary; }
    #fleet { height: 2fr; }
    #station { height: 1fr; }
    #queue { height: 1fr; }
    #details { height: auto; max-height: 12; }
    #conversation-box { height: 1fr; }
    #alerts { height: auto; max-height: 3; padding: 0 1; }
    #activity { height: 6; }
    FormScreen, ConfirmScreen, PickScreen, KeysScreen { align: center middle; }
    #form { width: 72; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    #problem { height: auto; }
    #buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, link_factory: LinkFactory, agent: str, clock: Callable[[], datetime] = utc_now, *,
                 desk: AlertDesk | None = None, notifier: Notifier | None = None, history: History | None = None,
                 export_folder: Path | None = None) -> None:
        super().__init__()
        self.agent = agent
        self.board = Board(agent)
        self.desk = desk or AlertDesk()
        self.history = history
        self._export_folder = export_folder
        self._notifier = notifier
        self.fleet = FleetIndex()
        self.intake = Intake(lambda: self.relay(self._wake), LOADING_QUIET_S)
        self.link = link_factory(self.intake.put, lambda *args: self.relay(self._link_state, *args))
        self._clock = clock
        self._selected: tuple[str, str] | None = None  # (station, ticket)
        self._queue_filter = QueueFilter.ALL
        self._queue_cells: dict[str, tuple[Any, ...]] = {}
        self._replies: dict[str, deque[tuple[datetime, str]]] = {}
        self._loading = True
        self._draining = False
        self._zone_list: list[str] = []
        self.applied = 0  # messages applied so far (benchmarks and tests wait on it)
        self.sub_title = f"{agent} · connecting to {self.link.address.url}"

    def compose(self) -> ComposeResult:
        """Fleet (filters, list, station detail) on the left; queue, ticket, conversation, chat on the right."""
        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                with Horizontal(id="filters"):
                    yield Input(placeholder="Search station or plate (ctrl+f)", id="search")
                    yield Select([], prompt="all zones", id="zone")
                    yield Select([(f.value, f) for f in StateFilter], value=StateFilter.ALL, allow_blank=False,
                                 id="state")
                    yield Select([(f.value, f) for f in SeverityFilter], value=SeverityFilter.ALL,
                                 allow_blank=False, id="severity")
                yield FleetList(self.fleet, station_row, id="fleet")
                yield Static(id="station")
            with Vertical(id="right"):
                yield DataTable(id="queue", cursor_type="row")
                yield Static(id="details")
                yield VerticalScroll(Static(id="conversation"), id="conversation-box")
                yield Input(placeholder="F2: message to the parker (enter sends, escape leaves)",
                            max_length=MAX_CHAT, id="chat")
        yield Static(id="alerts")
        yield RichLog(id="activity", max_lines=500, wrap=True, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        """Set up the queue, start the link and the one-second clock."""
        queue = self.query_one("#queue", DataTable)
        queue.add_columns(("Station", "station"), ("Waiting", "waiting"), ("State", "state"), ("", "offered"),
                          ("Plate", "plate"))
        for widget_id, title in (("#station", "Station"), ("#details", "Ticket"),
                                 ("#conversation-box", "Conversation"), ("#activity", "Activity")):
            self.query_one(widget_id).border_title = title
        self._titles()
        self.link.start()
        self.set_interval(TICK_S, self._tick)
        self._tick()

    def on_unmount(self) -> None:
        """Disconnect."""
        self.link.stop()

    # ---- from other threads ----

    def relay(self, call: Callable[..., None], *args: Any) -> None:
        """Run ``call(*args)`` on the UI thread, from any thread, without waiting; dropped once the app has closed.

        (``post_message`` is thread-safe and, unlike ``call_from_thread``, never blocks paho's
        thread, so stopping the link from the UI thread cannot deadlock with a callback.)
        """
        try:
            self.post_message(Relayed(call, *args))
        except RuntimeError:  # the event loop closed between the check and the hand-over
            log.debug("console closed; %s dropped", call.__name__)

    def on_relayed(self, message: Relayed) -> None:
        """Run a relayed call."""
        message.call(*message.args)

    def _wake(self) -> None:
        if not self._draining:
            self._draining = True
            self.set_timer(BATCH_DELAY_S, self._drain)

    def _drain(self) -> None:
        """Apply waiting messages for at most BATCH_BUDGET_S, then let keys in and come back for the rest."""
        started = time.monotonic()
        now = self._clock()
        signals: list[Signal] = []
        while time.monotonic() - started < BATCH_BUDGET_S:
            batch = self.intake.take(200)
            if not batch:
                break
            for topic, payload, retained in batch:
                if self.board.reads(topic):
                    signals.extend(self.board.apply(topic, payload, retained, now))
            self._record([(topic, payload) for topic, payload, _ in batch], now)
            self.applied += len(batch)
        self._show_changes(now)
        for signal in signals:
            self._signal(signal)
        if self.intake.backlog:
            self.call_later(self._drain)
        else:
            self._draining = False
            if self.intake.backlog:  # arrived between the last take and now, after its wake was ignored
                self._wake()

    def _record(self, messages: list[tuple[str, bytes]], now: datetime) -> None:
        """Into the history; a history that fails is closed and said, and the console goes on without it."""
        if self.history is None:
            return
        try:
            self.history.apply_many(messages, now)
        except HistoryUnusable as exc:
            self._history_failed(exc)

    def _history_failed(self, exc: HistoryUnusable) -> None:
        log.error("history off: %s", exc)
        self._tell(f"{exc}. Metrics are off until the console restarts.", "History unusable", "error")
        if self.history is not None:
            try:
                self.history.close()
            except HistoryUnusable:
                log.debug("history: close failed as well")
        self.history = None

    def _link_state(self, connected: bool, text: str) -> None:
        self.intake.subscribed(connected)
        self.sub_title = f"{self.agent} · {text}"
        self.note(text, "" if connected else "yellow")
        if connected:
            self._loading = True
            self._titles()

    def _command_reply(self, station: str, command: str, reply: dict[str, Any]) -> None:
        summary = describe_reply(command, reply)
        self._replies.setdefault(station, deque(maxlen=MAX_REPLIES)).appendleft((self._clock(), f"{command}: {summary}"))
        self._tell(summary, f"{command} at {station}" + ("" if reply.get("ok") else " refused"),
                   "information" if reply.get("ok") else "error")
        if self.query_one("#fleet", FleetList).station == station:
            self._show_station()

    # ---- drawing ----

    def _show_changes(self, now: datetime) -> None:
        stations, tickets = self.board.take_changes()
        if stations:
            views = [view for station in stations if (view := self.board.station(station)) is not None]
            self._resolve_alerts(views)
            self.fleet.update(views)
            self.query_one("#fleet", FleetList).rows_changed()
            self._zones()
            if self.query_one("#fleet", FleetList).station in stations:
                self._show_station()
        if tickets:
            self._follow_tickets(tickets, now)
        if stations or tickets:
            self._titles()

    def _tick(self) -> None:
        try:
            now = self._clock()
            if self._loading and self.intake.loaded():
                self._loading = False
                self.note(f"fleet loaded: {self.fleet.total:,} stations, {self.applied:,} messages")
            self._titles()
            self._show_queue(now)
            self._show_station()
            self._ring(now)
        except NoMatches:  # a timer firing while the app closes: its widgets are already gone
            log.debug("console closing: tick skipped")

    def _titles(self) -> None:
        counts = self.fleet.counts()
        parts = [f"Fleet {len(self.fleet):,}" + (f" of {self.fleet.total:,}" if len(self.fleet) != self.fleet.total
                                                 else "")]
        parts += [f"{counts[s]:,} {s.label}" for s in (Standing.LOST, Standing.CRITICAL, Standing.OUT_OF_SERVICE,
                                                         Standing.OFFLINE, Standing.WARNING) if counts.get(s)]
        if self._loading:
            parts.append("LOADING…")
        self.query_one("#fleet").border_title = " · ".join(parts)

    def _zones(self) -> None:
        zones = self.fleet.zones()
        if zones != self._zone_list:
            self._zone_list = zones
            select = self.query_one("#zone", Select)
            value = select.value
            select.set_options([(zone, zone) for zone in zones])
            if isinstance(value, str) and value in zones:
                select.value = value

    def _show_queue(self, now: datetime) -> None:
        views = [t for t in self.board.queue(now) if QUEUE_TESTS[self._queue_filter](t)]
        if self._selected is None:  # nothing on the right: the oldest call waiting
            oldest = next((t for t in views if t.state is TicketState.WAITING), None)
            self._selected = (oldest.station, oldest.ticket) if oldest else None
        table = self.query_one("#queue", DataTable)
        rows = [(t.ticket, ticket_cells(t)) for t in views]
        if [key for key, _ in rows] == list(self._queue_cells):
            for key, cells in rows:
                for column, value, old in zip(list(table.columns), cells, self._queue_cells[key]):
                    if value != old:
                        table.update_cell(key, column, value, update_width=True)
                self._queue_cells[key] = cells
        else:
            table.clear()
            self._queue_cells.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
                self._queue_cells[key] = cells
            if self._selected and self._selected[1] in self._queue_cells:
                table.move_cursor(row=list(self._queue_cells).index(self._selected[1]))
        waiting = sum(1 for t in views if t.state is TicketState.WAITING)
        overdue = sum(1 for t in views if t.overdue)
        table.border_title = f"Help queue: {self._queue_filter.value} (ctrl+o) · {waiting} waiting" + \
            (f" · {overdue} overdue" if overdue else "")
        self._show_ticket()

    def _show_ticket(self) -> None:
        view = self._selected_view()
        station = self.board.station(view.station) if view else None
        self.query_one("#details", Static).update(ticket_details(view, station))
        self.query_one("#conversation", Static).update(
            conversation(self.board.conversation(view.ticket), self.agent) if view else Text())

    def _show_station(self) -> None:
        station = self.query_one("#fleet", FleetList).station
        view = self.board.station(station) if station else None
        pane = self.query_one("#station", Static)
        pane.border_title = f"Station {station}" if station else "Station"
        pane.update(station_detail(view, self._clock(), self._calls(station),
                                   list(self._replies.get(station or "", ())),
                                   self.board.plates_at(station) if station else []))

    def _calls(self, station: str | None) -> list[tuple[datetime, str]]:
        """The station's last help calls, from the history."""
        if station is None or self.history is None:
            return []
        try:
            calls = self.history.recent_calls(station, MAX_CALLS_SHOWN)
        except HistoryUnusable as exc:
            self._history_failed(exc)
            return []
        return [(call.opened or call.closed or self._clock(), call_summary(call)) for call in calls]

    def _follow_tickets(self, tickets: set[str], now: datetime) -> None:
        """A selected ticket that closed leaves the pane: the next waiting call takes its place."""
        if self._selected and self._selected[1] in tickets:
            view = self._selected_view()
            if view is not None and view.state is TicketState.CLOSED:
                self.note(f"ticket at {view.station} closed: {view.outcome or 'no outcome'}")
                self._selected = None
                self._select_next(now, focus=False)
        self._show_queue(now)

    # ---- alerts ----

    def _signal(self, signal: Signal) -> None:
        """Into the alert desk; a call offered to this console is brought forward unless the agent is in a call."""
        self.desk.add(signal)
        if signal.kind is AlertKind.NEW_CALL and signal.subject and not self._in_conversation():
            self._selected = (signal.station, signal.subject)
            self._show_queue(self._clock())
            self.query_one("#queue", DataTable).focus()

    def _resolve_alerts(self, views: list[StationView]) -> None:
        """Stations back online and critical faults cleared stop their alerts."""
        for view in views:
            if view.state != "lost":
                self.desk.resolve(AlertKind.STATION_LOST, view.station, None)
            old = self.fleet.view(view.station)
            if old is not None:
                still = {f.name for f in view.faults if f.severity == "critical"}
                for gone in {f.name for f in old.faults if f.severity == "critical"} - still:
                    self.desk.resolve(AlertKind.CRITICAL_FAULT, view.station, gone)

    def _ring(self, now: datetime) -> None:
        """Escalate calls waiting too long, show what is due, ring the bell and the desktop for what rings."""
        calls = [CallState(t.ticket, t.station, t.opened, t.state is TicketState.WAITING, t.overdue)
                 for t in self.board.queue(now)]
        for signal in self.desk.escalations(calls, now):
            self.desk.add(signal)
        notices = self.desk.due(now)
        for notice in notices:
            if notice.rings:
                self._tell(notice.message, notice.title, notice.severity.value)
            else:
                self.note(f"{notice.title}: {notice.message}", ALERT_STYLE.get(notice.severity.value, ""))
        if any(notice.rings for notice in notices):
            self.bell()
            if self._notifier is not None:
                self._notifier.ring(notices)
        self._alert_bar()

    def _alert_bar(self) -> None:
        count = self.desk.unacknowledged
        bar = self.query_one("#alerts", Static)
        if not count:
            bar.update(Text("No unacknowledged alert.", style="dim"))
            return
        latest = self.desk.open_notices()[:2]
        text = Text(f"🔔 {count} unacknowledged (ctrl+g acknowledges): ", style="bold red")
        text.append(" | ".join(f"{n.title}: {n.message}" for n in latest))
        bar.update(text)

    def _in_conversation(self) -> bool:
        view = self._selected_view()
        return view is not None and view.mine and view.state.open

    # ---- the agent's actions ----

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a dialog is open, only it and quitting take keys: an F-key cannot act behind it."""
        return action == "quit" or len(self.screen_stack) == 1

    def action_keys(self) -> None:
        """Show every key."""
        self.push_screen(KeysScreen(self.BINDINGS))

    def action_chat(self) -> None:
        """Into the chat with the selected ticket's parker."""
        self.query_one("#chat", Input).focus()

    def action_search(self) -> None:
        """Into the fleet search."""
        self.query_one("#search", Input).focus()

    def action_focus_queue(self) -> None:
        """Back to the help queue (from the chat or a filter)."""
        self.query_one("#queue", DataTable).focus()

    def action_queue_filter(self) -> None:
        """All open tickets, those offered to me, the overdue ones."""
        members = list(QueueFilter)
        self._queue_filter = members[(members.index(self._queue_filter) + 1) % len(members)]
        self._show_queue(self._clock())

    def action_next_call(self) -> None:
        """Select the oldest call nobody has accepted yet."""
        if not self._select_next(self._clock(), focus=True):
            self.notify("No call is waiting.")

    def _select_next(self, now: datetime, focus: bool) -> bool:
        waiting = [t for t in self.board.queue(now) if t.state is TicketState.WAITING]
        if not waiting:
            self._selected = None
            self._show_queue(now)
            return False
        self._selected = (waiting[0].station, waiting[0].ticket)
        self._show_queue(now)
        self.query_one("#fleet", FleetList).select(waiting[0].station)
        if focus:
            self.query_one("#queue", DataTable).focus()
        return True

    def action_accept(self) -> None:
        """Ask the station to connect the selected ticket's parker to this agent; the chat gets the focus."""
        view = self._ticket_or_hint()
        if view is None:
            return
        if view.mine:
            self.notify("This ticket is already yours.")
            return
        if self._send(lambda: self.link.to_parker(view.station, view.ticket, "accept")):
            self.board.sent_accept(view.ticket)
            self.note(f"accept sent for {view.station}")
            self.query_one("#chat", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the chat input sends its text to the selected ticket's parker."""
        if event.input.id != "chat":
            return
        words = event.value.strip()
        view = self._ticket_or_hint()
        if not words or view is None:
            return
        if self._send(lambda: self.link.to_parker(view.station, view.ticket, "message", text=words)):
            self.board.sent_message(view.ticket, words, self._clock())
            event.input.value = ""
            self._show_ticket()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing in the search filters the fleet by station and plate."""
        if event.input.id == "search":
            self._filter()

    def on_select_changed(self, event: Select.Changed) -> None:
        """A filter changed."""
        if event.select.id in ("zone", "state", "severity"):
            self._filter()

    def _filter(self) -> None:
        query = self.query_one("#search", Input).value.strip()
        zone = self.query_one("#zone", Select).value
        state = self.query_one("#state", Select).value
        severity = self.query_one("#severity", Select).value
        hits = None
        if query:
            wanted = query.upper()
            hits = frozenset(s for s in self.board.station_ids() if wanted in s.upper()) | \
                self.board.stations_with_plate(query)
        self.fleet.set_filter(FleetFilter(zone if isinstance(zone, str) else None,
                                          state if isinstance(state, StateFilter) else StateFilter.ALL,
                                          severity if isinstance(severity, SeverityFilter) else SeverityFilter.ALL,
                                          hits))
        self.query_one("#fleet", FleetList).rows_changed()
        self._titles()

    def on_fleet_list_highlighted(self, _event: FleetList.Highlighted) -> None:
        """The fleet's cursor moved: show that station."""
        self._show_station()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving through the queue selects a ticket (only when the agent moves, not when rows change)."""
        if event.data_table.id == "queue" and event.data_table.has_focus:
            self._select(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter or a click on a queue row selects its ticket."""
        if event.data_table.id == "queue":
            self._select(event.row_key.value)

    def action_courtesy(self) -> None:
        """Grant the selected ticket's parker a free session (a form, confirmed with ctrl+y)."""
        view = self._ticket_or_hint()
        if view is None:
            return
        plate = view.context.plate if view.context and view.context.plate else ""
        fields = [Field("plate", "Plate", plate, check=length_check(2, MAX_PLATE)),
                  Field("minutes", "Minutes", str(COURTESY_MINUTES), check=number_check(1, MAX_COURTESY_MINUTES)),
                  Field("reason", "Reason", COURTESY_REASON, check=length_check(1, MAX_NOTICE))]

        def granted(values: dict[str, str] | None) -> None:
            if values is not None:
                self._command(view.station, "courtesy", {"plate": values["plate"].upper(),
                                                         "minutes": int(values["minutes"]),
                                                         "reason": values["reason"], "ticket": view.ticket})

        self.push_screen(FormScreen(f"Grant a courtesy session at {view.station}", fields, "Grant"), granted)

    def action_cancel_journey(self) -> None:
        """End the selected ticket's parker's journey on the station (confirmed; never during a payment)."""
        view = self._ticket_or_hint()
        if view is None:
            return

        def confirmed(values: dict[str, str] | None) -> None:
            if values is not None:
                self._command(view.station, "journey/cancel",
                              {"reason": f"ended by agent {self.agent}", "ticket": view.ticket})

        self.push_screen(ConfirmScreen(f"End the parker's journey at {view.station}?",
                                       "The station returns to Welcome and forgets the plate; the call goes on.",
                                       "End journey"), confirmed)

    def action_notice(self) -> None:
        """Set or clear (empty text) the notice parkers see at a station (confirmed with ctrl+y)."""
        station = self._target_station()
        if station is None:
            self.notify("Select a station or a ticket first.", severity="warning")
            return

        def chosen(values: dict[str, str] | None) -> None:
            if values is not None:
                self._command(station, "notice", {"text": values["text"] or None})

        self.push_screen(FormScreen(f"Notice for parkers at {station} (empty clears it)",
                                    [Field("text", "Text", check=length_check(0, MAX_NOTICE))], "Set notice"), chosen)

    def action_resolve(self) -> None:
        """Close the selected ticket: an outcome and closing words shown to the parker (confirmed with ctrl+y)."""
        view = self._ticket_or_hint()
        if view is None:
            return

        def resolved(values: dict[str, str] | None) -> None:
            if values is not None and self._send(lambda: self.link.to_parker(
                    view.station, view.ticket, "resolve", text=values["text"], outcome=values["outcome"])):
                self.note(f"resolve ({values['outcome']}) sent for {view.station}")

        self.push_screen(FormScreen(f"Resolve the ticket at {view.station}",
                                    [Field("outcome", "Outcome", OUTCOMES[0], choices=OUTCOMES),
                                     Field("text", "Closing words for the parker", check=length_check(0, MAX_CHAT))],
                                    "Resolve"), resolved)

    def action_crew(self) -> None:
        """A command for a station: mode, restart, rebirth, the card terminal, doctor."""
        station = self._target_station()
        if station is None:
            self.notify("Select a station or a ticket first.", severity="warning")
            return

        def picked(index: int | None) -> None:
            if index is not None:
                self._crew(station, CREW_COMMANDS[index])

        self.push_screen(PickScreen(f"Command for {station}",
                                    [Option(command.label) for command in CREW_COMMANDS]), picked)

    def _crew(self, station: str, command: CrewCommand) -> None:
        def send(values: dict[str, str] | None) -> None:
            if values is not None:
                self._command(station, command.name, command.arguments(values))

        if command.fields:
            self.push_screen(FormScreen(f"{command.label} at {station}", list(command.fields), "Send"), send)
        elif command.changes_station:
            self.push_screen(ConfirmScreen(f"{command.label} at {station}?", command.detail, "Send"), send)
        else:
            send({})

    def action_metrics(self) -> None:
        """Help figures and time to repair from the history, with the CSV export."""
        if self.history is None or self._export_folder is None:
            self.notify("No history: metrics are off (see the activity pane).", severity="warning")
            return
        self.push_screen(MetricsScreen(self.history, self._export_folder, self._clock))

    def action_acknowledge(self) -> None:
        """Acknowledge every alert shown so far; they stop repeating at night."""
        count = self.desk.acknowledge(None)
        self.note(f"{count} alert{'s' if count != 1 else ''} acknowledged by {self.agent}" if count
                  else "no alert to acknowledge")
        self._alert_bar()

    # ---- helpers ----

    def _select(self, ticket_id: str | None) -> None:
        view = next((t for t in self.board.queue(self._clock()) if t.ticket == ticket_id), None)
        if view is not None:
            self._selected = (view.station, view.ticket)
            self._show_ticket()

    def _selected_view(self) -> TicketView | None:
        return None if self._selected is None else self.board.ticket(*self._selected, self._clock())

    def _ticket_or_hint(self) -> TicketView | None:
        view = self._selected_view()
        if view is None:
            self.notify("Select a ticket in the help queue first (F4: the next waiting call).", severity="warning")
        elif view.state is TicketState.CLOSED:
            self.notify("This ticket is closed.", severity="warning")
            return None
        return view

    def _target_station(self) -> str | None:
        """The fleet's station when the fleet side has the focus or no ticket is selected, else the ticket's."""
        fleet = self.query_one("#fleet", FleetList)
        view = self._selected_view()
        focused = self.focused
        on_fleet = focused is not None and focused.id in ("fleet", "search", "zone", "state", "severity")
        if on_fleet or view is None:
            return fleet.station
        return view.station

    def _send(self, send: Callable[[], object]) -> bool:
        try:
            send()
        except NotConnected as exc:
            self._tell(str(exc), "Not sent", "error")
            return False
        return True

    def _command(self, station: str, name: str, args: dict[str, Any]) -> None:
        on_reply = functools.partial(self.relay, self._command_reply, station, name)  # on paho's or a timer's thread
        if self._send(lambda: self.link.command(station, name, args, on_reply)):
            self.note(f"{name} sent to {station}")

    def _tell(self, message: str, title: str, severity: str) -> None:
        self.notify(message, title=title, severity=severity, markup=False)  # type: ignore[arg-type]
        self.note(f"{title}: {message}", ALERT_STYLE.get(severity, ""))

    def note(self, text: str, style: str = "") -> None:
        """Add a line to the activity pane (local time)."""
        for pane in self.query("#activity").results(RichLog):  # none once the app is closing
            pane.write(Text(f"{local(self._clock())} {text}", style=style))


class _ActivityHandler(logging.Handler):
    """Console warnings (a station's malformed message, a refused subscription) into the activity pane."""

    def __init__(self, app: ConsoleApp) -> None:
        super().__init__(logging.WARNING)
        self._app = app

    def emit(self, record: logging.LogRecord) -> None:
        """Relay the formatted record to the UI thread."""
        self._app.relay(self._app.note, clean(record.getMessage()), "yellow")  # may quote a station's topic


# ---- command line ----

def main(args: argparse.Namespace) -> int:
    """Run the console until the agent quits; 2 for bad options or without Textual."""
    if TEXTUAL_MISSING is not None:
        sys.stderr.write(f"kiosk console: {INSTALL_HINT} ({TEXTUAL_MISSING})\n")
        return 2

    def make_link(on_message: Callable[[str, bytes, bool], None], on_state: Callable[[bool, str], None]) -> AgentLink:
        return AgentLink(args.broker, args.agent, tls=args.tls, ca=args.ca, cert=args.cert, key=args.key,
                         username=args.username, password_file=args.password_file, on_message=on_message,
                         on_state=on_state)

    history_file = history_path(args)
    history, history_problem = open_history(history_file)
    try:
        notifier = DesktopNotifier()
        app = ConsoleApp(make_link, args.agent, notifier=notifier, history=history,
                         export_folder=history_file.parent / "exports")
        handlers: list[logging.Handler] = [_ActivityHandler(app)]
        if args.log_file:
            handlers.append(logging.FileHandler(args.log_file, encoding="utf-8"))
            handlers[-1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"kiosk console: {exc}\n")
        if history is not None:
            history.close()
        return 2
    if history_problem:
        app.call_after_refresh(app.note, f"history off: {history_problem}; metrics are off", "bold red")
    root = logging.getLogger()
    saved, saved_level = root.handlers, root.level
    # Nothing may write to the terminal while the UI owns it (paho's thread logs too).
    root.handlers = handlers
    if args.log_file:
        root.setLevel(logging.INFO)
    try:
        app.run()
    finally:
        root.handlers, root.level = saved, saved_level
        for handler in handlers:
            handler.close()
        notifier.close()
        if app.history is not None:
            app.history.close()
    return 0


def open_history(path: Path) -> tuple[History | None, str | None]:
    """The console's history file (its folder made); None and why when it cannot be used: the console runs on."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return History(path), None
    except (HistoryUnusable, OSError) as exc:
        return None, f"{path}: {exc}"
