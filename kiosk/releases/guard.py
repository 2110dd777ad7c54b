"""The switch to a new release, its trial, its commit and its rollback; run by systemd around every start and stop.

systemd runs ``python -m kiosk.releases.guard start`` before each start of the station
(ExecStartPre) and ``... stopped`` after each stop (ExecStopPost, with $SERVICE_RESULT and
$EXIT_STATUS), both from the *stable* release: a new release on trial is judged by the code
that proved itself, never by its own. A release on trial that stops for any reason but a
clean stop, or starts more than MAX_TRIAL_STARTS times without proving healthy, is rolled
back: the previous release runs again, the database comes back from its copy if the new
release migrated it beyond what the previous one knows, the release is marked failed and
the outcome waits in the record for the station to publish (docs/updates.md).

Every step leaves a station that starts the old or the new release: links and the record
change by atomic renames, and each step can be done again after a power cut.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from kiosk.domain.update import MAX_TRIAL_STARTS, UpdateStatus, stop_reason
from kiosk.releases.layout import CURRENT, STABLE, Releases
from kiosk.releases.record import Failure, Outcome, Trial, UpdateRecord, sync_folder

__all__ = ["adopt", "backup_database", "commit", "main", "restore_if_newer", "roll_back", "roll_back_by_hand", "schema_of",
           "started", "stopped", "switch"]

log = logging.getLogger("kiosk.guard")


def schema_of(database: Path) -> int | None:
    """The schema version recorded in a station database; None when there is no readable one."""
    if not database.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error:
        return None
    try:
        return int(row[0]) if row else None
    except ValueError:
        return None


def backup_database(database: Path, backup: Path) -> int | None:
    """Copy the database (consistently, with SQLite's backup) to ``backup``; its schema version, None without one."""
    if not database.is_file():
        return None
    part = backup.with_name(backup.name + ".part")
    part.unlink(missing_ok=True)
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as source, sqlite3.connect(part) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file: no -wal or -shm beside the copy
    with open(part, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(part, backup)
    sync_folder(backup.parent)
    return schema_of(backup)


def restore_if_newer(database: Path, backup: Path | None, schema: int | None, version: str) -> str:
    """Bring back the copy taken before ``version`` ran if the live database is newer than ``schema`` (or gone).

    The newer database is kept beside it (``<name>.rolled-back-<version>-<UTC time>``), never deleted. Returns
    what happened, for the outcome's reason.
    """
    live = schema_of(database)
    if backup is None or not backup.is_file() or (database.is_file() and (live is None or schema is None or live <= schema)):
        return "database kept"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")  # a second rollback of a release keeps the first's too
    aside = database.with_name(f"{database.name}.rolled-back-{version}-{stamp}")
    if database.is_file():
        for suffix in ("", "-wal", "-shm"):
            source = database.with_name(database.name + suffix)
            if source.exists():
                os.replace(source, aside.with_name(aside.name + suffix))
    part = database.with_name(database.name + ".restoring")
    shutil.copyfile(backup, part)
    part.chmod(0o600)  # the station's data: its user's alone, whatever the umask of whoever restores it
    with sqlite3.connect(part) as copy:  # its events go on in a new series: the trial's seq numbers were used already
        copy.execute("DELETE FROM meta WHERE key = 'series'")
        copy.execute("UPDATE counter SET value = 0 WHERE name = 'seq'")  # from the Unix time in ms, as a new series
    with open(part, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(part, database)
    sync_folder(database.parent)
    only_there = _payments_after(aside, backup)
    kept = f"; {only_there} payment(s) of the trial are only in it" if only_there else ""
    return (f"database restored from before the update (schema {schema}), its events in a new series; the one "
            f"{version} migrated is kept as {aside.name}{kept}")


def _payments_after(newer: Path, older: Path) -> int:
    """How many payment rows ``newer`` holds beyond the highest id of ``older`` (0 when either cannot tell)."""
    try:
        with sqlite3.connect(f"file:{older}?mode=ro", uri=True) as db:
            last = db.execute("SELECT coalesce(max(rowid), 0) FROM payment").fetchone()[0]
        with sqlite3.connect(f"file:{newer}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM payment WHERE rowid > ?", (last,)).fetchone()[0])
    except sqlite3.Error:
        return 0


def switch(releases: Releases, record: UpdateRecord, version: str, database: Path, broker_required: bool,
           now: datetime, faults: Iterable[str] = ()) -> None:
    """Make ``version`` the release systemd starts next, on trial; the caller then exits for systemd to restart it."""
    previous = releases.target(CURRENT)
    if previous is None:
        raise RuntimeError("no complete current release to come back to")
    backup = database.with_name(f"{database.name}.before-{version}")
    schema = backup_database(database, backup)
    job = record.job
    record.trial = Trial(version, previous, now.isoformat(), str(database), str(backup) if schema is not None else None,
                         schema, broker_required, job.id if job else None, job.sha256 if job else "", sorted(faults))
    if job is not None:
        job.phase = "switched"
    releases.save(record)
    releases.point(CURRENT, version)
    log.info("switched to release %s (from %s); on trial until it proves healthy", version, previous)


def commit(releases: Releases, record: UpdateRecord, reason: str, now: datetime) -> Outcome:
    """The release on trial proved healthy: it becomes stable; every release but it and the previous one is removed."""
    trial = record.trial
    if trial is None:
        raise RuntimeError("no release on trial")
    releases.point(STABLE, trial.version)
    outcome = Outcome(trial.version, UpdateStatus.INSTALLED.value, reason, now.isoformat(), trial.job)
    record.trial, record.job, record.last = None, None, outcome
    record.previous = trial.previous
    record.failed.pop(trial.version, None)
    record.unreported.append(outcome)  # published from the record: a kill before the event cannot lose it
    releases.save(record)
    database = Path(trial.database)
    for old in database.parent.glob(f"{database.name}.before-*"):  # only the copy of this switch is kept
        if str(old) != trial.backup:
            old.unlink(missing_ok=True)
    removed = releases.prune({trial.version, trial.previous})
    log.info("release %s is the station's release (%s)%s", trial.version, reason,
             f"; removed {', '.join(removed)}" if removed else "")
    return outcome


def roll_back(releases: Releases, record: UpdateRecord, reason: str, now: datetime) -> Outcome:
    """Run the previous release again, restore the database if needed, mark the release failed, keep the outcome."""
    trial = record.trial
    if trial is None:
        raise RuntimeError("no release on trial")
    back_to = trial.previous if releases.complete(trial.previous) else releases.target(STABLE)
    if back_to is not None and back_to != trial.version:
        releases.point(CURRENT, back_to)
        if releases.target(STABLE) == trial.version:  # a commit cut short after it moved stable
            releases.point(STABLE, back_to)
    database = restore_if_newer(Path(trial.database), Path(trial.backup) if trial.backup else None, trial.schema,
                                trial.version)
    return _rolled_back(releases, record, trial.version, trial.sha256, f"{reason}; back to {back_to}; {database}",
                        trial.job, now)


def roll_back_by_hand(releases: Releases, record: UpdateRecord, database: Path, now: datetime) -> Outcome:
    """A technician's rollback (the station stopped): the release before the current one runs and becomes stable.

    A release on trial is rolled back as the guard would; otherwise the current release goes back
    to the stable one, or else to the release the last committed one replaced (never one that
    never ran here, nor one that failed), and the database to its copy from before the current
    release's switch if that release migrated it further. An update under way ends.
    """
    if record.trial is not None:
        return roll_back(releases, record, "rolled back by a technician", now)
    current = releases.target(CURRENT)
    stable = releases.target(STABLE)
    previous = record.previous
    if stable is not None and stable != current:
        back_to: str | None = stable
    elif previous is not None and previous != current and releases.complete(previous) and previous not in record.failed:
        back_to = previous
    else:
        back_to = None
    if current is None or back_to is None:
        raise RuntimeError(f"no release to go back to: {current or 'none'} runs, and no release ran here before it")
    backup = database.with_name(f"{database.name}.before-{current}")
    note = restore_if_newer(database, backup if backup.is_file() else None, schema_of(backup), current)
    releases.point(CURRENT, back_to)
    releases.point(STABLE, back_to)
    return _rolled_back(releases, record, current, "", f"rolled back by a technician; back to {back_to}; {note}",
                        None, now)


def _rolled_back(releases: Releases, record: UpdateRecord, version: str, sha256: str, reason: str, job: str | None,
                 now: datetime) -> Outcome:
    """Record a rollback: the release is marked failed, and the outcome waits to be published."""
    _end_job(record, job, f"ended: {version} was rolled back", now)
    outcome = Outcome(version, UpdateStatus.ROLLED_BACK.value, reason, now.isoformat(), job)
    record.failed[version] = Failure(sha256, reason, outcome.at)
    record.trial, record.last = None, outcome
    record.unreported.append(outcome)
    releases.save(record)
    log.error("release %s rolled back: %s", version, reason)
    releases.prune({v for v in (releases.target(CURRENT), releases.target(STABLE)) if v} | (
        set(releases.installed()) - {version}))  # the failed release goes (retry fetches it again); the others stay
    return outcome


def _end_job(record: UpdateRecord, other_than: str | None, reason: str, now: datetime) -> None:
    """End the update under way (unless it is ``other_than``) with an outcome, so that staff hear of it."""
    job = record.job
    record.job = None
    if job is not None and job.id != other_than:
        record.unreported.append(Outcome(job.version or "", UpdateStatus.INSTALLATION_FAILED.value, reason,
                                         now.isoformat(), job.id))


def started(releases: Releases, now: datetime) -> None:
    """Before a start: repair the links, count a trial's start, and roll back one that started too often."""
    for done in releases.heal():
        log.warning("%s", done)
    record = releases.record()
    trial = record.trial
    if trial is None:
        return
    if releases.target(CURRENT) != trial.version:
        if trial.starts == 0:  # the switch was cut short before the link changed: the job waits to switch again
            record.trial = None
            if record.job is not None:
                record.job.phase = "prepared"
            releases.save(record)
            log.warning("switch to %s was interrupted before it took effect; it will be tried again", trial.version)
        else:  # a rollback was cut short after the link changed back: finished now
            roll_back(releases, record, trial.reason or "rolled back (the rollback was interrupted and is finished now)",
                      now)
        return
    trial.starts += 1
    earlier = trial.reason
    trial.ready, trial.reason = False, None  # each start proves itself anew
    if trial.starts > MAX_TRIAL_STARTS:
        why = earlier or f"it did not prove healthy in {MAX_TRIAL_STARTS} starts (crashes, power cuts or kills)"
        roll_back(releases, record, why, now)
        return
    releases.save(record)
    log.info("release %s on trial: start %d of at most %d", trial.version, trial.starts, MAX_TRIAL_STARTS)


def stopped(releases: Releases, result: str, status: str, now: datetime) -> None:
    """After a stop: a release on trial that did not stop cleanly is rolled back, with why."""
    record = releases.record()
    trial = record.trial
    if trial is None or releases.target(CURRENT) != trial.version:
        return
    if trial.starts == 0:  # the release that stopped is the previous one, leaving for the switch: not the new one's doing
        log.info("release %s stopped (%s) to switch to %s", trial.previous, result, trial.version)
        return
    why = stop_reason(result, status, trial.ready)
    if why is None:
        log.info("release %s on trial stopped cleanly; its trial goes on at the next start", trial.version)
        return
    roll_back(releases, record, f"{trial.reason}: {why}" if trial.reason else why, now)


def adopt(releases: Releases, version: str, folder: Path) -> str | None:
    """Provisioning installed ``version`` in ``folder``: it runs and is stable, a trial or job ends; what changed.

    Never over a newer release staff sent (its database may be migrated beyond what ``version``
    knows): that one stays, and the answer starts with "kept".
    """
    record = releases.record()
    running = releases.target(CURRENT)
    if running is not None and running != version and not releases.release(running).is_symlink() \
            and _version_key(running) > _version_key(version):
        return (f"kept release {running}, which staff sent and is newer than {version} (its database may be migrated "
                "further); sudo kiosk update --rollback goes back")
    linked = releases.release(version).is_symlink() and Path(os.readlink(releases.release(version))) == folder
    if linked and releases.target(CURRENT) == version and releases.target(STABLE) == version \
            and record.trial is None and record.job is None:
        return None
    releases.root.mkdir(parents=True, exist_ok=True)
    releases.provided(version, folder)
    releases.point(CURRENT, version)
    releases.point(STABLE, version)
    record.trial = None
    _end_job(record, None, f"ended: provisioning installed release {version}", datetime.now(UTC))
    releases.save(record)
    return f"release {version} is current and stable"


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A version as comparable parts: 0.10.0 after 0.9.1 (numbers as numbers, letters after them)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|[a-z]+", version.lower()))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kiosk.releases.guard start|stopped|adopt --root ROOT`` (systemd's environment gives a stop's result)."""
    parser = argparse.ArgumentParser(prog="kiosk.releases.guard", description=__doc__.splitlines()[0])
    parser.add_argument("when", choices=("start", "stopped", "adopt"))
    parser.add_argument("--root", type=Path, default=Path("/opt/kiosk"))
    parser.add_argument("--version", help="adopt: the release provisioning installed")
    parser.add_argument("--release", type=Path, help="adopt: its folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s guard: %(message)s", stream=sys.stderr)
    releases = Releases(args.root)
    now = datetime.now(UTC)
    try:
        if args.when == "start":
            started(releases, now)
        elif args.when == "stopped":
            stopped(releases, os.environ.get("SERVICE_RESULT", "success"), os.environ.get("EXIT_STATUS", ""), now)
        else:
            changed = adopt(releases, args.version, args.release)
            if changed:
                sys.stdout.write(changed + "\n")
    except Exception:  # the station must start anyway: systemd ignores this step's failure ('-' prefix)
        log.exception("guard %s failed", args.when)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
