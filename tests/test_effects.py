"""Effect executors: an expected refusal of the store is logged and the journey goes on; a bug is not swallowed."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk.app.effects import EffectRunner
from kiosk.app.faults import FaultBoard
from kiosk.domain.events import Event, FailPayment
from kiosk.domain.records import PaymentState
from kiosk.domain.refusals import WrongState
from kiosk.storage.unavailable import UnavailableStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class RefusingStore(UnavailableStore):
    """A usable store whose fail_payment raises what it is given."""

    def __init__(self, error: Exception) -> None:
        super().__init__("io", Path("kiosk.db"))
        self.error = error

    @property
    def usable(self) -> bool:
        return True

    def fail_payment(self, *args: object, **kwargs: object) -> None:
        raise self.error


def runner(store: RefusingStore) -> EffectRunner:
    posted: list[Event] = []
    return EffectRunner(store, None, FaultBoard(store, posted.append), posted.append, None)


def test_an_expected_refusal_is_logged_and_the_journey_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    store = RefusingStore(WrongState("payment p1 is approved, not pending"))
    with caplog.at_level(logging.WARNING, logger="kiosk.app.effects"):
        runner(store).run(FailPayment("p1", PaymentState.DECLINED, 0x05), NOW)
    assert "payment p1 not marked declined: payment p1 is approved, not pending" in caplog.text


def test_a_plain_value_error_is_a_bug_and_is_not_swallowed() -> None:
    store = RefusingStore(ValueError("a bug in the store"))
    with pytest.raises(ValueError, match="a bug in the store"):
        runner(store).run(FailPayment("p1", PaymentState.DECLINED, 0x05), NOW)
