"""The composition root: the only place that picks real or simulated parts and wires them to the loop."""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk import config
from kiosk.app import recovery
from kiosk.app.doctor import Doctor
from kiosk.app.loop import DISPLAY_COMPONENT, VOICE_COMPONENT, Loop
from kiosk.app.updater import Updater
from kiosk.domain import journey
from kiosk.domain.events import Event
from kiosk.domain.records import FaultRecord, PaymentRecord
from kiosk.mqtt.client import MqttClient
from kiosk.mqtt.offline import OfflineClient
from kiosk.mqtt.publisher import OutboxPublisher
from kiosk.mqtt.uplink import SUBSCRIPTIONS, Uplink
from kiosk.ports import Intercom, PaymentMethod
from kiosk.releases.layout import CURRENT, Releases
from kiosk.storage.examine import examine
from kiosk.storage.store import Store
from kiosk.storage.unavailable import UnavailableStore

if TYPE_CHECKING:
    from drivers.gpio import HelpPanel
    from drivers.payment.zvt.clock import Clock as ZvtClock
    from screens.display import Display

__all__ = ["FRESH_LINE_QUIET_S", "CardTerminal", "Station", "build_station", "hand_over_quickly"]

log = logging.getLogger(__name__)


@dataclass
class Station:
    """One station's parts, wired: what `kiosk run` runs (tests and benchmarks build it in-process too)."""

    loop: Loop
    display: Display
    devices: CardTerminal
    store: Store | None
    link: MqttClient | None
    uplink: Uplink
    panel: HelpPanel | None
    intercom: Intercom | None = None

    def start(self) -> None:
        """Start the devices and the MQTT link (the loop itself is run or settled by the caller)."""
        self.loop.payment.start()
        if self.panel is not None:
            self.panel.start()
        if self.intercom is not None:
            self.intercom.start()
        if self.link is not None:
            self.link.start()

    def close(self) -> None:
        """Say offline, stop the devices, record what they reported while closing, close screen and database."""
        if self.loop.updater is not None:
            self.loop.updater.close()
        self.uplink.stop(self.loop.clock())
        self.loop.payment.close()
        self.devices.close()
        if self.panel is not None:
            self.panel.close()
        if self.intercom is not None:
            self.intercom.close()
        self.loop.settle()  # what the terminal reported while closing (e.g. a confirmation) is recorded
        self.display.close()
        if self.store is not None:
            self.store.close()


def build_station(settings: config.Settings, clock: Callable[[], datetime], *, simulate: bool, headless: bool,
                  online: bool = True, real_voice: bool = False, config_file: Path | None = None) -> Station:
    """Wire a station: database, card terminal, GPIO panel, intercom, screen, MQTT link (``online``) and the loop.

    With ``simulate`` the intercom (when voice is enabled) is a pretend agent, unless
    ``real_voice``: then baresip runs as configured (tests and benchmarks call a second one).
    ``config_file`` is where the settings came from, for the doctor (None: built-in settings).

    Raises ValueError when the card terminal's settings cannot work; every other broken part
    becomes a fault, so that the station still shows parkers what it can do.
    """
    from drivers.gpio_sim import SimulatedHelpPanel
    from drivers.host import LinuxHost
    from screens.display import Display

    now = clock()
    hand_over_quickly()
    store, faults = recovery.open_store(Path(settings.storage.database), settings.station.id, now)
    file_settings = settings
    settings, faults = recovery.remote_settings(file_settings, store, faults, now)
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
    faults = _display_fault(display.problem, store, faults, now)
    link = _mqtt_link(settings, simulate, store, post) if online else None
    publisher = None
    if link is not None and store is not None:
        m = settings.mqtt
        publisher = OutboxPublisher(store, link, m.window, m.outbox_keep_days, m.outbox_warn_rows)
    database = store if store is not None else UnavailableStore(_storage_code(faults), Path(settings.storage.database))
    client = link if link is not None else OfflineClient()  # without a broker everything waits in the outbox
    uplink = Uplink(settings, file_settings, client, publisher, package_version("kiosk"), store.boot if store else 0,
                    database)
    state = replace(journey.initial(settings, now), notice=(store.notice() if store is not None else None) or "",
                    outage=store.outage() if store is not None else None)
    if store is not None:
        state = recovery.restore_help(store, state, settings.timeouts, now)
    more_methods: tuple[PaymentMethod, ...] = ()  # a second payment method is built here (docs/architecture.md)
    if store is not None:
        names = [devices.terminal.name, *(m.name for m in more_methods)]
        faults = recovery.removed_methods(store, owed, names, faults, now)
    intercom = _intercom(settings, simulate and not real_voice, post) if online else None
    if not settings.voice.enabled and any(f.component == VOICE_COMPONENT for f in faults):  # off: no voice fault
        if store is not None:
            store.clear_fault(VOICE_COMPONENT, now)
        faults = tuple(f for f in faults if f.component != VOICE_COMPONENT)
    host = LinuxHost()
    doctor = Doctor(host, examine, Path(settings.storage.database), config_file, post)
    loop = Loop(state, database, devices.terminal, display, clock, faults, uplink, panel, more_methods, intercom,
                host=host, doctor=doctor, updater=_updater(settings, uplink, now))
    return Station(loop, display, devices, store, link, uplink, panel, intercom)


def _intercom(settings: config.Settings, simulate: bool, post: Callable[[Event], None]) -> Intercom | None:
    """Help by voice when it is enabled: baresip, its folder beside the database; a pretend agent with --simulate."""
    from drivers.intercom.baresip import BaresipIntercom
    from drivers.intercom.simulated import SimulatedIntercom

    if not settings.voice.enabled:
        return None
    if simulate:
        return SimulatedIntercom(post)
    folder = Path(settings.storage.database).parent / "baresip"
    return BaresipIntercom(settings.voice, settings.station.id, folder, post)


def _display_fault(problem: str | None, store: Store | None, faults: tuple[FaultRecord, ...],
                   now: datetime) -> tuple[FaultRecord, ...]:
    """The screen's fault at start: raised when there is no display, cleared from an earlier run when there is one."""
    others = tuple(f for f in faults if f.component != DISPLAY_COMPONENT or f.code != "unavailable")
    if problem is not None:
        return others + (recovery.start_fault(store, DISPLAY_COMPONENT, "unavailable", problem, now),)
    if store is not None and len(others) < len(faults):
        store.clear_fault(DISPLAY_COMPONENT, now)
    return others


def _storage_code(faults: tuple[FaultRecord, ...]) -> str:
    """The storage fault's code at start (why no database could be opened)."""
    return next(f.code for f in faults if f.component == "storage")


def _help_panel(settings: config.Settings, simulate: bool, post: Callable[[Event], None], store: Store | None,
                faults: tuple[FaultRecord, ...], now: datetime) -> tuple[HelpPanel | None, tuple[FaultRecord, ...]]:
    """The help button, LED and door switch (simulated pins with --simulate); unusable pins become a fault."""
    from drivers.gpio import GpioUnavailable, HelpPanel, lgpio_pins
    from drivers.gpio_sim import SimulatedHelpPanel

    others = tuple(f for f in faults if f.component != "gpio")
    try:
        if simulate:
            panel: HelpPanel = SimulatedHelpPanel(settings.gpio, post)
        else:  # GPIOZERO_PIN_FACTORY, when a technician sets it, chooses another pin library
            chosen = None if os.environ.get("GPIOZERO_PIN_FACTORY") else lgpio_pins()
            panel = HelpPanel(settings.gpio, post, pin_factory=chosen)
    except GpioUnavailable as exc:
        log.error("GPIO: %s", exc)
        return None, others + (recovery.start_fault(store, "gpio", "unavailable", str(exc), now),)
    if store is not None and len(others) < len(faults):
        store.clear_fault("gpio", now)
    return panel, others



def _mqtt_link(settings: config.Settings, simulate: bool, store: Store | None,
               post: Callable[[Event], None]) -> MqttClient | None:
    """The MQTT link to the configured broker; with --simulate and no broker configured, a local one."""
    mqtt = settings.mqtt
    if not mqtt.host:
        if not simulate:
            log.warning("no MQTT broker configured (mqtt.host): everything stays in the outbox")
            return None
        mqtt = replace(mqtt, host="localhost", port=1883, tls=False)
        log.info("simulated station: MQTT to a broker on localhost:1883 if one runs, else the outbox keeps all")
    boot = store.boot if store is not None else int(time.time())
    return MqttClient(mqtt, settings.station.id, post, subscriptions=SUBSCRIPTIONS, boot=boot)


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
                 post: Callable[[Event], None], pairing: str = "loose", clock: ZvtClock | None = None) -> None:
        """The driver on the configured port; with ``simulate``, on a new pty to a simulator pairing ``pairing``.

        ``clock`` times both the driver and the simulator (tests pass one that skips over timers).
        """
        from drivers.payment.zvt.clock import REAL_CLOCK
        from drivers.payment.zvt.driver import OwedPayment, ZvtTerminal, serial_opener
        from drivers.payment.zvt.simulator import Simulator, open_pty

        t = settings.terminal
        clock = clock or REAL_CLOCK
        self.simulator: Simulator | None = None
        self._pty = None
        port = t.port
        line_quiet_s = t.line_quiet_ms / 1000
        if simulate:
            self._pty = open_pty()
            journal = Path(settings.storage.database).with_suffix(".terminal.jsonl")
            self.simulator = Simulator(self._pty.master_fd, journal, pairing=pairing, clock=clock)
            self.simulator.start()
            port = self._pty.slave_path
            # A pty made just now carries nothing from an earlier run: no need to wait out the PT's repeats.
            line_quiet_s = FRESH_LINE_QUIET_S
            log.info("card terminal simulator on %s (journal %s)", port, journal)
        self.terminal = ZvtTerminal(
            serial_opener(port, t.baud), post, password=t.password, currency=settings.tariff_engine.currency,
            charset=t.charset, payment_timeout_s=t.payment_timeout_s, status_interval_s=t.status_interval_s,
            vending_window_s=t.vending_window_s, line_quiet_s=line_quiet_s,
            owed=tuple(OwedPayment(p.id, p.receipt_no, p.trace_no, p.amount) for p in owed if p.method == ZvtTerminal.name),
            clock=clock)

    def close(self) -> None:
        """Stop the driver (again: closing it twice is safe), then the simulator and its pty."""
        self.terminal.close()
        if self.simulator is not None:
            self.simulator.stop()
        if self._pty is not None:
            self._pty.close()


def _updater(settings: config.Settings, uplink: Uplink, now: datetime) -> Updater | None:
    """The updater, when this station runs as a release under updates.root (docs/updates.md); None otherwise."""
    releases = Releases(Path(settings.updates.root))
    if releases.target(CURRENT) is None:
        log.info("remote updates off: %s names no installed release (a checkout runs as it is)",
                 releases.root / CURRENT)
        return None
    return Updater(settings.updates, package_version("kiosk"), lambda: uplink.connected, Path(settings.storage.database),
                   now)

