"""Command line and composition root: the only place that wires real or simulated devices to the loop."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from zoneinfo import ZoneInfo

from console import command as console_command
from kiosk import config
from kiosk.domain import helpdesk, journey
from kiosk.mqtt import remote_config
from kiosk.domain.events import Event
from kiosk.domain.faults import kind_of
from kiosk.app.healing import open_store
from kiosk.mqtt.client import MqttLink
from kiosk.app.loop import Loop
from kiosk.mqtt.publisher import OutboxPublisher
from kiosk.domain.records import FaultRecord, PaymentRecord
from kiosk.cli.scenario import ManualClock, Runner, ScenarioDisplay, ScenarioError, ScriptableTerminal, Step, parse
from kiosk.storage.store import Store
from kiosk.mqtt.uplink import SUBSCRIPTIONS, Uplink
from kiosk.cli.terminal import add_terminal_commands
from kiosk.cli.entry import STOP_SIGNALS

if TYPE_CHECKING:
    from drivers.gpio import HelpPanel
    from screens.display import Display

log = logging.getLogger("kiosk")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_RESTART = 75  # EX_TEMPFAIL: staff asked for a restart; systemd/kiosk.service starts the station again


def main(argv: list[str] | None = None) -> int:
    """The `kiosk` command (its entry point is kiosk/cli/entry.py, which holds SIGTERM/SIGINT before importing this)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
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
    run.set_defaults(command=_run)

    add_terminal_commands(commands)

    console = commands.add_parser("console", help="the agents' console: fleet, help queue, chat (needs kiosk[console])")
    console_command.add_arguments(console)
    console.set_defaults(command=console_command.run)

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
    """Open the database; a broken one becomes a fault (out of service, retried by the loop), never a crash loop."""
    return open_store(Path(settings.storage.database), settings.station.id, now)


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
        station = build_station(settings, clock, simulate=args.simulate,
                                headless=args.headless or args.scenario is not None, online=args.scenario is None)
    except ValueError as exc:
        log.critical("card terminal: %s", exc)
        return EXIT_USAGE
    loop = station.loop
    try:
        station.start()
        if args.scenario is not None:
            return _replay(loop, station.display, station.devices.simulator, clock, steps, args.scenario)
        _stop_on_signals(loop)
        kind = "simulated" if args.simulate else "real"
        log.info("station %s starting (zone %s, %s devices)", settings.station.id, settings.zone.name, kind)
        loop.run()
        return EXIT_RESTART if loop.restart_requested else EXIT_OK
    finally:
        station.close()


@dataclass
class Station:
    """One station's parts, wired: what `kiosk run` runs (tests and benchmarks build it in-process too)."""

    loop: Loop
    display: "Display"
    devices: CardTerminal
    store: Store | None
    link: MqttLink | None
    uplink: Uplink
    panel: "HelpPanel | None"

    def start(self) -> None:
        """Start the devices and the MQTT link (the loop itself is run or settled by the caller)."""
        self.devices.terminal.start()
        if self.panel is not None:
            self.panel.start()
        if self.link is not None:
            self.link.start()

    def close(self) -> None:
        """Say offline, stop the devices, record what they reported while closing, close screen and database."""
        self.uplink.stop(self.loop.clock())
        self.devices.close()
        if self.panel is not None:
            self.panel.close()
        self.loop.settle()  # what the terminal reported while closing (e.g. a confirmation) is recorded
        self.display.close()
        if self.store is not None:
            self.store.close()


def build_station(settings: config.Settings, clock: Callable[[], datetime], *, simulate: bool, headless: bool,
                  online: bool = True) -> Station:
    """Wire a station: database, card terminal, GPIO panel, screen, MQTT link (``online``) and the loop.

    Raises ValueError when the card terminal's settings cannot work; every other broken part
    becomes a fault, so that the station still shows parkers what it can do.
    """
    from drivers.gpio_sim import SimulatedHelpPanel
    from screens.display import Display

    now = clock()
    hand_over_quickly()
    store, faults = _open_store(settings, now)
    file_settings = settings
    settings, faults = _remote_settings(file_settings, store, faults, now)
    owed = tuple(store.unconfirmed_payments()) if store is not None else ()
    post: Callable[[Event], None] = lambda event: loop.post(event)
    try:
        devices = CardTerminal(settings, simulate, owed, post)
    except ValueError:
        if store is not None:
            store.close()
        raise
    panel = None
    if online:  # a scenario replay presses the help button itself, on its manual clock
        panel, faults = _help_panel(settings, simulate, post, store, faults, now)
    help_key = panel.help_key if isinstance(panel, SimulatedHelpPanel) else None
    display = Display(settings, headless=headless, help_key=help_key)
    link = _mqtt_link(settings, simulate, store, post) if online else None
    publisher = None
    if link is not None and store is not None:
        m = settings.mqtt
        publisher = OutboxPublisher(store, link, m.window, m.outbox_keep_days, m.outbox_warn_rows)
    uplink = Uplink(settings, file_settings, link, publisher, package_version("kiosk"), store.boot if store else 0)
    state = replace(journey.initial(settings, now), notice=(store.notice() if store is not None else None) or "")
    if store is not None:
        ticket = store.open_help_ticket_record(now)
        if ticket is not None and helpdesk.stale(ticket, settings.timeouts, now):
            log.info("help ticket %s was open when the station stopped, long ago: closed as abandoned", ticket.id)
            store.record_help(ticket.id, helpdesk.HelpAction.CLOSE, now, outcome=helpdesk.ABANDONED)
        elif ticket is not None:
            log.info("help ticket %s (%s) was open when the station stopped: shown again", ticket.id, ticket.state)
            state = replace(state, help=helpdesk.restore(ticket, settings.timeouts, now))
    loop = Loop(state, store, devices.terminal, display, clock, faults, uplink, panel)
    return Station(loop, display, devices, store, link, uplink, panel)


def _help_panel(settings: config.Settings, simulate: bool, post: Callable[[Event], None], store: Store | None,
                faults: tuple[FaultRecord, ...], now: datetime) -> tuple["HelpPanel | None", tuple[FaultRecord, ...]]:
    """The help button, LED and door switch (simulated pins with --simulate); unusable pins become a fault."""
    from drivers.gpio import GpioUnavailable, HelpPanel
    from drivers.gpio_sim import SimulatedHelpPanel

    others = tuple(f for f in faults if f.component != "gpio")
    try:
        panel = SimulatedHelpPanel(settings.gpio, post) if simulate else HelpPanel(settings.gpio, post)
    except GpioUnavailable as exc:
        log.error("GPIO: %s", exc)
        kind = kind_of("gpio", "unavailable")
        message = f"{kind.message} {exc}"
        fault = FaultRecord("gpio", "unavailable", kind.severity, message, kind.parker_impact, now)
        if store is not None:
            fault = store.raise_fault("gpio", "unavailable", kind.severity, message, kind.parker_impact, now)
        return None, others + (fault,)
    if store is not None and len(others) < len(faults):
        store.clear_fault("gpio", now)
    return panel, others


def _remote_settings(file_settings: config.Settings, store: Store | None, faults: tuple[FaultRecord, ...],
                     now: datetime) -> tuple[config.Settings, tuple[FaultRecord, ...]]:
    """The file's settings with the stored remote configuration (cfg/desired) over them, if it still validates."""
    desired = store.remote_config() if store is not None else None
    if desired is None:
        return file_settings, faults
    try:
        settings = remote_config.overlay(file_settings, desired)
    except config.ConfigError as exc:
        detail = "; ".join(str(p) for p in exc.problems)
        log.error("stored remote configuration version %s no longer validates: %s", desired.get("version"), detail)
        kind = kind_of("config", "remote_invalid")
        assert store is not None
        fault = store.raise_fault("config", "remote_invalid", kind.severity, f"{kind.message} {detail}",
                                  kind.parker_impact, now)
        return file_settings, tuple(f for f in faults if f.component != "config") + (fault,)
    if store is not None and any(f.component == "config" for f in faults):
        store.clear_fault("config", now)
        faults = tuple(f for f in faults if f.component != "config")
    log.info("remote configuration version %d applied over the file", settings.version)
    return settings, faults


def _mqtt_link(settings: config.Settings, simulate: bool, store: Store | None,
               post: Callable[[Event], None]) -> MqttLink | None:
    """The MQTT link to the configured broker; with --simulate and no broker configured, a local one."""
    mqtt = settings.mqtt
    if not mqtt.host:
        if not simulate:
            log.warning("no MQTT broker configured (mqtt.host): everything stays in the outbox")
            return None
        mqtt = replace(mqtt, host="localhost", port=1883, tls=False)
        log.info("simulated station: MQTT to a broker on localhost:1883 if one runs, else the outbox keeps all")
    boot = store.boot if store is not None else int(time.time())
    return MqttLink(mqtt, settings.station.id, post, subscriptions=SUBSCRIPTIONS, boot=boot)


THREAD_SWITCH_S = 0.001


def hand_over_quickly() -> None:
    """Let a device thread that became ready take the GIL within 1 ms instead of CPython's 5 ms.

    The loop thread draws while the ZVT worker waits to send the vending answer; with the
    default switch interval each hand-over can cost up to 5 ms (docs/performance.md: the
    04 0F -> 80 00 00 p99 fell from 21 ms to 9 ms). The threads are idle almost always,
    so the extra switching costs nothing measurable.
    """
    sys.setswitchinterval(THREAD_SWITCH_S)


FRESH_LINE_QUIET_S = 0.1


class CardTerminal:
    """The card terminal: the ZVT driver on the configured port, or on a pty to the simulator."""

    def __init__(self, settings: config.Settings, simulate: bool, owed: tuple[PaymentRecord, ...],
                 post: Callable[[Event], None], pairing: str = "loose") -> None:
        """The driver on the configured port; with ``simulate``, on a new pty to a simulator pairing ``pairing``."""
        from drivers.payment.zvt.driver import OwedPayment, ZvtTerminal, serial_opener
        from drivers.payment.zvt.simulator import Simulator, open_pty

        t = settings.terminal
        self.simulator: Simulator | None = None
        self._pty = None
        port = t.port
        line_quiet_s = t.line_quiet_ms / 1000
        if simulate:
            self._pty = open_pty()
            journal = Path(settings.storage.database).with_suffix(".terminal.jsonl")
            self.simulator = Simulator(self._pty.master_fd, journal, pairing=pairing)
            self.simulator.start()
            port = self._pty.slave_path
            # A pty made just now carries nothing from an earlier run: no need to wait out the PT's repeats.
            line_quiet_s = FRESH_LINE_QUIET_S
            log.info("card terminal simulator on %s (journal %s)", port, journal)
        self.terminal = ZvtTerminal(
            serial_opener(port, t.baud), post, password=t.password, currency=settings.tariff_engine.currency,
            charset=t.charset, payment_timeout_s=t.payment_timeout_s, status_interval_s=t.status_interval_s,
            vending_window_s=t.vending_window_s, line_quiet_s=line_quiet_s,
            owed=tuple(OwedPayment(p.id, p.receipt_no, p.trace_no, p.amount) for p in owed))

    def close(self) -> None:
        """Stop the driver, then the simulator and its pty."""
        self.terminal.close()
        if self.simulator is not None:
            self.simulator.stop()
        if self._pty is not None:
            self._pty.close()


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
