"""Remote updates in the domain: the statuses staff see, the command's arguments, when to switch, why a trial failed."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Annotated

from kiosk.config import matches

__all__ = [
    "FAILURES", "MAX_TRIAL_STARTS", "UpdateArgs", "UpdateStatus", "When", "harmful", "parse_time", "stop_reason",
    "when_to_switch",
]

MAX_TRIAL_STARTS = 3
"""Starts a new release gets to prove itself healthy; a power cut or kill in between counts (the guard cannot tell)."""


class UpdateStatus(StrEnum):
    """What ``event/update`` says, after OCPP 2.0.1's FirmwareStatusNotification (plus RolledBack)."""

    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"  # the file is not the one staff named (checksum)
    INVALID_SIGNATURE = "InvalidSignature"
    SIGNATURE_VERIFIED = "SignatureVerified"
    INSTALL_SCHEDULED = "InstallScheduled"  # unpacked; waiting for no parker, no help call, and the window
    INSTALLING = "Installing"  # switching to the new release and restarting into it
    INSTALLED = "Installed"  # the new release stayed healthy for updates.healthy_s: it is the station's release
    INSTALLATION_FAILED = "InstallationFailed"
    ROLLED_BACK = "RolledBack"  # the new release failed its trial; the previous one runs again


FAILURES = frozenset({UpdateStatus.DOWNLOAD_FAILED, UpdateStatus.INSTALL_VERIFICATION_FAILED,
                      UpdateStatus.INVALID_SIGNATURE, UpdateStatus.INSTALLATION_FAILED, UpdateStatus.ROLLED_BACK})
"""The statuses that end an update without installing it."""

IsoTime = Annotated[str, matches(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)",
                                 "an ISO 8601 time with its UTC offset, e.g. 2026-12-07T02:00:00+01:00")]


@dataclass(frozen=True)
class UpdateArgs:
    """``cmd/update``: the bundle (an HTTPS address, or a file path on the station), its SHA-256, and when to install.

    ``install_after`` and ``install_before`` bound the switch (both optional); ``retry`` installs a
    release that failed before on this station, which is otherwise refused; ``replace`` ends an
    update that waits for its window and takes this one instead.
    """

    url: Annotated[str, matches(r"https://[^\s/?#@]+(/[^\s]{0,2000})?|/[^\s\0]{1,1000}",
                                "an https:// address, or an absolute file path on the station")]
    sha256: Annotated[str, matches(r"[0-9a-f]{64}", "the bundle's SHA-256, 64 lowercase hexadecimal digits")]
    install_after: IsoTime | None = None
    install_before: IsoTime | None = None
    retry: bool = False
    replace: bool = False


def parse_time(text: str) -> datetime:
    """An IsoTime as a timezone-aware datetime (ValueError if it has no offset)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value


class When(Enum):
    """Whether a prepared release may be switched to now."""

    NOW = "now"
    WAIT = "wait"  # a parker is served, a help call is open, or the window has not come yet
    TOO_LATE = "too_late"  # the window closed before the station was ever free


def when_to_switch(idle: bool, after: datetime | None, before: datetime | None, now: datetime) -> When:
    """Switch only with nobody served and inside the window; past its end, never."""
    if before is not None and now >= before:
        return When.TOO_LATE
    if after is not None and now < after:
        return When.WAIT
    return When.NOW if idle else When.WAIT


_RESULTS = {
    "timeout": "it did not report ready in time (the service manager's start timeout)",
    "watchdog": "its loop hung (the watchdog stopped it)",
    "core-dump": "it crashed (core dump, signal {status})",  # systemd names signals: SEGV, ABRT, KILL
    "signal": "it was killed by signal {status}",
    "exit-code": "it exited with status {status}",
    "oom-kill": "it ran out of memory",
    "resources": "it could not be started (resources)",
    "start-limit-hit": "it was started too often",
}


HARMFUL_IMPACTS = frozenset({"out_of_service", "no_card_payment", "payment_method_unavailable"})
STAFF_COMPONENTS = frozenset({"operator"})  # staff's own modes are no release's doing


def harmful(faults: Iterable[tuple[str, str, str]]) -> set[str]:
    """The faults, as ``component/code``, that keep parkers from paying, staff's modes aside.

    ``faults`` are (component, code, parker_impact): a release on trial must not bring one that
    the release before it did not have when it switched.
    """
    return {f"{component}/{code}" for component, code, impact in faults
            if impact in HARMFUL_IMPACTS and component not in STAFF_COMPONENTS}


def stop_reason(result: str, status: str, ready: bool = False) -> str | None:
    """Why a release on trial stopped, from systemd's $SERVICE_RESULT and $EXIT_STATUS; None for a clean stop.

    A ``timeout`` after the release was ready is a stop that took too long, not a start.
    """
    if result == "success":
        return None
    if result == "timeout" and ready:
        return "it did not stop in time (the service manager's stop timeout)"
    return _RESULTS.get(result, "it stopped ({result}, status {status})").format(result=result, status=status or "?")
