"""Test set-up shared by every test: SDL without a screen or sound card, a runtime folder (XDG_RUNTIME_DIR) of their own."""
import os
import re
import shutil

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"


@pytest.fixture(scope="session", autouse=True)
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An XDG_RUNTIME_DIR of the tests' own: the control sockets of their simulated stations never meet a desktop's."""
    folder = tmp_path_factory.mktemp("run")
    folder.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(folder)
    return folder


@pytest.fixture
def station_config(tmp_path: Path) -> Path:
    """A configuration file whose database lives in the test's own folder."""
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[storage]\ndatabase = "{tmp_path / "kiosk.db"}"\n[screen]\nfullscreen = false\n', encoding="utf-8")
    return path


def wait_for(condition: Callable[[], bool], timeout: float, what: str = "the condition",
             between: Callable[[], None] | None = None) -> None:
    """Poll `condition` until it holds (calling `between` first each time, e.g. a loop's settle); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if between is not None:
            between()
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.005)


class NoMenu:
    """The service menu of Operations built without a loop: staff's service-menu command must not reach it."""

    def command(self, show: bool, now: object) -> object:
        raise AssertionError("no service menu in this test")

    def mode_set(self, now: object) -> None:
        """A mode command ran: nothing to give back."""


no_menu = NoMenu()


def unit_exposure(unit: Path) -> tuple[float, str]:
    """A systemd unit file's exposure as `systemd-analyze security --offline=yes` rates it: the level and its word."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing (provisioning/setup.sh --test installs systemd)"
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    found = re.search(rf"Overall exposure level for {re.escape(unit.name)}: (\d+\.\d+) (\w+)",
                      result.stdout + result.stderr)
    assert found is not None, result.stdout + result.stderr
    return float(found.group(1)), found.group(2)


def run_kiosk(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the kiosk command in a subprocess, as a technician would."""
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False, cwd=ROOT)


@pytest.fixture
def disk(tmp_path: Path):
    """A tmpfs of 4 MiB mounted for the test (root only; skipped elsewhere), unmounted afterwards."""
    from tiny_disk import tiny_disk

    with tiny_disk(tmp_path / "disk") as mounted:
        yield mounted


@pytest.fixture
def broker(tmp_path: Path):
    """A mosquitto of the test's own on a free port (anonymous, plain TCP); stopped afterwards."""
    from broker import Mosquitto

    mosquitto = Mosquitto(tmp_path / "broker").start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture
def peers():
    """Make broker_access.Peer clients (not yet connected); every one is closed after the test."""
    from broker_access import Peer

    made: list[Peer] = []

    def make(*args: object, **kwargs: object) -> Peer:
        made.append(Peer(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for peer in made:
        peer.close()


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory):
    """Signed bundles of this checkout in four versions (tests/release_kit.py), built once per run."""
    from release_kit import build_kit

    return build_kit(tmp_path_factory.mktemp("kit"))
