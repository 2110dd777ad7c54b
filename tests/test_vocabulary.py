"""The domain's vocabulary: enums whose members are the very texts of the database, MQTT and JSON."""
import json
from datetime import UTC, datetime

import pytest

from drivers.payment.zvt.faults import FAULT_KINDS
from kiosk import config
from kiosk.domain import tariff
from kiosk.domain.events import LinkState
from kiosk.domain.faults import STATION, ParkerImpact, Severity, blocking
from kiosk.domain.helpdesk import AGENT_KINDS, AgentKind, HelpAction, LedPattern
from kiosk.domain.records import FaultRecord, PaymentState
from kiosk.domain.voice import CallDirection, CallPhase, FailReason
from kiosk.storage.help import HELP_ACTIONS
from kiosk.storage.store import SEVERITIES

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("vocabulary", "texts"), [
    (Severity, ["info", "warning", "critical"]),
    (ParkerImpact, ["none", "notice", "no_card_payment", "payment_method_unavailable", "out_of_service"]),
    (PaymentState, ["pending", "approved", "declined", "reversed"]),
    (LinkState, ["connecting", "connected", "down", "stopped"]),
    (LedPattern, ["off", "blinking", "steady"]),
    (AgentKind, ["accept", "message", "resolve"]),
    (HelpAction, ["accept", "message", "reply", "overdue", "wait", "close", "refused", "call"]),
    (CallPhase, ["dialling", "ringing", "talking", "ended", "failed"]),
    (CallDirection, ["outgoing", "callback"]),
    (FailReason, ["busy", "rejected", "no_answer", "unreachable", "cancelled"]),
], ids=lambda v: getattr(v, "__name__", ""))
def test_members_are_the_texts_on_the_wire(vocabulary, texts):
    assert [member.value for member in vocabulary] == texts
    assert list(vocabulary) == texts
    assert json.loads(json.dumps({"v": list(vocabulary)})) == {"v": texts}
    assert [f"{member}" for member in vocabulary] == texts


def test_storage_validates_with_the_same_vocabulary():
    assert SEVERITIES == ("info", "warning", "critical")
    assert HELP_ACTIONS == ("accept", "message", "reply", "overdue", "wait", "close", "refused", "call")
    assert AGENT_KINDS == ("accept", "message", "resolve") and all(type(k) is str for k in AGENT_KINDS)


def test_a_stored_fault_with_plain_texts_blocks_as_its_kind_says():
    kind = STATION.with_kinds(FAULT_KINDS).kind_of("card_terminal", "unreachable")
    assert (kind.severity, kind.parker_impact) == (Severity.CRITICAL, ParkerImpact.NO_CARD_PAYMENT)
    stored = FaultRecord("card_terminal", "unreachable", "critical", "no answer", "no_card_payment", NOW)
    assert blocking([stored], ["card_terminal"]) is stored
    assert blocking([stored], ["card_terminal", "coin_acceptor"]) is None, "parkers can still pay with coins"


def test_expected_refusals_have_their_own_value_errors():
    assert issubclass(tariff.TariffError, ValueError) and issubclass(config.AmountError, ValueError)
    with pytest.raises(config.AmountError, match="decimals"):
        config.parse_amount("1.5", "JPY")
    standard = config.Settings().tariff_engine
    with pytest.raises(tariff.TariffError, match="multiple"):
        tariff.quote(standard, NOW, 7)
    with pytest.raises(ValueError, match="naive") as naive:  # a bug, not a refusal
        tariff.quote(standard, NOW.replace(tzinfo=None), 15)
    assert not isinstance(naive.value, tariff.TariffError)
