"""Staff commands as the domain knows them: their validated arguments and the refusal of one that must not run."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from kiosk.config import between, matches, one_of
from kiosk.domain.outage import ParkingWhileOut
from kiosk.domain.update import UpdateArgs

__all__ = [
    "ACCOUNT_NAME", "ARGUMENTS", "CONTROL_CHARACTERS", "RESERVED_NAMES", "SIGNED", "TERMINAL_REQUESTS", "CourtesyArgs",
    "Done", "FixedArgs", "JourneyCancelArgs", "ModeArgs", "NoArgs", "NoticeArgs", "Refusal", "ServiceArgs",
    "ServiceMenuArgs", "Signed", "Text200", "TicketId", "account_name",
]

A = TypeVar("A")

# What no staff text may hold: C0 and C1 controls (NUL too: SQLite refuses it), DEL, and the bidirectional
# embeddings, overrides and isolates that make a text read otherwise than it is stored.
CONTROL_CHARACTERS = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
TicketId = Annotated[str, matches(r"[0-9a-f-]{36}", "a help ticket id (UUID)")]
Text200 = Annotated[str, matches(rf"[^\s{CONTROL_CHARACTERS}][^{CONTROL_CHARACTERS}]{{0,199}}",
                                 "1 to 200 characters, not starting with a space, without control characters")]
ACCOUNT_NAME = r"[A-Za-z0-9_.-]{1,64}"  # a broker account's name (provisioning/broker_accounts.py STAFF_NAME)
# Names no staff account has (provisioning/broker_accounts.py RESERVED_NAMES): the first level of every station
# topic, which an acknowledgement's user level would imitate; names starting with "." neither.
RESERVED_NAMES = frozenset({"cfg", "cmd", "event", "fault", "help", "reply", "status", "telemetry"})
SIGNED = frozenset({"fixed", "service"})  # sent to cmd/{name}/{account}: the broker vouches for the account


def account_name(name: str) -> bool:
    """Whether ``name`` can be a staff account's: ACCOUNT_NAME, not reserved, not starting with a dot."""
    return re.fullmatch(ACCOUNT_NAME, name) is not None and name not in RESERVED_NAMES and not name.startswith(".")


@dataclass(frozen=True)
class NoArgs:
    """A command without arguments (an empty JSON object)."""


@dataclass(frozen=True)
class NoticeArgs:
    """Set (text) or clear (text null or absent) the message shown to parkers."""

    text: Text200 | None = None


@dataclass(frozen=True)
class ModeArgs:
    """Normal operation, out of service (reason for staff), or service: a crew is at the station, door openings expected.

    Out of service and service may tell parkers whether parking is free meanwhile and when the station is back.
    """

    mode: Annotated[str, one_of("normal", "out_of_service", "service")]
    reason: Text200 | None = None
    parking: Annotated[str, one_of(*(choice.value for choice in ParkingWhileOut))] | None = None
    back_at: Annotated[str, matches(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)",
                                    "an ISO 8601 time with its UTC offset, e.g. 2026-12-06T14:00:00+01:00")] | None = None


@dataclass(frozen=True)
class CourtesyArgs:
    """A free session granted by staff: plate, minutes and why."""

    plate: Annotated[str, matches(r"[A-Z0-9-]{2,16}", "a plate in capitals, digits and '-' (2-16)")]
    minutes: Annotated[int, between(1, 10080)]
    reason: Text200
    ticket: TicketId | None = None


@dataclass(frozen=True)
class JourneyCancelArgs:
    """An agent ends the parker's journey (back to Welcome, plate forgotten); never during a payment."""

    reason: Text200
    ticket: TicketId | None = None


@dataclass(frozen=True)
class FixedArgs:
    """A crew member's note that a component is fixed, for the station's fault history (docs/mqtt.md ``fixed``)."""

    component: Annotated[str, matches(r"[a-z][a-z0-9_]{0,63}", "a fault component, e.g. card_terminal")]
    note: Text200


@dataclass(frozen=True)
class ServiceArgs:
    """A crew member starts service mode (on) or ends it (off): never free parking, never ending staff's outage."""

    on: bool


@dataclass(frozen=True)
class Signed(Generic[A]):
    """A signed command's arguments with its sender, the account named by the topic's last level (``cmd/fixed/anna``)."""

    by: str
    args: A


@dataclass(frozen=True)
class ServiceMenuArgs:
    """Show the technician's service menu on the screen (entering service mode), or close it."""

    show: bool


ARGUMENTS: dict[str, type] = {
    "rebirth": NoArgs,
    "notice": NoticeArgs,
    "mode": ModeArgs,
    "courtesy": CourtesyArgs,
    "terminal/status": NoArgs,
    "terminal/end-of-day": NoArgs,
    "restart": NoArgs,
    "journey/cancel": JourneyCancelArgs,
    "doctor": NoArgs,
    "service-menu": ServiceMenuArgs,
    "update": UpdateArgs,
    "fixed": FixedArgs,
    "service": ServiceArgs,
}

TERMINAL_REQUESTS = {"terminal/status": "status",
                     "terminal/end-of-day": "end_of_day"}  # command -> payment method request


class Refusal(Exception):
    """A command that is not executed: ``code`` for programs, ``detail`` for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Done:
    """A command that ran: words for the staff member, and data for their tools."""

    detail: str
    data: dict[str, Any] = field(default_factory=dict)
