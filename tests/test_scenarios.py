"""Whole journeys replayed through the real service (loop, store, screens, simulated terminal)."""
from pathlib import Path

import pytest
from conftest import SCENARIOS

from kiosk.cli import main as cli
from kiosk.cli import scenario as scenario_module
from kiosk.cli.scenario import parse

SCENARIO_FILES = sorted(SCENARIOS.glob("*.scn"))


@pytest.mark.parametrize("scenario", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_scenario(scenario: Path, station_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", "--simulate", "--headless", "--config", str(station_config), "--scenario", str(scenario)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "scenario passed" in out


def test_unmet_expectation_is_reported_with_the_line(tmp_path: Path, station_config: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenario_module, "EXPECT_TIMEOUT_S", 0.5)  # it never comes true: no need to wait 10 s
    scenario = tmp_path / "wrong.scn"
    scenario.write_text("tap start\nexpect screen paid\n")
    code = cli.main(["run", "--simulate", "--headless", "--config", str(station_config), "--scenario", str(scenario)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{scenario}:2: expect screen paid" in err
    assert "expected screen paid, but it is plate" in err
    assert "targets: backspace, cancel, clear" in err


def test_unknown_tap_names_the_targets(tmp_path: Path, station_config: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "tap.scn"
    scenario.write_text("tap pay\n")
    code = cli.main(["run", "--simulate", "--headless", "--config", str(station_config), "--scenario", str(scenario)])
    assert code == 1
    err = capsys.readouterr().err
    assert "no target 'pay' on screen welcome" in err
    assert "targets: contrast, help, lang:de, lang:en, lang:es, lang:fr, large_text, start" in err


def test_bad_steps_are_refused_before_running(tmp_path: Path, station_config: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    scenario = tmp_path / "bad.scn"
    scenario.write_text("tap start\nfly away\n")
    code = cli.main(["run", "--simulate", "--headless", "--config", str(station_config), "--scenario", str(scenario)])
    assert code == 2
    assert f"{scenario}:2: fly away: unknown step 'fly'" in caplog.text
    assert not (tmp_path / "kiosk.db").exists(), "nothing ran"


def test_screenshot_step_writes_png(tmp_path: Path, station_config: Path) -> None:
    scenario = tmp_path / "shot.scn"
    scenario.write_text("tap start\ntype B-1\nscreenshot shots/plate.png\n")
    assert cli.main(["run", "--simulate", "--headless", "--config", str(station_config), "--scenario",
                     str(scenario)]) == 0
    png = (tmp_path / "shots" / "plate.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_parker_pays_in_11_taps() -> None:
    """From an idle Welcome to Paid with a 7-character plate and 2 hours: the count docs/screens.md records."""
    _start, steps = parse((SCENARIOS / "tap_count.scn").read_text(encoding="utf-8"), "tap_count.scn")
    taps = sum(1 if step.words[0] == "tap" else len(step.words[1]) for step in steps if step.words[0] in ("tap", "type"))
    typed = [step.words[1] for step in steps if step.words[0] == "type"]
    assert typed == ["B-AB123"] and len(typed[0]) == 7
    assert taps == 11
