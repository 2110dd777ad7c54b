"""The help panel on gpiozero mock pins, for --simulate and tests: a finger on the help button, the cabinet door."""
from __future__ import annotations

import threading
from collections.abc import Callable

from gpiozero.pins.mock import MockFactory, MockPin

from drivers.gpio import HelpPanel
from kiosk.config import GpioSettings
from kiosk.domain.events import DoorChanged, Event, HelpPressed, HelpReleased

BUTTON_DOWN: dict[type, bool] = {HelpPressed: True, HelpReleased: False}  # what a posted event says of the button


def mock_pin_factory() -> MockFactory:
    """A MockFactory for --simulate and tests (no hardware)."""
    return MockFactory()


class SimulatedHelpPanel(HelpPanel):
    """A HelpPanel on mock pins, with what drives them: the help button pressed and released, the door moved.

    The device classes in drivers/gpio.py never drive their own pins; as gpiozero keeps
    drive_low and drive_high on its MockPin, this panel drives the mock pins it was opened on.
    Its cabinet starts shut, not with a tamper alarm. It notes what the panel posted, so that
    a driver of the pins can wait until a change got through the debounce (``wait_reported``).
    """

    def __init__(self, settings: GpioSettings, post: Callable[[Event], None],
                 pin_factory: MockFactory | None = None) -> None:
        factory = pin_factory if pin_factory is not None else mock_pin_factory()
        self._reported = threading.Condition()
        self._button_reported = False  # the panel's last word: the button is down
        self._door_reported = False  # the panel's last word: the door is open
        self._forward = post
        super().__init__(settings, self._note, factory)
        self._button_pin: MockPin = factory.pin(settings.help_button)
        self._door_pin: MockPin = factory.pin(settings.door_switch)
        self._door_pin.drive_low()

    def _note(self, event: Event) -> None:
        """Post ``event`` to the loop, noting the levels it reports (the panel's thread, under its lock)."""
        with self._reported:
            self._button_reported = BUTTON_DOWN.get(type(event), self._button_reported)
            if isinstance(event, DoorChanged):
                self._door_reported = event.open
            self._forward(event)
            self._reported.notify_all()

    @property
    def button_down(self) -> bool:
        """The help button's pin is held down now (whether or not the panel reported it yet)."""
        return not self._button_pin.state

    @property
    def door_open(self) -> bool:
        """The door switch's pin says open now (whether or not the panel reported it yet)."""
        return bool(self._door_pin.state)

    def wait_reported(self, timeout: float) -> bool:
        """Wait until the panel has posted the button's and the door's present levels; False after ``timeout`` s.

        A press is posted at once, a release and a door change once the debounce window closed.
        """
        with self._reported:
            return self._reported.wait_for(
                lambda: (self._button_reported, self._door_reported) == (self.button_down, self.door_open), timeout)

    @property
    def simulated(self) -> bool:
        """True: the pins are gpiozero mock pins, which press, release and set_door drive."""
        return isinstance(self._button_pin, MockPin) and isinstance(self._door_pin, MockPin)

    def press(self) -> None:
        """Press the help button (its pin goes low, as through the switch to ground)."""
        self._button_pin.drive_low()

    def release(self) -> None:
        """Let go of the help button."""
        self._button_pin.drive_high()

    def help_key(self, down: bool) -> None:
        """The desktop help key of --simulate (screens.display.Display's help_key): down presses, up releases."""
        if down:
            self.press()
        else:
            self.release()

    def set_door(self, open: bool) -> None:
        """Open or shut the cabinet door (the switch is closed, its pin low, while shut)."""
        if open:
            self._door_pin.drive_high()
        else:
            self._door_pin.drive_low()
