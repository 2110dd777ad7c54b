"""The console history's CSV files: their columns, how figures and times are written, and atomic replacement."""
from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from console.metrics import RATINGS, CallRecord, FaultPeriod, HelpMetrics, RepairStats

__all__ = ["CALL_COLUMNS", "FAULT_COLUMNS", "HELP_COLUMNS", "REPAIR_COLUMNS", "write_tables"]

HELP_COLUMNS = ("calls", "accepted", "resolved", "abandoned", "resolution_rate", "accept_median_s", "accept_p90_s",
                "resolve_median_s", "resolve_p90_s", "ratings", "csat_average",
                *(f"rating_{score}" for score in RATINGS))
CALL_COLUMNS = ("station", "ticket", "opened", "accepted", "closed", "agent", "outcome", "presses", "time_to_accept_s",
                "time_to_resolve_s", "voice_calls", "voice_answer_s", "voice_talk_s", "voice_outcome", "screen", "zone")
FAULT_COLUMNS = ("station", "component", "code", "severity", "parker_impact", "opened", "closed", "time_to_repair_s",
                 "message")
REPAIR_COLUMNS = ("component", "repaired", "still_open", "mean_time_to_repair_s", "median_time_to_repair_s")
TOTAL = "all"  # the key of help-total.csv's one row
Row = Sequence[str]


def write_tables(folder: Path, help_tables: Mapping[str, tuple[str, list[HelpMetrics]]], calls: Iterable[CallRecord],
                 periods: Iterable[FaultPeriod], repairs: list[RepairStats]) -> list[Path]:
    """Write each help table (file name: key column, rows), calls.csv, faults.csv and repair-by-component.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [_write(folder / name, [(key_name, *HELP_COLUMNS), *(_help_row(m) for m in rows)])
               for name, (key_name, rows) in help_tables.items()]
    written.append(_write(folder / "calls.csv", _with_header(CALL_COLUMNS, (_call_row(c) for c in calls))))
    written.append(_write(folder / "faults.csv", _with_header(FAULT_COLUMNS, (_fault_row(p) for p in periods))))
    written.append(_write(folder / "repair-by-component.csv", [REPAIR_COLUMNS, *(_repair_row(r) for r in repairs)]))
    return written


def _number(value: float | int | None) -> str:
    """A figure as the CSV files write it: empty for None, whole numbers without a point, else at most 3 decimals."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _moment(value: datetime | None) -> str:
    """A time as the CSV files write it: ISO 8601 UTC with milliseconds and ``Z``; empty for None."""
    if value is None:
        return ""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _with_header(header: Row, rows: Iterable[Row]) -> Iterable[Row]:
    yield header
    yield from rows


def _help_row(m: HelpMetrics) -> Row:
    return (TOTAL if m.key is None else m.key, str(m.calls), str(m.accepted), str(m.resolved), str(m.abandoned),
            _number(m.resolution_rate), _number(m.accept_median_s), _number(m.accept_p90_s), _number(m.resolve_median_s),
            _number(m.resolve_p90_s), str(sum(m.ratings)), _number(m.csat_average), *map(str, m.ratings))


def _call_row(c: CallRecord) -> Row:
    voice = ("", "", "", "") if c.voice is None else (str(c.voice.calls), _number(c.voice.answer_s),
                                                       _number(c.voice.talk_s), c.voice.outcome or "")
    return (c.station, c.ticket, _moment(c.opened), _moment(c.accepted), _moment(c.closed), c.agent or "", c.outcome or "",
            _number(c.presses), _number(c.time_to_accept_s), _number(c.time_to_resolve_s), *voice, c.screen or "",
            c.zone or "")


def _fault_row(p: FaultPeriod) -> Row:
    repair = p.time_to_repair
    return (p.station, p.component, p.code, p.severity, p.parker_impact, _moment(p.opened), _moment(p.closed),
            _number(None if repair is None else repair.total_seconds()), p.message)


def _repair_row(r: RepairStats) -> Row:
    return (r.component, str(r.repaired), str(r.still_open), _number(r.mean_s), _number(r.median_s))


def _write(path: Path, rows: Iterable[Row]) -> Path:
    """Write ``rows`` as CSV (RFC 4180: UTF-8, commas, CRLF) to a temporary file beside ``path``, then rename it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerows(rows)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path
