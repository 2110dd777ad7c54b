"""docs/asyncapi.yaml lists exactly the topics, event kinds, commands and reply codes the code uses."""
from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from kiosk.domain.doctor import Health, Part
from kiosk.mqtt import commands, contract, uplink
from kiosk.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "paystation/v1/{}/"
PUBLISHERS = {"publish", "insert_outbox", "will_set"}


def spec() -> dict:
    """The AsyncAPI document."""
    return yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))


def shape(topic: str) -> str:
    """A topic with every {parameter} (or MQTT wildcard level) made `{}`, for comparison."""
    return re.sub(r"\{[^}]*\}|#|\+", "{}", topic)


def literal(node: ast.expr) -> str | None:
    """The topic a publish call's first argument spells, or None when it is forwarded data."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return literal(node.right)
    if isinstance(node, (ast.Name, ast.Attribute)):  # a topic named in kiosk.mqtt.contract
        value = getattr(contract, node.id if isinstance(node, ast.Name) else node.attr, None)
        return value if isinstance(value, str) else None
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):  # e.g. fault_topic(component)
        name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        build = getattr(contract, name, None) if name.endswith("_topic") else None
        return build("{}") if callable(build) else None
    return None


def calls(name: str) -> list[ast.Call]:
    """Every call of a function or method called ``name`` in the station's code."""
    found = []
    for path in sorted((ROOT / "kiosk").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    found.append(node)
    return found


def first_literals(name: str, position: int = 0) -> set[str]:
    """String literals given as positional argument ``position`` to calls of ``name``."""
    result = set()
    for call in calls(name):
        if len(call.args) > position:
            value = literal(call.args[position])
            if value is not None:
                result.add(value)
    return result


def code_topics() -> set[str]:
    """Every topic shape the code publishes or subscribes to (without the station prefix)."""
    published = set().union(*(first_literals(name) for name in PUBLISHERS))
    if first_literals("add_event"):
        published.add("event/{kind}")  # the kinds themselves: test_event_kinds_match
    published.add(commands.REPLY_SUBTREE + "{}")
    subscribed = set(uplink.SUBSCRIPTIONS)
    return {shape(topic) for topic in published | subscribed}


def spec_topics() -> set[str]:
    """Every channel address of the AsyncAPI file (without the station prefix)."""
    addresses = [channel["address"] for channel in spec()["channels"].values()]
    assert all(shape(a).startswith(PREFIX) for a in addresses), addresses
    return {shape(a)[len(PREFIX):] for a in addresses}


def test_every_topic_of_the_code_is_documented_and_back() -> None:
    assert code_topics() == spec_topics()


def test_event_kinds_match() -> None:
    assert first_literals("add_event") == set(spec()["channels"]["event"]["parameters"]["kind"]["enum"])


def test_command_names_match() -> None:
    assert set(commands.ARGUMENTS) == set(spec()["channels"]["command"]["parameters"]["name"]["enum"])


def test_reply_codes_match() -> None:
    used = first_literals("Refusal") | first_literals("reply", 1)
    documented = set(spec()["components"]["messages"]["reply"]["payload"]["properties"]["code"]["enum"])
    assert used == documented


def test_doctor_parts_and_health_match() -> None:
    finding = spec()["components"]["messages"]["reply"]["payload"]["properties"]["findings"]["items"]["properties"]
    assert finding["part"]["enum"] == [str(part) for part in Part]
    assert finding["health"]["enum"] == [str(health) for health in Health]


def test_the_scan_sees_the_known_publishers() -> None:
    topics = code_topics()
    assert {"status", "telemetry", "fault/{}", "event/{}", "cfg/reported", "help/state", "cmd/{}"} <= topics


def test_the_event_envelope_is_the_documented_one(tmp_path: Path) -> None:
    now = datetime(2026, 11, 22, 9, 14, 3, tzinfo=UTC)
    with Store.open(tmp_path / "kiosk.db", "ST-1", now) as store:
        store.save_feedback(5, None, None, now)
        [row] = store.rows("outbox")
    envelope = json.loads(row["payload"])
    event = spec()["components"]["messages"]["event"]["payload"]
    assert set(envelope) == set(event["properties"]) == set(event["required"]) | {"series"}
    assert [set(example["payload"]) for example in spec()["components"]["messages"]["event"]["examples"]] == [
        set(envelope)]
