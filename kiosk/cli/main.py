"""The `kiosk` command: its arguments, `kiosk run` with its stop signals, scenario replay, live control (`kiosk sim`)."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from zoneinfo import ZoneInfo

from bridge import command as alerts_command
from console import command as console_command
from kiosk import config
from kiosk.app.loop import Loop
from kiosk.app.updater import EXIT_UNHEALTHY as UNHEALTHY
from kiosk.cli import doctor, sim
from kiosk.cli.compose import build_station
from kiosk.cli.entry import STOP_SIGNALS
from kiosk.cli.quiet_logs import RepeatFilter
from kiosk.cli.scenario import ManualClock, Runner, ScenarioDisplay, ScenarioError, ScriptableSimulator, Step, parse
from kiosk.cli.sd_notify import SystemdNotifier
from kiosk.cli.sim_control import controller
from kiosk.cli.sim_socket import ControlError, ControlSocket, control_path
from kiosk.cli.terminal import add_terminal_commands
from kiosk.cli.update import add_update_command

log = logging.getLogger("kiosk")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_UNHEALTHY = UNHEALTHY  # a release on trial failed its health check: systemd's guard rolls it back
EXIT_RESTART = 75  # EX_TEMPFAIL: staff asked for a restart; systemd/kiosk.service starts the station again


def main(argv: list[str] | None = None) -> int:
    """The `kiosk` command (its entry point is kiosk/cli/entry.py, which holds SIGTERM/SIGINT before importing this)."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter())  # only on the command's own handler: a host's (a test's) are left as they are
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(levelname)s %(name)s: %(message)s",
                        handlers=[handler])
    _block_stop_signals(args.command is _run and args.scenario is None)
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
    run.add_argument("--control", type=Path, metavar="PATH",
                     help="with --simulate: the live control socket for `kiosk sim` "
                          "(default $XDG_RUNTIME_DIR/kiosk/STATION.sock)")
    run.set_defaults(command=_run)

    add_terminal_commands(commands)
    add_update_command(commands)

    console = commands.add_parser("console", help="the agents' console: fleet, help queue, chat (needs kiosk[console])")
    console_command.add_arguments(console)
    console.set_defaults(command=console_command.run)

    alerts = commands.add_parser("alerts", help="the alert bridge: stations' problems to crews by e-mail and webhook")
    alerts_command.add_arguments(alerts)
    alerts.set_defaults(command=alerts_command.run)

    examine = commands.add_parser("doctor", help="check every part of the station; exit 1 if one fails")
    examine.add_argument("--config", type=Path,
                         help=f"the station's configuration (default: {doctor.DEFAULT_CONFIG} if it exists)")
    examine.add_argument("--simulate", action="store_true", help="the station of `kiosk run --simulate`")
    examine.add_argument("--json", action="store_true", help="one line of JSON for fleet tooling")
    examine.set_defaults(command=_doctor)

    drive = commands.add_parser("sim", help="drive a running simulated station: help button, scenario steps, faults")
    sim.add_arguments(drive)
    drive.set_defaults(command=_sim, simulate=True)

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


def _doctor(args: argparse.Namespace) -> int:
    if args.config is None and not args.simulate:
        try:
            if doctor.DEFAULT_CONFIG.exists():
                args.config = doctor.DEFAULT_CONFIG
        except OSError as exc:  # /etc/kiosk is root's and the station's (Python 3.11 says so rather than False)
            log.error("cannot read %s (%s): run as root (sudo)", doctor.DEFAULT_CONFIG, exc.strerror or exc)
            return EXIT_USAGE
    try:
        settings = _settings(args)
    except config.ConfigError as exc:
        unreadable = [p for p in exc.problems if p.key == "(file)"]
        if unreadable:  # without the file the station's database and socket cannot be found
            denied = "ermission denied" in unreadable[0].message
            log.error("%s%s", unreadable[0], ": run as root (sudo)" if denied else "")
            return EXIT_USAGE
        for problem in exc.problems:  # an invalid file still names them, as far as the defaults go
            log.error("configuration: %s", problem)
        settings = _settings(argparse.Namespace(config=None, simulate=args.simulate))
    return doctor.run(args, settings, args.config)


def _sim(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except config.ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return sim.EXIT_USAGE
    return sim.run(args, settings)


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

    if args.scenario is None and _stop_requested():
        return EXIT_OK  # before anything was opened
    try:
        control = _control_socket(args, settings)
    except ControlError as exc:
        if args.control is not None:  # asked for by path: without it the run is not what was asked
            log.critical("live control: %s", exc)
            return EXIT_USAGE
        log.warning("live control off, the station runs without it: %s", exc)
        control = None
    try:
        return _run_station(args, settings, clock, steps, control)
    finally:
        if control is not None:
            control.close()


def _run_station(args: argparse.Namespace, settings: config.Settings, clock: Callable[[], datetime],
                 steps: list[Step], control: ControlSocket | None) -> int:
    """Build the station, then replay the scenario or run until stopped; the exit code."""
    try:
        station = build_station(settings, clock, simulate=args.simulate,
                                headless=args.headless or args.scenario is not None, online=args.scenario is None,
                                config_file=args.config)
    except ValueError as exc:
        log.critical("card terminal: %s", exc)
        return EXIT_USAGE
    loop = station.loop
    doctor_socket = doctor.DoctorSocket(doctor.socket_path(settings), loop)
    try:
        station.start()
        if args.scenario is not None:
            assert isinstance(clock, ManualClock)
            return _replay(loop, station.display, station.devices.simulator, clock, steps, args.scenario)
        _stop_on_signals(loop)
        kind = "simulated" if args.simulate else "real"
        log.info("station %s starting (zone %s, %s devices)", settings.station.id, settings.zone.name, kind)
        doctor_socket.start()
        if control is not None:
            control.serve(controller(station, settings.station.id))
        loop.run(SystemdNotifier())
        if loop.unhealthy is not None:
            return EXIT_UNHEALTHY
        return EXIT_RESTART if loop.restart_requested else EXIT_OK
    finally:
        if control is not None:
            control.close()  # before the station closes: no command runs on a closing station
        doctor_socket.close()
        station.close()


def _control_socket(args: argparse.Namespace, settings: config.Settings) -> ControlSocket | None:
    """The live control of a simulated station (`kiosk sim`), listening already; None for any other run.

    Only `run --simulate` has one (a real station never does, nor a scenario replay); it is
    opened before the station is built, so that a second station on its path stops at once.
    ControlError says why it cannot be opened.
    """
    if not args.simulate or args.scenario is not None:
        if args.control is not None:
            raise ControlError("--control needs --simulate without --scenario: only a live simulated station is driven")
        return None
    control = ControlSocket(args.control or control_path(settings.station.id, Path(settings.storage.database),
                                                         os.environ))
    control.open()
    return control


def _block_stop_signals(block: bool) -> None:
    """Keep SIGTERM/SIGINT blocked for `kiosk run` (``block``), or give the other commands their default actions back.

    kiosk/cli/entry.py blocks them before the first heavy import, in the main thread and so in every
    thread started after it (SDL's too): a stop during start-up waits, pending, instead of killing
    the process. A process signal lands on any thread that does not block it; if it landed on one
    of SDL's threads, Python would run its handler only when the main thread next wakes, up to a
    minute later. Blocked everywhere, the signals wait for the one thread that sigwaits for them
    (_stop_on_signals). A scenario replay and the other commands stop as any program does; one
    that came while the signals were held takes effect here.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK if block else signal.SIG_UNBLOCK, STOP_SIGNALS)


def _stop_requested() -> bool:
    """Whether SIGTERM or SIGINT came while the station was starting (it waits, pending, until taken)."""
    pending = signal.sigpending() & STOP_SIGNALS
    for signum in sorted(pending):
        log.info("signal %s during start-up: stopping before anything is opened", signal.Signals(signum).name)
    return bool(pending)


def _stop_on_signals(loop: Loop) -> None:
    """A thread that stops the loop on SIGTERM or SIGINT, at once for one that came during start-up.

    loop.stop() before loop.run() makes run() return after its first pass.
    """
    def wait_for_signal() -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        log.info("signal %s: stopping", signal.Signals(signum).name)
        loop.stop()

    threading.Thread(target=wait_for_signal, name="signals", daemon=True).start()


def _replay(loop: Loop, display: ScenarioDisplay, terminal: ScriptableSimulator | None, clock: ManualClock,
            steps: list[Step], path: Path) -> int:
    try:
        Runner(loop, display, terminal, clock, path.parent).run(steps)
    except ScenarioError as exc:
        print(f"scenario failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"scenario passed: {len(steps)} steps")
    return EXIT_OK


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _default_start(settings: config.Settings) -> datetime:
    """Scenarios start on a Monday at 09:00 in the zone unless they say `start`."""
    return datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo(settings.zone.timezone)).astimezone(UTC)
