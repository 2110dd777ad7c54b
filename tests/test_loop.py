"""The main loop: idle blocking, posts from other threads, and storage faults that never crash it."""
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_kiosk, wait_for

from kiosk.app.loop import Loop
from kiosk.cli.compose import CardTerminal
from kiosk.cli.scenario import ManualClock
from kiosk.config import Settings, StorageSettings
from kiosk.domain import journey
from kiosk.domain.events import HelpPressed, Tap
from kiosk.storage.store import StorageError, Store
from screens.display import Display

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def settle_until(loop: Loop, done, timeout: float = 10.0) -> None:
    """Handle events until `done()` holds (devices answer from their own threads)."""
    wait_for(done, timeout, "the loop to get there", between=loop.settle)


class CountingDisplay(Display):
    """The real headless display, counting frames and waits."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, headless=True)
        self.frames = 0
        self.timeouts: list[float | None] = []

    def render(self, state: journey.State, now: datetime) -> None:
        self.frames += 1
        super().render(state, now)

    def wait(self, timeout: float | None) -> list:
        self.timeouts.append(timeout)
        return super().wait(timeout)


@pytest.fixture
def parts(tmp_path: Path):
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")))
    clock = ManualClock(START)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = CountingDisplay(settings)
    devices = CardTerminal(settings, True, (), lambda event: loop.post(event))
    loop = Loop(journey.initial(settings, clock()), store, devices.terminal, display, clock)
    devices.terminal.start()
    yield loop, display, store, clock, devices.simulator
    devices.close()
    display.close()
    store.close()


def test_events_from_other_threads_wake_the_blocked_loop(parts) -> None:
    loop, _display, _, _, _ = parts
    handled = threading.Event()

    def parker() -> None:
        loop.post(Tap("start"))
        loop.post(HelpPressed())
        while loop.state.help is None or loop.state.help.id is None:
            if handled.wait(0.01):
                return
        handled.set()
        loop.stop()

    worker = threading.Thread(target=parker)
    worker.start()
    loop.run()
    worker.join(5)
    assert handled.is_set()
    assert loop.state.screen is journey.Screen.PLATE and loop.state.help is not None


def test_idle_loop_blocks_until_the_next_deadline_and_draws_nothing_new(parts) -> None:
    loop, display, _, clock, _ = parts
    loop.settle()
    frames = display.frames
    stopper = threading.Timer(0.3, loop.stop)
    stopper.start()
    loop.run()
    assert display.frames == frames, "nothing changed, nothing redrawn"
    assert all(t is not None and t >= 59 for t in display.timeouts), display.timeouts
    clock.set(clock() + timedelta(minutes=1))
    loop.settle()
    assert display.frames == frames + 1, "the clock on Welcome moved a minute: one frame"


def test_disk_full_during_payment_goes_out_of_service_without_charging(parts) -> None:
    loop, display, store, clock, terminal = parts
    for target in ("start", "key:B", "key:1", "continue"):
        loop.post(Tap(target))
        loop.settle()
    assert loop.state.screen is journey.Screen.DURATION
    pages = store.core.db.execute_sql("PRAGMA page_count").fetchone()[0]
    store.core.db.execute_sql(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StorageError):
        for _ in range(100_000):
            store.save_feedback(3, None, None, clock())  # fill the last free space of the file
    loop.post(Tap("pay"))
    settle_until(loop, lambda: loop.state.screen is journey.Screen.DECLINED)
    assert "Your parking could not be saved. You have not been charged." in display.texts()
    assert [f.code for f in loop.state.faults] == ["full"]
    loop.post(Tap("retry"))
    loop.settle()
    assert loop.state.screen is journey.Screen.OUT_OF_SERVICE
    assert "This pay station is out of service" in display.texts()
    assert store.rows("parking_session") == []
    settle_until(loop, lambda: len(terminal.journal()) == 3)
    assert [e["event"] for e in terminal.journal()] == ["started", "authorized", "reversed"], "refused, not booked"


def test_corrupt_database_at_start_is_out_of_service_and_kept(tmp_path: Path, station_config: Path) -> None:
    db = tmp_path / "kiosk.db"
    garbage = b"this is not a database" * 100
    db.write_bytes(garbage)
    scenario = tmp_path / "check.scn"
    scenario.write_text('expect screen out_of_service\nexpect text "This pay station is out of service"\n'
                        "tap help\nexpect text \"We cannot reach our staff from this station right now\"\n")
    result = run_kiosk("run", "--simulate", "--headless", "--config", str(station_config), "--scenario", str(scenario))
    assert result.returncode == 0, result.stderr
    assert "unusable (corrupt)" in result.stderr
    assert db.read_bytes() == garbage, "a corrupt database is never touched"


def test_unwritable_database_path_is_out_of_service(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[storage]\ndatabase = "{blocker / "kiosk.db"}"\n')
    scenario = tmp_path / "check.scn"
    scenario.write_text("expect screen out_of_service\n")
    result = run_kiosk("run", "--simulate", "--headless", "--config", str(config), "--scenario", str(scenario))
    assert result.returncode == 0, result.stderr
    assert "unusable (unwritable)" in result.stderr


def test_bad_config_exits_with_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text("[zone]\ntimezone = 'Nowhere/Land'\n")
    result = run_kiosk("run", "--simulate", "--headless", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: zone.timezone: expected an IANA time zone" in result.stderr


def test_production_without_a_terminal_is_out_of_service_with_the_reason(tmp_path: Path, station_config: Path) -> None:
    missing = tmp_path / "no-such-tty"
    station_config.write_text(station_config.read_text() + f'[terminal]\nport = "{missing}"\n')
    scenario = tmp_path / "check.scn"
    scenario.write_text("expect screen out_of_service\nexpect row fault component=card_terminal code=unreachable\n")
    result = run_kiosk("run", "--headless", "--config", str(station_config), "--scenario", str(scenario))
    assert result.returncode == 0, result.stderr
    assert f"cannot open the serial port: [Errno 2] could not open port {missing}" in result.stderr


def test_sigterm_stops_the_station_promptly_every_time(station_config: Path) -> None:
    """Twenty stops in a row: a stop signal is never lost on one of SDL's threads nor stuck on a lock."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--simulate", "--headless",
                                 "--config", str(station_config)], stderr=subprocess.PIPE, text=True, cwd=ROOT)
        assert proc.stderr is not None
        for line in proc.stderr:
            if "ready" in line:
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stderr.close()
