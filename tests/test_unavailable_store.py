"""The Store stand-in while no database could be opened: not usable, and every call refuses with StorageError."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk import ports
from kiosk.ports import StorageError
from kiosk.storage.unavailable import UnavailableStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEDGERS = (ports.PaymentLedger, ports.HelpLedger, ports.FaultLedger, ports.OutboxLedger, ports.StationLedger)
METHODS = sorted(name for ledger in LEDGERS for name, member in vars(ledger).items()
                 if callable(member) and not name.startswith("_") and name != "close")
PROPERTIES = sorted(name for ledger in LEDGERS for name, member in vars(ledger).items()
                    if isinstance(member, property) and name != "usable")


@pytest.fixture
def store() -> UnavailableStore:
    return UnavailableStore("corrupt", Path("/var/lib/kiosk/kiosk.db"))


def test_it_says_it_is_not_usable_and_closing_it_is_harmless(store: UnavailableStore) -> None:
    assert store.usable is False
    store.close()


@pytest.mark.parametrize("name", METHODS)
def test_every_method_of_the_port_refuses_with_the_start_reason(store: UnavailableStore, name: str) -> None:
    with pytest.raises(StorageError) as refused:
        getattr(store, name)("any", NOW, key="value")
    assert refused.value.reason == "corrupt" and "no database could be opened" in str(refused.value)


@pytest.mark.parametrize("name", PROPERTIES)
def test_every_property_of_the_port_refuses(store: UnavailableStore, name: str) -> None:
    with pytest.raises(StorageError):
        getattr(store, name)


def test_a_reason_that_is_no_storage_fault_code_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="unknown storage error reason 'broken'"):
        UnavailableStore("broken", Path("kiosk.db"))

