"""`kiosk alerts`: check a configuration (--check) or run the alert bridge until SIGTERM (--config)."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the bridge itself is imported when the command runs: `kiosk run` never loads it
    from bridge.rules import Rules

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "add_arguments", "run"]

log = logging.getLogger(__name__)

EXIT_FAILED, EXIT_USAGE = 1, 2
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kiosk alerts``."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", type=Path, metavar="FILE", help="run the bridge with this TOML configuration")
    which.add_argument("--check", type=Path, metavar="FILE", help="check a configuration: its problems, exit 2 if any")


def _refused(path: Path, problems: list[str]) -> int:
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_USAGE


def _checked(path: Path) -> Rules | list[str]:
    """The configuration, with the files it names checked; else its problems."""
    from bridge.rules import ConfigError, check_files, load

    try:
        rules = load(path)
    except ConfigError as exc:
        return exc.problems
    return check_files(rules) or rules


def run(args: argparse.Namespace) -> int:
    """Check (0 or 2) or run the bridge: 0 after SIGTERM/SIGINT, 1 if it failed, 2 for a bad configuration.

    A configuration is bad when its files (password, token, CA) are missing or unusable too, at --check
    and at the start alike: the unit does not restart the bridge after exit 2.
    """
    path: Path = args.check or args.config
    rules = _checked(path)
    if isinstance(rules, list):
        return _refused(path, rules)
    if args.check is not None:
        print(f"{path}: valid: {len(rules.routes)} routes, {len(rules.groups)} groups, {len(rules.people)} people, "
              f"{len(rules.webhooks)} webhooks")
        return 0
    # Held before any thread starts, so that every thread inherits it and only the waiter below takes them.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    from bridge.rules import SecretUnusable
    from bridge.service import Service
    from bridge.store import StoreUnusable
    from kiosk.cli.sd_notify import SystemdNotifier

    try:
        service = Service(rules, notifier=SystemdNotifier())
    except SecretUnusable as exc:
        return _refused(path, [str(exc)])
    except (StoreUnusable, OSError) as exc:
        print(f"kiosk alerts: {exc}", file=sys.stderr)
        return EXIT_FAILED
    stop = threading.Event()

    def wait_for_signal() -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()
        service.interrupt()

    threading.Thread(target=wait_for_signal, name="signals", daemon=True).start()
    service.start()
    service.wait()
    service.stop()
    if not stop.is_set() or service.failure is not None:
        return EXIT_FAILED
    log.info("alert bridge stopped")
    return 0
