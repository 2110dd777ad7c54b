"""`kiosk update` for a technician: a bundle from a stick checked at once and handed over, the status, a rollback."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from release_fakes import installed_root, payments_in, station_database
from release_kit import FOREIGN, NEW, Kit

from kiosk.cli.main import main
from kiosk.releases import bundle
from kiosk.releases.layout import CURRENT, STABLE, Releases
from kiosk.releases.record import Trial

pytestmark = pytest.mark.slow  # the kit's real bundles


def configured(tmp_path: Path, kit: Kit, releases: Releases) -> Path:
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "kiosk.db"}"\n'
                      f'[updates]\nroot = "{releases.root}"\nkeys = "{kit.keys}"\n')
    return config


def test_a_bundle_signed_by_a_stranger_is_refused_before_anything_changes(tmp_path: Path, kit: Kit,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    assert main(["update", str(kit.bundles[FOREIGN]), "--config", str(configured(tmp_path, kit, releases))]) == 1
    assert "refused (InvalidSignature)" in capsys.readouterr().out
    assert not releases.downloads.exists() and not (releases.root / "inbox").exists()


def test_a_bundle_from_a_stick_is_copied_and_left_for_the_station(tmp_path: Path, kit: Kit,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    config = configured(tmp_path, kit, releases)
    digest = bundle.sha256_of(kit.bundles[NEW])
    assert main(["update", str(kit.bundles[NEW]), "--config", str(config), "--sha256", digest]) == 0
    out = capsys.readouterr().out
    assert f"release {NEW}, signature verified" in out and "the station is not running" in out
    copy = releases.downloads / f"{digest}.tar"
    assert copy.read_bytes() == kit.bundles[NEW].read_bytes()
    [request] = (releases.root / "inbox").glob("*.json")
    assert json.loads(request.read_text()) == {"source": str(copy), "sha256": digest, "retry": False}
    assert main(["update", str(kit.bundles[NEW]), "--config", str(config), "--sha256", "0" * 64]) == 1
    assert "refused (ChecksumMismatch)" in capsys.readouterr().out


def test_the_status_names_the_releases_the_trial_and_the_last_outcome(tmp_path: Path, kit: Kit,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    releases.point(CURRENT, "2.0")
    record = releases.record()
    record.trial = Trial("2.0", "1.0", "2026-12-07T02:00:00+00:00", str(tmp_path / "kiosk.db"), None, 8, False, starts=2)
    releases.save(record)
    config = str(configured(tmp_path, kit, releases))
    assert main(["update", "--status", "--config", config]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["station: not running", "current release: 2.0 (on trial; stable: 1.0)"]
    assert "on trial: 2.0 (start 2), previous 1.0" in out
    assert main(["update", "--status", "--json", "--config", config]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["current"], status["stable"], status["trial"]["version"]) == ("2.0", "1.0", "2.0")


def test_a_rollback_by_hand_needs_the_station_stopped_then_goes_back(tmp_path: Path, kit: Kit,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    releases.point(CURRENT, "2.0")
    releases.point(STABLE, "2.0")
    record = releases.record()
    record.previous = "1.0"  # 2.0 replaced 1.0 when it was committed
    releases.save(record)
    database = station_database(tmp_path / "kiosk.db", 8, payments=2)
    config = str(configured(tmp_path, kit, releases))
    with socket.socket(socket.AF_UNIX) as station:  # a running station answers on doctor.sock beside its database
        station.bind(str(tmp_path / "doctor.sock"))
        station.listen()
        assert main(["update", "--rollback", "--config", config]) == 1
        assert "stop it first" in capsys.readouterr().out
    (tmp_path / "doctor.sock").unlink()
    assert main(["update", "--rollback", "--config", config]) == 0
    assert "2.0 rolled back: rolled back by a technician; back to 1.0; database kept" in capsys.readouterr().out
    assert releases.target(CURRENT) == releases.target(STABLE) == "1.0" and payments_in(database) == 2
    assert releases.record().unreported[0].status == "RolledBack"
    assert main(["update", "--rollback", "--config", config]) == 1  # never "back" to the release just rolled back
    assert "no release to go back to" in capsys.readouterr().out and releases.target(CURRENT) == "1.0"
