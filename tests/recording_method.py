"""A payment method for tests: it records what the station asks of it and answers nothing by itself."""
from __future__ import annotations

from kiosk.domain.faults import FaultKind
from kiosk.domain.payment import Capability


class RecordingMethod:
    """A kiosk.ports.PaymentMethod that records every call; the test posts its answers."""

    def __init__(self, name: str, capabilities: frozenset[Capability] = frozenset(),
                 fault_kinds: tuple[FaultKind, ...] = ()) -> None:
        self.name = name
        self.capabilities = capabilities
        self.fault_kinds = fault_kinds
        self.calls: list[tuple[object, ...]] = []

    def start(self) -> None:
        self.calls.append(("start",))

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None:
        self.calls.append(("start_payment", payment_id, amount, currency))

    def cancel_payment(self) -> None:
        self.calls.append(("cancel_payment",))

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        self.calls.append(("confirm_payment", payment_id, accept))

    def request(self, kind: str, request_id: str) -> None:
        self.calls.append(("request", kind, request_id))

    def close(self) -> None:
        self.calls.append(("close",))
