"""The card terminal's faults as the station's fault catalogue describes them (ZvtTerminal.fault_kinds)."""
from __future__ import annotations

from kiosk.domain.faults import FaultKind, ParkerImpact, Severity

COMPONENT = "card_terminal"  # the fault component: part of MQTT topics and stored faults, never changed

FAULT_KINDS = (
    FaultKind(COMPONENT, "unreachable", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
              "The card terminal does not answer."),
    FaultKind(COMPONENT, "not_ready", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
              "The card terminal reports it is not ready (initialisation required)."),
    FaultKind(COMPONENT, "out_of_order", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
              "The card terminal reports it is out of order."),
    FaultKind(COMPONENT, "error", Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT,
              "The card terminal reported an internal error and needs a technician."),
    FaultKind(COMPONENT, "payment_timeout", Severity.WARNING, ParkerImpact.NOTICE,
              "The card terminal did not finish a payment in time."),
)
