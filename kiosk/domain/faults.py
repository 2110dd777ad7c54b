"""Fault catalogue: what each equipment fault means for the parker and how severe it is."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from kiosk.domain.records import FaultRecord


class Severity(StrEnum):
    """How bad a fault is (``severity`` in the database, fault events and retained fault messages)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ParkerImpact(StrEnum):
    """What a fault means for the parker, from harmless to blocking (``parker_impact``)."""

    NONE = "none"
    NOTICE = "notice"
    NO_CARD_PAYMENT = "no_card_payment"
    OUT_OF_SERVICE = "out_of_service"


BLOCKING_IMPACTS = frozenset({ParkerImpact.OUT_OF_SERVICE, ParkerImpact.NO_CARD_PAYMENT})


@dataclass(frozen=True)
class FaultKind:
    """A known fault: where it is, how bad it is, and what it means for parkers."""

    component: str
    code: str
    severity: Severity
    parker_impact: ParkerImpact
    message: str


CATALOGUE: dict[tuple[str, str], FaultKind] = {
    (k.component, k.code): k
    for k in (
        FaultKind("storage", "corrupt", Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE,
                  "The database failed its integrity check; it was kept untouched for recovery."),
        FaultKind("storage", "unwritable", Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE,
                  "The database cannot be opened for writing (permissions or read-only file system)."),
        FaultKind("storage", "full", Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE,
                  "The disk is full; no payment can be recorded."),
        FaultKind("storage", "too_new", Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE,
                  "The database was written by a newer firmware; downgrade refused."),
        FaultKind("storage", "io", Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE,
                  "The database reported an I/O error."),
        FaultKind("storage", "replaced", Severity.WARNING, ParkerImpact.NONE,
                  "The database file was empty (lost, e.g. by fsck) and was made anew: what it held is gone, "
                  "and events go on in a new series; check the storage."),
        FaultKind("card_terminal", "unreachable", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
                  "The card terminal does not answer."),
        FaultKind("card_terminal", "not_ready", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
                  "The card terminal reports it is not ready (initialisation required)."),
        FaultKind("card_terminal", "out_of_order", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
                  "The card terminal reports it is out of order."),
        FaultKind("card_terminal", "error", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
                  "The card terminal reported an internal error and needs a technician."),
        FaultKind("payments", "unreconciled", Severity.WARNING, ParkerImpact.NONE,
                  "A payment approved before a restart could not be settled with the card terminal; check it."),
        FaultKind("card_terminal", "payment_timeout", Severity.WARNING, ParkerImpact.NOTICE,
                  "The card terminal did not finish a payment in time."),
        FaultKind("operator", "out_of_service", Severity.INFO, ParkerImpact.OUT_OF_SERVICE,
                  "Taken out of service by staff:"),
        FaultKind("operator", "service", Severity.INFO, ParkerImpact.OUT_OF_SERVICE,
                  "In service mode: a crew is working on the station:"),
        FaultKind("door", "open", Severity.CRITICAL, ParkerImpact.NONE,
                  "The cabinet door was opened outside service mode (possible tamper)."),
        FaultKind("help_button", "stuck", Severity.WARNING, ParkerImpact.NOTICE,
                  "The help button has been held down for too long (stuck or jammed); on-screen Help still works."),
        FaultKind("gpio", "unavailable", Severity.WARNING, ParkerImpact.NOTICE,
                  "The help button, its LED and the door switch cannot be used:"),
        FaultKind("outbox", "backlog", Severity.WARNING, ParkerImpact.NONE,
                  "Messages for staff are piling up unsent (none is dropped); check the broker connection:"),
        FaultKind("config", "remote_invalid", Severity.WARNING, ParkerImpact.NONE,
                  "The stored remote configuration no longer validates; the station's file settings are used:"),
    )
}


def kind_of(component: str, code: str) -> FaultKind:
    """The catalogue entry for a fault; unknown codes are critical and blocking, never silently harmless."""
    return CATALOGUE.get((component, code)) or FaultKind(
        component, code, Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE, f"Unknown fault {component}/{code}."
    )


def blocking(faults: Iterable[FaultRecord]) -> FaultRecord | None:
    """The first fault that stops parkers from paying, if any."""
    return next((f for f in faults if f.parker_impact in BLOCKING_IMPACTS), None)


def notices(faults: Iterable[FaultRecord]) -> tuple[FaultRecord, ...]:
    """Faults parkers should be told about while the station still works."""
    return tuple(f for f in faults if f.parker_impact == ParkerImpact.NOTICE)
