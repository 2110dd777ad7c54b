"""The systemd unit's exposure as `systemd-analyze security --offline=yes` rates it: 2.5 or below (OK)."""
from __future__ import annotations

import re
import shutil
import subprocess

from conftest import ROOT

UNIT = ROOT / "systemd" / "kiosk.service"
TARGET = 2.5


def test_the_unit_is_hardened_to_ok_and_keeps_the_station_s_devices() -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing (provisioning/setup.sh --test installs systemd)"
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)], capture_output=True,
                            text=True, timeout=60, check=False)
    found = re.search(r"Overall exposure level for kiosk\.service: (\d+\.\d+) (\w+)", result.stdout + result.stderr)
    assert found is not None, result.stdout + result.stderr
    print(f"\nsystemd-analyze security --offline=yes systemd/kiosk.service: {found.group(1)} {found.group(2)}")
    assert float(found.group(1)) <= TARGET
    text = UNIT.read_text()
    for device in ("char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw", "char-gpiochip rw", "char-drm rw",
                   "char-input r", "char-alsa rw"):
        assert f"DeviceAllow={device}\n" in text, f"the station needs {device}"
    assert "Type=notify\n" in text and "WatchdogSec=" in text
