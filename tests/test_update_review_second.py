"""Defects the second review of remote updates found, each a deterministic test that failed before its fix."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import wait_for
from release_fakes import fake_release, installed_root, station_database
from test_update_review import NOW, SHA, T0, station

from kiosk.cli.main import main
from kiosk.domain.events import Tap
from kiosk.domain.update import UpdateArgs
from kiosk.releases import guard, inbox
from kiosk.releases.layout import CURRENT, MARKER, STABLE, Releases
from kiosk.releases.record import Failure, Job, Trial
from kiosk.storage.schema import MIGRATIONS
from kiosk.storage.store import Store


def config_for(tmp_path: Path, releases: Releases) -> str:
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "kiosk.db"}"\n[updates]\nroot = "{releases.root}"\n')
    return str(config)


def committed_after_migration(tmp_path: Path) -> tuple[Releases, Path]:
    """1.0 ran; 2.0 was switched to, migrated the schema 8 -> 9 and was committed (current = stable = 2.0)."""
    releases = installed_root(tmp_path / "updates", "1.0", "2.0")
    database = station_database(tmp_path / "kiosk.db", 8, payments=3)
    record = releases.record()
    record.job = Job("job-1", "https://u/k.tar", SHA, NOW.isoformat(), phase="prepared", version="2.0")
    guard.switch(releases, record, "2.0", database, broker_required=False, now=NOW)
    guard.started(releases, NOW)
    station_database(database, 9)  # 2.0 migrated
    guard.commit(releases, releases.record(), "healthy", NOW)
    assert releases.target(CURRENT) == releases.target(STABLE) == "2.0"
    return releases, database


# ---- A. install.sh run again from a checkout that changed takes the station back, database and all ----

def test_install_sh_adopt_never_takes_a_station_back_below_the_release_staff_sent(tmp_path: Path) -> None:
    # install.sh:281 calls `guard adopt` whenever code_installed=yes, i.e. whenever the stamp changed: any tracked file
    # of the checkout (a `git pull` that did not bump the version, a local edit), or the Python version.
    releases = installed_root(tmp_path / "updates", "0.2.0")  # staff sent 0.2.0; it is current and stable
    database = tmp_path / "kiosk.db"
    Store.open(database, "S1", NOW).close()
    with sqlite3.connect(database) as db:  # 0.2.0 migrated one further than the checkout's 0.1.0 knows
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(len(MIGRATIONS) + 1),))
    provisioned = tmp_path / "opt" / "releases" / "0.1.0"  # /opt/kiosk/releases/0.1.0, the checkout's version
    (provisioned / ".venv" / "bin").mkdir(parents=True)
    (provisioned / MARKER).write_text(json.dumps({"version": "0.1.0", "by": "provisioning/install.sh"}))
    guard.adopt(releases, "0.1.0", provisioned)
    current = releases.target(CURRENT)
    try:
        Store.open(database, "S1", NOW).close()  # what 0.1.0 does at its start
        opens = "opens"
    except Exception as exc:  # StorageError too_new: storage/too_new, out_of_service, no parker can pay
        opens = f"{type(exc).__name__}: {exc}"
    assert current == "0.2.0" or opens == "opens", (
        f"install.sh made {current} current over the newer 0.2.0 staff sent; 0.1.0 on the database: {opens}")


# ---- B. jobs dropped without an outcome (staff's tooling waits for an event that never comes) ----

@pytest.mark.parametrize("how", ["install.sh adopt", "kiosk update --rollback"])
def test_a_job_under_way_is_never_dropped_without_an_outcome(tmp_path: Path, how: str) -> None:
    releases = installed_root(tmp_path / "updates", "2.0", "1.0", "3.0")
    database = station_database(tmp_path / "kiosk.db", 8)
    record = releases.record()
    record.job = Job("job-77", "https://u/k.tar", SHA, NOW.isoformat(), install_after="2026-12-08T02:00:00+00:00",
                     phase="prepared", version="3.0")  # staff's cmd/update, waiting for its window
    record.previous = "1.0"  # 2.0 replaced 1.0 when it was committed
    releases.save(record)
    if how == "install.sh adopt":
        guard.adopt(releases, "1.0", releases.release("1.0"))
    else:
        guard.roll_back_by_hand(releases, releases.record(), database, NOW)
    after = releases.record()
    assert after.job is not None or any(o.job == "job-77" for o in after.unreported), (
        f"{how}: job-77 vanished from the record and no outcome will ever be published for it "
        f"(unreported: {[(o.status, o.job) for o in after.unreported]})")


# ---- C. `kiosk update --rollback` takes a starting (crash-looping) station for a stopped one ----

def test_a_rollback_by_hand_is_refused_while_the_station_is_starting(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    releases, database = committed_after_migration(tmp_path)
    config = config_for(tmp_path, releases)
    # systemd restarts the station (Restart=always, RestartSec=2): the process has opened its database, and
    # doctor.sock (kiosk/cli/main.py: doctor_socket.start() just before loop.run) does not answer yet.
    code = (f"import sqlite3, sys; db = sqlite3.connect({str(database)!r}); db.execute('SELECT 1 FROM meta').fetchall(); "
            "print('open', flush=True); sys.stdin.read()")
    starting = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert starting.stdout is not None and starting.stdout.readline().strip() == "open"
        result = main(["update", "--rollback", "--config", config])
        out = capsys.readouterr().out
    finally:
        starting.communicate("", timeout=10)
    assert result == 1 and "stop it first" in out, out
    assert releases.target(CURRENT) == "2.0"


# ---- D. the database restored by `sudo kiosk update --rollback` is readable by every local user ----

def test_a_database_restored_by_hand_keeps_mode_0600(tmp_path: Path) -> None:
    releases, database = committed_after_migration(tmp_path)
    database.chmod(0o600)  # as the unit (UMask=0077) made it
    for backup in tmp_path.glob("kiosk.db.before-*"):
        backup.chmod(0o600)
    old = os.umask(0o022)  # sudo's umask, which runuser (/usr/local/bin/kiosk) keeps
    try:
        assert main(["update", "--rollback", "--config", config_for(tmp_path, releases)]) == 0
    finally:
        os.umask(old)
    mode = stat.S_IMODE(database.stat().st_mode)
    assert mode & 0o077 == 0, f"kiosk.db is now {oct(mode)}: plates and payments readable by any user (was 0600)"


# ---- E. a technician's bundle copy stays in downloads/ for ever when the station refuses the request ----

def test_a_refused_inbox_request_leaves_no_bundle_copy(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "updates", "1.0", "2.0")
    releases.point(CURRENT, "2.0")
    record = releases.record()
    record.trial = Trial("2.0", "1.0", T0.isoformat(), str(tmp_path / "kiosk.db"), None, 8, False, "job-9", SHA, starts=1)
    releases.save(record)
    loop = station(tmp_path, releases, "2.0")
    releases.downloads.mkdir()
    copy = releases.downloads / f"{'ef' * 32}.tar"
    copy.write_bytes(os.urandom(1 << 20))  # kiosk/cli/update.py:90-93, a 28..500 MB bundle in real life
    request = inbox.leave(releases.root, copy, "ef" * 32, False)
    loop.settle()
    loop.display.close()
    answer = inbox.answer_of(releases.root, request)
    assert answer is not None and not answer["ok"]  # refused: busy, 2.0 is on trial (kiosk update exits 1)
    left = [p.name for p in releases.downloads.iterdir()]
    assert left == [], f"refused ({answer['detail']}), yet left behind for ever: {left}"


# ---- F. resending the same bundle with retry: true is acknowledged but the worker never sees it ----

def test_retry_sent_again_for_a_job_under_way_reaches_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.releases import bundle
    from kiosk.releases.bundle import BundleFile, Manifest
    from kiosk.releases.download import Fetcher
    releases = installed_root(tmp_path / "updates", "1.0")
    record = releases.record()
    record.failed["2.0"] = Failure("aa" * 32, "it exited with status 1", NOW.isoformat())  # an earlier build of 2.0
    releases.save(record)
    manifest = Manifest("2.0", NOW, "3.11", "linux-x86_64", "kiosk==2.0",
                        (BundleFile("wheels/kiosk-2.0-py3-none-any.whl", "e" * 64, 1),))
    monkeypatch.setattr(bundle, "verify", lambda *a, **k: manifest)  # the fixed 2.0, genuine and signed
    monkeypatch.setattr(bundle, "check_platform", lambda m: None)
    monkeypatch.setattr(Releases, "install", lambda self, *a: fake_release(self, "2.0"))
    downloading = threading.Event()

    def slow_fetch(self: Fetcher, source: str, dest: Path) -> Path:
        downloading.wait(10)  # a 28 MB download on a cellular link
        dest.write_bytes(b"bundle")
        return dest

    monkeypatch.setattr(Fetcher, "fetch", slow_fetch)
    loop = station(tmp_path, releases, "1.0")
    assert loop.updater is not None
    loop.updater.command(UpdateArgs("https://u/kiosk-2.0.tar", SHA), loop.clock())
    done = loop.updater.command(UpdateArgs("https://u/kiosk-2.0.tar", SHA, retry=True), loop.clock())  # staff: oops
    assert "retry are now the ones of this command" in done.detail
    downloading.set()
    wait_for(lambda: releases.record().job is None or releases.record().job.phase != "received",  # type: ignore[union-attr]
             10, "the worker to finish", between=loop.settle)
    loop.display.close()
    last = releases.record().last
    assert last is None, f"{done.detail!r}, then: {last.status}: {last.reason}"  # type: ignore[union-attr]


# ---- G. a trial's `ready` outlives the start that reported it: a later start that hangs gets the wrong reason ----

def test_a_later_start_that_never_gets_ready_is_not_called_a_slow_stop(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "updates", "1.0", "2.0")
    database = station_database(tmp_path / "kiosk.db", 8)
    record = releases.record()
    record.job = Job("job-1", "https://u/k.tar", SHA, NOW.isoformat(), phase="prepared", version="2.0")
    guard.switch(releases, record, "2.0", database, broker_required=False, now=NOW)
    guard.started(releases, NOW)  # start 1: 2.0 reports ready (Updater._mark_ready) ...
    record = releases.record()
    assert record.trial is not None
    record.trial.ready = True
    releases.save(record)
    guard.stopped(releases, "success", "0", NOW)  # ... then a clean stop (systemctl stop, staff's restart)
    guard.started(releases, NOW)  # start 2: it hangs before READY=1; TimeoutStartSec ends it
    guard.stopped(releases, "timeout", "", NOW)
    reason = releases.record().failed["2.0"].reason
    assert "did not report ready" in reason, f"published reason: {reason!r}"


# ---- H. a verdict from an earlier start of the trial condemns a later, healthy start ----

def test_an_earlier_start_s_verdict_does_not_fail_a_healthy_later_start(tmp_path: Path) -> None:
    releases = installed_root(tmp_path / "updates", "1.0", "2.0")
    releases.point(CURRENT, "2.0")
    record = releases.record()
    record.trial = Trial("2.0", "1.0", T0.isoformat(), str(tmp_path / "kiosk.db"), None, 8, True, "job-9", SHA, starts=1)
    releases.save(record)
    first = station(tmp_path, releases, "2.0", broker=False, manual_timer=True)  # after a power cut the router
    first.settle()                                                                # is still booting: no broker
    assert first.updater is not None
    first.updater.ready(first.clock())
    for event in (Tap("start"), *[Tap(f"key:{c}") for c in "B-CO 1"], Tap("continue"), Tap("plus"), Tap("pay")):
        first.post(event)
        first.settle()
    first.clock.now = T0 + timedelta(seconds=61)  # type: ignore[attr-defined]
    first.settle()  # unhealthy; waits for the paying parker ...
    first.display.close()
    first.store.close()
    guard.stopped(releases, "success", "0", NOW)  # ... and the station is stopped cleanly (or the power goes again)
    guard.started(releases, NOW)  # start 2 of 3
    second = station(tmp_path, releases, "2.0", broker=True, manual_timer=True)  # the broker is there this time
    second.settle()
    assert second.updater is not None
    second.updater.ready(second.clock())
    second.clock.now = T0 + timedelta(seconds=61)  # type: ignore[attr-defined]
    second.settle()
    second.display.close()
    assert second.unhealthy is None, f"start 2 was healthy all along, yet: {second.unhealthy}"


# ---- I. `kiosk update --rollback` "goes back" to a release that never ran here (a prepared job's) ----

def test_a_rollback_by_hand_never_goes_to_a_release_that_never_ran(tmp_path: Path) -> None:
    releases, database = committed_after_migration(tmp_path)  # 2.0 committed; 1.0, its previous, kept
    fake_release(releases, "3.0")  # staff's next update, installed side by side, waits for tonight's window
    record = releases.record()
    record.job = Job("job-3", "https://u/k.tar", "ef" * 32, NOW.isoformat(), install_after="2026-12-08T02:00:00+00:00",
                     phase="prepared", version="3.0")
    releases.save(record)
    guard.roll_back_by_hand(releases, releases.record(), database, NOW)  # 2.0 misbehaves: back to 1.0, please
    assert releases.target(CURRENT) == "1.0", (
        f"current and stable are now {releases.target(CURRENT)}/{releases.target(STABLE)}: a release that never ran "
        "here, made stable without a trial (the guard will never judge it)")
