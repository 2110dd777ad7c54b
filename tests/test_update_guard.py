"""The switch, the trial, the commit and the rollback on disk, as systemd's guard and the station do them."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from release_fakes import boots, fake_release, installed_root, payments_in, station_database

from kiosk.domain.update import MAX_TRIAL_STARTS, UpdateStatus, stop_reason
from kiosk.releases import guard
from kiosk.releases.layout import CURRENT, STABLE, InstallFailed, Releases
from kiosk.releases.record import Job, UpdateRecord, load_record

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def prepared(releases: Releases, version: str = "2.0") -> UpdateRecord:
    """A job whose release ``version`` is installed and waits for the switch."""
    record = releases.record()
    record.job = Job("job-1", "https://updates.example/kiosk.tar", "ab" * 32, NOW.isoformat(), phase="prepared",
                     version=version)
    releases.save(record)
    return record


def switched(tmp_path: Path, schema: int = 8, payments: int = 1) -> tuple[Releases, Path]:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    database = station_database(tmp_path / "kiosk.db", schema, payments)
    guard.switch(releases, prepared(releases), "2.0", database, broker_required=False, now=NOW)
    return releases, database


def on_trial(tmp_path: Path, schema: int = 8, payments: int = 1) -> tuple[Releases, Path]:
    """Switched, and the guard started the new release once."""
    releases, database = switched(tmp_path, schema, payments)
    guard.started(releases, NOW)
    return releases, database


def test_switch_copies_the_database_records_the_trial_and_points_current_only(tmp_path: Path) -> None:
    releases, database = switched(tmp_path)
    assert releases.target(CURRENT) == "2.0" and releases.target(STABLE) == "1.0"
    assert boots(releases) == "kiosk 2.0"
    trial = releases.record().trial
    assert trial is not None and (trial.version, trial.previous, trial.schema, trial.starts) == ("2.0", "1.0", 8, 0)
    assert trial.backup == str(database.with_name("kiosk.db.before-2.0")) and payments_in(Path(trial.backup)) == 1
    assert releases.record().job.phase == "switched"  # type: ignore[union-attr]


def test_a_trial_counts_its_starts_and_a_healthy_one_commits_and_keeps_the_previous(tmp_path: Path) -> None:
    releases, _ = switched(tmp_path)
    fake_release(releases, "0.9")  # an older one, removed by the commit
    guard.started(releases, NOW)
    assert releases.record().trial.starts == 1  # type: ignore[union-attr]
    outcome = guard.commit(releases, releases.record(), "healthy for 120 s after ready", NOW)
    assert (outcome.status, outcome.version) == (UpdateStatus.INSTALLED.value, "2.0")
    assert releases.target(STABLE) == "2.0" and releases.target(CURRENT) == "2.0"
    assert sorted(releases.installed()) == ["1.0", "2.0"]
    record = releases.record()
    assert record.trial is None and record.job is None and record.last == outcome and record.unreported == [outcome]


@pytest.mark.parametrize(("result", "status", "why"), [
    ("exit-code", "1", "it exited with status 1"),
    ("timeout", "", "it did not report ready in time"),
    ("watchdog", "ABRT", "its loop hung"),
    ("signal", "KILL", "it was killed by signal KILL"),  # systemd names the signal in $EXIT_STATUS
    ("core-dump", "SEGV", "it crashed (core dump, signal SEGV)"),
])
def test_a_release_on_trial_that_stops_uncleanly_is_rolled_back_with_why(tmp_path: Path, result: str, status: str,
                                                                         why: str) -> None:
    releases, _ = switched(tmp_path)
    guard.started(releases, NOW)
    guard.stopped(releases, result, status, NOW)
    assert releases.target(CURRENT) == "1.0" and boots(releases) == "kiosk 1.0"
    record = releases.record()
    assert record.trial is None and record.job is None
    assert record.last is not None and record.last.status == UpdateStatus.ROLLED_BACK.value
    assert record.last.reason.startswith(why) and "back to 1.0" in record.last.reason
    assert record.unreported == [record.last]
    assert record.failed["2.0"].sha256 == "ab" * 32
    assert releases.installed() == ["1.0"]  # the failed release is removed (retry fetches it again)


def test_a_clean_stop_during_the_trial_is_not_a_failure(tmp_path: Path) -> None:
    releases, _ = switched(tmp_path)
    guard.started(releases, NOW)
    guard.stopped(releases, "success", "0", NOW)
    assert releases.target(CURRENT) == "2.0" and releases.record().trial is not None


def test_the_release_s_own_verdict_leads_the_reason(tmp_path: Path) -> None:
    releases, _ = on_trial(tmp_path)
    record = releases.record()
    record.trial.reason = "no connection to the broker"  # type: ignore[union-attr]
    releases.save(record)
    guard.stopped(releases, "exit-code", "76", NOW)
    assert releases.record().last.reason.startswith("no connection to the broker: it exited with status 76")  # type: ignore[union-attr]


def test_too_many_starts_without_proving_healthy_roll_back(tmp_path: Path) -> None:
    releases, _ = switched(tmp_path)
    for _ in range(MAX_TRIAL_STARTS):
        guard.started(releases, NOW)  # power cuts: no stop is ever reported
        assert releases.target(CURRENT) == "2.0"
    guard.started(releases, NOW)
    assert releases.target(CURRENT) == "1.0"
    assert f"did not prove healthy in {MAX_TRIAL_STARTS} starts" in releases.record().last.reason  # type: ignore[union-attr]


def test_a_database_the_new_release_migrated_further_is_restored_and_the_newer_one_kept(tmp_path: Path) -> None:
    releases, database = on_trial(tmp_path, schema=8, payments=1)
    station_database(database, schema=9, payments=2)  # the new release migrated and took two payments
    guard.stopped(releases, "exit-code", "1", NOW)
    assert payments_in(database) == 1 and guard.schema_of(database) == 8
    [aside] = database.parent.glob("kiosk.db.rolled-back-2.0-*")
    assert payments_in(aside) == 3 and guard.schema_of(aside) == 9
    reason = releases.record().last.reason  # type: ignore[union-attr]
    assert f"kept as {aside.name}; 2 payment(s) of the trial are only in it" in reason


def test_a_database_of_the_same_schema_is_kept_with_what_the_new_release_wrote(tmp_path: Path) -> None:
    releases, database = on_trial(tmp_path, schema=8, payments=1)
    station_database(database, schema=8, payments=2)
    guard.stopped(releases, "exit-code", "1", NOW)
    assert payments_in(database) == 3
    assert not list(database.parent.glob("kiosk.db.rolled-back-*"))
    assert "database kept" in releases.record().last.reason  # type: ignore[union-attr]


def test_a_switch_cut_before_the_link_changed_goes_back_to_waiting(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    database = station_database(tmp_path / "kiosk.db", 8)
    record = prepared(releases)
    guard.switch(releases, record, "2.0", database, False, NOW)
    releases.point(CURRENT, "1.0")  # as if the power went before the link's rename
    guard.started(releases, NOW)
    record = releases.record()
    assert record.trial is None and record.job is not None and record.job.phase == "prepared"
    assert releases.target(CURRENT) == "1.0" and record.last is None


def test_a_rollback_cut_after_the_link_changed_back_is_finished_at_the_next_start(tmp_path: Path) -> None:
    releases, database = switched(tmp_path, schema=8, payments=1)
    guard.started(releases, NOW)
    station_database(database, schema=9)
    releases.point(CURRENT, "1.0")  # the rollback's first step, then the power went
    guard.started(releases, NOW)
    record = releases.record()
    assert record.trial is None and record.last is not None and record.last.status == "RolledBack"
    assert guard.schema_of(database) == 8


def test_heal_points_a_link_that_lost_its_release_at_a_complete_one(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    fake_release(releases, "2.0", complete=False)
    (releases.root / CURRENT).unlink()
    (releases.root / CURRENT).symlink_to("releases/2.0")  # incomplete: never started
    guard.started(releases, NOW)
    assert releases.target(CURRENT) == "1.0" and boots(releases) == "kiosk 1.0"


def test_point_refuses_an_incomplete_release(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    fake_release(releases, "2.0", complete=False)
    with pytest.raises(InstallFailed):
        releases.point(CURRENT, "2.0")
    assert releases.target(CURRENT) == "1.0"


def test_a_technician_rolls_back_a_committed_release_and_its_migration(tmp_path: Path) -> None:
    releases, database = switched(tmp_path, schema=8, payments=1)
    guard.started(releases, NOW)
    guard.commit(releases, releases.record(), "healthy", NOW)
    station_database(database, schema=9, payments=1)
    outcome = guard.roll_back_by_hand(releases, releases.record(), database, NOW)
    assert releases.target(CURRENT) == releases.target(STABLE) == "1.0"
    assert outcome.reason.startswith("rolled back by a technician; back to 1.0; database restored")
    assert guard.schema_of(database) == 8 and "2.0" in releases.record().failed


def test_adopt_links_the_provisioned_release_in_makes_it_current_and_stable_and_ends_a_trial(tmp_path: Path) -> None:
    releases, _ = switched(tmp_path)
    provisioned = fake_release(Releases(tmp_path / "root-owned"), "3.0")
    assert guard.adopt(releases, "3.0", provisioned) == "release 3.0 is current and stable"
    assert releases.target(CURRENT) == releases.target(STABLE) == "3.0" and boots(releases) == "kiosk 3.0"
    assert releases.release("3.0").is_symlink() and releases.release("3.0").resolve() == provisioned.resolve()
    assert releases.record().trial is None and releases.record().job is None
    assert guard.adopt(releases, "3.0", provisioned) is None
    releases.prune({"1.0"})  # a provisioned release is only ever unlinked, never deleted
    assert (provisioned / ".venv" / "bin" / "kiosk").is_file() and not releases.release("3.0").exists()


def test_a_damaged_record_is_set_aside_and_the_links_still_decide(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    releases.record_file.write_text("{not json")
    guard.started(releases, NOW)
    assert load_record(releases.record_file) == UpdateRecord()
    assert releases.record_file.with_name("update.json.damaged").read_text() == "{not json"
    assert boots(releases) == "kiosk 1.0"


def test_a_record_written_by_a_newer_release_is_read_without_its_new_fields(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    releases.record_file.write_text(json.dumps({"job": None, "last": {"version": "2.0", "status": "Installed",
                                                                      "reason": "ok", "at": "x", "colour": "blue"},
                                                "something_new": 1}))
    assert releases.record().last.version == "2.0"  # type: ignore[union-attr]


def test_the_guard_command_line_reads_systemd_s_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    releases, _ = switched(tmp_path)
    assert guard.main(["start", "--root", str(releases.root)]) == 0
    monkeypatch.setenv("SERVICE_RESULT", "watchdog")
    monkeypatch.setenv("EXIT_STATUS", "ABRT")
    assert guard.main(["stopped", "--root", str(releases.root)]) == 0
    assert "its loop hung" in releases.record().last.reason  # type: ignore[union-attr]


def test_stop_reason_names_every_result_systemd_gives() -> None:
    assert stop_reason("success", "0") is None
    assert stop_reason("timeout", "KILL") == "it did not report ready in time (the service manager's start timeout)"
    assert stop_reason("timeout", "KILL", ready=True) == "it did not stop in time (the service manager's stop timeout)"
    assert stop_reason("exit-code", "76") == "it exited with status 76"
    assert stop_reason("something-new", "3") == "it stopped (something-new, status 3)"
