"""Fault catalogue: what each equipment fault means for the parker and how severe it is."""
from __future__ import annotations

from collections.abc import Collection, Iterable
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
    NO_CARD_PAYMENT = "no_card_payment"  # the card terminal cannot take payments
    NO_PAYMENT_METHOD = "payment_method_unavailable"  # a payment method of another kind cannot take payments
    OUT_OF_SERVICE = "out_of_service"


METHOD_DOWN = frozenset({ParkerImpact.NO_CARD_PAYMENT, ParkerImpact.NO_PAYMENT_METHOD})
"""The impacts of a payment method's fault that stop that method: parkers cannot pay once every method has one."""


@dataclass(frozen=True)
class FaultKind:
    """A known fault: where it is, how bad it is, and what it means for parkers."""

    component: str
    code: str
    severity: Severity
    parker_impact: ParkerImpact
    message: str


STATION_FAULTS: tuple[FaultKind, ...] = (
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
        FaultKind("payments", "unreconciled", Severity.WARNING, ParkerImpact.NONE,
                  "A payment approved before a restart could not be settled with its payment method; check it."),
        FaultKind("operator", "out_of_service", Severity.INFO, ParkerImpact.OUT_OF_SERVICE,
                  "Taken out of service by staff:"),
        FaultKind("operator", "service", Severity.INFO, ParkerImpact.OUT_OF_SERVICE,
                  "In service mode: a crew is working on the station:"),
        FaultKind("door", "open", Severity.CRITICAL, ParkerImpact.NONE,
                  "The cabinet door was opened outside service mode (possible tamper)."),
        FaultKind("help_button", "stuck", Severity.WARNING, ParkerImpact.NOTICE,
                  "The help button has been held down for too long (stuck or jammed); on-screen Help still works."),
        FaultKind("help", "voice_down", Severity.WARNING, ParkerImpact.NOTICE,
                  "Help by voice is not available (the SIP user agent does not run); help by text on the screen "
                  "still works:"),
        FaultKind("help", "voice_unregistered", Severity.WARNING, ParkerImpact.NOTICE,
                  "Help by voice is not available (the registrar refused or does not answer); help by text on the "
                  "screen still works:"),
        FaultKind("gpio", "unavailable", Severity.WARNING, ParkerImpact.NOTICE,
                  "The help button, its LED and the door switch cannot be used:"),
        FaultKind("display", "unavailable", Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE,
                  "Nothing can be shown on the screen (no display found); the station runs on without it:"),
        FaultKind("display", "render_failed", Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE,
                  "The screen could not be drawn; it is tried again at every change:"),
        FaultKind("outbox", "backlog", Severity.WARNING, ParkerImpact.NONE,
                  "Messages for staff are piling up unsent (none is dropped); check the broker connection:"),
        FaultKind("config", "remote_invalid", Severity.WARNING, ParkerImpact.NONE,
                  "The stored remote configuration no longer validates; the station's file settings are used:"),

)
"""The station's own faults; each payment method declares its own (kiosk.ports.PaymentMethod.fault_kinds)."""


class Catalogue:
    """The faults the station knows: its own and those its payment methods declare."""

    def __init__(self, kinds: Iterable[FaultKind]) -> None:
        self._kinds: dict[tuple[str, str], FaultKind] = {}
        for kind in kinds:
            key = (kind.component, kind.code)
            if key in self._kinds:
                raise ValueError(f"the fault {kind.component}/{kind.code} is described twice")
            self._kinds[key] = kind

    def with_kinds(self, kinds: Iterable[FaultKind]) -> Catalogue:
        """This catalogue and ``kinds``; ValueError if one is already described."""
        return Catalogue((*self._kinds.values(), *kinds))

    @property
    def components(self) -> frozenset[str]:
        """Every component with a fault described here (the station's own and its payment methods')."""
        return frozenset(component for component, _ in self._kinds)

    def kind_of(self, component: str, code: str) -> FaultKind:
        """The entry for a fault; unknown codes are critical and blocking, never silently harmless."""
        return self._kinds.get((component, code)) or FaultKind(
            component, code, Severity.CRITICAL, ParkerImpact.OUT_OF_SERVICE, f"Unknown fault {component}/{code}."
        )


STATION_COMPONENTS = frozenset(kind.component for kind in STATION_FAULTS)
"""The station's own fault components; a payment method's name is none of them."""

STATION = Catalogue(STATION_FAULTS)
"""The catalogue of a station before its payment methods are known (storage and devices at start)."""


def blocking(faults: Iterable[FaultRecord], methods: Collection[str]) -> FaultRecord | None:
    """The first fault that stops parkers from paying, if any.

    An out-of-service fault always does. A payment method's fault (an impact in METHOD_DOWN)
    does once each of ``methods`` (the station's payment methods) has one, since parkers can
    still pay with the others; with no method named, any such fault does. The fault of a
    method the station does not have (any more) stops nothing.
    """
    faults = tuple(faults)
    down = {f.component for f in faults if f.parker_impact in METHOD_DOWN and (not methods or f.component in methods)}
    all_down = bool(down) and set(methods) <= down
    return next((f for f in faults if f.parker_impact == ParkerImpact.OUT_OF_SERVICE
                 or (all_down and f.component in down)), None)


def notices(faults: Iterable[FaultRecord], methods: Collection[str]) -> tuple[FaultRecord, ...]:
    """Faults parkers should be told about while the station still works (a stopped method among them)."""
    faults = tuple(faults)
    stopped = blocking(faults, methods) is not None
    return tuple(f for f in faults if f.parker_impact == ParkerImpact.NOTICE or (
        not stopped and f.parker_impact in METHOD_DOWN and (not methods or f.component in methods)))
