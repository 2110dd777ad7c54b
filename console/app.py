"""The agents' console: a Textual terminal UI over console.board and console.agent_link (``kiosk console``)."""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, RichLog, Select, Static

from console.agent_link import AgentLink
from console.alerting import Alerting
from console.alerts import AlertDesk, AlertKind, Signal
from console.board import Board
from console.fleet import FleetFilter, FleetIndex, SeverityFilter, StateFilter
from console.fleet_list import FleetList
from console.history import History, HistoryUnusable
from console.intake import Intake
from console.metrics_screen import MetricsScreen
from console.notify import Notifier
from console.panes import call_summary, conversation, local, station_detail, station_row, ticket_cells, ticket_details
from console.screens import KeysScreen, TextPane
from console.station_actions import MAX_CHAT, StationActions
from console.views import QUEUE_TESTS, QueueFilter, Standing, TicketState, TicketView

log = logging.getLogger(__name__)

BATCH_DELAY_S = 0.1  # messages arriving within this are applied and shown together (a burst: 10 redraws a second)
BATCH_BUDGET_S = 0.02  # the UI thread applies messages for at most this long before it reads keys again
LOADING_QUIET_S = 0.75  # no retained message for this long after subscribing: the fleet is loaded
TICK_S = 1.0  # queue times, escalations and due alerts
MAX_CALLS_SHOWN = 3  # the last help calls in the station pane
ALERT_STYLE = {"error": "bold red", "warning": "yellow", "information": ""}

LinkFactory = Callable[[Callable[[str, bytes, bool], None], Callable[[bool, str], None]], AgentLink]


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
    #details { height: 12; }
    #conversation-box { height: 1fr; }
    #alerts { height: 2; padding: 0 1; }
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
        self.alerting = Alerting(desk or AlertDesk(), self.board, notifier)
        self.history = history
        self.requests = StationActions(self)
        self._export_folder = export_folder
        self.fleet = FleetIndex()
        self.intake = Intake(lambda: self.relay(self._wake), LOADING_QUIET_S)
        self.link = link_factory(self.intake.put, lambda *args: self.relay(self._link_state, *args))
        self.clock = clock
        self._selected: tuple[str, str] | None = None  # (station, ticket)
        self._queue_filter = QueueFilter.ALL
        self._queue_cells: dict[str, tuple[Any, ...]] = {}
        self.replies: dict[str, deque[tuple[datetime, str]]] = {}
        self._loading = True
        self._retained_applied = 0
        self._draining = False
        self._zone_list: list[str] = []
        self._shown: dict[str, Text] = {}
        self.applied = 0  # messages applied so far (benchmarks and tests wait on it)
        self.sub_title = f"{agent} · connecting to {self.link.address.url}"

    @property
    def selected(self) -> tuple[str, str] | None:
        """The selected ticket as (station, ticket), if any."""
        return self._selected

    @property
    def loading(self) -> bool:
        """True until the broker has sent the fleet's retained state (after each connection)."""
        return self._loading

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
                yield TextPane(id="station")
            with Vertical(id="right"):
                yield DataTable(id="queue", cursor_type="row")
                yield TextPane(id="details")
                yield VerticalScroll(Static(id="conversation"), id="conversation-box")
                yield Input(placeholder="F2: message to the parker (enter sends, escape leaves)",
                            max_length=MAX_CHAT, id="chat")
        yield TextPane(id="alerts")
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
        """Run a relayed call (skipped once the app closes: its widgets are gone)."""
        try:
            message.call(*message.args)
        except NoMatches:
            log.debug("console closing: %s skipped", getattr(message.call, "__name__", message.call))

    def _wake(self) -> None:
        if not self._draining:
            self._draining = True
            self.set_timer(BATCH_DELAY_S, self._drain)

    def _drain(self) -> None:
        """Apply waiting messages for at most BATCH_BUDGET_S, then let keys in and come back for the rest."""
        try:
            self._apply_batch()
        except NoMatches:  # a timer firing while the app closes: its widgets are already gone
            log.debug("console closing: messages left unapplied")

    def _apply_batch(self) -> None:
        started = time.monotonic()
        now = self.clock()
        signals: list[Signal] = []
        while time.monotonic() - started < BATCH_BUDGET_S:
            batch = self.intake.take(200)
            if not batch:
                break
            for topic, payload, retained in batch:
                self._retained_applied += retained
                if self.board.reads(topic):
                    signals.extend(self.board.apply(topic, payload, retained, now))
            self._record([(topic, payload) for topic, payload, _ in batch], now)
            self.applied += len(batch)
        self._show_changes(now)
        for signal in signals:
            self._signal(signal)
        self.alerting.resolve_over(signals)
        self._check_loaded()
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
        self.tell(f"{exc}. Metrics are off until the console restarts.", "History unusable", "error")
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

    # ---- drawing ----

    def _show_changes(self, now: datetime) -> None:
        stations, tickets, telemetry = self.board.take_changes()
        if self.query_one("#fleet", FleetList).station in telemetry:
            self.show_station()
        if stations:
            views = [view for station in stations if (view := self.board.station(station)) is not None]
            self.alerting.resolve_changed(views, self.fleet.view)
            self.fleet.update(views)
            if self.fleet.filter.stations is not None:  # a search: stations that arrived or changed may match now
                self._filter(rows=False)
            self.query_one("#fleet", FleetList).rows_changed()
            self._zones()
            if self.query_one("#fleet", FleetList).station in stations:
                self.show_station()
        if tickets:
            self._follow_tickets(tickets, now)
        if stations or tickets:
            self._titles()

    def _tick(self) -> None:
        try:
            now = self.clock()
            self._check_loaded()
            self._titles()
            self._show_queue(now)
            self.show_station()
            self._ring(now)
            self.board.flush_warnings(now)
        except NoMatches:  # a timer firing while the app closes: its widgets are already gone
            log.debug("console closing: tick skipped")

    def _check_loaded(self) -> None:
        if self._loading and self.intake.loaded(self._retained_applied):
            self._loading = False
            self.note(f"fleet loaded: {self.fleet.total:,} stations, {self.applied:,} messages")
            self._titles()

    def _titles(self) -> None:
        counts = self.fleet.counts()
        parts = [f"Fleet {len(self.fleet):,}" + (f" of {self.fleet.total:,}" if len(self.fleet) != self.fleet.total
                                                 else "")]
        parts += [f"{counts[s]:,} {s.label}" for s in (Standing.LOST, Standing.CRITICAL, Standing.OUT_OF_SERVICE,
                                                         Standing.OFFLINE, Standing.WARNING) if counts.get(s)]
        if self._loading:
            parts.append("LOADING…")
        self._title("#fleet", " · ".join(parts))

    def _zones(self) -> None:
        select = self.query_one("#zone", Select)
        value = select.value
        zones = sorted(set(self.fleet.zones()) | ({value} if isinstance(value, str) else set()))  # the chosen one stays
        if zones != self._zone_list and not select.expanded:  # not while the agent is choosing in the list
            self._zone_list = zones
            select.set_options([(escape(zone), zone) for zone in zones])
            if isinstance(value, str):
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
                    if value != old:  # the column grows if it must; a ticking time never changes its width
                        table.update_cell(key, column, value, update_width=value.cell_len > old.cell_len)
                self._queue_cells[key] = cells
        else:
            table.clear()
            self._queue_cells.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
                self._queue_cells[key] = cells
        if self._selected and self._selected[1] in self._queue_cells:
            row = list(self._queue_cells).index(self._selected[1])
            if table.cursor_row != row:
                table.move_cursor(row=row)
        waiting = sum(1 for t in views if t.state is TicketState.WAITING)
        overdue = sum(1 for t in views if t.overdue)
        self._title("#queue", f"Help queue: {self._queue_filter.value} (ctrl+o) · {waiting} waiting" + \
            (f" · {overdue} overdue" if overdue else ""))
        self.show_ticket()

    def show_ticket(self) -> None:
        """The selected ticket's details and conversation."""
        view = self._selected_view()
        station = self.board.station(view.station) if view else None
        self._show("#details", ticket_details(view, station))
        self._show("#conversation", conversation(self.board.conversation(view.ticket), self.agent) if view else Text())

    def show_station(self) -> None:
        """The fleet cursor's station in the station pane."""
        station = self.query_one("#fleet", FleetList).station
        view = self.board.station(station) if station else None
        self._title("#station", f"Station {escape(station)}" if station else "Station")
        self._show("#station", station_detail(view, self.clock(), self._calls(station),
                                   list(self.replies.get(station or "", ())),
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
        return [(call.opened or call.closed or self.clock(), call_summary(call)) for call in calls]

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
        self.alerting.desk.add(signal)
        if signal.kind is AlertKind.NEW_CALL and signal.subject and not self._in_conversation():
            self._selected = (signal.station, signal.subject)
            self._show_queue(self.clock())
            if not isinstance(self.focused, Input):  # never take the keys from someone typing
                self.query_one("#queue", DataTable).focus()

    def _ring(self, now: datetime) -> None:
        """What is due: ringing notices pop up with the bell, the others go to Activity."""
        notices = self.alerting.due(self.board.queue(now), now)
        for notice in notices:
            if notice.rings:
                self.tell(notice.message, notice.title, notice.severity.value)
            else:
                self.note(f"{notice.title}: {notice.message}", ALERT_STYLE.get(notice.severity.value, ""))
        if any(notice.rings for notice in notices):
            self.bell()
        self._show("#alerts", self.alerting.bar())

    def _show(self, widget_id: str, text: Text) -> None:
        """Update a pane only when what it says changed: an unchanged update still costs a redraw."""
        if self._shown.get(widget_id) != text:
            self._shown[widget_id] = text
            pane = self.query_one(widget_id)
            if isinstance(pane, TextPane):
                pane.show(text)
            else:
                self.query_one(widget_id, Static).update(text)

    def _title(self, widget_id: str, title: str) -> None:
        widget = self.query_one(widget_id)
        if widget.border_title != title:
            widget.border_title = title

    def _in_conversation(self) -> bool:
        """Talking to a parker, or waiting for the station to connect this agent's accept."""
        view = self._selected_view()
        return view is not None and view.state.open and (view.mine or self.board.accepting(view.ticket))

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
        self._show_queue(self.clock())

    def action_next_call(self) -> None:
        """Select the oldest call nobody has accepted yet."""
        if not self._select_next(self.clock(), focus=True):
            self.notify("No call is waiting.")

    def _select_next(self, now: datetime, focus: bool) -> bool:
        waiting = [t for t in self.board.queue(now) if t.state is TicketState.WAITING]
        if not waiting:
            self._selected = None
            self._show_queue(now)
            return False
        self._selected = (waiting[0].station, waiting[0].ticket)
        self._show_queue(now)
        if focus:  # the agent asked for it: the fleet follows; a call closing on its own moves nothing of theirs
            self.query_one("#fleet", FleetList).select(waiting[0].station)
            self.query_one("#queue", DataTable).focus()
        return True

    def action_accept(self) -> None:
        """Ask the station to connect the selected ticket's parker to this agent; the chat gets the focus."""
        self.requests.accept()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the chat input sends its text to the selected ticket's parker."""
        if event.input.id == "chat":
            self.requests.chat(event)

    def action_courtesy(self) -> None:
        """Grant the selected ticket's parker a free session (a form, confirmed with ctrl+y)."""
        self.requests.courtesy()

    def action_cancel_journey(self) -> None:
        """End the selected ticket's parker's journey (a question, confirmed with ctrl+y)."""
        self.requests.cancel_journey()

    def action_notice(self) -> None:
        """Set or clear the notice parkers see at a station (confirmed with ctrl+y)."""
        self.requests.notice()

    def action_resolve(self) -> None:
        """Close the selected ticket with an outcome and closing words (confirmed with ctrl+y)."""
        self.requests.resolve()

    def action_crew(self) -> None:
        """A command for a station: mode, restart, end of day (confirmed), terminal status, doctor, rebirth."""
        self.requests.crew()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing in the search filters the fleet by station and plate."""
        if event.input.id == "search":
            self._filter()

    def on_select_changed(self, event: Select.Changed) -> None:
        """A filter changed."""
        if event.select.id in ("zone", "state", "severity"):
            self._filter()

    def _filter(self, rows: bool = True) -> None:
        """Apply the search and the filters; ``rows`` False when the caller redraws the fleet itself."""
        query = self.query_one("#search", Input).value.strip()
        zone = self.query_one("#zone", Select).value
        state = self.query_one("#state", Select).value
        severity = self.query_one("#severity", Select).value
        hits = self.board.search(query) if query else None
        self.fleet.set_filter(FleetFilter(zone if isinstance(zone, str) else None,
                                          state if isinstance(state, StateFilter) else StateFilter.ALL,
                                          severity if isinstance(severity, SeverityFilter) else SeverityFilter.ALL,
                                          hits))
        if rows:
            self.query_one("#fleet", FleetList).rows_changed()
            self._titles()

    def on_fleet_list_highlighted(self, _event: FleetList.Highlighted) -> None:
        """The fleet's cursor moved: show that station."""
        self.show_station()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving through the queue selects a ticket (only when the agent moves, not when rows change)."""
        if event.data_table.id == "queue" and event.data_table.has_focus and _current(event):
            self._select(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter or a click on a queue row selects its ticket."""
        if event.data_table.id == "queue" and _current(event):
            self._select(event.row_key.value)

    def action_metrics(self) -> None:
        """Help figures and time to repair from the history, with the CSV export."""
        if self.history is None or self._export_folder is None:
            self.notify("No history: metrics are off (see the activity pane).", severity="warning")
            return
        self.push_screen(MetricsScreen(self.history, self._export_folder, self.clock))

    def action_acknowledge(self) -> None:
        """Acknowledge every alert shown so far; they stop repeating at night."""
        count = self.alerting.desk.acknowledge(None)
        self.note(f"{count} alert{'s' if count != 1 else ''} acknowledged by {self.agent}" if count
                  else "no alert to acknowledge")
        self._show("#alerts", self.alerting.bar())

    # ---- helpers ----

    def _select(self, ticket_id: str | None) -> None:
        view = next((t for t in self.board.queue(self.clock()) if t.ticket == ticket_id), None)
        if view is not None:
            self._selected = (view.station, view.ticket)
            self.show_ticket()

    def _selected_view(self) -> TicketView | None:
        return None if self._selected is None else self.board.ticket(*self._selected, self.clock())

    def ticket_or_hint(self) -> TicketView | None:
        """The selected open ticket; None, and a hint for the agent, without one."""
        view = self._selected_view()
        if view is None:
            self.notify("Select a ticket in the help queue first (F4: the next waiting call).", severity="warning")
        elif view.state is TicketState.CLOSED:
            self.notify("This ticket is closed.", severity="warning")
            return None
        return view

    def target_station(self) -> str | None:
        """The fleet's station when the fleet side has the focus or no ticket is selected, else the ticket's."""
        fleet = self.query_one("#fleet", FleetList)
        view = self._selected_view()
        focused = self.focused
        on_fleet = focused is not None and focused.id in ("fleet", "search", "zone", "state", "severity")
        if on_fleet or view is None:
            return fleet.station
        return view.station

    def tell(self, message: str, title: str, severity: str) -> None:
        """A notification that pops up, also written into Activity."""
        self.notify(message, title=title, severity=severity, markup=False)  # type: ignore[arg-type]
        self.note(f"{title}: {message}", ALERT_STYLE.get(severity, ""))

    def note(self, text: str, style: str = "") -> None:
        """Add a line to the activity pane (local time)."""
        for pane in self.query("#activity").results(RichLog):  # none once the app is closing
            pane.write(Text(f"{local(self.clock())} {text}", style=style))


def _current(event: DataTable.RowHighlighted | DataTable.RowSelected) -> bool:
    """The event is about a row, and the cursor is still on it (not an event left over from an earlier change)."""
    return event.row_key is not None and event.row_key.value is not None \
        and event.cursor_row == event.data_table.cursor_row >= 0
