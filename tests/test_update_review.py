"""Defects the review of remote updates found, each a deterministic test that failed before its fix (docs/updates.md)."""
from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import errno
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import wait_for
from release_fakes import installed_root, station_database

from kiosk.app.loop import Loop
from kiosk.app.updater import Updater
from kiosk.cli import update as update_cli
from kiosk.cli.main import main
from kiosk.config import Settings, StorageSettings, UpdateSettings, validate_as
from kiosk.domain import journey
from kiosk.domain.events import HelpPressed, HelpReleased, Tap, UpdateProgress
from kiosk.domain.update import UpdateArgs
from kiosk.releases import guard, inbox
from kiosk.releases.bundle import BundleFile, Manifest
from kiosk.releases.download import Fetcher
from kiosk.releases.layout import CURRENT, MARKER, STABLE, Releases
from kiosk.releases.record import Job, Outcome, Trial
from kiosk.storage.store import Store

T0 = datetime(2026, 12, 7, 1, 59, 30, tzinfo=UTC)
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SHA = "cd" * 32


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def station(tmp_path: Path, releases: Releases, version: str, *, database: Path | None = None,
            broker: bool = False, healthy_s: int = 60, manual_timer: bool = False) -> Loop:
    """A loop on a manual clock whose updater plays release ``version`` (as tests/test_update_station.py builds it)."""
    from recording_method import RecordingMethod

    from drivers.payment.zvt.faults import FAULT_KINDS
    from screens.display import Display
    settings = Settings(storage=StorageSettings(database=str(tmp_path / "kiosk.db")),
                        updates=UpdateSettings(root=str(releases.root), healthy_s=healthy_s))
    clock = Clock(T0)
    store = Store.open(tmp_path / "kiosk.db", settings.station.id, clock())
    display = Display(settings, headless=True)
    card = RecordingMethod("card_terminal", capabilities=frozenset({"status"}), fault_kinds=FAULT_KINDS)
    timer = (lambda: (clock() - T0).total_seconds()) if manual_timer else time.monotonic
    updater = Updater(settings.updates, version, lambda: broker, database or Path(settings.storage.database), clock(),
                      monotonic=timer)
    return Loop(journey.initial(settings, clock()), store, card, display, clock, updater=updater)


def switched(tmp_path: Path) -> tuple[Releases, Path]:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    database = station_database(tmp_path / "kiosk.db", 8, 1)
    record = releases.record()
    record.job = Job("job-1", "https://u/k.tar", "ab" * 32, NOW.isoformat(), phase="prepared", version="2.0")
    releases.save(record)
    guard.switch(releases, record, "2.0", database, broker_required=False, now=NOW)
    return releases, database


# ---- 1. the previous release's unclean exit after the switch is blamed on the new release ----

@pytest.mark.parametrize(("result", "status"), [("exit-code", "1"), ("timeout", ""), ("signal", "KILL")])
def test_a_release_that_never_started_is_not_rolled_back_for_the_old_release_s_exit(tmp_path: Path, result: str,
                                                                                     status: str) -> None:
    releases, _ = switched(tmp_path)
    # The OLD release exits after switching (75 expected) but crashes in Station.close(), or its shutdown exceeds
    # TimeoutStopSec after STOPPING=1: systemd runs ExecStopPost (the guard) with this result. No start of 2.0 yet.
    guard.stopped(releases, result, status, NOW)
    record = releases.record()
    assert "2.0" not in record.failed, f"2.0 marked failed without ever running: {record.failed['2.0'].reason}"
    assert releases.target(CURRENT) == "2.0"


# ---- 2. an exception the switch does not expect escapes the loop (crash, then the same again at every start) ----

def test_a_corrupt_database_at_the_switch_does_not_crash_the_station(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    record = releases.record()
    record.job = Job("job-1", "https://u/k.tar", SHA, T0.isoformat(), phase="prepared", version="2.0")
    releases.save(record)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)  # the station runs on with storage/corrupt
    loop = station(tmp_path, releases, "1.0", database=corrupt)
    try:
        loop.settle()  # idle: the updater switches -> guard.backup_database -> sqlite3.DatabaseError
    except sqlite3.DatabaseError as exc:
        pytest.fail(f"the loop crashed: {type(exc).__name__}: {exc}; the job is still 'prepared', so every restart "
                    f"crashes the same way (StartLimitBurst -> reboot loop)")
    finally:
        loop.display.close()
    record = releases.record()  # the job ended with why, and the station stays on its release (no retry loop)
    assert record.job is None and record.trial is None and releases.target(CURRENT) == "1.0"
    assert record.last is not None and record.last.status == "InstallationFailed"
    assert record.last.reason.startswith("the switch failed: DatabaseError")


def test_a_full_disk_when_the_record_is_saved_does_not_crash_the_station(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    loop = station(tmp_path, releases, "1.0")
    updater = loop.updater
    assert updater is not None
    record = updater.releases.record()
    record.job = Job("job-2", "https://u/k.tar", SHA, T0.isoformat())
    updater._record = record  # a job under way (as command() leaves it)

    def full(_record: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "update.json.part")

    updater.releases.save = full  # type: ignore[method-assign]
    loop.post(UpdateProgress("job-2", "DownloadFailed", "OSError: [Errno 28] No space left on device"))
    try:
        loop.settle()
    except OSError as exc:
        pytest.fail(f"the loop crashed on the worker's DownloadFailed: {exc}")
    finally:
        loop.display.close()


# ---- 3. a local "file" that never ends fills the disk: the size cap is only checked on stat() ----

def test_a_local_source_is_capped_at_max_bundle_mb(tmp_path: Path) -> None:
    validate_as({"url": "/dev/zero", "sha256": "0" * 64}, UpdateArgs, "cmd/update")  # accepted as a command
    dest = tmp_path / "downloads" / "x.tar"
    dest.parent.mkdir()
    code = (f"from pathlib import Path; from kiosk.releases.download import Fetcher; "
            f"Fetcher(max_bytes=1 << 20).fetch('/dev/zero', Path({str(dest)!r}))")
    worker = subprocess.Popen([sys.executable, "-c", code], env={**os.environ})
    try:
        worker.wait(timeout=0.3)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    part = dest.with_name(dest.name + ".part")
    size = part.stat().st_size if part.exists() else 0
    part.unlink(missing_ok=True)
    assert size <= 1 << 20, f"wrote {size} bytes of /dev/zero with max_bytes = 1 MiB (and would fill the disk)"


# ---- 4. the version is taken for the content: an existing folder of that version is reused, bundle unread ----

def test_a_regular_local_file_is_capped_at_max_bundle_mb_too(tmp_path: Path) -> None:
    from kiosk.releases.download import DownloadFailed
    big = tmp_path / "stick" / "kiosk.tar"
    big.parent.mkdir()
    with open(big, "wb") as out:
        out.truncate(3 << 20)  # a sparse 3 MiB file
    dest = tmp_path / "downloads" / "x.tar"
    dest.parent.mkdir()
    with pytest.raises(DownloadFailed, match="more than 1048576 bytes"):
        Fetcher(max_bytes=1 << 20).fetch(str(big), dest)
    assert list(dest.parent.iterdir()) == []


def test_install_does_not_reuse_an_existing_release_of_the_same_version_with_other_content(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")  # 2.0 as it was installed earlier (then rolled back)
    before = (releases.release("2.0") / MARKER).read_text()
    rebuilt = Manifest("2.0", NOW, "3.11", "linux-x86_64", "kiosk==2.0",
                       (BundleFile("wheels/kiosk-2.0-py3-none-any.whl", "e" * 64, 123),))
    try:
        releases.install(tmp_path / "no-such-bundle.tar", rebuilt, NOW)  # the bundle staff sent (retry: true)
    except Exception:
        return  # refusing would be fine
    assert (releases.release("2.0") / MARKER).read_text() != before, (
        "install() returned at once: the old 2.0 folder is switched to, not the bundle staff named by its sha256")


# ---- 5. a job whose window closes prunes the previous release (the rollback target) ----

def test_a_closed_window_keeps_the_previous_release(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "2.0", "1.0", "3.0")  # 2.0 runs (stable); 1.0 its previous, kept
    record = releases.record()
    record.job = Job("job-3", "https://u/k.tar", SHA, T0.isoformat(), install_before="2026-12-07T02:00:00+00:00",
                     phase="prepared", version="3.0")
    releases.save(record)
    loop = station(tmp_path, releases, "2.0")
    loop.post(HelpPressed())
    loop.post(HelpReleased())
    loop.settle()  # a help call keeps the station busy
    loop.clock.now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    loop.settle()
    loop.display.close()
    assert "1.0" in releases.installed(), f"the previous release was removed: {releases.installed()}"


# ---- 6. a window that has begun, while a parker is served, makes the loop spin (timeout 0) ----

def test_the_loop_does_not_spin_while_a_begun_window_waits_for_a_parker(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    record = releases.record()
    record.job = Job("job-4", "https://u/k.tar", SHA, T0.isoformat(), install_after="2026-12-07T01:00:00+00:00",
                     phase="prepared", version="2.0")
    releases.save(record)
    loop = station(tmp_path, releases, "1.0")
    loop.post(HelpPressed())
    loop.post(HelpReleased())
    loop.settle()
    assert releases.target(CURRENT) == "1.0"  # waits: a help call is open
    waits: list[float | None] = []
    real_wait = loop.display.wait

    def counting(timeout: float | None) -> list:
        waits.append(timeout)
        return real_wait(timeout)

    loop.display.wait = counting  # type: ignore[method-assign]
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    time.sleep(0.5)  # a window of time to count the loop's passes in (what is measured, not a synchronisation)
    loop.stop()
    runner.join(5)
    loop.display.close()
    assert len(waits) < 50, f"{len(waits)} passes of the loop in 0.5 s (timeouts {set(waits)}): a busy spin"


# ---- 7. a failed health check stops the station in the middle of a payment ----

def test_an_unhealthy_trial_waits_for_the_paying_parker(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    releases.point(CURRENT, "2.0")
    record = releases.record()
    record.trial = Trial("2.0", "1.0", T0.isoformat(), str(tmp_path / "kiosk.db"), None, 8, True, "job-9", SHA, starts=1)
    releases.save(record)
    loop = station(tmp_path, releases, "2.0", broker=False, manual_timer=True)  # the broker is down during the trial
    loop.settle()
    assert loop.updater is not None
    loop.updater.ready(loop.clock())
    for event in (Tap("start"), *[Tap(f"key:{c}") for c in "B-CO 1"], Tap("continue"), Tap("plus"), Tap("pay")):
        loop.post(event)
        loop.settle()
    assert loop.state.screen is journey.Screen.PAYING
    loop.clock.now = T0 + timedelta(seconds=61)  # type: ignore[attr-defined]
    loop.settle()
    assert loop.unhealthy is not None  # it found itself unhealthy ...
    stopping = loop._stopping
    loop.display.close()
    assert loop.state.screen is journey.Screen.PAYING and not stopping, "it stops while the parker's card is in"


# ---- 8. an interrupted commit, then a rollback: stable names the release that failed ----

def test_a_rollback_after_an_interrupted_commit_does_not_leave_stable_on_the_failed_release(tmp_path: Path) -> None:
    releases, _ = switched(tmp_path)
    guard.started(releases, NOW)
    releases.point(STABLE, "2.0")  # commit's first step; the power went before the record was saved
    guard.started(releases, NOW)  # boot: the trial goes on (start 2)
    guard.stopped(releases, "exit-code", "1", NOW)  # then 2.0 crashes: rolled back
    assert releases.target(CURRENT) == "1.0" and "2.0" in releases.record().failed
    assert releases.target(STABLE) != "2.0", ("stable still names 2.0, which failed: its code now guards every start, "
                                              "and `kiosk update --rollback` would go 'back' to it")


# ---- 9. `sudo kiosk update --rollback` restores the database as root ----

def test_root_never_runs_kiosk_update_on_what_the_station_s_user_owns(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    if os.geteuid() != 0:
        pytest.skip("needs root, as `sudo kiosk update --rollback` would run without /usr/local/bin/kiosk")
    os.chown(releases.root, 65534, 65534)  # the station's user owns its releases
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "kiosk.db"}"\n[updates]\nroot = "{releases.root}"\n')
    assert main(["update", "--rollback", "--config", str(config)]) == 2
    assert "run it as the station's user" in capsys.readouterr().out
    assert releases.target(CURRENT) == "1.0"


# ---- 10. a restored database reuses event seq numbers of its series ----

def test_a_restored_database_does_not_reuse_seq_numbers_of_its_series(tmp_path: Path) -> None:
    database = tmp_path / "kiosk.db"
    with Store.open(database, "S1", NOW) as store:
        store.record_update({"n": 1}, NOW)
        series = store.series
    backup = database.with_name("kiosk.db.before-2.0")
    schema = guard.backup_database(database, backup)
    with Store.open(database, "S1", NOW) as store:  # the new release on trial: payments, events (broker down)
        store.record_update({"n": "trial"}, NOW)
        trial_seqs = [r["seq"] for r in store.rows("outbox")][-1:]
    with sqlite3.connect(database) as db:  # ... and it migrated the schema one further
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str((schema or 0) + 1),))
    guard.restore_if_newer(database, backup, schema, "2.0")
    later = NOW + timedelta(minutes=3)
    with Store.open(database, "S1", later) as store:  # the previous release again, minutes later
        store.record_update({"n": "after rollback"}, later)
        restored_series = store.series
        new_seq = [r["seq"] for r in store.rows("outbox")][-1]
    # a new series (docs/mqtt.md: a change of series with a jump in seq means events of the old one are lost)
    assert restored_series != series and new_seq > max(trial_seqs), (restored_series, series, new_seq, trial_seqs)


# ---- 11. updates.ca_file replaces the system's CAs instead of adding to them ----

def test_ca_file_adds_to_the_system_cas(tmp_path: Path) -> None:
    bundle_text = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    one = bundle_text[:bundle_text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"
    (tmp_path / "ca.pem").write_text(one)
    with_file = Fetcher(ca_file=str(tmp_path / "ca.pem"))._context()
    loaded = len(with_file.get_ca_certs())
    assert loaded > 1, f"with updates.ca_file only {loaded} CA is trusted (without it: the system's)"


# ---- 12. `kiosk update FILE` reports an earlier outcome of the same version as this one's ----

def test_kiosk_update_follows_this_request_not_an_old_outcome(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    releases = installed_root(tmp_path / "opt", "1.0")
    record = releases.record()
    record.last = Outcome("2.0", "RolledBack", "it exited with status 1 (last week)", NOW.isoformat(), "job-old")
    releases.save(record)
    request = inbox.leave(releases.root, releases.downloads / f"{SHA}.tar", SHA, retry=True)  # the technician's --retry
    started = time.monotonic()
    code = update_cli._follow(releases, request, 2.5)
    out = capsys.readouterr().out
    assert time.monotonic() - started > 2, f"returned {code} at once with the old outcome: {out.strip()}"


# ---- 13. a bundle that did not install stays in downloads/ for ever ----

def test_a_bundle_that_was_not_installed_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.releases import bundle
    releases = installed_root(tmp_path / "opt", "1.0")
    stick = tmp_path / "kiosk-1.0.tar"
    stick.write_bytes(os.urandom(1 << 20))
    digest = bundle.sha256_of(stick)
    manifest = Manifest("1.0", NOW, "3.11", "linux-x86_64", "kiosk==1.0",
                        (BundleFile("wheels/kiosk-1.0-py3-none-any.whl", "e" * 64, 1),))
    monkeypatch.setattr(bundle, "verify", lambda *a, **k: manifest)  # a genuine, signed bundle of the running 1.0
    monkeypatch.setattr(bundle, "check_platform", lambda m: None)
    loop = station(tmp_path, releases, "1.0")
    assert loop.updater is not None
    loop.updater.command(UpdateArgs(str(stick), digest), loop.clock())  # e.g. staff's tooling sent it twice
    wait_for(lambda: releases.record().job is None, 10, "the job to end", between=loop.settle)
    loop.display.close()
    assert releases.record().last.status == "InstallationFailed"  # type: ignore[union-attr]
    left = list(releases.downloads.iterdir())
    assert left == [], f"left behind after the job ended: {[p.name for p in left]}"


# ---- 14. a mistyped window blocks every later update, and nothing can cancel it ----

def test_a_job_whose_window_never_comes_can_be_replaced(tmp_path: Path) -> None:
    from kiosk.domain.staff import Refusal
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    record = releases.record()
    record.job = Job("job-5", "https://u/k.tar", SHA, T0.isoformat(), install_after="2062-12-07T02:00:00+01:00",
                     phase="prepared", version="2.0")  # 2062 for 2026
    releases.save(record)
    loop = station(tmp_path, releases, "1.0")
    loop.settle()
    assert loop.updater is not None
    done = loop.updater.command(UpdateArgs("https://u/k.tar", SHA, install_after="2026-12-07T02:00:00+01:00"),
                                loop.clock())
    corrected = releases.record().job.install_after  # type: ignore[union-attr]
    try:
        loop.updater.command(UpdateArgs("https://u/other.tar", "ef" * 32), loop.clock())
        other = "accepted"
    except Refusal as refusal:
        other = refusal.code
    loop.display.close()
    assert corrected.startswith("2026") or other != "busy", (
        f"resent with the right window: '{done.detail}' (window still {corrected}); another bundle: {other}; "
        "there is no command to cancel a job")


# ---- 16. the healthy time is wall-clock time: a clock step ends the trial at once ----

def test_a_clock_step_does_not_end_the_trial_early(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "opt", "1.0", "2.0")
    releases.point(CURRENT, "2.0")
    record = releases.record()
    record.trial = Trial("2.0", "1.0", T0.isoformat(), str(tmp_path / "kiosk.db"), None, 8, True, "job-9", SHA, starts=2)
    releases.save(record)
    loop = station(tmp_path, releases, "2.0", broker=False, healthy_s=120)  # booted after a power cut; TLS to
    loop.settle()                                                          # the broker waits for the right time
    assert loop.updater is not None
    loop.updater.ready(loop.clock())
    loop.clock.now = T0 + timedelta(hours=3, seconds=5)  # type: ignore[attr-defined]  # NTP steps 3 h, 5 s after ready
    loop.settle()
    loop.display.close()
    assert loop.unhealthy is None and releases.target(STABLE) == "1.0", (
        f"5 s after ready the trial is decided: unhealthy={loop.unhealthy!r}, stable={releases.target(STABLE)}")
