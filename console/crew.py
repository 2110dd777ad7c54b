"""Crew commands a console sends to one station (mode, restart, rebirth, terminal, doctor) and how replies read."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.forms import Field, length_check
from console.payload import clean

__all__ = ["CREW_COMMANDS", "CrewCommand", "describe_reply"]

MODES = ("service", "out_of_service", "normal")
PARKING = ("as configured", "free", "paid", "unknown")
MAX_REASON = 200


@dataclass(frozen=True)
class CrewCommand:
    """One ``cmd/{name}``: its label, its form (if it takes arguments) and whether it changes the station.

    A command that changes the station is confirmed (ctrl+y) before it is sent.
    """

    name: str
    label: str
    detail: str
    changes_station: bool
    fields: tuple[Field, ...] = ()
    arguments: Callable[[dict[str, str]], dict[str, Any]] = lambda values: {}
    check: Callable[[dict[str, str]], str | None] = lambda values: None  # a problem of the form as a whole


def _mode_problem(values: dict[str, str]) -> str | None:
    if values["mode"] == "out_of_service" and not values.get("reason"):
        return "out of service needs a reason (parkers' staff read it)"
    if values["mode"] == "normal" and (values.get("back_at") or values.get("parking") in PARKING[1:]):
        return "normal takes neither parking nor back at"
    return None


def _mode_arguments(values: dict[str, str]) -> dict[str, Any]:
    arguments: dict[str, Any] = {"mode": values["mode"]}
    if values.get("reason"):
        arguments["reason"] = values["reason"]
    if values["mode"] != "normal":
        if values.get("parking") in PARKING[1:]:
            arguments["parking"] = values["parking"]
        if values.get("back_at"):
            arguments["back_at"] = values["back_at"]
    return arguments


CREW_COMMANDS: tuple[CrewCommand, ...] = (
    CrewCommand("mode", "Mode: service, out of service or normal",
                "Service: a crew works on the station (out of service, no tamper alarm for the door). "
                "Out of service needs a reason. Normal ends either.", True,
                (Field("mode", "Mode", choices=MODES),
                 Field("reason", "Reason (required for out_of_service)", check=length_check(0, MAX_REASON)),
                 Field("parking", "Parking meanwhile", choices=PARKING),
                 Field("back_at", "Back at (e.g. 2026-12-06T14:00:00+01:00, optional)",
                       check=length_check(0, 40))),
                _mode_arguments, _mode_problem),
    CrewCommand("restart", "Restart the station's service",
                "The station stops as soon as no parker is being served, and systemd starts it again.", True),
    CrewCommand("terminal/end-of-day", "Card terminal: end of day",
                "The card terminal closes its day and sends its totals.", True),
    CrewCommand("terminal/status", "Card terminal: status", "Asks the card terminal whether it is ready.", False),
    CrewCommand("doctor", "Doctor: examine the station", "Examines every part; takes well under a second.", False),
    CrewCommand("rebirth", "Rebirth: publish the station's state again",
                "Republishes status and every fault (use when the console's view looks stale).", False),
)


def _doctor(reply: dict[str, Any]) -> str:
    findings = reply.get("findings")
    parts = [f"{clean(str(item.get('part')))} {clean(str(item.get('health')))}"
             + (f" ({clean(str(item.get('detail')))})" if item.get("health") != "ok" and item.get("detail") else "")
             for item in findings if isinstance(item, dict)] if isinstance(findings, list) else []
    healthy = "healthy" if reply.get("healthy") is True else "NOT healthy"
    return f"{healthy}: " + ", ".join(parts) if parts else healthy


def _terminal_status(reply: dict[str, Any]) -> str:
    ready = "ready" if reply.get("ready") is True else "not ready"
    return f"{ready}, status {clean(str(reply.get('status')))}, version {clean(str(reply.get('version')))}"


def _end_of_day(reply: dict[str, Any]) -> str:
    return f"{clean(str(reply.get('count')))} payments, {clean(str(reply.get('amount')))} (minor units)"


_DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "doctor": _doctor, "terminal/status": _terminal_status, "terminal/end-of-day": _end_of_day,
}


def describe_reply(name: str, reply: dict[str, Any]) -> str:
    """A station's reply as one line for people: its code and detail, and what the command returned."""
    detail = clean(str(reply.get("detail") or ""))
    if not reply.get("ok"):
        return f"refused: {clean(str(reply.get('code') or 'error'))}" + (f": {detail}" if detail else "")
    describe = _DESCRIBE.get(name)
    extra = describe(reply) if describe else ""
    expires = reply.get("expires")
    until = f" (until {clean(expires)})" if isinstance(expires, str) else ""
    return "; ".join(part for part in (detail + until, extra) if part) or "done"
