"""Help button, help LED and door switch: the real gpiozero devices over gpiozero's MockFactory pins."""
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import wait_for
from gpiozero import Device
from posted import Posted

from drivers.gpio import BLINK_OFF_S, BLINK_ON_S, GpioUnavailable, HelpPanel, lgpio_pins
from drivers.gpio_sim import SimulatedHelpPanel, mock_pin_factory
from kiosk.config import GpioSettings
from kiosk.domain.events import DoorChanged, HelpButtonFreed, HelpButtonStuck, HelpPressed, HelpReleased
from kiosk.domain.helpdesk import LED_BLINKING, LED_OFF, LED_STEADY

SETTINGS = GpioSettings()  # help button 17, LED 27, door 22, debounce 50 ms
DEBOUNCE_S = SETTINGS.debounce_ms / 1000
HOLD_S = 0.2  # below what the configuration accepts, to keep the test fast
TOLERANCE_S = 0.15
SHUT = DoorChanged(open=False)
STARTED = [SHUT, HelpButtonFreed()]  # at start: the door shut, the button up (ends a stuck fault from before)


def elapse(seconds: float) -> None:
    """Let time pass, so that what must NOT happen would have happened (never used to wait for something)."""
    threading.Event().wait(seconds)


@pytest.fixture
def factory():
    return mock_pin_factory()


@pytest.fixture
def open_panel(factory) -> Iterator[Callable[..., tuple[SimulatedHelpPanel, Posted]]]:
    """Open a started panel on the test's mock factory (settings overridable); closed afterwards."""
    panels: list[SimulatedHelpPanel] = []

    def open_(start: bool = True, **settings) -> tuple[SimulatedHelpPanel, Posted]:
        posted = Posted()
        panel = SimulatedHelpPanel(GpioSettings(**settings), posted, pin_factory=factory)
        panels.append(panel)
        if start:
            panel.start()
        return panel, posted

    yield open_
    for panel in panels:
        panel.close()


def test_press_and_release(open_panel):
    panel, posted = open_panel()
    panel.press()
    posted.wait_for([*STARTED, HelpPressed()])
    panel.release()
    posted.wait_for([*STARTED, HelpPressed(), HelpReleased()])
    elapse(2 * DEBOUNCE_S)
    assert posted.events == [*STARTED, HelpPressed(), HelpReleased()]


def test_a_driver_of_the_pins_waits_until_the_panel_reported_them(open_panel):
    """`kiosk sim` answers once the change got through the debounce: a press at once, the rest after the window."""
    panel, posted = open_panel()
    assert panel.wait_reported(0)
    panel.press()
    assert panel.button_down and panel.wait_reported(0)
    assert posted.events == [*STARTED, HelpPressed()]
    panel.release()
    assert not panel.wait_reported(0)  # the release waits for the window to close
    assert panel.wait_reported(1.0)
    assert posted.events == [*STARTED, HelpPressed(), HelpReleased()]
    panel.set_door(True)
    assert panel.door_open and not panel.wait_reported(0)
    assert panel.wait_reported(1.0)
    assert posted.events == [*STARTED, HelpPressed(), HelpReleased(), DoorChanged(open=True)]


def test_contact_bounce_gives_one_press_and_a_later_press_is_seen(open_panel):
    panel, posted = open_panel()
    panel.press()
    panel.release()
    panel.press()
    posted.wait_for([*STARTED, HelpPressed()])
    elapse(2 * DEBOUNCE_S)
    assert posted.events == [*STARTED, HelpPressed()]
    panel.release()
    posted.wait_for([*STARTED, HelpPressed(), HelpReleased()])
    panel.press()
    posted.wait_for([*STARTED, HelpPressed(), HelpReleased(), HelpPressed()])


def test_a_press_is_reported_at_its_first_edge(open_panel):
    panel, posted = open_panel()
    pressed_at = time.monotonic()
    panel.press()
    posted.wait_for([*STARTED, HelpPressed()], timeout=DEBOUNCE_S / 2)
    assert time.monotonic() - pressed_at < DEBOUNCE_S / 2, "no debounce delay before the parker's press counts"


def test_a_tap_shorter_than_the_debounce_is_a_press_that_ends_released(open_panel):
    panel, posted = open_panel()
    panel.press()
    panel.release()
    posted.wait_for([*STARTED, HelpPressed(), HelpReleased()])
    elapse(3 * DEBOUNCE_S)
    assert posted.events == [*STARTED, HelpPressed(), HelpReleased()], "never left believing the button is down"
    panel.press()
    posted.wait_for([*STARTED, HelpPressed(), HelpReleased(), HelpPressed()])


def test_held_button_is_reported_stuck_once_then_freed(open_panel):
    panel, posted = open_panel(button_stuck_s=HOLD_S)
    pressed_at = time.monotonic()
    panel.press()
    posted.wait_for([*STARTED, HelpPressed(), HelpButtonStuck(held_s=HOLD_S)])
    assert time.monotonic() - pressed_at >= HOLD_S
    elapse(3 * HOLD_S)
    assert posted.events == [*STARTED, HelpPressed(), HelpButtonStuck(held_s=HOLD_S)]
    panel.release()
    stuck_and_freed = [*STARTED, HelpPressed(), HelpButtonStuck(held_s=HOLD_S), HelpButtonFreed(), HelpReleased()]
    posted.wait_for(stuck_and_freed)
    panel.press()
    posted.wait_for(stuck_and_freed + [HelpPressed()])
    panel.release()
    posted.wait_for(stuck_and_freed + [HelpPressed(), HelpReleased()])


def test_a_press_shorter_than_the_hold_time_is_not_stuck(open_panel):
    panel, posted = open_panel(button_stuck_s=HOLD_S)
    panel.press()
    posted.wait_for([*STARTED, HelpPressed()])
    panel.release()
    posted.wait_for([*STARTED, HelpPressed(), HelpReleased()])
    elapse(1.5 * HOLD_S)
    assert posted.events == [*STARTED, HelpPressed(), HelpReleased()]


def test_a_button_down_at_start_opens_no_ticket_and_is_reported_stuck(open_panel):
    panel, posted = open_panel(start=False, button_stuck_s=HOLD_S)
    panel.press()
    panel.start()
    posted.wait_for([SHUT, HelpButtonStuck(held_s=HOLD_S)])
    panel.release()
    posted.wait_for([SHUT, HelpButtonStuck(held_s=HOLD_S), HelpButtonFreed(), HelpReleased()])


def test_door_position_at_start_and_its_changes(open_panel):
    panel, posted = open_panel()
    assert posted.events == STARTED
    panel.set_door(True)
    posted.wait_for([*STARTED, DoorChanged(open=True)])
    panel.set_door(False)
    posted.wait_for([*STARTED, DoorChanged(open=True), SHUT])


def test_start_reports_the_door_as_it_is_and_nothing_is_posted_before(open_panel):
    panel, posted = open_panel(start=False)
    panel.set_door(True)
    panel.press()
    elapse(2 * DEBOUNCE_S)
    assert posted.events == []
    panel.start()
    assert posted.events == [DoorChanged(open=True)]


def test_door_bounce_is_debounced(open_panel):
    panel, posted = open_panel()
    panel.set_door(True)
    panel.set_door(False)
    panel.set_door(True)
    posted.wait_for([*STARTED, DoorChanged(open=True)])
    panel.set_door(False)
    panel.set_door(True)
    elapse(3 * DEBOUNCE_S)
    assert posted.events == [*STARTED, DoorChanged(open=True)]


def test_a_vibrating_door_reports_only_the_level_it_settles_on(open_panel):
    panel, posted = open_panel()
    for _ in range(20):  # edges every few milliseconds, for longer than a debounce window
        panel.set_door(True)
        panel.set_door(False)
        elapse(DEBOUNCE_S / 10)
    panel.set_door(True)
    posted.wait_for([*STARTED, DoorChanged(open=True)])
    elapse(2 * DEBOUNCE_S)
    assert posted.events == [*STARTED, DoorChanged(open=True)], "one report, for the level the door came to rest at"


def test_blinking_alternates_every_half_second(open_panel, factory):
    panel, _ = open_panel()
    led = factory.pin(SETTINGS.help_led)
    led.clear_states()
    panel.show(LED_BLINKING)
    wait_for(lambda: len(led.states) >= 5, 3, "on, off, on, off")
    states = led.states[:5]
    assert [s.state for s in states] == [False, True, False, True, False]
    for state, expected_s in zip(states[2:], (BLINK_ON_S, BLINK_OFF_S, BLINK_ON_S)):
        assert abs(state.timestamp - expected_s) <= TOLERANCE_S, states
    assert panel.led_pattern == LED_BLINKING


def test_asking_for_blinking_again_does_not_restart_the_blink(open_panel, factory):
    panel, _ = open_panel()
    led = factory.pin(SETTINGS.help_led)
    led.clear_states()
    panel.show(LED_BLINKING)
    wait_for(lambda: led.state, 1, "the LED on")
    elapse(0.3)  # a restarted blink would now stay on for another BLINK_ON_S
    panel.show(LED_BLINKING)
    wait_for(lambda: not led.state, 2, "the LED off")
    assert abs(led.states[-1].timestamp - BLINK_ON_S) <= TOLERANCE_S, led.states


def test_steady_stops_blinking_and_off_turns_the_led_off(open_panel, factory):
    panel, _ = open_panel()
    led = factory.pin(SETTINGS.help_led)
    panel.show(LED_BLINKING)
    wait_for(lambda: led.state, 1, "the LED on")
    wait_for(lambda: not led.state, 2, "the LED off")
    panel.show(LED_STEADY)
    assert led.state and panel.led_pattern == LED_STEADY
    led.clear_states()
    elapse(max(BLINK_ON_S, BLINK_OFF_S) + 0.1)
    assert [s.state for s in led.states] == [True]
    panel.show(LED_OFF)
    assert not led.state and panel.led_pattern == LED_OFF


def test_unknown_led_pattern_is_refused(open_panel):
    panel, _ = open_panel()
    panel.show(LED_STEADY)
    with pytest.raises(ValueError, match="disco"):
        panel.show("disco")
    assert panel.led_pattern == LED_STEADY


def test_close_turns_the_led_off_ends_its_threads_and_posts_nothing_more(factory):
    before = set(threading.enumerate())
    posted = Posted()
    panel = SimulatedHelpPanel(SETTINGS, posted, pin_factory=factory)
    panel.start()
    led = factory.pin(SETTINGS.help_led)
    panel.show(LED_BLINKING)
    wait_for(lambda: led.state, 1, "the LED on")
    panel.press()  # reported at once; its debounce window and stuck timer are still open when the panel closes
    panel.close()
    assert not led.state and panel.led_pattern == LED_OFF
    led.clear_states()
    factory.pin(SETTINGS.help_button).drive_high()
    factory.pin(SETTINGS.help_button).drive_low()
    wait_for(lambda: set(threading.enumerate()) <= before, 2, "the panel's threads to end")
    assert posted.events == [*STARTED, HelpPressed()]
    assert [s.state for s in led.states] == [False]
    panel.close()


def test_closing_while_the_button_is_held_is_prompt(factory):
    before = set(threading.enumerate())
    posted = Posted()
    panel = SimulatedHelpPanel(SETTINGS, posted, pin_factory=factory)  # stuck only after 30 s
    panel.start()
    panel.press()
    posted.wait_for([*STARTED, HelpPressed()])
    closing = time.monotonic()
    panel.close()
    assert time.monotonic() - closing < 0.5
    wait_for(lambda: set(threading.enumerate()) <= before, 1, "the panel's threads to end")
    assert posted.events == [*STARTED, HelpPressed()]


def test_simulation_helpers_know_the_pins_are_mock_pins(open_panel):
    panel, _ = open_panel()
    assert panel.simulated


def test_a_pin_in_use_is_unavailable_and_names_the_pin(open_panel, factory):
    first, _ = open_panel()
    with pytest.raises(GpioUnavailable, match=r"GPIO17\b.*help button.*in use"):
        HelpPanel(SETTINGS, Posted(), pin_factory=factory)
    with pytest.raises(GpioUnavailable, match=r"GPIO27\b"):  # its button (GPIO5) opened first, then must be let go
        HelpPanel(GpioSettings(help_button=5), Posted(), pin_factory=factory)
    HelpPanel(GpioSettings(help_button=5, help_led=6, door_switch=13), Posted(), pin_factory=factory).close()
    first.close()
    HelpPanel(SETTINGS, Posted(), pin_factory=factory).close()


def test_no_gpio_backend_is_unavailable(monkeypatch):
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-backend")
    with pytest.raises(GpioUnavailable, match=r"GPIO17\b.*BadPinFactory"):
        HelpPanel(SETTINGS, Posted())


@pytest.mark.skipif("Raspberry Pi" in (Path("/proc/device-tree/model").read_text(errors="replace")
                                         if Path("/proc/device-tree/model").exists() else ""),
                    reason="on a Raspberry Pi lgpio opens")
def test_the_pin_library_says_why_it_cannot_be_had():
    """Off a Pi (lgpio missing, or no Pi revision) the fault names lgpio and the reason, not gpiozero's fallback."""
    with pytest.raises(GpioUnavailable, match=r"^the pin library lgpio: (ModuleNotFoundError|ImportError|PinUnknownPi)"):
        lgpio_pins()


def test_the_desktop_help_key_presses_and_releases_the_simulated_button(open_panel):
    panel, posted = open_panel()
    panel.help_key(True)
    posted.wait_for([*STARTED, HelpPressed()])
    panel.help_key(False)
    posted.wait_for([*STARTED, HelpPressed(), HelpReleased()])


def test_the_real_panel_never_drives_its_pins(factory):
    posted = Posted()
    panel = HelpPanel(SETTINGS, posted, pin_factory=factory)
    try:
        panel.start()  # nothing shut the door: the pulled-up switch reads open
        assert posted.events == [DoorChanged(open=True), HelpButtonFreed()]
        assert not any(hasattr(panel, name) for name in ("press", "release", "set_door", "help_key"))
    finally:
        panel.close()
