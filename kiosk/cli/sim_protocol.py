"""The line protocol of a simulated station's live control (`kiosk sim`): one JSON request per line, one answer."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["MAX_LINE", "USAGE", "Answer", "BadRequest", "Code", "Command", "Request", "SimFault", "parse_answer",
           "parse_request", "request_from_words"]

MAX_LINE = 4096  # bytes of one request, its newline included
SHOWN = 60  # characters of a bad value quoted in an error
USAGE = ("press | release | help | step SCENARIO-STEP.. | raise FAULT | clear FAULT | state"
         " (FAULT: door, terminal-unreachable, terminal-out-of-order)")


class Command(StrEnum):
    """What a request asks of the station."""

    PRESS = "press"  # hold the help button down
    RELEASE = "release"  # let go of it
    HELP = "help"  # press and release: one press, as the pin sees it
    STEP = "step"  # one step of the scenario language (docs/scenarios.md)
    RAISE = "raise"  # raise a simulated fault
    CLEAR = "clear"  # clear it
    STATE = "state"  # only the station's state


class SimFault(StrEnum):
    """A fault the simulation can cause; the station notices it as it would a real one."""

    DOOR = "door"  # the cabinet door opened (its switch's pin): door/open outside service mode
    TERMINAL_UNREACHABLE = "terminal-unreachable"  # the card terminal's cable pulled: card_terminal/unreachable
    TERMINAL_OUT_OF_ORDER = "terminal-out-of-order"  # the terminal reports status DF: card_terminal/out_of_order


class Code(StrEnum):
    """The ``code`` of an answer."""

    DONE = "done"
    BAD_REQUEST = "bad_request"  # not a request this protocol knows; nothing was done
    TOO_LONG = "too_long"  # a line longer than MAX_LINE; the connection is closed
    REFUSED = "refused"  # a good request the station could not carry out (a step that failed, say)
    BUSY = "busy"  # too many clients, or another command kept the station busy too long
    TIMEOUT = "timeout"  # the station's loop did not run the command in time
    STOPPING = "stopping"  # the station is stopping


FIELDS: dict[Command, frozenset[str]] = {
    **{command: frozenset() for command in Command},
    Command.STEP: frozenset({"step"}),
    Command.RAISE: frozenset({"fault"}),
    Command.CLEAR: frozenset({"fault"}),
}


class BadRequest(Exception):
    """A request that cannot be understood; str() says what is wrong and what was expected."""

    def __init__(self, detail: str, code: Code = Code.BAD_REQUEST) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class Request:
    """One command: ``step`` is the scenario step's line (STEP), ``fault`` the simulated fault (RAISE, CLEAR)."""

    command: Command
    step: str = ""
    fault: SimFault | None = None

    def line(self) -> bytes:
        """The request as one line of JSON, its newline included."""
        fields: dict[str, str] = {"command": self.command}
        if self.command is Command.STEP:
            fields["step"] = self.step
        if self.fault is not None:
            fields["fault"] = self.fault
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class Answer:
    """The station's answer: ``ok``, its ``code`` and ``detail``, and the station's ``state`` after the command."""

    ok: bool
    code: Code
    detail: str
    state: dict[str, Any] | None = None

    def line(self) -> bytes:
        """The answer as one line of JSON, its newline included."""
        fields: dict[str, Any] = {"ok": self.ok, "code": self.code, "detail": self.detail}
        if self.state is not None:
            fields["state"] = self.state
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def parse_request(line: bytes) -> Request:
    """A request from one line (without its newline); BadRequest says what is wrong with it."""
    if len(line) >= MAX_LINE:
        raise BadRequest(f"a request is one line of at most {MAX_LINE - 1} bytes", Code.TOO_LONG)
    try:
        raw = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"a request is UTF-8 JSON; byte {exc.start} is not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"a request is one JSON object per line, e.g. {{\"command\":\"help\"}}: {exc}") from None
    except RecursionError:
        raise BadRequest("a request is a flat JSON object; this one is nested too deep") from None
    if not isinstance(raw, dict):
        raise BadRequest(f"a request is a JSON object, e.g. {{\"command\":\"help\"}}; got {type(raw).__name__}")
    name = raw.get("command")
    command = next((c for c in Command if c.value == name), None)
    if command is None:
        raise BadRequest(f"unknown command {_shown(name)}; commands: {', '.join(Command)}")
    unknown = sorted(set(raw) - {"command"} - FIELDS[command])
    if unknown:
        raise BadRequest(f"{command} takes no field {_shown(unknown[0])}")
    missing = sorted(FIELDS[command] - set(raw))
    if missing:
        raise BadRequest(f"{command} needs the field {missing[0]!r}")
    step = raw.get("step", "")
    if command is Command.STEP and (not isinstance(step, str) or not step.strip()):
        raise BadRequest(f"step needs a scenario step as a string, e.g. \"tap pay\"; got {_shown(step)}")
    fault = None
    if "fault" in raw:
        fault = next((f for f in SimFault if f.value == raw["fault"]), None)
        if fault is None:
            raise BadRequest(f"unknown fault {_shown(raw['fault'])}; faults: {', '.join(SimFault)}")
    return Request(command, step if command is Command.STEP else "", fault)


def request_from_words(words: list[str]) -> Request:
    """A request from the words of `kiosk sim` (``help``, ``step tap pay``, ``raise door``); BadRequest if none."""
    if not words:
        raise BadRequest(f"expected a command: {USAGE}")
    name, *rest = words
    try:
        command = Command(name)
    except ValueError:
        raise BadRequest(f"unknown command {name!r}; expected {USAGE}") from None
    if command is Command.STEP:
        if not rest:
            raise BadRequest("step needs a scenario step, e.g. `step tap pay` or `step terminal decline 05`")
        return Request(command, step=shlex.join(rest))
    if command in (Command.RAISE, Command.CLEAR):
        if len(rest) != 1 or rest[0] not in set(SimFault):
            raise BadRequest(f"{command} needs one fault: {', '.join(SimFault)}")
        return Request(command, fault=SimFault(rest[0]))
    if rest:
        raise BadRequest(f"{command} takes no arguments; got {' '.join(rest)!r}")
    return Request(command)


def parse_answer(line: bytes) -> Answer:
    """The station's answer from its line; ValueError if it is not one."""
    raw = json.loads(line)
    if not isinstance(raw, dict) or not isinstance(raw.get("ok"), bool) or not isinstance(raw.get("detail"), str):
        raise ValueError(f"not an answer of a simulated station: {line[:80]!r}")
    state = raw.get("state")
    return Answer(raw["ok"], Code(str(raw.get("code"))), raw["detail"], state if isinstance(state, dict) else None)


def _shown(value: object) -> str:
    """A value from a request, shown in an error: a scalar as JSON, cut short; an array or object named."""
    if isinstance(value, list | dict):
        return "(an array)" if isinstance(value, list) else "(an object)"
    text = json.dumps(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."
