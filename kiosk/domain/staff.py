"""Staff commands as the domain knows them: their validated arguments and the refusal of one that must not run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from kiosk.config import between, matches, one_of
from kiosk.domain.outage import ParkingWhileOut
from kiosk.domain.update import UpdateArgs

__all__ = [
    "ACCOUNT_NAME", "ARGUMENTS", "TERMINAL_REQUESTS", "CourtesyArgs", "Done", "FixedArgs", "JourneyCancelArgs",
    "ModeArgs", "NoArgs", "NoticeArgs", "Refusal", "ServiceMenuArgs", "Text200", "TicketId",
]

TicketId = Annotated[str, matches(r"[0-9a-f-]{36}", "a help ticket id (UUID)")]
Text200 = Annotated[str, matches(r"(?s)\S.{0,199}", "1 to 200 characters, not starting with a space")]
ACCOUNT_NAME = r"[A-Za-z0-9_.-]{1,64}"  # a broker account's name (provisioning/broker_accounts.py STAFF_NAME)


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
    by: Annotated[str, matches(ACCOUNT_NAME, "the crew member's account name: letters, digits, '_', '.', '-' (1-64)")]


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
