"""The inbox between `kiosk update FILE` and the running station: a request file in, an answer file out."""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["INBOX", "Request", "answer", "answer_of", "leave", "waiting"]

INBOX = "inbox"


@dataclass(frozen=True)
class Request:
    """A technician's request as found: its id, and its fields (or why it could not be read)."""

    id: str
    fields: dict[str, Any]
    problem: str = ""


def leave(root: Path, source: Path, sha256: str, retry: bool) -> str:
    """Leave a request for the station to install ``source``; its id (the job's id once the station takes it)."""
    inbox = root / INBOX
    inbox.mkdir(exist_ok=True)
    request_id = str(uuid.uuid4())
    part = inbox / f"{request_id}.json.part"
    part.write_text(json.dumps({"source": str(source), "sha256": sha256, "retry": retry}))
    os.replace(part, inbox / f"{request_id}.json")
    return request_id


def waiting(root: Path) -> list[Request]:
    """The requests not yet taken, oldest first; each is removed from the inbox as it is returned."""
    inbox = root / INBOX
    found = []
    for path in sorted(inbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns) if inbox.is_dir() else ():
        request_id = path.name[:-len(".json")]
        try:
            fields = json.loads(path.read_text())
            if not isinstance(fields, dict):
                raise ValueError("not a JSON object")
            found.append(Request(request_id, fields))
        except (OSError, ValueError) as exc:
            found.append(Request(request_id, {}, f"unreadable: {exc}"))
        path.unlink(missing_ok=True)
    return found


def answer(root: Path, request_id: str, ok: bool, detail: str) -> None:
    """The station's answer to a request (accepted as a job of the same id, or refused with why)."""
    if not all(c.isalnum() or c == "-" for c in request_id):
        return
    part = root / INBOX / f"{request_id}.answer.part"
    part.write_text(json.dumps({"ok": ok, "detail": detail}))
    os.replace(part, root / INBOX / f"{request_id}.answer")


def answer_of(root: Path, request_id: str) -> dict[str, Any] | None:
    """The station's answer to request ``request_id``, once there is one (then removed)."""
    path = root / INBOX / f"{request_id}.answer"
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    return found if isinstance(found, dict) else None
