"""Fault catalogue: what each equipment fault means for the parker and how severe it is."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from kiosk.domain.records import FaultRecord

# What a fault means for the parker, from harmless to blocking.
IMPACT_NONE = "none"
IMPACT_NOTICE = "notice"
IMPACT_NO_CARD = "no_card_payment"
IMPACT_OUT_OF_SERVICE = "out_of_service"
BLOCKING_IMPACTS = frozenset({IMPACT_OUT_OF_SERVICE, IMPACT_NO_CARD})


@dataclass(frozen=True)
class FaultKind:
    """A known fault: where it is, how bad it is, and what it means for parkers."""

    component: str
    code: str
    severity: str
    parker_impact: str
    message: str


CATALOGUE: dict[tuple[str, str], FaultKind] = {
    (k.component, k.code): k
    for k in (
        FaultKind("storage", "corrupt", "critical", IMPACT_OUT_OF_SERVICE,
                  "The database failed its integrity check; it was kept untouched for recovery."),
        FaultKind("storage", "unwritable", "critical", IMPACT_OUT_OF_SERVICE,
                  "The database cannot be opened for writing (permissions or read-only file system)."),
        FaultKind("storage", "full", "critical", IMPACT_OUT_OF_SERVICE,
                  "The disk is full; no payment can be recorded."),
        FaultKind("storage", "too_new", "critical", IMPACT_OUT_OF_SERVICE,
                  "The database was written by a newer firmware; downgrade refused."),
        FaultKind("storage", "io", "critical", IMPACT_OUT_OF_SERVICE,
                  "The database reported an I/O error."),
        FaultKind("storage", "replaced", "warning", IMPACT_NONE,
                  "The database file was empty (lost, e.g. by fsck) and was made anew: what it held is gone, "
                  "and events go on in a new series; check the storage."),
        FaultKind("card_terminal", "unreachable", "critical", IMPACT_NO_CARD,
                  "The card terminal does not answer."),
        FaultKind("card_terminal", "not_ready", "critical", IMPACT_NO_CARD,
                  "The card terminal reports it is not ready (initialisation required)."),
        FaultKind("card_terminal", "out_of_order", "critical", IMPACT_NO_CARD,
                  "The card terminal reports it is out of order."),
        FaultKind("card_terminal", "error", "critical", IMPACT_NO_CARD,
                  "The card terminal reported an internal error and needs a technician."),
        FaultKind("payments", "unreconciled", "warning", IMPACT_NONE,
                  "A payment approved before a restart could not be settled with the card terminal; check it."),
        FaultKind("card_terminal", "payment_timeout", "warning", IMPACT_NOTICE,
                  "The card terminal did not finish a payment in time."),
        FaultKind("operator", "out_of_service", "info", IMPACT_OUT_OF_SERVICE,
                  "Taken out of service by staff:"),
        FaultKind("operator", "service", "info", IMPACT_OUT_OF_SERVICE,
                  "In service mode: a crew is working on the station:"),
        FaultKind("door", "open", "critical", IMPACT_NONE,
                  "The cabinet door was opened outside service mode (possible tamper)."),
        FaultKind("help_button", "stuck", "warning", IMPACT_NOTICE,
                  "The help button has been held down for too long (stuck or jammed); on-screen Help still works."),
        FaultKind("gpio", "unavailable", "warning", IMPACT_NOTICE,
                  "The help button, its LED and the door switch cannot be used:"),
        FaultKind("outbox", "backlog", "warning", IMPACT_NONE,
                  "Messages for staff are piling up unsent (none is dropped); check the broker connection:"),
        FaultKind("config", "remote_invalid", "warning", IMPACT_NONE,
                  "The stored remote configuration no longer validates; the station's file settings are used:"),
    )
}


def kind_of(component: str, code: str) -> FaultKind:
    """The catalogue entry for a fault; unknown codes are critical and blocking, never silently harmless."""
    return CATALOGUE.get((component, code)) or FaultKind(
        component, code, "critical", IMPACT_OUT_OF_SERVICE, f"Unknown fault {component}/{code}."
    )


def blocking(faults: Iterable[FaultRecord]) -> FaultRecord | None:
    """The first fault that stops parkers from paying, if any."""
    return next((f for f in faults if f.parker_impact in BLOCKING_IMPACTS), None)


def notices(faults: Iterable[FaultRecord]) -> tuple[FaultRecord, ...]:
    """Faults parkers should be told about while the station still works."""
    return tuple(f for f in faults if f.parker_impact == IMPACT_NOTICE)
