"""Command line and composition root: the only place that wires real or simulated devices to the loop."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from datetime import datetime, timezone
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from kiosk import config, flow
from kiosk.events import Event
from kiosk.faults import kind_of
from kiosk.loop import Loop
from kiosk.records import FaultRecord, PaymentRecord
from kiosk.scenario import ManualClock, Runner, ScenarioDisplay, ScenarioError, ScriptableTerminal, Step, parse
from kiosk.store import StorageError, Store
from kiosk.cli_terminal import add_terminal_commands

log = logging.getLogger("kiosk")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kiosk` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.command(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Parking pay station service.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the station")
    run.add_argument("--config", type=Path, help="TOML configuration file (default: built-in demo settings)")
    run.add_argument("--simulate", action="store_true", help="simulated card terminal and GPIO, for a desktop")
    run.add_argument("--headless", action="store_true", help="no window (SDL dummy video driver)")
    run.add_argument("--scenario", type=Path, help="replay a scenario file on a manual clock, then exit")
    run.set_defaults(command=_run)

    add_terminal_commands(commands)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(command=_check_config)

    show_version = commands.add_parser("version", help="print the firmware version")
    show_version.set_defaults(command=lambda args: print(f"kiosk {package_version('kiosk')}") or EXIT_OK)
    return parser


def _check_config(args: argparse.Namespace) -> int:
    try:
        settings = config.load(args.file)
    except config.ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.file}: OK (station {settings.station.id}, zone {settings.zone.name})")
    return EXIT_OK


def _settings(args: argparse.Namespace) -> config.Settings:
    if args.config is not None:
        return config.load(args.config)
    settings = config.Settings()
    if args.simulate:
        state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        database = str((state_home / "kiosk" / "simulate.db").absolute())
        settings = replace(settings, storage=replace(settings.storage, database=database),
                           screen=replace(settings.screen, fullscreen=False))
    return settings


def _open_store(settings: config.Settings, now: datetime) -> tuple[Store | None, tuple[FaultRecord, ...]]:
    """Open the database; a broken one becomes a fault (out of service), never a crash loop."""
    try:
        store = Store.open(Path(settings.storage.database), settings.station.id, now)
    except StorageError as exc:
        kind = kind_of("storage", exc.reason)
        log.critical("database %s unusable (%s): %s", settings.storage.database, exc.reason, exc)
        fault = FaultRecord("storage", exc.reason, kind.severity, f"{kind.message} {exc}", kind.parker_impact, now)
        return None, (fault,)
    for fault in store.active_faults():
        if fault.component == "storage":
            store.clear_fault("storage", now)
    for payment in store.resolve_pending_payments(now):
        log.warning("payment %s left pending by the last run resolved as %s", payment.id, payment.state)
    return store, tuple(f for f in store.active_faults() if f.component != "storage")


def _run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except config.ConfigError as exc:
        for problem in exc.problems:
            log.critical("configuration: %s", problem)
        return EXIT_USAGE
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if args.headless or args.scenario:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ["SDL_AUDIODRIVER"] = "dummy"

    steps: list[Step] = []
    clock: Callable[[], datetime] = _utc_now
    if args.scenario is not None:
        try:
            start, steps = parse(args.scenario.read_text(encoding="utf-8"), str(args.scenario))
        except (OSError, ScenarioError) as exc:
            log.critical("scenario: %s", exc)
            return EXIT_USAGE
        clock = ManualClock(start or _default_start(settings))

    from screens.display import Display

    if args.scenario is None:
        _block_stop_signals()

    now = clock()
    hand_over_quickly()
    store, faults = _open_store(settings, now)
    owed = tuple(store.unconfirmed_payments()) if store is not None else ()
    try:
        devices = CardTerminal(settings, args.simulate, owed, lambda event: loop.post(event))
    except ValueError as exc:
        log.critical("card terminal: %s", exc)
        if store is not None:
            store.close()
        return EXIT_USAGE
    display = Display(settings, headless=args.headless or args.scenario is not None)
    loop = Loop(flow.initial(settings, now), store, devices.terminal, display, clock, faults)
    try:
        devices.terminal.start()
        if args.scenario is not None:
            return _replay(loop, display, devices.simulator, clock, steps, args.scenario)
        _stop_on_signals(loop)
        kind = "simulated" if args.simulate else "real"
        log.info("station %s starting (zone %s, %s devices)", settings.station.id, settings.zone.name, kind)
        loop.run()
        return EXIT_OK
    finally:
        devices.close()
        loop.settle()  # what the terminal reported while closing (e.g. a confirmation) is recorded
        display.close()
        if store is not None:
            store.close()


THREAD_SWITCH_S = 0.001


def hand_over_quickly() -> None:
    """Let a device thread that became ready take the GIL within 1 ms instead of CPython's 5 ms.

    The loop thread draws while the ZVT worker waits to send the vending answer; with the
    default switch interval each hand-over can cost up to 5 ms (docs/performance.md: the
    04 0F -> 80 00 00 p99 fell from 21 ms to 9 ms). The threads are idle almost always,
    so the extra switching costs nothing measurable.
    """
    sys.setswitchinterval(THREAD_SWITCH_S)


class CardTerminal:
    """The card terminal: the ZVT driver on the configured port, or on a pty to the simulator."""

    def __init__(self, settings: config.Settings, simulate: bool, owed: tuple[PaymentRecord, ...],
                 post: Callable[[Event], None]) -> None:
        from drivers.zvt.driver import OwedPayment, ZvtTerminal, serial_opener
        from drivers.zvt.simulator import Simulator, open_pty

        t = settings.terminal
        self.simulator: Simulator | None = None
        self._pty = None
        port = t.port
        if simulate:
            self._pty = open_pty()
            journal = Path(settings.storage.database).with_suffix(".terminal.jsonl")
            self.simulator = Simulator(self._pty.master_fd, journal)
            self.simulator.start()
            port = self._pty.slave_path
            log.info("card terminal simulator on %s (journal %s)", port, journal)
        self.terminal = ZvtTerminal(
            serial_opener(port, t.baud), post, password=t.password, currency=settings.tariff_engine.currency,
            charset=t.charset, payment_timeout_s=t.payment_timeout_s, status_interval_s=t.status_interval_s,
            vending_window_s=t.vending_window_s,
            owed=tuple(OwedPayment(p.id, p.receipt_no, p.trace_no) for p in owed))

    def close(self) -> None:
        """Stop the driver, then the simulator and its pty."""
        self.terminal.close()
        if self.simulator is not None:
            self.simulator.stop()
        if self._pty is not None:
            self._pty.close()


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _block_stop_signals() -> None:
    """Block SIGTERM/SIGINT in this thread and so in every thread started after it (SDL's too).

    A process signal lands on any thread that does not block it; if it lands on one of SDL's
    threads, Python runs its handler only when the main thread next wakes, up to a minute
    later. Blocked everywhere, the signals wait for the one thread that sigwaits for them.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _stop_on_signals(loop: Loop) -> None:
    """A thread that stops the loop on SIGTERM or SIGINT (see _block_stop_signals)."""
    def wait_for_signal() -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        log.info("signal %s: stopping", signal.Signals(signum).name)
        loop.stop()

    threading.Thread(target=wait_for_signal, name="signals", daemon=True).start()


def _replay(loop: Loop, display: ScenarioDisplay, terminal: ScriptableTerminal | None, clock: ManualClock,
            steps: list[Step], path: Path) -> int:
    try:
        Runner(loop, display, terminal, clock, path.parent).run(steps)
    except ScenarioError as exc:
        print(f"scenario failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"scenario passed: {len(steps)} steps")
    return EXIT_OK


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _default_start(settings: config.Settings) -> datetime:
    """Scenarios start on a Monday at 09:00 in the zone unless they say `start`."""
    return datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo(settings.zone.timezone)).astimezone(timezone.utc)


if __name__ == "__main__":
    sys.exit(main())
