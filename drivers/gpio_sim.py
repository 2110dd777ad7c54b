"""The help panel on gpiozero mock pins, for --simulate and tests: a finger on the help button, the cabinet door."""
from __future__ import annotations

from collections.abc import Callable

from gpiozero.pins.mock import MockFactory, MockPin

from drivers.gpio import HelpPanel
from kiosk.config import GpioSettings
from kiosk.domain.events import Event


def mock_pin_factory() -> MockFactory:
    """A MockFactory for --simulate and tests (no hardware)."""
    return MockFactory()


class SimulatedHelpPanel(HelpPanel):
    """A HelpPanel on mock pins, with what drives them: the help button pressed and released, the door moved.

    The device classes in drivers/gpio.py never drive their own pins; as gpiozero keeps
    drive_low and drive_high on its MockPin, this panel drives the mock pins it was opened on.
    Its cabinet starts shut, not with a tamper alarm.
    """

    def __init__(self, settings: GpioSettings, post: Callable[[Event], None],
                 pin_factory: MockFactory | None = None) -> None:
        factory = pin_factory if pin_factory is not None else mock_pin_factory()
        super().__init__(settings, post, factory)
        self._button_pin: MockPin = factory.pin(settings.help_button)
        self._door_pin: MockPin = factory.pin(settings.door_switch)
        self._door_pin.drive_low()

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
