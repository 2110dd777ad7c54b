"""Operator commands on MQTT cmd/{name}: parsing and validation of their payloads, and the reply format (no execution)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from kiosk import config
from kiosk.config import matches, one_of
from kiosk.domain import helpdesk, staff
from kiosk.domain.events import AgentSays
from kiosk.domain.outage import parse_back_at
from kiosk.domain.staff import ModeArgs, Refusal, Signed, TicketId
from kiosk.remote_config import json_value

__all__ = [
    "ARGUMENTS", "DEFAULT_OUTCOME", "MAX_COMMAND_BYTES", "REPLY_SUBTREE", "Refusal", "Request", "ToParkerArgs",
    "can_answer", "dedupe_key", "parse", "parse_to_parker", "reply", "to_parker_sender",
]

MAX_COMMAND_BYTES = 16 * 1024
REPLY_SUBTREE = "reply/"

ARGUMENTS = staff.ARGUMENTS


@dataclass(frozen=True)
class ToParkerArgs:
    """An agent's word on help/to-parker (docs/mqtt.md): accept, message (text) or resolve (outcome, closing text)."""

    ticket: TicketId
    type: Annotated[str, one_of(*helpdesk.AGENT_KINDS)]
    agent: Annotated[str, matches(r"\S.{0,59}", "1 to 60 characters, not starting with a space")]
    text: Annotated[str, matches(r"(?s)\S.{0,499}", "1 to 500 characters, not starting with a space")] | None = None
    outcome: Annotated[str, one_of(*helpdesk.OUTCOMES)] | None = None


@dataclass(frozen=True)
class Request:
    """A command as received: name (the topic after ``cmd/``), raw payload and MQTT 5 request properties.

    ``name`` is what logs and the command record show: for a signed command it names the sender
    too (``fixed/anna``); ``command`` is the command itself (``fixed``).
    """

    name: str
    payload: bytes
    response_topic: str | None
    correlation: bytes | None
    retained: bool

    @property
    def command(self) -> str:
        """The command's name: ``name`` without the sender's level of a signed command."""
        head, _, _ = self.name.rpartition("/")
        return head if head in staff.SIGNED else self.name

    @property
    def sender(self) -> str | None:
        """The last level of a signed command's topic (the account that sent it); None for another command."""
        head, _, last = self.name.rpartition("/")
        return last if head in staff.SIGNED else None


def reply(ok: bool, code: str, detail: str = "", **data: Any) -> str:
    """The reply payload: ``{"ok", "code", "detail", ...data}`` as compact JSON."""
    return json.dumps({"ok": ok, "code": code, "detail": detail, **data}, separators=(",", ":"), ensure_ascii=False)


def can_answer(request: Request, prefix: str) -> bool:
    """The response topic is under the station's own ``reply/`` subtree (the only place it may write)."""
    topic = request.response_topic
    return topic is not None and topic.startswith(prefix + REPLY_SUBTREE) and len(topic) > len(prefix + REPLY_SUBTREE) \
        and "+" not in topic and "#" not in topic


def dedupe_key(request: Request) -> str | None:
    """Duplicates are recognised by their correlation data; None without it (such a request is refused)."""
    return request.correlation.hex() if request.correlation else None


def parse(request: Request) -> Any:
    """The validated arguments of a command; raise Refusal with a code when it must not run."""
    if request.retained:
        raise Refusal("retained", "commands must not be retained; clear the retained message")
    if len(request.payload) > MAX_COMMAND_BYTES:
        raise Refusal("too_large", f"payload of {len(request.payload)} bytes; at most {MAX_COMMAND_BYTES}")
    cls = ARGUMENTS.get(request.command)
    if cls is None or (request.command in staff.SIGNED and request.sender is None):
        known = ", ".join(f"{name}/{{account}}" if name in staff.SIGNED else name for name in ARGUMENTS)
        raise Refusal("unknown_command", f"unknown command {request.name!r}; known: {known}")
    if request.sender is not None and not staff.account_name(request.sender):
        raise Refusal("bad_arguments", f"the topic's last level {request.sender!r} is no account name: "
                                       "letters, digits, '_', '.', '-' (1-64), not a word of the station's topics")
    if not request.correlation:
        raise Refusal("bad_arguments", "correlation data is required: it is what makes a command run at most once")
    try:
        raw = json_value(request.payload) if request.payload.strip() else {}
    except ValueError as exc:
        raise Refusal("bad_json", str(exc)) from exc
    if not isinstance(raw, dict):
        raise Refusal("bad_arguments", f"expected a JSON object, got {type(raw).__name__}")
    try:
        args: Any = config.validate_as(raw, cls, f"cmd/{request.name}")
    except config.ConfigError as exc:
        raise Refusal("bad_arguments", "; ".join(f"{p.key}: {p.message}" for p in exc.problems)) from exc
    if isinstance(args, ModeArgs):
        _check_mode(args)
    return args if request.sender is None else Signed(request.sender, args)


def _check_mode(args: ModeArgs) -> None:
    """Refuse a mode command whose arguments do not go together."""
    if args.mode == "out_of_service" and args.reason is None:
        raise Refusal("bad_arguments", "reason: required for out_of_service")
    if args.mode == "normal" and (args.parking is not None or args.back_at is not None):
        raise Refusal("bad_arguments", "parking, back_at: only for out_of_service or service")
    if args.back_at is not None:
        try:
            parse_back_at(args.back_at)
        except ValueError as exc:
            raise Refusal("bad_arguments", f"back_at: {exc}") from exc


DEFAULT_OUTCOME = "solved"  # a resolve that names no outcome (MQTT.md)


def parse_to_parker(payload: bytes) -> AgentSays:
    """An agent's help/to-parker message as an event for the loop; ValueError says what is wrong with it."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes; at most {MAX_COMMAND_BYTES}")
    raw = json_value(payload)
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    try:
        args = config.validate_as(raw, ToParkerArgs, "help/to-parker")
    except config.ConfigError as exc:
        raise ValueError("; ".join(f"{p.key}: {p.message}" for p in exc.problems)) from exc
    if args.type == "message" and args.text is None:
        raise ValueError("text: required for a message")
    outcome = args.outcome or (DEFAULT_OUTCOME if args.type == "resolve" else "")
    return AgentSays(args.ticket, args.type, args.agent, args.text or "", outcome)


def to_parker_sender(payload: bytes) -> tuple[str, str, str]:
    """(ticket, agent, type) of a help/to-parker message that could not be parsed, as far as it says them.

    So that the refusal event names whom it answers; each is "" where the payload does not say.
    """
    try:
        raw = json_value(payload) if len(payload) <= MAX_COMMAND_BYTES else None
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        return "", "", ""
    said = [raw.get(key) for key in ("ticket", "agent", "type")]
    ticket, agent, kind = (value[:64] if isinstance(value, str) else "" for value in said)
    return ticket, agent, kind
