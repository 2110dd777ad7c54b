"""The update record, update.json beside the releases: the job staff asked for, the release on trial, what ended how."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["Failure", "Job", "Outcome", "Trial", "UpdateRecord", "load_record", "save_record", "write_atomically"]

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One update staff asked for (``cmd/update`` or ``kiosk update FILE``), until its release is switched to or it fails.

    ``phase`` is ``received`` (being downloaded and checked) or ``prepared`` (installed side by side as
    ``version``, waiting for a free station and the window).
    """

    id: str
    source: str
    sha256: str
    received: str
    install_after: str | None = None
    install_before: str | None = None
    retry: bool = False
    phase: str = "received"
    version: str | None = None


@dataclass
class Trial:
    """A release switched to and not yet proven: it must reach ready and stay healthy, or the previous one returns.

    ``database`` is the station's database, ``backup`` its copy taken before the switch and
    ``schema`` its schema version then: a rollback restores the copy only if the new release
    migrated the schema further (docs/updates.md). ``faults`` are the faults that kept parkers
    from paying when it switched (``component/code``): the new release must not add one.
    ``starts`` counts the guard's starts of it, ``ready`` says it reported ready once, and
    ``reason`` is its own verdict when it found itself unhealthy.
    """

    version: str
    previous: str
    started: str
    database: str
    backup: str | None
    schema: int | None
    broker_required: bool
    job: str | None = None
    sha256: str = ""
    faults: list[str] = field(default_factory=list)
    starts: int = 0
    ready: bool = False
    reason: str | None = None


@dataclass
class Outcome:
    """How the last update ended (``status`` is an UpdateStatus value): what the birth message reports."""

    version: str
    status: str
    reason: str
    at: str
    job: str | None = None


@dataclass
class Failure:
    """A release that failed on this station: not installed again unless staff say ``retry``."""

    sha256: str
    reason: str
    at: str


@dataclass
class UpdateRecord:
    """Everything the updater keeps across restarts; ``unreported`` holds outcomes still to be published.

    ``previous`` is the release the last committed one replaced: where a technician's rollback goes.
    """

    job: Job | None = None
    trial: Trial | None = None
    last: Outcome | None = None
    previous: str | None = None
    failed: dict[str, Failure] = field(default_factory=dict)
    unreported: list[Outcome] = field(default_factory=list)

    def failure_of(self, sha256: str) -> tuple[str, Failure] | None:
        """The failed release with this bundle checksum, if any: (version, failure)."""
        return next(((version, f) for version, f in self.failed.items() if f.sha256 == sha256), None)


def _build(cls: Any, raw: Any) -> Any:
    """A dataclass from a JSON object, ignoring keys it does not know (a newer release may have written more)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{cls.__name__}: expected an object")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in names})


def _from_json(raw: dict[str, Any]) -> UpdateRecord:
    return UpdateRecord(
        job=_build(Job, raw["job"]) if raw.get("job") else None,
        trial=_build(Trial, raw["trial"]) if raw.get("trial") else None,
        last=_build(Outcome, raw["last"]) if raw.get("last") else None,
        previous=str(raw["previous"]) if raw.get("previous") else None,
        failed={str(version): _build(Failure, f) for version, f in (raw.get("failed") or {}).items()},
        unreported=[_build(Outcome, o) for o in raw.get("unreported") or ()],
    )


def load_record(path: Path) -> UpdateRecord:
    """The record at ``path``; an empty one if there is none. A damaged one is set aside (logged), never fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UpdateRecord()
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        return _from_json(raw)
    except (ValueError, TypeError) as exc:
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        log.error("update record %s unreadable (%s): set aside as %s; starting from an empty record", path, exc, aside)
        return UpdateRecord()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a power cut leaves the old or the new file, whole."""
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(part, path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename or a new link in ``folder`` durable."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def save_record(path: Path, record: UpdateRecord) -> None:
    """Write the record durably (whole or not at all)."""
    write_atomically(path, (json.dumps(asdict(record), indent=2, sort_keys=True) + "\n").encode())
