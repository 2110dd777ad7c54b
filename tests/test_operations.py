"""Staff commands on the loop thread: cmd/mode decides on the door alarm again, every time, as it always did."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from conftest import no_menu

from kiosk.app.cabinet import Cabinet
from kiosk.app.faults import FaultBoard
from kiosk.app.operations import Operations
from kiosk.domain.events import DoorChanged, Event
from kiosk.domain.records import FaultRecord
from kiosk.domain.staff import ModeArgs
from kiosk.storage.unavailable import UnavailableStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TAMPER = FaultRecord("door", "open", "critical", "The cabinet door was opened outside service mode.", "none", NOW)


def parts(faults: tuple[FaultRecord, ...] = ()) -> tuple[FaultBoard, Cabinet, Operations, list[Event]]:
    posted: list[Event] = []
    store = UnavailableStore("io", Path("/nonexistent/kiosk.db"))  # faults stay in memory
    board = FaultBoard(store, posted.append, faults)
    cabinet = Cabinet(board)
    operations = Operations(store, board, None, lambda: None, posted.append, lambda: None,
                            cabinet.check_door, no_menu)
    return board, cabinet, operations, posted


def components(board: FaultBoard) -> list[str]:
    return [f.component for f in board.active()]


def test_mode_normal_clears_a_tamper_alarm_kept_from_before_a_restart_with_the_door_shut() -> None:
    """Without a help panel (GPIO unavailable) nothing reports the door; staff clear the alarm with mode normal."""
    board, _cabinet, operations, _ = parts((TAMPER,))
    operations.execute("mode", ModeArgs("normal"), NOW)
    assert components(board) == []


def test_service_mode_silences_the_open_door_and_normal_mode_raises_it_again() -> None:
    board, cabinet, operations, _ = parts()
    cabinet.handle(DoorChanged(True), NOW)
    assert components(board) == ["door"]
    operations.execute("mode", ModeArgs("service", "crew on site"), NOW)
    assert components(board) == ["operator"]
    operations.execute("mode", ModeArgs("normal"), NOW)
    assert components(board) == ["door"]


def test_the_operator_change_is_announced_before_the_door_change() -> None:
    """Staff see service mode before the tamper alarm clears, never an alarm cleared without a reason."""
    board, cabinet, operations, _ = parts()
    changes: list[tuple[str, bool]] = []
    board.listen(lambda fault, active, stored, now: changes.append((fault.component, active)))
    cabinet.handle(DoorChanged(True), NOW)
    operations.execute("mode", ModeArgs("service", "crew on site"), NOW)
    assert changes == [("door", True), ("operator", True), ("door", False)]
