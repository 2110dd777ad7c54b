"""The updater inside a station: a prepared release waits for the parker and the window, then the switch and the trial."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import wait_for
from recording_method import RecordingMethod
from release_fakes import installed_root

from drivers.payment.zvt.faults import FAULT_KINDS
from kiosk.app.loop import Loop
from kiosk.app.updater import INBOX_POLL_S, Updater
from kiosk.cli.scenario import ManualClock
from kiosk.config import Settings, StorageSettings, UpdateSettings
from kiosk.domain import journey
from kiosk.domain.events import HelpPressed, HelpReleased, PaymentDeclined, Tap
from kiosk.domain.payment import DeclineReason
from kiosk.domain.staff import Refusal
from kiosk.domain.update import UpdateArgs
from kiosk.releases import inbox
from kiosk.releases.layout import CURRENT, STABLE, Releases
from kiosk.releases.record import Failure, Job, Outcome, Trial
from kiosk.storage.schema import MIGRATIONS
from kiosk.storage.store import Store
from screens.display import Display

T0 = datetime(2026, 12, 7, 1, 59, 30, tzinfo=UTC)
SHA = "cd" * 32


def build(tmp_path: Path, releases: Releases, version: str, *, broker: bool = False) -> Loop:
    """A loop on a manual clock with the updater of release ``version`` (the code under test plays that release)."""
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")),
                        updates=UpdateSettings(root=str(releases.root), healthy_s=60))
    clock = ManualClock(T0)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    card = RecordingMethod("card_terminal", capabilities=frozenset({"status"}), fault_kinds=FAULT_KINDS)
    updater = Updater(settings.updates, version, lambda: broker, Path(settings.storage.database), clock(),
                      monotonic=lambda: (clock() - T0).total_seconds())  # the trial's timer, on the manual clock
    loop = Loop(journey.initial(settings, clock()), store, card, display, clock, updater=updater)
    loop.settle()
    return loop


@pytest.fixture
def waiting(tmp_path: Path) -> Iterator[Loop]:
    """Release 1.0 runs; 2.0 is prepared for a job with a window from 02:00."""
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    record = releases.record()
    record.job = Job("job-7", "https://x/kiosk.tar", SHA, T0.isoformat(), install_after="2026-12-07T02:00:00+00:00",
                     phase="prepared", version="2.0")
    releases.save(record)
    loop = build(tmp_path, releases, "1.0")
    yield loop
    loop.display.close()
    loop.store.close()  # type: ignore[attr-defined]


def post(loop: Loop, *events: object) -> None:
    for event in events:
        loop.post(event)  # type: ignore[arg-type]
        loop.settle()


def at(loop: Loop, when: datetime) -> None:
    loop.clock.set(when)  # type: ignore[attr-defined]
    loop.settle()


def updates(loop: Loop) -> list[dict]:
    return [json.loads(r["payload"])["data"] for r in loop.store.rows("outbox") if r["topic"] == "event/update"]


def releases_of(loop: Loop) -> Releases:
    assert loop.updater is not None
    return loop.updater.releases


def test_the_switch_waits_for_the_window_then_for_the_paying_parker(waiting: Loop) -> None:
    loop = waiting
    post(loop, Tap("start"), *[Tap(f"key:{c}") for c in "B-CO 1"], Tap("continue"), Tap("plus"), Tap("pay"))
    assert loop.state.screen is journey.Screen.PAYING
    at(loop, T0 + timedelta(seconds=10))  # before the window
    assert releases_of(loop).target(CURRENT) == "1.0" and not loop.restart_requested
    at(loop, datetime(2026, 12, 7, 2, 0, 1, tzinfo=UTC))  # the window came, but a parker pays
    assert releases_of(loop).target(CURRENT) == "1.0" and not loop.restart_requested and updates(loop) == []
    assert loop.state.screen is journey.Screen.PAYING
    post(loop, PaymentDeclined(loop.state.payment.payment_id or "", DeclineReason.ABORTED, 0x6C))  # type: ignore[union-attr]
    while loop.state.screen is not journey.Screen.WELCOME:
        at(loop, loop.clock() + timedelta(seconds=30))
    assert releases_of(loop).target(CURRENT) == "2.0" and releases_of(loop).target(STABLE) == "1.0"
    assert loop.restart_requested
    [installing] = updates(loop)
    assert installing["status"] == "Installing" and installing["version"] == "2.0" and installing["job"] == "job-7"
    trial = releases_of(loop).record().trial
    assert trial is not None and trial.version == "2.0" and trial.previous == "1.0"


def test_the_switch_waits_for_an_open_help_call(waiting: Loop) -> None:
    loop = waiting
    post(loop, HelpPressed(), HelpReleased())
    assert loop.state.help is not None
    at(loop, datetime(2026, 12, 7, 2, 5, tzinfo=UTC))
    assert releases_of(loop).target(CURRENT) == "1.0" and not loop.restart_requested


def test_a_window_that_closes_before_the_station_is_free_fails_the_job(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    record = releases.record()
    record.job = Job("job-8", "https://x/kiosk.tar", SHA, T0.isoformat(),
                     install_after=(T0 + timedelta(seconds=5)).isoformat(), install_before="2026-12-07T02:00:00+00:00",
                     phase="prepared", version="2.0")
    releases.save(record)
    loop = build(tmp_path, releases, "1.0")
    post(loop, HelpPressed(), HelpReleased())
    at(loop, datetime(2026, 12, 7, 2, 0, tzinfo=UTC))
    [failed] = updates(loop)
    assert failed["status"] == "InstallationFailed" and "install window ended" in failed["reason"]
    assert releases.record().job is None and releases.installed() == ["1.0"]  # the prepared release is removed
    loop.display.close()


def trial_of_2(tmp_path: Path, *, broker_required: bool) -> Releases:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    releases.point(CURRENT, "2.0")
    record = releases.record()
    record.trial = Trial("2.0", "1.0", T0.isoformat(), str(tmp_path / "kiosk.db"), None, 8, broker_required, "job-9",
                         SHA, starts=1)
    releases.save(record)
    return releases


def test_a_release_on_trial_commits_after_the_healthy_time_since_ready(tmp_path: Path) -> None:
    releases = trial_of_2(tmp_path, broker_required=True)
    loop = build(tmp_path, releases, "2.0", broker=True)
    assert loop.updater is not None and loop.updater.summary()["trial"] == "2.0"
    loop.updater.ready(loop.clock())
    at(loop, T0 + timedelta(seconds=59))
    assert releases.target(STABLE) == "1.0"
    at(loop, T0 + timedelta(seconds=60))
    assert releases.target(STABLE) == "2.0" and releases.record().trial is None
    [installed] = updates(loop)
    assert installed["status"] == "Installed" and installed["version"] == "2.0" and installed["running"] == "2.0"
    summary = loop.updater.summary()
    assert summary["last"]["status"] == "Installed" and not summary["rolled_back"] and summary["trial"] is None
    loop.display.close()


def test_a_release_on_trial_that_never_reached_the_broker_stops_unhealthy(tmp_path: Path) -> None:
    releases = trial_of_2(tmp_path, broker_required=True)
    loop = build(tmp_path, releases, "2.0", broker=False)
    assert loop.updater is not None
    loop.updater.ready(loop.clock())
    at(loop, T0 + timedelta(seconds=60))
    assert loop.unhealthy is not None and "no connection to the broker" in loop.unhealthy
    trial = releases.record().trial
    assert trial is not None and trial.reason == loop.unhealthy and releases.target(STABLE) == "1.0"
    loop.display.close()


def test_a_rollback_the_guard_decided_is_published_once_by_the_release_that_runs(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    record = releases.record()
    outcome = Outcome("2.0", "RolledBack", "it exited with status 1; back to 1.0; database kept",
                      "2026-12-07T02:01:00+00:00", "job-9")
    record.last, record.unreported = outcome, [outcome]
    releases.save(record)
    loop = build(tmp_path, releases, "1.0")
    [rolled_back] = updates(loop)
    assert rolled_back == {"status": "RolledBack", "job": "job-9", "version": "2.0", "running": "1.0",
                           "reason": outcome.reason, "at": outcome.at}
    assert releases.record().unreported == []
    assert loop.update_summary()["rolled_back"] is True  # type: ignore[index]
    loop.display.close()
    loop.store.close()  # type: ignore[attr-defined]
    again = build(tmp_path, releases, "1.0")
    assert len(updates(again)) == 1  # not published twice
    again.display.close()


def test_commands_are_refused_while_another_update_or_a_trial_is_under_way(waiting: Loop) -> None:
    loop = waiting
    args = UpdateArgs("https://x/other.tar", "ef" * 32)
    with pytest.raises(Refusal, match="one update at a time"):
        loop.operations.execute("update", args, loop.clock())
    done = loop.operations.execute("update", replace(args, sha256=SHA, install_after="2026-12-07T03:00:00+00:00"),
                                   loop.clock())  # the same bundle again: its window is the new one
    assert "under way (prepared)" in done.detail and done.data == {"job": "job-7"}
    assert releases_of(loop).record().job.install_after == "2026-12-07T03:00:00+00:00"  # type: ignore[union-attr]
    at(loop, datetime(2026, 12, 7, 2, 30, tzinfo=UTC))
    assert releases_of(loop).target(CURRENT) == "1.0"  # 02:00 no longer counts
    done = loop.operations.execute("update", replace(args, replace=True), loop.clock())  # another bundle instead
    assert done.data["job"] != "job-7"
    assert [u["status"] for u in updates(loop)][:1] == ["InstallationFailed"]
    assert "replaced by another update" in updates(loop)[0]["reason"]


def test_a_release_that_failed_before_is_refused_unless_staff_say_retry(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    record = releases.record()
    record.failed["2.0"] = Failure(SHA, "it exited with status 1", T0.isoformat())
    releases.save(record)
    loop = build(tmp_path, releases, "1.0")
    with pytest.raises(Refusal) as refused:
        loop.operations.execute("update", UpdateArgs("/nonexistent/kiosk.tar", SHA), loop.clock())
    assert refused.value.code == "failed_before" and "2.0" in refused.value.detail
    loop.display.close()


def test_a_window_that_has_ended_is_refused(waiting: Loop) -> None:
    loop = waiting
    with pytest.raises(Refusal, match="install_before"):
        loop.operations.execute("update", UpdateArgs("https://x/k.tar", "ef" * 32,
                                                     install_before="2026-12-07T01:00:00+00:00"), loop.clock())


def test_a_database_is_copied_before_the_switch(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    record = releases.record()
    record.job = Job("job-1", "https://x/kiosk.tar", SHA, T0.isoformat(), phase="prepared", version="2.0")
    releases.save(record)
    loop = build(tmp_path, releases, "1.0")
    assert releases.target(CURRENT) == "2.0"
    trial = releases.record().trial
    assert trial is not None and trial.backup is not None and Path(trial.backup).is_file()
    assert trial.schema == len(MIGRATIONS) and trial.database == str(tmp_path / "kiosk.db")
    loop.display.close()


def test_a_technician_s_request_in_the_inbox_becomes_a_job_like_a_command(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    loop = build(tmp_path, releases, "1.0")
    missing = tmp_path / "stick" / "kiosk-2.0.tar"
    request = inbox.leave(releases.root, missing, SHA, retry=False)
    at(loop, T0 + timedelta(seconds=INBOX_POLL_S))
    assert not (releases.root / "inbox" / f"{request}.json").exists()
    assert inbox.answer_of(releases.root, request) == {"ok": True, "detail": f"update {request} accepted; its "
                                                                               "progress follows on event/update"}
    wait_for(lambda: len(updates(loop)) >= 2, 10, "the worker's first steps", between=loop.settle)
    assert [u["status"] for u in updates(loop)] == ["Downloading", "DownloadFailed"]
    assert "No such file" in updates(loop)[1]["reason"] and releases.record().job is None
    (releases.root / "inbox" / "bad.json").write_text('{"source": "relative/path", "sha256": "x"}')
    at(loop, T0 + timedelta(seconds=2 * INBOX_POLL_S))
    answer = inbox.answer_of(releases.root, "bad")
    assert answer is not None and not answer["ok"] and "an absolute file path" in answer["detail"]
    assert len(updates(loop)) == 2  # refused to the technician, nothing published
    loop.display.close()


def test_a_release_on_trial_that_brought_a_fault_that_stops_payments_stops_unhealthy(tmp_path: Path) -> None:
    releases = trial_of_2(tmp_path, broker_required=False)
    loop = build(tmp_path, releases, "2.0")
    assert loop.updater is not None
    loop.updater.ready(loop.clock())
    loop.fault_board.raise_fault("card_terminal", "unreachable", loop.clock(), "no answer")
    loop.fault_board.raise_fault("door", "open", loop.clock(), "a crew")  # harmless to parkers: not counted
    at(loop, T0 + timedelta(seconds=60))
    assert loop.unhealthy is not None
    assert loop.unhealthy.startswith("card_terminal/unreachable 60 s after ready, which kept no parker from paying")
    loop.display.close()


def test_a_fault_the_previous_release_had_too_does_not_fail_the_trial(tmp_path: Path) -> None:
    releases = trial_of_2(tmp_path, broker_required=False)
    record = releases.record()
    record.trial.faults = ["card_terminal/unreachable"]  # type: ignore[union-attr]
    releases.save(record)
    loop = build(tmp_path, releases, "2.0")
    assert loop.updater is not None
    loop.updater.ready(loop.clock())
    loop.fault_board.raise_fault("card_terminal", "unreachable", loop.clock(), "still no answer")
    at(loop, T0 + timedelta(seconds=60))
    assert loop.unhealthy is None and releases.target(STABLE) == "2.0"
    loop.display.close()


def test_the_switch_records_the_faults_that_already_kept_parkers_from_paying(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    record = releases.record()
    record.job = Job("job-1", "https://x/kiosk.tar", SHA, T0.isoformat(),
                     install_after=(T0 + timedelta(seconds=5)).isoformat(), phase="prepared", version="2.0")
    releases.save(record)
    loop = build(tmp_path, releases, "1.0")
    loop.fault_board.raise_fault("card_terminal", "unreachable", loop.clock(), "no answer")
    at(loop, T0 + timedelta(seconds=5))
    trial = releases.record().trial
    assert trial is not None and trial.faults == ["card_terminal/unreachable"]
    loop.display.close()
