"""The console's metrics screen (ctrl+t): help figures per station and per agent, time to repair, CSV export."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from console.history import History, HistoryUnusable
from console.metrics import Grouping, HelpMetrics, RepairStats
from console.panes import mm_ss
from console.screens import OnceScreen

__all__ = ["MetricsScreen", "help_cells", "repair_cells"]

HELP_COLUMNS = ("", "calls", "accepted", "resolved", "abandoned", "resolution", "accept median", "accept p90",
                "resolve median", "resolve p90", "CSAT", "ratings 1-5")
REPAIR_COLUMNS = ("component", "repaired", "still open", "mean time to repair", "median time to repair")
MAX_ROWS = 200  # per table; the CSV export has every row


def _time(seconds: float | None) -> str:
    return "" if seconds is None else mm_ss(round(seconds))


def help_cells(row: HelpMetrics) -> tuple[str, ...]:
    """One row of help figures as the screen shows them."""
    return (row.key or "all", str(row.calls), str(row.accepted), str(row.resolved), str(row.abandoned),
            "" if row.resolution_rate is None else f"{row.resolution_rate:.0%}",
            _time(row.accept_median_s), _time(row.accept_p90_s), _time(row.resolve_median_s), _time(row.resolve_p90_s),
            "" if row.csat_average is None else f"{row.csat_average:.2f}",
            " ".join(str(count) for count in row.ratings))


def repair_cells(row: RepairStats) -> tuple[str, ...]:
    """One row of time to repair."""
    return (row.component, str(row.repaired), str(row.still_open), _time(row.mean_s), _time(row.median_s))


class MetricsScreen(OnceScreen[None]):
    """What the business is judged by, from the stations' events: response time, resolution rate, CSAT, repairs.

    ``ctrl+e`` writes every figure as CSV into ``export_folder`` (a new folder per export).
    """

    BINDINGS = [  # noqa: RUF012 (Textual's class attribute)
        Binding("escape,ctrl+t", "close", "Close"),
        Binding("ctrl+e", "export", "Export CSV"),
    ]
    DEFAULT_CSS = """
    MetricsScreen { background: $surface; }
    MetricsScreen DataTable { height: auto; max-height: 14; margin-bottom: 1; }
    """

    def __init__(self, history: History, export_folder: Path, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self._history, self._export_folder, self._clock = history, export_folder, clock

    def compose(self) -> ComposeResult:
        """Three tables and a status line."""
        with Vertical():
            yield Label(Text("Help desk metrics (escape closes, ctrl+e exports CSV)", style="bold"))
            for table_id in ("all", "station", "agent"):
                yield DataTable(id=f"by-{table_id}", cursor_type="row")
            yield Label(Text("Time to repair, by component", style="bold"))
            yield DataTable(id="repairs", cursor_type="row")
            yield Label("", id="status")

    def on_mount(self) -> None:
        """Fill the tables from the history."""
        try:
            for grouping in (Grouping.ALL, Grouping.STATION, Grouping.AGENT):
                table = self.query_one(f"#by-{grouping.value}", DataTable)
                table.add_columns(grouping.value if grouping is not Grouping.ALL else "", *HELP_COLUMNS[1:])
                rows = sorted(self._history.help_metrics(grouping), key=lambda m: (-m.calls, m.key or ""))
                for row in rows[:MAX_ROWS]:
                    table.add_row(*help_cells(row))
            repairs = self.query_one("#repairs", DataTable)
            repairs.add_columns(*REPAIR_COLUMNS)
            for repair in self._history.repair_stats()[:MAX_ROWS]:
                repairs.add_row(*repair_cells(repair))
        except HistoryUnusable as exc:
            self._status(f"The history cannot be read: {exc}", "bold red")

    def action_export(self) -> None:
        """Write the CSV files into a new folder named after the time."""
        now = self._clock()
        name = now.astimezone().strftime("%Y%m%d-%H%M%S")
        folder = self._export_folder / name
        tries = 1
        while folder.exists():  # two exports in one second: each gets a folder of its own
            tries += 1
            folder = self._export_folder / f"{name}-{tries}"
        try:
            written = self._history.export_csv(folder, now)
        except (HistoryUnusable, OSError) as exc:
            self._status(f"Export failed: {exc}", "bold red")
            return
        self._status(f"{len(written)} CSV files written to {folder}", "green")

    def _status(self, message: str, style: str) -> None:
        self.query_one("#status", Label).update(Text(message, style=style))
