"""The `kiosk` command's first instructions: SIGTERM and SIGINT are held before anything heavy is imported.

Until a process takes a signal itself, its default action applies: SIGTERM ends the process
on the spot and SIGINT raises KeyboardInterrupt wherever it lands. Importing the station
(paho, peewee, sqlite3, ...) and building it take a few hundred milliseconds, so a stop sent
by systemd during a restart used to end it without a clean stop. This module imports only
the standard library's `signal`: it blocks both signals in the main thread, and so in every
thread started after it, and only then imports kiosk.cli. A stop signal that arrives from here
on waits, pending, until `kiosk run` takes it (kiosk.cli.main._run); the other commands get the
default actions back once their arguments are parsed (kiosk.cli.main._block_stop_signals).

Only the interpreter's own start-up comes before this; systemd/kiosk.service starts the
command with both signals already blocked (`env --block-signal`) to cover that too.
"""
from __future__ import annotations

import signal

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def main() -> int:
    """Entry point of the `kiosk` command (pyproject.toml) and of `python -m kiosk.cli`."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    from kiosk.cli.main import main as command

    return command()
