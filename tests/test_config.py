"""Configuration: TOML to typed settings, one precise message per problem."""
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import config
from kiosk.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "provisioning" / "kiosk.example.toml"


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert all(p.source == str(path) for p in info.value.problems)
    return [f"{p.key}: {p.message}" for p in info.value.problems]


def test_defaults_are_valid_and_simulate_needs_no_file() -> None:
    settings = config.from_mapping({}, "defaults")
    assert settings == Settings()
    assert settings.tariff_engine.bands[0].rate_per_hour == 200


def test_example_file_is_valid_and_documents_every_key() -> None:
    settings = config.load(EXAMPLE)
    assert settings.station.id == "DE-BER-0042"
    assert settings.tariff_engine.daily_cap == 1200
    text = EXAMPLE.read_text()
    for section, values in config.to_mapping(Settings()).items():
        if isinstance(values, dict):
            assert f"[{section}]" in text, section
            for key in values:
                written = f"[[{section}.{key}]]" if key == "bands" else f"\n{key} = "
                assert written in text, f"{section}.{key} missing from the example"


def test_unknown_keys_wrong_types_and_bad_values_each_named(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[station]
id = "a/b"
colour = 1
[zone]
currency = "EUX"
timezone = "Mars/Olympus"
[tariff]
increment_minutes = "15"
[[tariff.bands]]
days = ["mon", "xyz"]
start = "09:00"
end = "08:00"
rate_per_hour = 2.0
[screen]
width = 100000
fullscreen = "yes"
[bogus]
""")
    assert found == [
        "bogus: unknown key; valid keys here: " + ", ".join(sorted(config.to_mapping(Settings()))),
        "station.colour: unknown key; valid keys here: id",
        "station.id: expected letters, digits, '_', '.', '-' (1-64, no '/', '+', '#'), got 'a/b'",
        "zone.timezone: expected an IANA time zone such as 'Europe/Berlin', got 'Mars/Olympus'",
        "zone.currency: expected an ISO 4217 currency code such as 'EUR', got 'EUX'",
        "tariff.bands[0].days[1]: expected one of 'mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', got 'xyz'",
        "tariff.bands[0].rate_per_hour: expected a string, got a decimal number (2.0)",
        "tariff.increment_minutes: expected an integer, got a string ('15')",
        "screen.width: expected an integer from 320 to 3840, got 100000",
        "screen.fullscreen: expected true or false, got a string ('yes')",
    ]


def test_cross_key_rules(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[tariff]
increment_minutes = 15
quick_picks_minutes = [20, 600]
[[tariff.bands]]
days = ["mon"]
start = "09:00"
end = "08:00"
rate_per_hour = "2.005"
[languages]
default = "it"
[screen]
width = 480
height = 800
[timeouts]
inactivity_s = 20
warning_s = 30
""")
    assert "tariff.bands[0]: end 08:00 must be after start 09:00 (split bands that cross midnight)" in found
    assert "tariff.bands[0].rate_per_hour: '2.005' has more than 2 decimals for EUR" in found


def test_cross_key_rules_after_types_are_right(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[tariff]
quick_picks_minutes = [20, 600]
[languages]
default = "it"
[screen]
width = 480
height = 800
[timeouts]
inactivity_s = 20
warning_s = 30
[mqtt]
host = "broker"
cert_file = "/etc/kiosk/station.crt"
""")
    assert found == [
        "tariff.quick_picks_minutes[0]: expected a multiple of 15 between 15 and 180, got 20",
        "tariff.quick_picks_minutes[1]: expected a multiple of 15 between 15 and 180, got 600",
        "languages.default: expected one of languages.available ['en', 'de', 'fr', 'es'], got 'it'",
        "screen.orientation: 'landscape' does not match 480x800",
        "timeouts.warning_s: expected less than timeouts.inactivity_s",
        "mqtt.cert_file: cert_file and key_file go together",
    ]


def test_overlapping_bands_rejected_by_tariff_rules(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[[tariff.bands]]
days = ["mon"]
start = "08:00"
end = "12:00"
rate_per_hour = "1.00"
[[tariff.bands]]
days = ["mon"]
start = "11:00"
end = "13:00"
rate_per_hour = "1.00"
""")
    assert len(found) == 1 and found[0].startswith("tariff: ") and "overlap" in found[0]


@pytest.mark.parametrize(("content", "expected"), [
    (b"[station\nid=1", "(syntax): not valid TOML"),
    (b"\xff\xfe", "(file): not UTF-8 text"),
])
def test_unreadable_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(file\): cannot read"):
        config.load(tmp_path / "nope.toml")


def test_amounts_are_exact() -> None:
    assert config.parse_amount("2.10", "EUR") == 210
    assert config.parse_amount("500", "JPY") == 500
    with pytest.raises(ValueError):
        config.parse_amount("1.5", "JPY")


def test_check_config_command(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "kiosk.cli", "check-config", str(EXAMPLE)],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[station]\nid = "x y"\n')
    failed = subprocess.run([sys.executable, "-m", "kiosk.cli", "check-config", str(bad)],
                            capture_output=True, text=True, check=False)
    assert failed.returncode == 2
    assert f"{bad}: station.id: expected" in failed.stderr and "1 problem(s)" in failed.stderr


def test_mapping_round_trip() -> None:
    settings = config.load(EXAMPLE)
    assert config.from_mapping(config.to_mapping(settings), "round trip") == settings


def test_quick_picks_fit_one_row(tmp_path: Path) -> None:
    """Eight picks once wrapped under the footer, where a hidden '12 h' took the taps meant for Pay."""
    found = problems(tmp_path, """
[tariff]
quick_picks_minutes = [15, 30, 60, 90, 120]
""")
    assert found == ["tariff.quick_picks_minutes: at most 4 (one row of buttons), got 5"]


def test_parker_facing_links_are_short_enough_to_be_shown_whole(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[links]
help_phone = "call us on +49 30 1234567"
nearest_station = "%s"
""" % ("x" * 81))
    assert [p.split(":")[0] for p in found] == ["links.help_phone", "links.nearest_station"]
