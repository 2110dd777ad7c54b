"""Help button, its LED and the cabinet door switch on GPIO (gpiozero; simulated pins: drivers/gpio_sim.py)."""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from gpiozero import LED, Device, DigitalInputDevice
from gpiozero.devices import GPIODevice
from gpiozero.pins import Factory

from kiosk.config import GpioSettings
from kiosk.domain.events import DoorChanged, Event, HelpButtonFreed, HelpButtonStuck, HelpPressed, HelpReleased
from kiosk.domain.helpdesk import LedPattern

log = logging.getLogger(__name__)
D = TypeVar("D", bound=GPIODevice)

BLINK_ON_S = BLINK_OFF_S = 0.5


def _start_timer(delay_s: float, then: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay_s, then)
    timer.daemon = True
    timer.start()
    return timer


class GpioUnavailable(Exception):
    """A pin of the help panel could not be opened (no GPIO chip, pin busy); the message names the pin and why."""


def lgpio_pins() -> Factory:
    """gpiozero's lgpio pin factory, the station's on a Raspberry Pi; GpioUnavailable says why it cannot be had.

    Asked for by name rather than left to gpiozero's choice, whose fallback hides the reason
    (lgpio not installed, not a Raspberry Pi, no /dev/gpiochip) behind "Unable to load any
    default pin factory". It becomes gpiozero's default, so that gpiozero closes it at exit. lgpio
    makes its notification pipe in the working directory.
    """
    try:
        from gpiozero.pins.lgpio import LGPIOFactory

        factory = LGPIOFactory()
    except Exception as exc:  # ImportError without lgpio, PinUnknownPi off a Pi, lgpio.error without the chip
        raise GpioUnavailable(f"the pin library lgpio: {type(exc).__name__}: {exc}") from exc
    Device.pin_factory = factory  # gpiozero's own shutdown closes it (and the chip), whatever becomes of the panel
    return factory


class _Debounce:
    """One switch's level, debounced: reported at once (``leading``) or once it has settled.

    Leading (the help button): the first edge on a quiet switch is reported at once, so the
    parker's press costs no delay; the edges of its bounce fall into a window of `delay_s`,
    and when the window closes the level the switch is at is reported if it differs. The
    price: a spike shorter than the window counts as a short press.
    Settled (the door switch): every edge starts the window again; a level that held for a
    whole window is reported if it changed, so a vibrating door does not flap the tamper fault.

    gpiozero's bounce_time is not used: its MockPin ignores it (it only stores the value),
    and the real backends debounce differently (lgpio waits for a stable level; native and
    RPi.GPIO drop edges for a while after one, which can lose the level a short tap ends on).
    This filter behaves the same on mock and real pins and always ends on the real level.
    """

    def __init__(self, delay_s: float, lock: threading.Lock, report: Callable[[bool], None], *,
                 leading: bool) -> None:
        self.level = False  # the last level reported (True: the switch is closed)
        self._delay_s = delay_s
        self._lock = lock
        self._report = report
        self._leading = leading
        self._latest = False
        self._window: threading.Timer | None = None

    def edge(self, level: bool) -> None:
        """gpiozero callback (its thread): note the level; on a quiet switch, open a window (leading: report)."""
        with self._lock:
            self._latest = level
            if self._window is None:
                if self._leading and level != self.level:
                    self.level = level
                    self._report(level)
            elif not self._leading:  # settled: the level must hold for a whole window
                self._window.cancel()
                self._window = None
            if self._window is None:
                self._window = _start_timer(self._delay_s, self._settled)

    def _settled(self) -> None:
        with self._lock:
            if self._window is not threading.current_thread():  # cancelled as it fired: a newer window runs
                return
            self._window = None
            if self._latest != self.level:
                self.level = self._latest
                self._report(self.level)
                if self._leading:  # the reported change may bounce too
                    self._window = _start_timer(self._delay_s, self._settled)


class HelpPanel:
    """Help button, its LED and the cabinet door switch; device callbacks only post events."""

    def __init__(self, settings: GpioSettings, post: Callable[[Event], None], pin_factory: Factory | None = None) -> None:
        self._post_event = post
        self._stuck_s = settings.button_stuck_s
        self._lock = threading.Lock()
        self._closed = False
        self._stuck = False
        self._stuck_timer: threading.Timer | None = None
        self._pattern = LedPattern.OFF
        self._opened: list[GPIODevice] = []
        try:
            # Both switches connect their pin to ground against the internal pull-up: active = closed.
            # Not gpiozero's Button: its hold thread cannot be stopped while it waits out hold_time, so
            # closing a Button that is held (say, stuck) blocks 10 s and raises ZombieThread. The stuck
            # timer is ours, and bounce_time stays None (see _Debounce).
            self._button = self._open("help button", settings.help_button, DigitalInputDevice, pull_up=True,
                                      bounce_time=None, pin_factory=pin_factory)
            self._led = self._open("help LED", settings.help_led, LED, pin_factory=pin_factory)
            self._door = self._open("door switch", settings.door_switch, DigitalInputDevice, pull_up=True,
                                    bounce_time=None, pin_factory=pin_factory)
        except GpioUnavailable:
            for device in self._opened:
                device.close()
            raise
        delay_s = settings.debounce_ms / 1000
        self._help_switch = _Debounce(delay_s, self._lock, self._help_settled, leading=True)
        self._door_switch = _Debounce(delay_s, self._lock, self._door_settled, leading=False)

    def _open(self, role: str, pin: int, device_class: type[D], **options: Any) -> D:
        try:
            device = device_class(pin, **options)
        except Exception as exc:  # each backend fails its own way: gpiozero errors, lgpio.error('GPIO busy'), OSError
            raise GpioUnavailable(f"cannot open GPIO{pin} for the {role}: {type(exc).__name__}: {exc}") from exc
        self._opened.append(device)
        return device

    def start(self) -> None:
        """Listen to the switches; post the door's current position (DoorChanged) and the button's once.

        A help button already down at start opens no ticket; if it stays down it is reported stuck.
        One that is up posts HelpButtonFreed, which ends a stuck fault left from the last run.
        """
        self._button.when_activated = functools.partial(self._help_switch.edge, True)
        self._button.when_deactivated = functools.partial(self._help_switch.edge, False)
        self._door.when_activated = functools.partial(self._door_switch.edge, True)
        self._door.when_deactivated = functools.partial(self._door_switch.edge, False)
        with self._lock:
            self._door_switch.level = self._door.is_active
            self._post(DoorChanged(open=not self._door_switch.level))
            if self._button.is_active:  # down at boot: jammed, not a parker (no ticket; stuck if it stays down)
                self._help_switch.level = True
                self._stuck_timer = _start_timer(self._stuck_s, self._held)
            else:  # up: a stuck fault from the last run is over
                self._post(HelpButtonFreed())

    @property
    def led_pattern(self) -> LedPattern:
        """The LED pattern shown now."""
        return self._pattern

    def show(self, pattern: LedPattern) -> None:
        """Show an LED pattern; the current pattern again, or any after close, changes nothing."""
        actions: dict[LedPattern, Callable[[], object]] = {
            LedPattern.OFF: self._led.off,
            LedPattern.STEADY: self._led.on,
            LedPattern.BLINKING: functools.partial(self._led.blink, on_time=BLINK_ON_S, off_time=BLINK_OFF_S,
                                                   background=True),
        }
        if pattern not in actions:
            raise ValueError(f"unknown LED pattern {pattern!r}; expected one of {', '.join(actions)}")
        pattern = LedPattern(pattern)
        if pattern != self._pattern and not self._led.closed:
            actions[pattern]()
            self._pattern = pattern

    def close(self) -> None:
        """Turn the LED off (ending a blink's thread) and release the pins; nothing is posted afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._stuck_timer is not None:
                self._stuck_timer.cancel()
        self.show(LedPattern.OFF)
        for device in self._opened:
            device.close()

    def _held(self) -> None:
        """Stuck timer (its own thread): the button has been down for button_stuck_s."""
        with self._lock:
            if self._stuck_timer is threading.current_thread():  # else the button was released as it fired
                self._stuck = True
                log.warning("help button held for %s s: stuck or jammed", self._stuck_s)
                self._post(HelpButtonStuck(held_s=self._stuck_s))

    def _help_settled(self, pressed: bool) -> None:
        if self._closed:  # a debounce window that was open as the panel closed
            return
        if pressed:
            self._stuck_timer = _start_timer(self._stuck_s, self._held)
            self._post(HelpPressed())
            return
        if self._stuck_timer is not None:  # set by the press that this release ends
            self._stuck_timer.cancel()
            self._stuck_timer = None
        if self._stuck:
            self._stuck = False
            log.info("help button freed")
            self._post(HelpButtonFreed())
        self._post(HelpReleased())

    def _door_settled(self, closed: bool) -> None:
        self._post(DoorChanged(open=not closed))

    def _post(self, event: Event) -> None:
        """Hand `event` to the loop unless the panel is closed (the caller holds the lock)."""
        if not self._closed:
            log.debug("posting %r", event)
            self._post_event(event)
