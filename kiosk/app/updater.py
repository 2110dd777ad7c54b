"""The station's updater on the loop thread: takes an update, prepares it in a worker, switches when nobody is served.

A job (``cmd/update``, or a technician's ``kiosk update FILE`` through the inbox) is fetched,
checked and installed side by side by a worker thread (kiosk.app.update_worker), which posts
UpdateProgress to the loop; the loop thread alone writes the update record and publishes
``event/update``. A prepared release is switched to (kiosk.releases.guard.switch) when no
parker is served, no help call is open and the install window has come; the station then
restarts into it. A release on trial proves itself here: ready, then healthy for
``updates.healthy_s`` (by the monotonic clock: a clock step after a power cut changes
nothing), connected to the broker if the previous release was, and without a new fault that
keeps parkers from paying; then it commits. Otherwise it stops with EXIT_UNHEALTHY once nobody
is served, and the guard brings the previous release back.

Nothing the updater meets (a full disk, a damaged database) stops the station: the job ends
with the reason, or waits, and the station serves parkers on.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from kiosk.app.update_worker import bundle_path, prepare
from kiosk.config import ConfigError, UpdateSettings, validate_as
from kiosk.domain.events import Event, UpdateProgress
from kiosk.domain.staff import Done, Refusal
from kiosk.domain.update import FAILURES, UpdateArgs, UpdateStatus, When, parse_time, when_to_switch
from kiosk.ports import StorageError, Store
from kiosk.releases import guard, inbox
from kiosk.releases.layout import CURRENT, STABLE, Releases
from kiosk.releases.record import Job, Outcome

__all__ = ["EXIT_UNHEALTHY", "INBOX_POLL_S", "Updater", "UpdaterSeat"]

log = logging.getLogger(__name__)

EXIT_UNHEALTHY = 76  # a release on trial found itself unhealthy; systemd's ExecStopPost (the guard) rolls it back
INBOX_POLL_S = 5.0


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
        """Stop with EXIT_UNHEALTHY once nobody is served (the release on trial failed its own health check)."""

    def harmful_faults(self) -> set[str]:
        """The active faults that keep parkers from paying (kiosk.domain.update.harmful)."""

    def update_changed(self) -> None:
        """The update's state changed: the birth message says it again."""


@dataclass
class _Trial:
    """This process's view of its own trial: since when it is ready (monotonic), and whether the broker was seen."""

    ready_at: float | None = None
    broker_seen: bool = False


class Updater:
    """Carries update jobs from request to switch, and proves a release on trial (docs/updates.md)."""

    def __init__(self, settings: UpdateSettings, version: str, broker_connected: Callable[[], bool], database: Path,
                 now: datetime, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self.version = version
        self._seat: UpdaterSeat | None = None
        self._broker_connected = broker_connected
        self._database = database
        self._monotonic = monotonic
        self.releases = Releases(Path(settings.root))
        self._record = self.releases.record()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._switched = False
        self._now = now
        self._next_inbox = now
        trial = self._record.trial
        self._trial = _Trial() if trial is not None and trial.version == version else None
        if trial is not None and self._trial is None:
            log.warning("update record names %s on trial, but this is %s", trial.version, version)

    @property
    def _station(self) -> UpdaterSeat:
        if self._seat is None:
            raise RuntimeError("updater not attached to a station")
        return self._seat

    # ---- the loop's calls (none of them raises: the station serves parkers whatever the updater meets) ----

    def attach(self, station: UpdaterSeat, now: datetime) -> None:
        """Serve ``station``: publish what happened while no station ran (a rollback), take up an unfinished job."""
        self._seat = station
        self._safely("start", lambda: self._start(now))

    def ready(self, now: datetime) -> None:
        """The station reported ready: a release on trial must now stay healthy for updates.healthy_s."""
        if self._trial is not None:
            self._trial.ready_at = self._monotonic()
            log.info("release %s on trial: ready; kept if healthy for %d s", self.version, self._settings.healthy_s)
            self._safely("ready", self._mark_ready)

    def deadline(self) -> datetime | None:
        """When settle next has something to decide (never a time already past: the loop would spin)."""
        dues = [self._next_inbox]
        remaining = self._trial_remaining()
        if remaining is not None:
            dues.append(self._now + timedelta(seconds=max(remaining, 0.0)))
        job = self._record.job
        if job is not None and job.phase == "prepared":
            dues += [t for t in (parse_time(x) for x in (job.install_after, job.install_before) if x) if t > self._now]
        return min(dues)

    def settle(self, now: datetime) -> None:
        """Prove a trial, take the inbox's requests, and switch to a prepared release when the station is free."""
        self._now = now
        self._safely("settle", lambda: self._settle(now))

    def progress(self, event: UpdateProgress, now: datetime) -> None:
        """A step the worker finished: recorded, published, and the job ended or prepared."""
        self._safely("progress", lambda: self._progress(event, now))

    def command(self, args: UpdateArgs, now: datetime, source: str = "staff", job_id: str | None = None) -> Done:
        """``cmd/update``: accept the job (its progress follows on event/update), or Refusal.

        The same bundle again changes the waiting job's window and ``retry``; ``replace`` ends a job
        that waits for its window (prepared) and takes the new one.
        """
        record = self._record
        after = parse_time(args.install_after) if args.install_after else None
        before = parse_time(args.install_before) if args.install_before else None
        if before is not None and (before <= now or (after is not None and before <= after)):
            raise Refusal("bad_arguments", "install_before: must be in the future and after install_after")
        if record.trial is not None:
            raise Refusal("busy", f"release {record.trial.version} is on trial; wait for its outcome")
        job = record.job
        if job is not None and job.phase == "switched":
            raise Refusal("busy", f"update {job.id} is switching to {job.version}; wait for its outcome")
        if job is not None and job.sha256 == args.sha256:  # changed in place: the worker reads the same job
            job.install_after, job.install_before, job.retry = args.install_after, args.install_before, args.retry
            self._save_and_tell()
            return Done(f"update {job.id} of this bundle is under way ({job.phase}); its window and retry are now "
                        "the ones of this command", {"job": job.id})
        if job is not None and not (args.replace and job.phase == "prepared"):
            raise Refusal("busy", f"update {job.id} is under way ({job.phase}); one update at a time (a prepared one "
                                  "waiting for its window can be replaced: replace: true)")
        failed = record.failure_of(args.sha256)
        if failed is not None and not args.retry:
            raise Refusal("failed_before", f"release {failed[0]} failed on this station ({failed[1].reason}); "
                                           "send retry: true to install it again")
        if job is not None:
            self._end(job, UpdateStatus.INSTALLATION_FAILED, f"replaced by another update from {source}", now,
                      job.version)
        job = Job(job_id or str(uuid.uuid4()), args.url, args.sha256, now.isoformat(), args.install_after,
                  args.install_before, args.retry)
        record.job = job
        self._save_and_tell()
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

    def _safely(self, what: str, step: Callable[[], None]) -> None:
        """Run one of the updater's steps; what fails is logged, the record reread, and the station goes on."""
        try:
            step()
        except Exception:
            log.exception("updater: %s failed; the station goes on", what)
            try:
                self._record = self.releases.record()
            except Exception:
                log.exception("updater: the record cannot be read again")

    def _start(self, now: datetime) -> None:
        self._report_unreported(now)
        job = self._record.job
        if job is not None and job.phase == "received":
            log.info("update %s: taking up where it stopped", job.id)
            self._start_worker(job)

    def _mark_ready(self) -> None:
        trial = self._record.trial
        if trial is not None and not trial.ready:
            trial.ready = True
            self.releases.save(self._record)

    def _trial_remaining(self) -> float | None:
        trial = self._trial
        if trial is None or trial.ready_at is None:
            return None
        return self._settings.healthy_s - (self._monotonic() - trial.ready_at)

    def _settle(self, now: datetime) -> None:
        trial = self._trial
        if trial is not None:
            trial.broker_seen = trial.broker_seen or self._broker_connected()
            remaining = self._trial_remaining()
            if remaining is not None and remaining <= 0:
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
        elif when is When.NOW:
            self._switch(job, job.version, now)

    def _progress(self, event: UpdateProgress, now: datetime) -> None:
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
            self._save_and_tell()
            self._remove_bundle(job)
        self._publish(status, job.id, event.version, event.reason, now)

    def _start_worker(self, job: Job) -> None:
        failed = set(self._record.failed)
        self._worker = threading.Thread(target=prepare, name="updater", daemon=True, args=(
            job, self.releases, self._settings, self.version, failed, self._stop, self._station.post))
        self._worker.start()

    def _switch(self, job: Job, version: str, now: datetime) -> None:
        """Publish Installing, switch (the database copied first), and restart into the new release."""
        self._publish(UpdateStatus.INSTALLING, job.id, version, f"switching from {self.version}", now)
        try:
            guard.switch(self.releases, self._record, version, self._database, self._broker_connected(), now,
                         self._station.harmful_faults())
        except Exception as exc:  # a damaged database, a full disk: the job ends, the station stays as it was
            log.exception("switch to %s failed", version)
            self._record = self.releases.record()
            if self.releases.target(CURRENT) != version:
                self._record.trial = None
                self._end(job, UpdateStatus.INSTALLATION_FAILED, f"the switch failed: {type(exc).__name__}: {exc}",
                          now, version)
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
        guard.commit(self.releases, record, f"healthy for {self._settings.healthy_s} s after ready", now)
        self._report_unreported(now)
        self._station.update_changed()

    def _end(self, job: Job, status: UpdateStatus, reason: str, now: datetime, version: str | None) -> None:
        """The job ended without installing: the last outcome, published from the record; its files go."""
        record = self._record
        record.job = None
        outcome = Outcome(version or "", status.value, reason, now.isoformat(), job.id)
        record.last = outcome
        record.unreported.append(outcome)
        self.releases.save(record)
        log.error("update %s: %s: %s", job.id, status.value, reason)
        self._remove_bundle(job)
        if job.phase == "prepared" and job.version is not None \
                and job.version not in (self.releases.target(CURRENT), self.releases.target(STABLE)):
            self.releases.prune(set(self.releases.installed()) - {job.version})
        self._report_unreported(now)
        self._station.update_changed()

    def _remove_bundle(self, job: Job) -> None:
        """The downloaded bundle, once installed or refused (a cut download's .part stays, to be resumed)."""
        bundle_path(self.releases, job).unlink(missing_ok=True)

    def _save_and_tell(self) -> None:
        self.releases.save(self._record)
        self._station.update_changed()

    def _report_unreported(self, now: datetime) -> None:
        """Outcomes kept in the record (a rollback the guard decided, a commit, an end), published in order.

        Each leaves the record only once the outbox has it; a kill in between publishes it twice
        (staff tooling drops duplicates by ``job`` and ``status``), never not at all.
        """
        record = self._record
        while record.unreported:
            outcome = record.unreported[0]
            if not self._publish(UpdateStatus(outcome.status), outcome.job, outcome.version or None, outcome.reason,
                                 now, at=outcome.at):
                return
            record.unreported.pop(0)
            self.releases.save(record)

    def _take_inbox(self, now: datetime) -> None:
        """A technician's ``kiosk update FILE`` left a request: run it as a job of the request's id, and answer."""
        root = self.releases.root
        for request in inbox.waiting(root):
            try:
                if request.problem:
                    raise ValueError(request.problem)
                fields = request.fields
                args = validate_as({"url": fields.get("source"), "sha256": fields.get("sha256"),
                                    "retry": fields.get("retry", False)}, UpdateArgs, f"inbox request {request.id}")
                done = self.command(args, now, source="a technician (kiosk update)", job_id=request.id)
                inbox.answer(root, request.id, True, done.detail)
            except Refusal as refusal:
                log.error("technician's update %s refused: %s", request.id, refusal.detail)
                inbox.answer(root, request.id, False, f"refused ({refusal.code}): {refusal.detail}")
            except (ValueError, ConfigError) as exc:
                log.error("technician's update request %s refused: %s", request.id, exc)
                inbox.answer(root, request.id, False, f"refused: {exc}")
            job = self._record.job
            sha256 = str(request.fields.get("sha256", ""))
            needed = job is not None and job.sha256 == sha256 and job.phase == "received"
            if not needed and re.fullmatch(r"[0-9a-f]{64}", sha256):  # the technician's copy, which no job fetches
                (self.releases.downloads / f"{sha256}.tar").unlink(missing_ok=True)

    def _publish(self, status: UpdateStatus, job: str | None, version: str | None, reason: str, now: datetime,
                 at: str | None = None) -> bool:
        """One ``event/update`` into the outbox; False when the database cannot take it (then it is kept)."""
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
