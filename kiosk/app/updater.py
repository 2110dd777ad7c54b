"""The station's updater on the loop thread: takes an update, prepares it in a worker, switches when nobody is served.

A job (``cmd/update``, or a technician's ``kiosk update FILE`` through the inbox) is fetched,
checked and installed side by side by a worker thread, which posts UpdateProgress to the loop;
the loop thread alone writes the update record and publishes ``event/update``. A prepared
release is switched to (kiosk.releases.guard.switch) when no parker is served, no help call is
open and the install window has come; the station then restarts into it. A release on trial
proves itself here: ready, then healthy for ``updates.healthy_s`` (and connected to the broker
if the previous release was), and commits; otherwise it stops with EXIT_UNHEALTHY and the
guard brings the previous release back.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from kiosk.config import ConfigError, UpdateSettings, validate_as
from kiosk.domain.events import Event, UpdateProgress
from kiosk.domain.staff import Done, Refusal
from kiosk.domain.update import FAILURES, UpdateArgs, UpdateStatus, When, parse_time, when_to_switch
from kiosk.ports import StorageError, Store
from kiosk.releases import bundle, guard
from kiosk.releases.download import DownloadFailed, Fetcher
from kiosk.releases.layout import CURRENT, InstallFailed, Releases
from kiosk.releases.record import Job, Outcome

__all__ = ["EXIT_UNHEALTHY", "INBOX", "INBOX_POLL_S", "Updater", "UpdaterSeat", "inbox_request"]

log = logging.getLogger(__name__)

EXIT_UNHEALTHY = 76  # a release on trial found itself unhealthy; systemd's ExecStopPost (the guard) rolls it back
INBOX_POLL_S = 5.0
INBOX = "inbox"

REFUSED_BUNDLE: dict[type[bundle.BundleRefused], UpdateStatus] = {  # why a bundle was refused -> what staff see
    bundle.ChecksumMismatch: UpdateStatus.INSTALL_VERIFICATION_FAILED,
    bundle.BadBundle: UpdateStatus.INSTALL_VERIFICATION_FAILED,
    bundle.InvalidSignature: UpdateStatus.INVALID_SIGNATURE,
    bundle.WrongPlatform: UpdateStatus.INSTALLATION_FAILED,
}


class UpdaterSeat(Protocol):
    """What the updater needs of the station (kiosk.app.loop.Loop)."""

    store: Store

    def idle(self) -> bool:
        """No parker is served, no help call is open, the service menu is closed."""

    def post(self, event: Event) -> None:
        """Queue an event for the loop thread (from the worker)."""

    def request_restart(self) -> None:
        """Stop once idle; systemd starts the station again (now into the switched release)."""

    def stop_unhealthy(self, reason: str) -> None:
        """Stop now with EXIT_UNHEALTHY (the release on trial failed its own health check)."""

    def harmful_faults(self) -> set[str]:
        """The active faults that keep parkers from paying (kiosk.domain.update.harmful)."""


def inbox_request(root: Path, source: Path, sha256: str, retry: bool) -> Path:
    """Leave a technician's update for the running station (``kiosk update FILE``): the request file's path."""
    inbox = root / INBOX
    inbox.mkdir(exist_ok=True)
    request = inbox / f"{sha256}.json"
    part = request.with_name(request.name + ".part")
    part.write_text(json.dumps({"source": str(source), "sha256": sha256, "retry": retry}))
    os.replace(part, request)
    return request


@dataclass
class _Trial:
    """This process's view of its own trial: healthy from when, and whether the broker was seen."""

    healthy_at: datetime | None = None
    broker_seen: bool = False


class Updater:
    """Carries update jobs from request to switch, and proves a release on trial (docs/updates.md)."""

    def __init__(self, settings: UpdateSettings, version: str, broker_connected: Callable[[], bool], database: Path,
                 now: datetime) -> None:
        self._settings = settings
        self.version = version
        self._seat: UpdaterSeat | None = None
        self._broker_connected = broker_connected
        self._database = database
        self.releases = Releases(Path(settings.root))
        self._record = self.releases.record()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._switched = False
        self._next_inbox = now
        trial = self._record.trial
        self._trial = _Trial() if trial is not None and trial.version == version else None
        if trial is not None and self._trial is None:
            log.warning("update record names %s on trial, but this is %s", trial.version, version)

    # ---- the loop's calls ----

    @property
    def _station(self) -> UpdaterSeat:
        if self._seat is None:
            raise RuntimeError("updater not attached to a station")
        return self._seat

    def attach(self, station: UpdaterSeat, now: datetime) -> None:
        """Serve ``station``: publish what happened while no station ran (a rollback), take up an unfinished job."""
        self._seat = station
        self._report_unreported(now)
        job = self._record.job
        if job is not None and job.phase == "received":
            log.info("update %s: taking up where it stopped", job.id)
            self._start_worker(job)

    def ready(self, now: datetime) -> None:
        """The station reported ready: a release on trial must now stay healthy for updates.healthy_s."""
        if self._trial is not None:
            self._trial.healthy_at = now + timedelta(seconds=self._settings.healthy_s)
            log.info("release %s on trial: ready; healthy by %s if nothing fails", self.version,
                     self._trial.healthy_at.isoformat(timespec="seconds"))

    def deadline(self) -> datetime | None:
        """When settle next has something to decide."""
        dues = [self._next_inbox]
        if self._trial is not None and self._trial.healthy_at is not None:
            dues.append(self._trial.healthy_at)
        job = self._record.job
        if job is not None and job.phase == "prepared":
            dues += [parse_time(t) for t in (job.install_after, job.install_before) if t is not None]
        return min(dues)

    def settle(self, now: datetime) -> None:
        """Prove a trial, take the inbox's requests, and switch to a prepared release when the station is free."""
        trial = self._trial
        if trial is not None:
            trial.broker_seen = trial.broker_seen or self._broker_connected()
            if trial.healthy_at is not None and now >= trial.healthy_at:
                self._prove(trial, now)
        if now >= self._next_inbox:
            self._next_inbox = now + timedelta(seconds=INBOX_POLL_S)
            self._take_inbox(now)
            if self._record.unreported and self._station.store.usable:
                self._report_unreported(now)
        job = self._record.job
        if job is None or job.phase != "prepared" or self._switched or job.version is None:
            return
        after = parse_time(job.install_after) if job.install_after else None
        before = parse_time(job.install_before) if job.install_before else None
        when = when_to_switch(self._station.idle(), after, before, now)
        if when is When.TOO_LATE:
            self._end(job, UpdateStatus.INSTALLATION_FAILED, "the install window ended before the station was free "
                      "of parkers; send the command again with a later window", now, job.version)
            self.releases.prune({v for v in (self.releases.target(CURRENT), self.releases.target("stable")) if v})
        elif when is When.NOW:
            self._switch(job, job.version, now)

    def progress(self, event: UpdateProgress, now: datetime) -> None:
        """A step the worker finished: recorded, published, and the job ended or prepared."""
        job = self._record.job
        if job is None or job.id != event.job:
            log.warning("update progress for %s ignored: not the current job", event.job)
            return
        status = UpdateStatus(event.status)
        if status in FAILURES:
            self._end(job, status, event.reason, now, event.version)
            return
        if event.prepared:
            job.phase, job.version = "prepared", event.version
            self.releases.save(self._record)
            (self.releases.downloads / f"{job.sha256}.tar").unlink(missing_ok=True)
        self._publish(status, job.id, event.version, event.reason, now)

    def command(self, args: UpdateArgs, now: datetime, source: str = "staff") -> Done:
        """``cmd/update``: accept the job (its progress follows on event/update), or Refusal."""
        record = self._record
        after = parse_time(args.install_after) if args.install_after else None
        before = parse_time(args.install_before) if args.install_before else None
        if before is not None and (before <= now or (after is not None and before <= after)):
            raise Refusal("bad_arguments", "install_before: must be in the future and after install_after")
        job = record.job
        if job is not None:
            if job.sha256 == args.sha256:
                return Done(f"update {job.id} of this bundle is already under way ({job.phase})", {"job": job.id})
            raise Refusal("busy", f"update {job.id} is under way ({job.phase}); one update at a time")
        if record.trial is not None:
            raise Refusal("busy", f"release {record.trial.version} is on trial; wait for its outcome")
        failed = record.failure_of(args.sha256)
        if failed is not None and not args.retry:
            raise Refusal("failed_before", f"release {failed[0]} failed on this station ({failed[1].reason}); "
                                           "send retry: true to install it again")
        job = Job(str(uuid.uuid4()), args.url, args.sha256, now.isoformat(), args.install_after, args.install_before,
                  args.retry)
        record.job = job
        self.releases.save(record)
        log.info("update %s from %s (%s) accepted from %s", job.id, args.url, args.sha256[:12], source)
        self._start_worker(job)
        return Done(f"update {job.id} accepted; its progress follows on event/update", {"job": job.id})

    def summary(self) -> dict[str, Any]:
        """For the birth message: the running release, the job under way, and how the last update ended."""
        record = self._record
        last = record.last
        return {
            "running": self.version,
            "rolled_back": last is not None and last.status == UpdateStatus.ROLLED_BACK.value,
            "last": asdict(last) if last is not None else None,
            "job": {"id": record.job.id, "phase": record.job.phase, "version": record.job.version} if record.job else None,
            "trial": record.trial.version if record.trial else None,
        }

    def close(self) -> None:
        """Stop the worker (a download resumes at the next start)."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=5)

    # ---- inside ----

    def _start_worker(self, job: Job) -> None:
        failed = set(self._record.failed)
        self._worker = threading.Thread(target=self._work, args=(job, failed), name="updater", daemon=True)
        self._worker.start()

    def _work(self, job: Job, failed: set[str]) -> None:
        """The worker thread: a step that fails unexpectedly ends the job (logged) instead of the thread in silence."""
        try:
            self._prepare(job, failed)
        except Exception as exc:
            log.exception("update %s failed", job.id)
            self._station.post(UpdateProgress(job.id, UpdateStatus.INSTALLATION_FAILED.value,
                                              f"{type(exc).__name__}: {exc}"))

    def _prepare(self, job: Job, failed: set[str]) -> None:
        """Fetch, verify and install; every outcome goes to the loop as UpdateProgress."""
        post = self._station.post
        self.releases.downloads.mkdir(parents=True, exist_ok=True)
        post(UpdateProgress(job.id, UpdateStatus.DOWNLOADING.value))
        target = self.releases.downloads / f"{job.sha256}.tar"
        fetcher = Fetcher(self._settings.ca_file, self._settings.max_bundle_mb * 1024 * 1024, stop=self._stop)
        try:
            fetcher.fetch(job.source, target)
        except DownloadFailed as exc:
            if not self._stop.is_set():
                post(UpdateProgress(job.id, UpdateStatus.DOWNLOAD_FAILED.value, str(exc)))
            return
        post(UpdateProgress(job.id, UpdateStatus.DOWNLOADED.value))
        try:
            manifest = bundle.verify(target, bundle.trusted_keys(Path(self._settings.keys)), job.sha256)
            bundle.check_platform(manifest)
        except bundle.BundleRefused as exc:
            target.unlink(missing_ok=True)  # a wrong file is fetched anew if staff send the command again
            post(UpdateProgress(job.id, REFUSED_BUNDLE[type(exc)].value, str(exc)))
            return
        version = manifest.version
        post(UpdateProgress(job.id, UpdateStatus.SIGNATURE_VERIFIED.value, version=version))
        refusal = None
        if version == self.version:
            refusal = f"release {version} is the one running"
        elif version in failed and not job.retry:
            refusal = f"release {version} failed on this station before; send retry: true to install it again"
        if refusal is None:
            try:
                self.releases.install(target, manifest, datetime.now().astimezone())
            except (InstallFailed, bundle.BundleRefused, OSError) as exc:
                refusal = str(exc)
        if refusal is not None:
            post(UpdateProgress(job.id, UpdateStatus.INSTALLATION_FAILED.value, refusal, version))
            return
        post(UpdateProgress(job.id, UpdateStatus.INSTALL_SCHEDULED.value, version=version, prepared=True))

    def _switch(self, job: Job, version: str, now: datetime) -> None:
        """Publish Installing, switch (the database copied first), and restart into the new release."""
        self._publish(UpdateStatus.INSTALLING, job.id, version, f"switching from {self.version}", now)
        try:
            guard.switch(self.releases, self._record, version, self._database, self._broker_connected(), now,
                         self._station.harmful_faults())
        except (OSError, RuntimeError, InstallFailed) as exc:
            log.exception("switch to %s failed", version)
            self._record = self.releases.record()  # what reached the disk
            if self._record.trial is None:
                self._end(job, UpdateStatus.INSTALLATION_FAILED, f"the switch failed: {exc}", now, version)
            return
        self._switched = True
        self._station.request_restart()

    def _prove(self, trial: _Trial, now: datetime) -> None:
        """The healthy time is over: commit, or fail (the guard rolls back) without the broker or with a new fault."""
        record = self._record
        on_trial = record.trial
        self._trial = None
        if on_trial is None:
            return
        brought = sorted(self._station.harmful_faults() - set(on_trial.faults))
        if on_trial.broker_required and not trial.broker_seen:
            on_trial.reason = (f"no connection to the broker in its first {self._settings.healthy_s} s after ready "
                               "(the previous release had one)")
        elif brought:
            on_trial.reason = (f"{', '.join(brought)} {self._settings.healthy_s} s after ready, which kept no parker "
                               "from paying before the switch")
        if on_trial.reason is not None:
            self.releases.save(record)
            self._station.stop_unhealthy(on_trial.reason)
            return
        outcome = guard.commit(self.releases, record, f"healthy for {self._settings.healthy_s} s after ready", now)
        self._publish(UpdateStatus.INSTALLED, outcome.job, outcome.version, outcome.reason, now)

    def _end(self, job: Job, status: UpdateStatus, reason: str, now: datetime, version: str | None) -> None:
        """The job ended without installing: record it as the last outcome and publish it."""
        record = self._record
        record.job = None
        record.last = Outcome(version or "", status.value, reason, now.isoformat(), job.id)
        self.releases.save(record)
        log.error("update %s: %s: %s", job.id, status.value, reason)
        self._publish(status, job.id, version, reason, now)

    def _report_unreported(self, now: datetime) -> None:
        """Outcomes the guard decided while no station ran (rollbacks), published once the outbox has them."""
        record = self._record
        while record.unreported:
            outcome = record.unreported[0]
            if not self._publish(UpdateStatus(outcome.status), outcome.job, outcome.version, outcome.reason, now,
                                 at=outcome.at):
                return
            record.unreported.pop(0)
            self.releases.save(record)

    def _take_inbox(self, now: datetime) -> None:
        """A technician's ``kiosk update FILE`` left a request: run it as a job (or log why not)."""
        inbox = self.releases.root / INBOX
        for request in sorted(inbox.glob("*.json")) if inbox.is_dir() else ():
            try:
                raw = json.loads(request.read_text())
                if not isinstance(raw, dict):
                    raise ValueError("not a JSON object")
                args = validate_as({"url": raw.get("source"), "sha256": raw.get("sha256"), "retry": raw.get("retry", False)},
                                   UpdateArgs, str(request))
                done = self.command(args, now, source="a technician (kiosk update)")
                log.info("%s", done.detail)
            except Refusal as refusal:
                log.error("technician's update %s refused: %s", request.name, refusal.detail)
                self._publish(UpdateStatus.INSTALLATION_FAILED, None, None, f"refused: {refusal.detail}", now)
            except (OSError, ValueError, ConfigError) as exc:
                log.error("technician's update request %s unreadable: %s", request.name, exc)
            request.unlink(missing_ok=True)

    def _publish(self, status: UpdateStatus, job: str | None, version: str | None, reason: str, now: datetime,
                 at: str | None = None) -> bool:
        """One ``event/update`` into the outbox; False (logged) when the database cannot take it."""
        data = {"status": status.value, "job": job, "version": version, "running": self.version, "reason": reason,
                **({"at": at} if at is not None else {})}
        log.info("update %s: %s%s", job or "-", status.value, f" ({reason})" if reason else "")
        store = self._station.store
        problem = "the database is not usable"
        if store.usable:
            try:
                store.record_update(data, now)
                return True
            except StorageError as exc:
                problem = str(exc)
        log.error("event/update %s kept until the database works again: %s", status.value, problem)
        if at is None:  # an outcome kept already stays where it is
            record = self._record
            record.unreported.append(Outcome(version or "", status.value, reason, now.isoformat(), job))
            self.releases.save(record)
        return False
