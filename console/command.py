"""`kiosk console`: its options, and its start; Textual is imported only when a console runs, never by the station."""
from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["add_arguments", "default_history", "history_path", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kiosk console``."""
    parser.add_argument("--broker", metavar="URL",
                        help="mqtt://host[:1883] or mqtts://host[:8883] (TLS); required unless --export-csv")
    parser.add_argument("--agent", default=os.environ.get("USER") or "agent", metavar="NAME",
                        help="the name parkers' stations record for you (default: $USER)")
    parser.add_argument("--tls", action="store_true", help="use TLS also with mqtt:// (port 8883 unless given)")
    parser.add_argument("--ca", metavar="FILE", help="CA certificate(s) of the broker (default: the system's)")
    parser.add_argument("--cert", metavar="FILE", help="client certificate")
    parser.add_argument("--key", metavar="FILE", help="client certificate's key")
    parser.add_argument("--username", metavar="NAME", help="broker account")
    parser.add_argument("--password-file", metavar="FILE", help="file holding only the account's password")
    parser.add_argument("--log-file", metavar="FILE", help="write the console's log here (INFO and up)")
    parser.add_argument("--history", type=Path, metavar="FILE",
                        help="the console's history of help calls, ratings and faults "
                             "(default: $XDG_STATE_HOME/kiosk/console-history.db, ~/.local/state/... without it)")
    parser.add_argument("--export-csv", type=Path, metavar="DIR",
                        help="write the history's figures as CSV files into DIR and exit (no broker needed)")


def default_history() -> Path:
    """Where the console keeps its history without --history: $XDG_STATE_HOME (absolute) or ~/.local/state."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "kiosk" / "console-history.db"


def history_path(args: argparse.Namespace) -> Path:
    """The history file of these options."""
    return args.history if args.history is not None else default_history()


def run(args: argparse.Namespace) -> int:
    """Export the history (--export-csv: 0, or 1 if it failed), or run the console (console.start.main: 2 for bad
    options or without Textual)."""
    if args.export_csv is not None:
        return export(history_path(args), args.export_csv, datetime.now(UTC))
    if not args.broker:
        sys.stderr.write("kiosk console: --broker is required (unless --export-csv)\n")
        return 2
    from console import start

    return start.main(args)


def export(history: Path, folder: Path, now: datetime) -> int:
    """Write the CSV files of ``history`` into ``folder`` and name them; 1 (and why) if there is no usable history."""
    from console.history import History, HistoryUnusable

    if not history.is_file():
        sys.stderr.write(f"kiosk console: no history at {history}\n")
        return 1
    try:
        with History(history) as kept:
            written = kept.export_csv(folder, now)
    except (HistoryUnusable, OSError) as exc:
        sys.stderr.write(f"kiosk console: {exc}\n")
        return 1
    for path in written:
        print(path)
    return 0
