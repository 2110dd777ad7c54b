"""The console against two real simulated stations driven live (kiosk sim's socket) on one real mosquitto."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Mosquitto
from console_pilot import console, fleet_rows, rows, until
from mqtt_client import Staff
from station_process import Station, sim_config

from console.alerts import AlertDesk, AlertSettings, Notice
from console.app import ConsoleApp
from console.forms import FormScreen
from console.history import History
from console.metrics import Grouping
from console.screens import PickScreen
from kiosk.cli.sim_protocol import Answer, Command, Request, SimFault
from kiosk.cli.sim_socket import ask

pytestmark = pytest.mark.slow

ONE, TWO = "LIVE-A", "LIVE-B"
START_S = 60


class Live:
    """Two station processes, each with its control socket, and their broker."""

    def __init__(self, folder: Path) -> None:
        self.broker = Mosquitto(folder / "broker").start()
        self.sockets = {name: folder / f"{name}.sock" for name in (ONE, TWO)}
        self.stations = [Station(sim_config(folder / name, name, self.broker.port),
                                 args=("--control", str(self.sockets[name]))).start() for name in (ONE, TWO)]

    async def ask(self, station: str, request: Request) -> Answer:
        """A trainer's command, off the console's event loop; it must be done."""
        answer = await asyncio.to_thread(ask, self.sockets[station], request, 20.0)
        assert answer.ok, answer
        return answer

    def stop(self) -> None:
        """Stop the stations, then the broker."""
        for station in self.stations:
            station.stop()
        self.broker.stop()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The two stations, online."""
    fleet = Live(tmp_path)
    staff = Staff(fleet.broker.port)
    try:
        staff.subscribe("paystation/v1/+/status")
        for name, process in zip((ONE, TWO), fleet.stations):
            try:
                staff.wait_for(lambda ms: any(m.topic.endswith(f"{name}/status") and m.json()["state"] == "online"
                                              for m in ms), START_S, f"{name}'s birth")
            except AssertionError:
                raise AssertionError(process.log()) from None
        staff.close()
        yield fleet
    finally:
        fleet.stop()


def test_a_call_answered_and_a_crew_at_work_with_live_stations(live: Live, tmp_path: Path) -> None:
    history = History(tmp_path / "history.db")
    rung: list[Notice] = []

    class Rings:
        def ring(self, notices: Any) -> None:
            rung.extend(n for n in notices if n.rings)

    async def main() -> None:
        app: ConsoleApp = console(live.broker.port, "anna", desk=AlertDesk(AlertSettings(coalesce_s=0.2)),
                                  notifier=Rings(), history=history, export_folder=tmp_path / "exports")
        async with app.run_test(size=(200, 55)) as pilot:
            await until(pilot, lambda: not app.loading and app.fleet.total == 2, "the fleet of two", 30)

            # A parker at LIVE-A presses the red button: the call is offered, selected, accepted, answered, resolved.
            await live.ask(ONE, Request(Command.HELP))
            await until(pilot, lambda: app.selected and app.selected[0] == ONE and rows(app, "#queue"), "the call")
            await until(pilot, lambda: any(n.title == f"1 new call at {ONE}" for n in rung), "the call's alert")
            await pilot.press("f3")
            await until(pilot, lambda: rows(app, "#queue")[0][2] == "connected to you", "the call connected", 20)
            assert app.focused is app.query_one("#chat")
            app.query_one("#chat").value = "Hello, I am Anna."
            await pilot.press("enter")
            ticket = app.selected[1]
            await until(pilot, lambda: [(line.text, line.confirmed) for line in app.board.conversation(ticket)
                                        if line.who == "agent"] == [("Hello, I am Anna.", True)], "the ✓", 20)
            await pilot.press("f5")
            await until(pilot, lambda: isinstance(app.screen, FormScreen), "the resolve form")
            await pilot.press("ctrl+y")
            await until(pilot, lambda: app.selected is None and not rows(app, "#queue"), "the closed call gone", 20)
            [figures] = await until(pilot, lambda: history.help_metrics(Grouping.AGENT), "the call in the history", 20)
            assert (figures.key, figures.calls, figures.accepted, figures.resolved, figures.abandoned) == (
                "anna", 1, 1, 1, 0)
            await until(pilot, lambda: "solved, by anna" in app.query_one("#station").render().plain
                        or app.query_one("#fleet").station != ONE, "the call in the station pane")

            # The cabinet door of LIVE-B opens outside service mode: worst first, and it rings.
            await live.ask(TWO, Request(Command.RAISE, fault=SimFault.DOOR))
            await until(pilot, lambda: fleet_rows(app)[0][0] == TWO and "door/open" in fleet_rows(app)[0][-1],
                        "LIVE-B first", 20)
            await until(pilot, lambda: any(n.title == f"1 new critical fault: door/open at {TWO}" for n in rung),
                        "the door's alert")
            app.query_one("#fleet").focus()
            await pilot.press("home")
            await until(pilot, lambda: app.query_one("#fleet").station == TWO, "the cursor on LIVE-B")

            # The crew announces itself: service mode, through F9, confirmed; the door fault clears.
            await pilot.press("f9")
            await until(pilot, lambda: isinstance(app.screen, PickScreen), "the commands")
            await pilot.press("enter")  # the first: mode, with service preselected
            form = await until(pilot, lambda: isinstance(app.screen, FormScreen) and app.screen, "the mode form")
            form.query_one("#field-reason").value = "crew on site"
            await pilot.press("ctrl+y")
            await until(pilot, lambda: "mode: " in app.query_one("#station").render().plain, "the reply", 20)
            await until(pilot, lambda: fleet_rows(app)[0][0] == TWO and "operator/service" in fleet_rows(app)[0][-1]
                        and "door/open" not in fleet_rows(app)[0][-1], "LIVE-B in service, the door alarm over", 20)
            assert str(app.query_one("#fleet").border_title).startswith("Fleet 2 · 1 out of service")

            await pilot.press("f9")
            picker = await until(pilot, lambda: isinstance(app.screen, PickScreen) and app.screen, "the commands")
            picker.query_one("#pick").highlighted = 4
            await pilot.press("enter")  # doctor: no question asked
            await until(pilot, lambda: "doctor: " in app.query_one("#station").render().plain, "the doctor", 20)
            assert "database ok" in app.query_one("#station").render().plain

            await pilot.press("ctrl+t")  # the metrics, and their export
            await pilot.pause()
            await pilot.press("ctrl+e")
            await until(pilot, lambda: list((tmp_path / "exports").glob("*/help-by-agent.csv")), "the CSV export")

    try:
        asyncio.run(main())
    finally:
        history.close()
    [exported] = (tmp_path / "exports").glob("*/help-by-agent.csv")
    assert exported.read_text(encoding="utf-8").splitlines()[1].startswith("anna,1,1,1,0,")
