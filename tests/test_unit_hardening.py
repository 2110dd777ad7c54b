"""The systemd unit's exposure as `systemd-analyze security --offline=yes` rates it: 2.5 or below (OK)."""
from __future__ import annotations

from conftest import ROOT, unit_exposure

UNIT = ROOT / "systemd" / "kiosk.service"
TARGET = 2.5


def test_the_unit_is_hardened_to_ok_and_keeps_the_station_s_devices() -> None:
    level, word = unit_exposure(UNIT)
    print(f"\nsystemd-analyze security --offline=yes systemd/kiosk.service: {level} {word}")
    assert level <= TARGET
    text = UNIT.read_text()
    for device in ("char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw", "char-gpiochip rw", "char-drm rw",
                   "char-input r", "char-alsa rw"):
        assert f"DeviceAllow={device}\n" in text, f"the station needs {device}"
    assert "Type=notify\n" in text and "WatchdogSec=" in text
