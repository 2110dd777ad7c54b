"""Starting ``kiosk console``: the real parts (link, history, desktop notifications, logging) around ConsoleApp."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from console.agent_link import AgentLink
from console.command import history_path
from console.history import History, HistoryUnusable
from console.notify import DesktopNotifier
from console.payload import clean

try:
    from console.app import ConsoleApp
except ImportError as exc:  # the console extra is not installed: main() says so
    TEXTUAL_MISSING: ImportError | None = exc
    if not TYPE_CHECKING:
        ConsoleApp = None
else:
    TEXTUAL_MISSING = None

__all__ = ["INSTALL_HINT", "TEXTUAL_MISSING", "main", "open_history"]

log = logging.getLogger(__name__)

INSTALL_HINT = "install the console extra: pip install 'kiosk[console]'"


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
        if app.return_code:  # Textual printed the traceback on the terminal as it closed; say it in the log too
            log.error("the console ended with an error (exit code %s); its traceback is on the terminal",
                      app.return_code)
    finally:
        root.handlers, root.level = saved, saved_level
        for handler in handlers:
            handler.close()
        notifier.close()
        if app.history is not None:
            app.history.close()
    return app.return_code or 0


def open_history(path: Path) -> tuple[History | None, str | None]:
    """The console's history file (its folder made); None and why when it cannot be used: the console runs on."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return History(path), None
    except (HistoryUnusable, OSError) as exc:
        return None, f"{path}: {exc}"
