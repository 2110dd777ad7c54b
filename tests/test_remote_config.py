"""Remote configuration: merged over the file, validated like it, versioned; the reported payload."""
import json

import pytest

from kiosk import config, remote_config
from kiosk.remote_config import decide

BASE = config.Settings()


def payload(**desired: object) -> bytes:
    return json.dumps(desired).encode()


def test_a_newer_valid_version_is_applied_over_the_file() -> None:
    decision = decide(BASE, 0, payload(version=2, links={"help_phone": "+49 30 1"},
                                       tariff={"maximum_minutes": 240}))
    assert decision.action == "apply" and decision.version == 2
    assert decision.settings is not None
    assert decision.settings.version == 2 and decision.settings.tariff.maximum_minutes == 240
    assert decision.settings.links.help_phone == "+49 30 1"
    assert decision.settings.links.app_url == BASE.links.app_url, "keys not given keep the file's value"
    assert decision.settings.tariff.bands == BASE.tariff.bands
    assert decision.settings.storage == BASE.storage and decision.settings.mqtt == BASE.mqtt


def test_lists_are_replaced_whole() -> None:
    bands = [{"days": ["sat"], "start": "09:00", "end": "12:00", "rate_per_hour": "3.00"}]
    decision = decide(BASE, 0, payload(version=1, tariff={"bands": bands}))
    assert decision.settings is not None and len(decision.settings.tariff.bands) == 1


@pytest.mark.parametrize(("applied", "version", "action"), [(2, 2, "same"), (3, 2, "reject"), (1, 2, "apply")])
def test_versions(applied: int, version: int, action: str) -> None:
    assert decide(BASE, applied, payload(version=version)).action == action


@pytest.mark.parametrize(("raw", "problem"), [
    (b"\xff", "not UTF-8 JSON"),
    (b"[]", "expected a JSON object"),
    (payload(tariff={}), "version: expected an integer"),
    (payload(version=True), "version: expected an integer"),
    (payload(version=0), "version: expected an integer"),
    (payload(version=2, mqtt={"host": "x"}), "mqtt: cannot be set remotely"),
    (payload(version=2, station={"id": "OTHER"}), "station: cannot be set remotely"),
    (payload(version=2, tariff={"increment_minutes": 7}), "tariff"),
    (payload(version=2, tariff={"colour": "red"}), "tariff.colour: unknown key"),
    (payload(version=2, zone="Nord"), "zone: expected a table"),
    (b"{" + b" " * remote_config.MAX_DESIRED_BYTES + b"}", "at most"),
])
def test_rejections_name_the_problem(raw: bytes, problem: str) -> None:
    decision = decide(BASE, 1, raw)
    assert decision.action == "reject" and decision.settings is None
    assert any(problem in p for p in decision.problems), decision.problems


def test_reported_payloads() -> None:
    applied = decide(BASE, 0, payload(version=2))
    assert remote_config.reported(applied, 2, "T") == {
        "version": 2, "applied": True, "active_version": 2, "error": None, "problems": [], "ts": "T"}
    rejected = decide(BASE, 2, payload(version=3, mqtt={}))
    report = remote_config.reported(rejected, 2, "T")
    assert report["applied"] is False and report["active_version"] == 2 and report["version"] == 3
    assert report["error"] == "; ".join(report["problems"]) and report["error"].startswith("mqtt")


@pytest.mark.parametrize("raw", [
    b"[" * 100_000,
    b'{"version": 2, "tariff": {"bands": [null]}}',
    b'{"version": 2, "plate": {"pattern": "a{99999999999}"}}',
    b'{"version": 2, "plate": {"pattern": "' + b"(" * 5000 + b")" * 5000 + b'"}}',
    b'{"version": 2, "zone": {"name": "\\ud800"}}',
    b'{"\\ud800": 1}',
])
def test_hostile_payloads_are_rejected_not_raised(raw: bytes) -> None:
    decision = decide(BASE, 1, raw)
    assert decision.action == "reject" and decision.problems
