"""Test set-up shared by every test: SDL without a screen or sound card."""
import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"


@pytest.fixture
def station_config(tmp_path: Path) -> Path:
    """A configuration file whose database lives in the test's own folder."""
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[storage]\ndatabase = "{tmp_path / "kiosk.db"}"\n[screen]\nfullscreen = false\n', encoding="utf-8")
    return path


def run_kiosk(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the kiosk command in a subprocess, as a technician would."""
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False, cwd=ROOT)
