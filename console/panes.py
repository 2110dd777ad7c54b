"""What the console's panes say: rows, ticket details, the conversation and a station's detail as rich Text."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from console.metrics import CallRecord
from console.views import Line, Standing, StationView, TicketState, TicketView

__all__ = ["SEVERITY_STYLE", "call_summary", "conversation", "for_how_long", "local", "mm_ss", "station_detail",
           "station_row", "ticket_cells", "ticket_details"]

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
STATE_STYLE = {"online": "green", "offline": "yellow", "lost": "bold red", "unknown": "dim"}
STANDING_STYLE = {Standing.LOST: "bold red", Standing.CRITICAL: "bold red", Standing.OUT_OF_SERVICE: "magenta",
                  Standing.OFFLINE: "yellow", Standing.WARNING: "yellow", Standing.UNKNOWN: "dim",
                  Standing.HEALTHY: "green"}
STATION_WIDTH, STATE_WIDTH, SINCE_WIDTH, ZONE_WIDTH = 16, 8, 12, 16


def local(moment: datetime | None, pattern: str = "%H:%M:%S") -> str:
    """A time in the console's local time zone ('' for None)."""
    return moment.astimezone().strftime(pattern) if moment else ""


def mm_ss(seconds: int) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour on."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def for_how_long(seconds: int) -> str:
    """A fault's age to the minute ("under a minute", "3 min", "2 h 05 min", "3 d 4 h"): it changes once a minute."""
    minutes = seconds // 60
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _cell(value: str, width: int) -> str:
    return (value[:width - 1] + "…" if len(value) > width else value).ljust(width + 1)


def station_row(view: StationView) -> Text:
    """One fleet row: station, state, since (local), zone, faults worst first."""
    row = Text()
    row.append(_cell(view.station, STATION_WIDTH), style=STANDING_STYLE[view.standing])
    row.append(_cell(view.state, STATE_WIDTH), style=STATE_STYLE.get(view.state, ""))
    row.append(_cell(local(view.since, "%m-%d %H:%M"), SINCE_WIDTH), style="dim")
    row.append(_cell(view.zone or "", ZONE_WIDTH))
    for i, fault in enumerate(view.faults):
        row.append(("  " if i else "") + fault.name, style=SEVERITY_STYLE.get(fault.severity, ""))
    return row


def ticket_cells(view: TicketView) -> tuple[Text, ...]:
    """A queue row: station, waiting time (stopped once connected), state, offered, plate."""
    if view.mine:
        state = Text("connected to you", style="bold green")
    elif view.taken_by_other:
        state = Text(f"taken by {view.agent}", style="dim")
    else:
        state = Text(view.state + (" (overdue)" if view.overdue else ""), style="bold red" if view.overdue else "")
    if view.voice is not None and view.state is not TicketState.CLOSED:
        state.append(f" · voice {view.voice.summary}", style="bold magenta" if view.voice.state == "talking" else "")
    offered = Text("offered to you", style="bold cyan") if view.offered_to_me else Text("")
    plate = view.context.plate if view.context and view.context.plate else ""
    return Text(view.station), Text(mm_ss(view.waiting_s)), state, offered, Text(plate)


def ticket_details(view: TicketView | None, station: StationView | None) -> Text:
    """The selected ticket: station, state and times (local), voice, the parker's context, the station's faults."""
    if view is None:
        return Text("No ticket selected. F4: the next waiting call.", style="dim")
    context = view.context
    out = Text()
    out.append(view.station, style="bold")
    zone = (context.zone if context else None) or (station.zone if station else None)
    out.append(f" · {zone}" if zone else "")
    out.append(f"\nticket {view.ticket} · pressed at {local(view.opened)}\n", style="dim")
    if station and station.state != "online":
        out.append(f"Station {station.state}\n", style=STATE_STYLE.get(station.state, ""))
    if view.state is TicketState.CLOSED:
        out.append(f"Closed: {view.outcome or 'no outcome'}\n", style="dim")
    elif view.mine:
        out.append(f"Connected to you after {mm_ss(view.waiting_s)} · for {mm_ss(view.connected_s or 0)}\n",
                   style="bold green")
    elif view.taken_by_other:
        out.append(f"Taken by {view.agent} after {mm_ss(view.waiting_s)}\n", style="yellow")
    else:
        out.append(f"Waiting {mm_ss(view.waiting_s)}" + (" · overdue" if view.overdue else "") + "\n",
                   style="bold red" if view.overdue else "bold")
    if view.offered_to_me:
        out.append("Offered to you\n", style="cyan")
    if view.voice is not None:
        out.append("Voice call: ", style="dim")
        out.append(view.voice.summary + (f" · call {view.voice.call}" if view.voice.call else "") + "\n",
                   style="bold magenta" if view.voice.state == "talking" else "")
    if context:
        for label, value in (("Screen", context.screen), ("Plate", context.plate),
                             ("Last payment", context.last_payment), ("Payment error", context.last_payment_error)):
            if value:
                out.append(f"{label}: ", style="dim")
                out.append(f"{value}\n")
    faults = ([(f.name, f.severity) for f in station.faults] if station and station.state != "unknown"
              else list(context.active_faults if context else ()))
    for name, severity in faults:
        out.append(f"Fault: {name} ({severity})\n", style=SEVERITY_STYLE.get(severity, ""))
    out.rstrip()
    return out


def conversation(lines: Sequence[Line], agent: str) -> Text:
    """The ticket's conversation, local times, the agent's own lines ✓ once the station showed them."""
    out = Text()
    for line in lines:
        out.append(local(line.at) + " ", style="dim")
        if line.who == "station":
            out.append(line.text, style="italic dim")
        elif line.who == "parker":
            out.append(f"parker{f' [{line.choice}]' if line.choice else ''}: {line.text}", style="bold")
        else:
            who = "you" if line.agent == agent else (line.agent or "agent")
            out.append(f"{who}: {line.text}" + (" ✓" if line.confirmed else " (sending…)"),
                       style="green" if line.confirmed else "dim green")
        out.append("\n")
    out.rstrip()
    return out


def call_summary(call: CallRecord) -> str:
    """A help call in one line: outcome, by whom, how fast, the plate."""
    parts = [call.outcome or "open"]
    if call.agent:
        parts.append(f"by {call.agent}")
    if call.time_to_accept_s is not None:
        parts.append(f"accepted after {mm_ss(int(call.time_to_accept_s))}")
    if call.time_to_resolve_s is not None:
        parts.append(f"closed after {mm_ss(int(call.time_to_resolve_s))}")
    if call.plate:
        parts.append(f"plate {call.plate}")
    return ", ".join(parts)


def station_detail(view: StationView | None, now: datetime, calls: Sequence[tuple[datetime, str]],
                   replies: Sequence[tuple[datetime, str]], plates: Sequence[str]) -> Text:
    """A station: state, faults (message, since, how long, parker impact), telemetry, last calls, replies."""
    if view is None:
        return Text("No station selected.", style="dim")
    out = Text()
    out.append(view.station, style="bold")
    out.append(f" · {view.zone}" if view.zone else "")
    out.append(f" · {view.standing.label}\n", style=STANDING_STYLE[view.standing])
    out.append(f"{view.state} since {local(view.since, '%Y-%m-%d %H:%M:%S')}", style=STATE_STYLE.get(view.state, ""))
    out.append(f" · firmware {view.firmware}\n" if view.firmware else "\n", style="dim")
    for fault in view.faults:
        out.append(f"{fault.name} ({fault.severity})", style=SEVERITY_STYLE.get(fault.severity, ""))
        if fault.since:
            age = int((now - fault.since).total_seconds())
            out.append(f" since {local(fault.since, '%m-%d %H:%M')}" + (f" ({for_how_long(age)})" if age >= 0 else ""))
        out.append(f" · parkers: {fault.parker_impact}" if fault.parker_impact else "", style="dim")
        out.append(f"\n  {fault.message}\n" if fault.message else "\n")
    if not view.faults:
        out.append("No active fault.\n", style="dim")
    if view.telemetry is not None:
        t = view.telemetry
        values = [("terminal", t.terminal), ("screen", t.screen), ("link", t.link),
                  ("outbox", None if t.outbox_depth is None else str(t.outbox_depth)),
                  ("up", None if t.uptime_s is None else mm_ss(t.uptime_s)),
                  ("cpu", None if t.cpu_temp_c is None else f"{t.cpu_temp_c:.1f} °C"),
                  ("disk free", None if t.disk_free_bytes is None else f"{t.disk_free_bytes / 1e9:.1f} GB")]
        out.append(f"Telemetry {local(t.received)}: ", style="dim")
        out.append(", ".join(f"{name} {value}" for name, value in values if value is not None) + "\n")
    for moment, summary in calls:
        out.append(f"Call {local(moment, '%m-%d %H:%M')}: ", style="dim")
        out.append(summary + "\n")
    if plates:
        out.append("Plates seen: ", style="dim")
        out.append(", ".join(plates[-5:]) + "\n")
    for moment, summary in replies:
        out.append(f"Reply {local(moment)}: ", style="dim")
        out.append(summary + "\n")
    out.rstrip()
    return out
