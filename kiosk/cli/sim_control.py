"""What `kiosk sim` does to a running simulated station: the help button's pin, scenario steps, simulated faults."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kiosk.app.loop import Loop
from kiosk.cli.scenario import Runner, ScenarioDisplay, ScenarioError, Step, parse
from kiosk.cli.sim_protocol import Answer, BadRequest, Code, Command, Request, SimFault
from kiosk.domain.events import ControlAsked

if TYPE_CHECKING:
    from drivers.gpio_sim import SimulatedHelpPanel
    from drivers.payment.zvt.simulator import Simulator
    from kiosk.cli.compose import Station

__all__ = ["LOOP_S", "OUT_OF_ORDER", "PIN_S", "UNPLUGGED_S", "Controller", "Refused", "controller"]

log = logging.getLogger(__name__)

LOOP_S = 20.0  # a step's `expect` may wait up to 10 s (scenario.EXPECT_TIMEOUT_S) for its expectation
PIN_S = 2.0  # a pin change gets through the debounce (gpio.debounce_ms, at most 0.5 s) well within this
UNPLUGGED_S = 365 * 86400  # the terminal's cable stays pulled until the fault is cleared
OUT_OF_ORDER = 0xDF  # the ZVT terminal status "out of order"
SOURCE = "kiosk sim"  # the scenario source named in a step's report
T = TypeVar("T")


class Refused(Exception):
    """A good request the station could not carry out; ``code`` says how (refused, timeout, stopping)."""

    def __init__(self, detail: str, code: Code = Code.REFUSED) -> None:
        super().__init__(detail)
        self.code = code


class Controller:
    """Carries out one request at a time on a running simulated station, answering once it took effect.

    The help button and the door are driven through their simulated pins, so the press takes
    the real panel's path (debounce, stuck detection); the answer comes once the panel reported
    the change and the loop handled it. Scenario steps run on the loop's thread, as in a
    replay; the simulated card terminal is scripted through its own hooks.
    """

    def __init__(self, loop: Loop, display: ScenarioDisplay, panel: SimulatedHelpPanel | None,
                 terminal: Simulator | None, base_dir: Path, station_id: str) -> None:
        """``base_dir``: where a step's relative screenshot path points (the station's database folder)."""
        self._loop = loop
        self._panel = panel
        self._terminal = terminal
        self._station_id = station_id
        self._runner = Runner(loop, display, terminal, None, base_dir)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._waiting: set[threading.Event] = set()
        self._raised: set[SimFault] = set()
        self._commands: dict[Command, Callable[[Request], str]] = {
            Command.PRESS: lambda request: self._button(True),
            Command.RELEASE: lambda request: self._button(False),
            Command.HELP: lambda request: self._help(),
            Command.STEP: self._step,
            Command.RAISE: lambda request: self._fault(request, True),
            Command.CLEAR: lambda request: self._fault(request, False),
            Command.STATE: lambda request: "the station's state",
        }
        self._faults: dict[SimFault, Callable[[bool], str]] = {
            SimFault.DOOR: self._door,
            SimFault.TERMINAL_UNREACHABLE: self._cable,
            SimFault.TERMINAL_OUT_OF_ORDER: self._out_of_order,
        }

    def execute(self, request: Request) -> Answer:
        """Carry out ``request`` and answer with the station's state after it (any thread but the loop's)."""
        try:
            detail = self._commands[request.command](request)
            state = self._on_loop(self._state)
        except BadRequest as exc:
            return Answer(False, exc.code, str(exc))
        except Refused as exc:
            return Answer(False, exc.code, str(exc))
        log.log(logging.DEBUG if request.command is Command.STATE else logging.INFO, "kiosk sim: %s: %s",
                request.command, detail)
        return Answer(True, Code.DONE, detail, state)

    def close(self) -> None:
        """The station stops: a command waiting for the loop is answered so, and none runs any more."""
        self._closing.set()
        with self._lock:
            waiting = list(self._waiting)
        for wake in waiting:
            wake.set()

    # ---- commands ----

    def _button(self, down: bool) -> str:
        panel = self._need_panel()
        if panel.button_down == down:
            return f"the help button was already {'down' if down else 'up'}"
        if down:
            panel.press()
        else:
            panel.release()
        self._reported(panel)
        return "help button pressed (held down)" if down else "help button released"

    def _help(self) -> str:
        panel = self._need_panel()
        if panel.button_down:
            raise Refused("the help button is held down (press): release it")
        panel.press()
        self._reported(panel)
        panel.release()
        self._reported(panel)
        return "help button pressed and released"

    def _step(self, request: Request) -> str:
        try:
            start, steps = parse(request.step, SOURCE)
        except ScenarioError as exc:
            raise BadRequest(str(exc)) from None
        if start is not None:
            raise BadRequest("start sets a replay's clock; a live station runs on real time")
        if len(steps) != 1:
            raise BadRequest(f"one scenario step per request, got {len(steps)}")
        (step,) = steps
        if step.words[0] == "help":
            return self._help_step(step)
        self._on_loop(lambda now: self._run_step(step))
        return f"step done: {' '.join(step.words)}"

    def _help_step(self, step: Step) -> str:
        """The scenario's `help press|release`, through the pin (a replay without pins posts the events)."""
        actions: dict[tuple[str, ...], bool] = {("press",): True, ("release",): False}
        down = actions.get(step.words[1:])
        if down is None:
            raise BadRequest(f"{SOURCE}: expected 'help press' or 'help release', got {' '.join(step.words)!r}")
        return self._button(down)

    def _run_step(self, step: Step) -> None:
        try:
            self._runner.step(step)
        except ScenarioError as exc:
            raise Refused(str(exc)) from None

    def _fault(self, request: Request, active: bool) -> str:
        assert request.fault is not None  # parse_request gives raise and clear their fault
        detail = self._faults[request.fault](active)
        if active:
            self._raised.add(request.fault)
        else:
            self._raised.discard(request.fault)
        return detail

    def _door(self, open: bool) -> str:
        panel = self._need_panel()
        panel.set_door(open)
        self._reported(panel)
        if open:
            return "cabinet door opened: door/open is raised outside service mode"
        return "cabinet door closed"

    def _cable(self, pulled: bool) -> str:
        terminal = self._need_terminal()
        if pulled:
            terminal.inject("disconnect", UNPLUGGED_S)
            return ("card terminal cable pulled: card_terminal/unreachable is raised once a status enquiry goes "
                    "unanswered (every terminal.status_interval_s, then about 15 s of repeats)")
        terminal.reconnect()
        return "card terminal cable plugged back in: the fault clears at the station's next try (within 10 s)"

    def _out_of_order(self, broken: bool) -> str:
        terminal = self._need_terminal()
        terminal.set_status(OUT_OF_ORDER if broken else 0)
        if broken:
            return (f"card terminal reports status {OUT_OF_ORDER:02X}: card_terminal/out_of_order is raised at the "
                    "next status enquiry (every terminal.status_interval_s)")
        return "card terminal reports status 00 (ready): the fault clears at the next status enquiry"

    # ---- the station ----

    def _need_panel(self) -> SimulatedHelpPanel:
        if self._panel is None:
            raise Refused("this station has no simulated help panel (its GPIO could not be opened: gpio/unavailable)")
        return self._panel

    def _need_terminal(self) -> Simulator:
        if self._terminal is None:
            raise Refused("this station has no simulated card terminal")
        return self._terminal

    def _reported(self, panel: SimulatedHelpPanel) -> None:
        if not panel.wait_reported(PIN_S):
            raise Refused(f"the help panel did not report the pin's change within {PIN_S:g} s", Code.TIMEOUT)

    def _state(self, now: datetime) -> dict[str, Any]:
        """The station as a trainer sees it once what the command set off was handled (loop thread)."""
        self._loop.settle()
        state = self._loop.state
        panel = self._panel
        return {
            "station": self._station_id,
            "screen": str(state.screen),
            "help": str(state.help.phase) if state.help is not None else None,
            "button": None if panel is None else "down" if panel.button_down else "up",
            "door": None if panel is None else "open" if panel.door_open else "closed",
            "faults": sorted(f"{f.component}/{f.code}" for f in self._loop.fault_board.active()),
            "simulated": sorted(self._raised),
        }

    def _on_loop(self, task: Callable[[datetime], T]) -> T:
        """Run ``task`` on the loop's thread; its result, or Refused (refused, timeout, stopping)."""
        done = threading.Event()
        results: list[T] = []
        failures: list[Refused | BadRequest] = []

        def run(now: datetime) -> None:
            try:
                if not self._closing.is_set():
                    results.append(task(now))
            except (Refused, BadRequest) as exc:
                failures.append(exc)
            except Exception as exc:  # a simulated step's bug must not stop the station: the trainer is told
                log.exception("kiosk sim: the command failed")
                failures.append(Refused(f"the command failed: {type(exc).__name__}: {exc}"))
            finally:
                done.set()

        with self._lock:
            self._waiting.add(done)
        try:
            if not self._closing.is_set():
                self._loop.post(ControlAsked(run))
                done.wait(LOOP_S)
        finally:
            with self._lock:
                self._waiting.discard(done)
        if failures:
            raise failures[0]
        if results:
            return results[0]
        if self._closing.is_set():
            raise Refused("the station is stopping", Code.STOPPING)
        raise Refused(f"the station's loop did not run the command within {LOOP_S:g} s", Code.TIMEOUT)


def controller(station: Station, station_id: str) -> Controller:
    """The controller of a station built with ``simulate`` (its simulated panel and terminal, if it has them)."""
    from drivers.gpio_sim import SimulatedHelpPanel

    panel = station.panel if isinstance(station.panel, SimulatedHelpPanel) else None
    base_dir = Path(station.loop.state.settings.storage.database).parent
    return Controller(station.loop, station.display, panel, station.devices.simulator, base_dir, station_id)
