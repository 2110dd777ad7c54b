"""The agents' console: a Textual terminal UI over console.board and console.agent_link (``kiosk console``)."""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from console.agent_link import AgentLink, NotConnected
from console.board import Board, StationView, TicketView, clean

try:
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.containers import Horizontal, Vertical, VerticalScroll
    from textual.coordinate import Coordinate
    from textual.css.query import NoMatches
    from textual.message import Message
    from textual.screen import ModalScreen
    from textual.widgets import Button, DataTable, Footer, Header, Input, Label, RichLog, Select, Static
except ImportError as exc:  # the console extra is not installed: main() says so, the classes below stay unused
    TEXTUAL_MISSING: ImportError | None = exc
    if not TYPE_CHECKING:  # type-checked as installed (the console extra), so only at run time
        App = Message = ModalScreen = object
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
REFRESH_DELAY_S = 0.05  # messages arriving together are shown together
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
STATE_STYLE = {"online": "green", "offline": "yellow", "lost": "bold red", "unknown": "dim"}
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


# ---- a small form over the console ----

@dataclass(frozen=True)
class Field:
    """One field of a FormScreen: an Input, or a Select when ``choices`` are given; ``check`` names a problem."""

    name: str
    label: str
    value: str = ""
    choices: tuple[str, ...] = ()
    check: Callable[[str], str | None] | None = None


class FormScreen(ModalScreen):
    """A modal form; dismissed with ``{name: value}`` (stripped) on OK or enter, None on escape or Cancel."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[Field]) -> None:
        super().__init__()
        self._title, self._fields = title, fields

    def compose(self) -> ComposeResult:
        """The title, one labelled widget per field, a line for problems, OK and Cancel."""
        with Vertical(id="form"):
            yield Label(Text(self._title, style="bold"))
            for field in self._fields:
                yield Label(Text(field.label))
                if field.choices:
                    yield Select([(c, c) for c in field.choices], value=field.value or field.choices[0],
                                 allow_blank=False, id=f"field-{field.name}")
                else:
                    yield Input(field.value, id=f"field-{field.name}")
            yield Label("", id="problem")
            with Horizontal(id="buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in any field submits the form."""
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """OK submits, Cancel closes."""
        event.stop()
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without a result."""
        self.dismiss(None)

    def _submit(self) -> None:
        values = {}
        for field in self._fields:
            value = str(self.query_one(f"#field-{field.name}").value).strip()  # type: ignore[attr-defined]
            problem = field.check(value) if field.check else None
            if problem:
                self.query_one("#problem", Label).update(Text(f"{field.label}: {problem}", style="bold red"))
                return
            values[field.name] = value
        self.dismiss(values)


def _length(low: int, high: int) -> Callable[[str], str | None]:
    """A Field check: from ``low`` to ``high`` characters."""
    return lambda value: None if low <= len(value) <= high else f"{low} to {high} characters"


def _minutes_problem(value: str) -> str | None:
    return None if value.isdigit() and 1 <= int(value) <= MAX_COURTESY_MINUTES else \
        f"a whole number from 1 to {MAX_COURTESY_MINUTES}"


# ---- the console ----

class ConsoleApp(App):
    """Fleet, help queue, the selected ticket with its conversation, and the agent's actions on it.

    ``link_factory(on_message, on_state)`` makes the AgentLink (called at once, so bad settings
    fail before the screen opens); it is started when the app is mounted and stopped when it ends.
    Paho's callbacks reach the UI thread through :meth:`relay`.
    """

    TITLE = "Pay-station console"
    BINDINGS = [
        ("a", "accept", "Accept"),
        ("c", "courtesy", "Courtesy"),
        ("x", "cancel_journey", "End journey"),
        ("n", "notice", "Notice"),
        ("r", "resolve", "Resolve"),
        ("escape", "focus_queue", "Queue"),
        ("ctrl+q", "quit", "Quit"),
    ]
    CSS = """
    #left { width: 3fr; }
    #right { width: 2fr; }
    #fleet, #queue, #details, #conversation-box, #activity { border: round $primary; }
    #fleet { height: 1fr; }
    #queue { height: 1fr; }
    #details { height: auto; max-height: 12; }
    #conversation-box { height: 1fr; }
    #activity { height: 7; }
    FormScreen { align: center middle; }
    #form { width: 64; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    #problem { height: auto; }
    #buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, link_factory: LinkFactory, agent: str, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self.agent = agent
        self.board = Board(agent)
        self.link = link_factory(lambda *args: self.relay(self._mqtt_in, *args),
                                 lambda *args: self.relay(self._link_state, *args))
        self._clock = clock
        self._selected: tuple[str, str] | None = None  # (station, ticket); stays when the ticket closes
        self._refresh_due = False
        self._cells: dict[str, dict[str, tuple[Any, ...]]] = {"fleet": {}, "queue": {}}
        self.sub_title = f"{agent} · connecting to {self.link.address.url}"

    def compose(self) -> ComposeResult:
        """Fleet and queue on the left; details, conversation, chat input and activity on the right."""
        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                yield DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="queue", cursor_type="row")
            with Vertical(id="right"):
                yield Static(id="details")
                yield VerticalScroll(Static(id="conversation"), id="conversation-box")
                yield Input(placeholder="Message to the parker (enter sends, escape leaves)", max_length=MAX_CHAT,
                            id="chat")
                yield RichLog(id="activity", max_lines=500, wrap=True, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        """Set up the tables, start the link and the one-second clock."""
        fleet, queue = self.query_one("#fleet", DataTable), self.query_one("#queue", DataTable)
        fleet.add_columns(("Station", "station"), ("State", "state"), ("Since", "since"), ("Zone", "zone"),
                          ("Faults", "faults"))
        queue.add_columns(("Station", "station"), ("Waiting", "waiting"), ("State", "state"), ("", "offered"),
                          ("Plate", "plate"))
        for widget_id, title in (("#fleet", "Fleet"), ("#queue", "Help queue (oldest first)"),
                                 ("#details", "Ticket"), ("#conversation-box", "Conversation"),
                                 ("#activity", "Activity")):
            self.query_one(widget_id).border_title = title
        self.link.start()
        self.set_interval(1.0, self._refresh)
        self._refresh()

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

    def _mqtt_in(self, topic: str, payload: bytes, retained: bool) -> None:
        for alert in self.board.apply(topic, payload, retained, self._clock()):
            self._tell(alert.message, alert.title, alert.severity)
        self._refresh_soon()

    def _link_state(self, connected: bool, text: str) -> None:
        self.sub_title = f"{self.agent} · {text}"
        self.note(text, "" if connected else "yellow")

    def _command_reply(self, station: str, name: str, reply: dict[str, Any]) -> None:
        """A station's reply, made safe to show: it is the station's text, not ours (no terminal controls)."""
        detail = clean(str(reply.get("detail") or reply.get("code") or ""))
        if reply.get("ok"):
            expires = reply.get("expires")
            extra = f" (until {clean(expires)})" if isinstance(expires, str) else ""
            self._tell(f"{detail}{extra}" or "done", f"{name} at {station}: done", "information")
        else:
            self._tell(f"{clean(str(reply.get('code')))}: {detail}", f"{name} at {station} refused", "error")

    # ---- the agent's actions ----

    def action_accept(self) -> None:
        """Ask the station to connect the selected ticket's parker to this agent."""
        view = self._ticket_or_hint()
        if view is None:
            return
        if view.mine:
            self.notify("This ticket is already yours.")
            return
        if self._send(lambda: self.link.to_parker(view.station, view.ticket, "accept")):
            self.board.sent_accept(view.ticket)
            self.note(f"accept sent for {view.station}")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the chat input sends its text to the selected ticket's parker."""
        if event.input.id != "chat":
            return
        text = event.value.strip()
        view = self._ticket_or_hint()
        if not text or view is None:
            return
        if self._send(lambda: self.link.to_parker(view.station, view.ticket, "message", text=text)):
            self.board.sent_message(view.ticket, text, self._clock())
            event.input.value = ""
            self._show_ticket()

    def action_courtesy(self) -> None:
        """Grant the selected ticket's parker a free session (a form: plate, minutes, reason)."""
        view = self._ticket_or_hint()
        if view is None:
            return
        plate = view.context.plate if view.context and view.context.plate else ""
        fields = [Field("plate", "Plate", plate, check=_length(2, MAX_PLATE)),
                  Field("minutes", "Minutes", str(COURTESY_MINUTES), check=_minutes_problem),
                  Field("reason", "Reason", COURTESY_REASON, check=_length(1, MAX_NOTICE))]

        def granted(values: dict[str, str] | None) -> None:
            if values is not None:
                self._command(view.station, "courtesy", {"plate": values["plate"].upper(),
                                                         "minutes": int(values["minutes"]),
                                                         "reason": values["reason"], "ticket": view.ticket})

        self.push_screen(FormScreen(f"Courtesy session at {view.station}", fields), granted)

    def action_cancel_journey(self) -> None:
        """End the selected ticket's parker's journey on the station (never during a payment)."""
        view = self._ticket_or_hint()
        if view is not None:
            self._command(view.station, "journey/cancel",
                          {"reason": f"ended by agent {self.agent}", "ticket": view.ticket})

    def action_notice(self) -> None:
        """Set or clear (empty text) the notice parkers see at a station."""
        station = self._target_station()
        if station is None:
            self.notify("Select a station or a ticket first.", severity="warning")
            return

        def chosen(values: dict[str, str] | None) -> None:
            if values is not None:
                self._command(station, "notice", {"text": values["text"] or None})

        self.push_screen(FormScreen(f"Notice for parkers at {station} (empty clears it)",
                                    [Field("text", "Text", check=_length(0, MAX_NOTICE))]), chosen)

    def action_resolve(self) -> None:
        """Close the selected ticket: an outcome and closing words shown to the parker."""
        view = self._ticket_or_hint()
        if view is None:
            return

        def resolved(values: dict[str, str] | None) -> None:
            if values is not None and self._send(lambda: self.link.to_parker(
                    view.station, view.ticket, "resolve", text=values["text"], outcome=values["outcome"])):
                self.note(f"resolve ({values['outcome']}) sent for {view.station}")

        self.push_screen(FormScreen(f"Resolve the ticket at {view.station}",
                                    [Field("outcome", "Outcome", OUTCOMES[0], choices=OUTCOMES),
                                     Field("text", "Closing words for the parker", check=_length(0, MAX_CHAT))]),
                         resolved)

    def action_focus_queue(self) -> None:
        """Back to the help queue (from the chat input, where letters are text, not keys)."""
        self.query_one("#queue", DataTable).focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving through the queue selects a ticket (only when the agent moves, not when rows change)."""
        if event.data_table.id == "queue" and event.data_table.has_focus:
            self._select(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter or a click on a queue row selects its ticket."""
        if event.data_table.id == "queue":
            self._select(event.row_key.value)

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
            self.notify("Select a ticket in the help queue first.", severity="warning")
        elif view.state == "closed":
            self.notify("This ticket is closed.", severity="warning")
            return None
        return view

    def _target_station(self) -> str | None:
        fleet = self.query_one("#fleet", DataTable)
        view = self._selected_view()
        if fleet.has_focus or view is None:
            return _cursor_key(fleet)
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
        """Add a line to the activity pane."""
        stamp = self._clock().astimezone().strftime("%H:%M:%S")
        for pane in self.query("#activity").results(RichLog):  # none once the app is closing
            pane.write(Text(f"{stamp} {text}", style=style))

    def _refresh_soon(self) -> None:
        if not self._refresh_due:
            self._refresh_due = True
            self.set_timer(REFRESH_DELAY_S, self._refresh)

    def _refresh(self) -> None:
        self._refresh_due = False
        try:
            self._redraw(self._clock())
        except NoMatches:  # a timer firing while the app closes: its widgets are already gone
            log.debug("console closing: refresh skipped")

    def _redraw(self, now: datetime) -> None:
        _fill(self.query_one("#fleet", DataTable), self._cells["fleet"],
              [(s.station, _station_cells(s)) for s in self.board.stations()], None)
        queue = self.board.queue(now)
        if self._selected is None and queue:
            self._selected = (queue[0].station, queue[0].ticket)
        _fill(self.query_one("#queue", DataTable), self._cells["queue"],
              [(t.ticket, self._ticket_cells(t)) for t in queue], self._selected and self._selected[1])
        self._show_ticket()

    def _show_ticket(self) -> None:
        view = self._selected_view()
        station = self.board.station(view.station) if view else None
        self.query_one("#details", Static).update(self._details(view, station))
        self.query_one("#conversation", Static).update(self._conversation(view))

    def _ticket_cells(self, view: TicketView) -> tuple[Any, ...]:
        if view.mine:
            state = Text("connected to you", style="bold green")
        elif view.taken_by_other:
            state = Text(f"taken by {view.agent}", style="dim")
        else:
            state = Text(view.state + (" (overdue)" if view.overdue else ""), style="bold red" if view.overdue else "")
        if view.voice is not None and view.state != "closed":
            state.append(f" · voice {view.voice.summary}", style="bold magenta" if view.voice.state == "talking" else "")
        offered = Text("offered to you", style="bold cyan") if view.offered_to_me else Text("")
        plate = view.context.plate if view.context and view.context.plate else ""
        return Text(view.station), Text(_mm_ss(view.waiting_s)), state, offered, Text(plate)

    def _details(self, view: TicketView | None, station: StationView | None) -> Text:
        if view is None:
            return Text("No ticket selected.", style="dim")
        context = view.context
        text = Text()
        text.append(f"{view.station}", style="bold")
        zone = (context.zone if context else None) or (station.zone if station else None)
        text.append(f" · {zone}" if zone else "")
        text.append(f"\nticket {view.ticket}\n", style="dim")
        if station and station.state != "online":
            text.append(f"Station {station.state}\n", style=STATE_STYLE.get(station.state, ""))
        if view.state == "closed":
            text.append(f"Closed: {view.outcome or 'no outcome'}\n", style="dim")
        elif view.mine:
            text.append(f"Connected to you · {_mm_ss(view.waiting_s)} since the call\n", style="bold green")
        elif view.taken_by_other:
            text.append(f"Taken by {view.agent}\n", style="yellow")
        else:
            text.append(f"Waiting {_mm_ss(view.waiting_s)}" + (" · overdue" if view.overdue else "") + "\n",
                        style="bold red" if view.overdue else "bold")
        if view.offered_to_me:
            text.append("Offered to you\n", style="cyan")
        if view.voice is not None:
            text.append("Voice call: ", style="dim")
            text.append(view.voice.summary + (f" · call {view.voice.call}" if view.voice.call else "") + "\n",
                        style="bold magenta" if view.voice.state == "talking" else "")
        if context:
            for label, value in (("Screen", context.screen), ("Plate", context.plate),
                                 ("Last payment", context.last_payment),
                                 ("Payment error", context.last_payment_error)):
                if value:
                    text.append(f"{label}: ", style="dim")
                    text.append(f"{value}\n")
        faults = ([(f.name, f.severity) for f in station.faults] if station and station.state != "unknown"
                  else list(context.active_faults if context else ()))
        for name, severity in faults:
            text.append(f"Fault: {name} ({severity})\n", style=SEVERITY_STYLE.get(severity, ""))
        text.rstrip()
        return text

    def _conversation(self, view: TicketView | None) -> Text:
        text = Text()
        for line in self.board.conversation(view.ticket) if view else []:
            text.append(line.at.astimezone().strftime("%H:%M:%S "), style="dim")
            if line.who == "station":
                text.append(line.text, style="italic dim")
            elif line.who == "parker":
                text.append(f"parker{f' [{line.choice}]' if line.choice else ''}: {line.text}", style="bold")
            else:
                who = "you" if line.agent == self.agent else (line.agent or "agent")
                text.append(f"{who}: {line.text}" + (" ✓" if line.confirmed else " (sending…)"),
                            style="green" if line.confirmed else "dim green")
            text.append("\n")
        text.rstrip()
        return text


def _fill(table: DataTable, shown: dict[str, tuple[Any, ...]], rows: list[tuple[str, tuple[Any, ...]]],
          keep: str | None) -> None:
    """Show ``rows`` (key, cells); only changed cells are redrawn, and the cursor stays on ``keep``."""
    keys = [key for key, _ in rows]
    if keys == list(shown):
        columns = list(table.columns)
        for key, cells in rows:
            for column, value, old in zip(columns, cells, shown[key]):
                if value != old:
                    table.update_cell(key, column, value, update_width=True)
            shown[key] = cells
        return
    keep = keep or _cursor_key(table)
    table.clear()
    shown.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
        shown[key] = cells
    if keep in shown:
        table.move_cursor(row=keys.index(keep))


def _cursor_key(table: DataTable) -> str | None:
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value


def _station_cells(view: StationView) -> tuple[Any, ...]:
    since = view.since.astimezone().strftime("%Y-%m-%d %H:%M") if view.since else ""
    faults = Text()
    for fault in view.faults:
        faults.append(("  " if faults else "") + fault.name, style=SEVERITY_STYLE.get(fault.severity, ""))
    return (Text(view.station), Text(view.state, style=STATE_STYLE.get(view.state, "")), Text(since),
            Text(view.zone or ""), faults)


def _mm_ss(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


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

    try:
        app = ConsoleApp(make_link, args.agent)
        handlers: list[logging.Handler] = [_ActivityHandler(app)]
        if args.log_file:
            handlers.append(logging.FileHandler(args.log_file, encoding="utf-8"))
            handlers[-1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"kiosk console: {exc}\n")
        return 2
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
    return 0
