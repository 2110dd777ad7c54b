"""Remote configuration (MQTT cfg/desired): merged over the station's file, validated like it, versioned."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kiosk import config

# What an operator may change remotely. Identity, storage, broker, serial port, pins and
# screen geometry stay in the station's own file: a wrong remote value there could cut
# the station off from the operator or need a technician on site.
REMOTE_SECTIONS = ("zone", "tariff", "plate", "languages", "timeouts", "links")
MAX_DESIRED_BYTES = 64 * 1024
SOURCE = "cfg/desired"


@dataclass(frozen=True)
class Decision:
    """What to do with one cfg/desired message.

    ``action`` is ``apply`` (``settings`` and ``desired`` are set), ``same`` (this version
    is already applied: nothing to do) or ``reject`` (``problems`` say why).
    """

    action: str
    version: int | None
    settings: config.Settings | None = None
    desired: dict[str, Any] | None = None
    problems: tuple[str, ...] = ()



def json_value(payload: bytes) -> Any:
    """A payload as JSON of valid Unicode text; ValueError says what is wrong with it.

    Besides bad UTF-8 and bad JSON this refuses nesting deep enough to exhaust Python's
    recursion limit, and lone surrogates (valid JSON escapes, but not storable text).
    """
    try:
        value = json.loads(payload.decode("utf-8"))
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError) as exc:
        raise ValueError(f"not UTF-8 JSON: {exc}") from exc
    except RecursionError as exc:
        raise ValueError("not UTF-8 JSON: nested too deeply") from exc
    return value

def overlay(base: config.Settings, desired: dict[str, Any]) -> config.Settings:
    """The station's file settings with ``desired`` merged over them, validated as a whole.

    Tables are merged key by key (a remote ``tariff.bands`` replaces the whole list); the
    ``version`` becomes the desired version. Raises ConfigError naming each bad key.
    """
    problems = [config.Problem(SOURCE, key, "cannot be set remotely; valid sections: " + ", ".join(REMOTE_SECTIONS))
                for key in sorted(desired) if key != "version" and key not in REMOTE_SECTIONS]
    merged = config.to_mapping(base)
    for key, value in desired.items():
        if key != "version" and key not in REMOTE_SECTIONS:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    if problems:
        raise config.ConfigError(problems)
    return config.from_mapping(merged, SOURCE)


def decide(base: config.Settings, applied_version: int, payload: bytes) -> Decision:
    """Check one cfg/desired payload against the file settings and the version in force."""
    if len(payload) > MAX_DESIRED_BYTES:
        return Decision("reject", None, problems=(f"payload of {len(payload)} bytes; at most {MAX_DESIRED_BYTES}",))
    try:
        desired = json_value(payload)
    except ValueError as exc:
        return Decision("reject", None, problems=(str(exc),))
    if not isinstance(desired, dict):
        return Decision("reject", None, problems=(f"expected a JSON object, got {type(desired).__name__}",))
    version = desired.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 2**31 - 1:
        return Decision("reject", None,
                        problems=(f"version: expected an integer from 1 to {2**31 - 1}, got {version!r}",))
    if version == applied_version:
        return Decision("same", version)
    if version < applied_version:
        return Decision("reject", version,
                        problems=(f"version {version} is older than the applied version {applied_version}",))
    try:
        settings = overlay(base, desired)
    except config.ConfigError as exc:
        return Decision("reject", version, problems=tuple(f"{p.key}: {p.message}" for p in exc.problems))
    return Decision("apply", version, settings=settings, desired=desired)


def reported(decision: Decision, applied_version: int, ts: str) -> dict[str, Any]:
    """The cfg/reported payload for a decision (``applied_version`` is the version in force afterwards)."""
    applied = decision.action in ("apply", "same")
    return {"version": decision.version, "applied": applied, "active_version": applied_version,
            "error": None if applied else "; ".join(decision.problems), "problems": list(decision.problems), "ts": ts}
