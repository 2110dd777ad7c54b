"""The updater's worker thread: fetch a bundle, verify it and install it side by side, telling the loop each step."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from kiosk.config import UpdateSettings
from kiosk.domain.events import Event, UpdateProgress
from kiosk.domain.update import UpdateStatus
from kiosk.releases import bundle
from kiosk.releases.download import DownloadFailed, Fetcher
from kiosk.releases.layout import InstallFailed, Releases
from kiosk.releases.record import Job

__all__ = ["REFUSED_BUNDLE", "bundle_path", "prepare"]

log = logging.getLogger(__name__)

REFUSED_BUNDLE: dict[type[bundle.BundleRefused], UpdateStatus] = {  # why a bundle was refused -> what staff see
    bundle.ChecksumMismatch: UpdateStatus.INSTALL_VERIFICATION_FAILED,
    bundle.BadBundle: UpdateStatus.INSTALL_VERIFICATION_FAILED,
    bundle.InvalidSignature: UpdateStatus.INVALID_SIGNATURE,
    bundle.WrongPlatform: UpdateStatus.INSTALLATION_FAILED,
}


def bundle_path(releases: Releases, job: Job) -> Path:
    """Where the bundle of ``job`` is downloaded to (a ``.part`` beside it while it comes)."""
    return releases.downloads / f"{job.sha256}.tar"


def prepare(job: Job, releases: Releases, settings: UpdateSettings, running: str, failed: set[str],
            stop: threading.Event, post: Callable[[Event], None]) -> None:
    """Fetch, verify and install ``job``'s bundle; every outcome reaches the loop as UpdateProgress.

    A step that fails unexpectedly ends the job with its reason instead of ending the thread in silence.
    """
    try:
        _prepare(job, releases, settings, running, failed, stop, post)
    except Exception as exc:
        log.exception("update %s failed", job.id)
        post(UpdateProgress(job.id, UpdateStatus.INSTALLATION_FAILED.value, f"{type(exc).__name__}: {exc}"))


def _prepare(job: Job, releases: Releases, settings: UpdateSettings, running: str, failed: set[str],
             stop: threading.Event, post: Callable[[Event], None]) -> None:
    releases.downloads.mkdir(parents=True, exist_ok=True)
    post(UpdateProgress(job.id, UpdateStatus.DOWNLOADING.value))
    target = bundle_path(releases, job)
    fetcher = Fetcher(settings.ca_file, settings.max_bundle_mb * 1024 * 1024, stop=stop)
    try:
        fetcher.fetch(job.source, target)
    except DownloadFailed as exc:
        if not stop.is_set():
            post(UpdateProgress(job.id, UpdateStatus.DOWNLOAD_FAILED.value, str(exc)))
        return
    post(UpdateProgress(job.id, UpdateStatus.DOWNLOADED.value))
    try:
        manifest = bundle.verify(target, bundle.trusted_keys(Path(settings.keys)), job.sha256)
        bundle.check_platform(manifest)
    except bundle.BundleRefused as exc:
        post(UpdateProgress(job.id, REFUSED_BUNDLE[type(exc)].value, str(exc)))
        return
    version = manifest.version
    post(UpdateProgress(job.id, UpdateStatus.SIGNATURE_VERIFIED.value, version=version))
    refusal = None
    if version == running:
        refusal = f"release {version} is the one running"
    elif version in failed and not job.retry:
        refusal = f"release {version} failed on this station before; send retry: true to install it again"
    if refusal is None:
        try:
            releases.install(target, manifest, datetime.now().astimezone())
        except (InstallFailed, bundle.BundleRefused, OSError) as exc:
            refusal = str(exc)
    if refusal is not None:
        post(UpdateProgress(job.id, UpdateStatus.INSTALLATION_FAILED.value, refusal, version))
        return
    post(UpdateProgress(job.id, UpdateStatus.INSTALL_SCHEDULED.value, version=version, prepared=True))
