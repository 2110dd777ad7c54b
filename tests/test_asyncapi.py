"""docs/asyncapi.yaml lists exactly the topics, event kinds, commands and reply codes the code uses."""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.model import Alert, AlertState, Problem, Severity
from kiosk.domain import staff
from kiosk.domain.doctor import Health, Part
from kiosk.domain.records import RepairNoteRecord
from kiosk.mqtt import commands, contract, uplink
from kiosk.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "paystation/v1/{}/"
STATION_PREFIX = "paystation/v1/{station}/"
BRIDGE_ADDRESSES = {"alert": "paystation/v1/_alerts/{alert_id}", "ack": "paystation/v1/_ack/{user}/{alert_id}"}
# The alert payload as the bridge's own code writes it (docs/mqtt.md "Alerts and acknowledgements").
BRIDGE_ALERT = Alert(id="a-3f2a9c4e", problem=Problem.FAULT, title="card_terminal/unreachable at ST-1",
                     stations=["ST-1"], zones={"ST-1": "Nord"}, component="card_terminal", code="unreachable",
                     severity=Severity.CRITICAL, message="The card terminal does not answer",
                     parker_impact="no_card_payment", since=datetime(2026, 12, 6, 9, 14, 3, tzinfo=UTC),
                     opened=datetime(2026, 12, 6, 9, 16, 3, tzinfo=UTC), group="crew-nord", escalate_at=None,
                     state=AlertState.ACKNOWLEDGED, acked_by="crew-anna",
                     acked_at=datetime(2026, 12, 6, 9, 20, tzinfo=UTC))
ALERT_FIELDS = tuple(BRIDGE_ALERT.payload())
ACK_FIELDS = ("note",)
JSON_TYPES: dict[str, tuple[type, ...]] = {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
                                           "number": (int, float), "boolean": (bool,), "null": (type(None),)}
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
    if staff.SIGNED:
        published.add("cmd/{name}/{account}")  # the signed commands: test_command_names_match
    subscribed = set(uplink.SUBSCRIPTIONS)
    return {shape(topic) for topic in published | subscribed}


def spec_topics() -> set[str]:
    """Every channel address of a station in the AsyncAPI file (without the station prefix)."""
    addresses = [channel["address"] for channel in spec()["channels"].values()
                 if channel["address"].startswith(STATION_PREFIX)]
    return {shape(a)[len(PREFIX):] for a in addresses}


def test_every_topic_of_the_code_is_documented_and_back() -> None:
    assert code_topics() == spec_topics()


def test_event_kinds_match() -> None:
    assert first_literals("add_event") == set(spec()["channels"]["event"]["parameters"]["kind"]["enum"])


def test_command_names_match() -> None:
    channels = spec()["channels"]
    assert set(commands.ARGUMENTS) - staff.SIGNED == set(channels["command"]["parameters"]["name"]["enum"])
    assert staff.SIGNED == set(channels["signedCommand"]["parameters"]["name"]["enum"])
    assert sorted(staff.RESERVED_NAMES) == sorted(re.findall(r"\b[a-z]+\b", channels["signedCommand"]["parameters"][
        "account"]["description"].split("none of ")[1]))


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


def problems(value: Any, schema: dict, where: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema``: the JSON Schema subset the file uses (type, enum, required, properties,
    additionalProperties false, items, pattern, length and minimum bounds)."""
    types = schema.get("type")
    if types is not None:
        allowed = tuple(t for name in ([types] if isinstance(types, str) else types) for t in JSON_TYPES[name])
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            return [f"{where}: {value!r} is not {types}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            found.append(f"{where}: length {len(value)} out of bounds")
    if isinstance(value, int) and not isinstance(value, bool) and value < schema.get("minimum", value):
        found.append(f"{where}: {value} below {schema['minimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{where}: fewer than {schema['minItems']} items")
        found += [p for i, item in enumerate(value) for p in problems(item, schema.get("items", {}), f"{where}[{i}]")]
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{where}: {key} missing" for key in schema.get("required", []) if key not in value]
        if schema.get("additionalProperties") is False:
            found += [f"{where}: {key} not allowed" for key in value if key not in properties]
        found += [p for key, item in value.items() if key in properties
                  for p in problems(item, properties[key], f"{where}.{key}")]
    return found


def documented_fields(heading: str) -> list[str]:
    """The first column of the field table under ``heading`` in docs/mqtt.md."""
    text = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)


def test_the_bridge_channels_are_the_contract_ones() -> None:
    channels = spec()["channels"]
    beside = {name: c["address"] for name, c in channels.items() if not c["address"].startswith(STATION_PREFIX)}
    assert beside == BRIDGE_ADDRESSES
    for name, address in beside.items():
        parameters = set(re.findall(r"\{(\w+)\}", address))
        assert set(channels[name]["parameters"]) == parameters
        assert address.split("/")[2].startswith("_"), "never a station id"


def test_the_alert_payload_is_the_documented_one() -> None:
    alert = spec()["components"]["messages"]["alert"]
    schema = alert["payload"]
    assert tuple(schema["properties"]) == ALERT_FIELDS == tuple(schema["required"])
    assert tuple(documented_fields("### `paystation/v1/_alerts/{alert_id}`")) == ALERT_FIELDS
    assert [list(example["payload"]) for example in alert["examples"]] == [list(ALERT_FIELDS)] * 2
    assert problems(json.loads(BRIDGE_ALERT.encoded()), schema) == [], "what the bridge publishes"
    assert set(schema["properties"]["problem"]["enum"]) == {str(problem) for problem in Problem}
    assert set(schema["properties"]["state"]["enum"]) == {str(state) for state in AlertState}
    for example in alert["examples"]:
        assert problems(example["payload"], schema) == []
        assert example["payload"]["parker_impact"] in [*spec()["components"]["messages"]["fault"]["payload"][
            "properties"]["parker_impact"]["enum"], None]
    documented = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8").split("### `paystation/v1/_alerts/", 1)[1]
    example = json.loads(documented.split("```json\n", 1)[1].split("```", 1)[0])
    assert list(example) == list(ALERT_FIELDS) and problems(example, schema) == []


@pytest.mark.parametrize(("payload", "found"), [
    ({"id": "A_1"}, "$.id: 'A_1' does not match"),
    ({"problem": "flood"}, "$.problem: 'flood' not in"),
    ({"stations": []}, "$.stations: fewer than 1 items"),
    ({"stations": ["_alerts"]}, "$.stations[0]: '_alerts' does not match"),
    ({"level": -1}, "$.level: -1 below 0"),
    ({"changes": True}, "$.changes: True is not integer"),
    ({"acked_by": 7}, "$.acked_by: 7 is not ['string', 'null']"),
    ({"extra": 1}, "$: extra not allowed"),
])
def test_the_alert_schema_refuses_what_the_contract_does_not_allow(payload: dict, found: str) -> None:
    alert = spec()["components"]["messages"]["alert"]
    bad = {**alert["examples"][0]["payload"], **payload}
    assert any(problem.startswith(found) for problem in problems(bad, alert["payload"])), problems(bad, alert["payload"])
    assert problems({k: v for k, v in alert["examples"][0]["payload"].items() if k != "group"}, alert["payload"]) == [
        "$: group missing"]


def test_the_ack_payload_is_the_documented_one() -> None:
    ack = spec()["components"]["messages"]["ack"]
    assert tuple(ack["payload"]["properties"]) == ACK_FIELDS
    assert [problems(example["payload"], ack["payload"]) for example in ack["examples"]] == [[], []]
    assert problems({"note": ""}, ack["payload"]) == ["$.note: length 0 out of bounds"]
    assert problems({"note": "x" * 201}, ack["payload"]) == ["$.note: length 201 out of bounds"]
    assert problems({"user": "crew-anna"}, ack["payload"]) == ["$: user not allowed"], "the user is the topic's"


def test_every_command_argument_is_documented() -> None:
    documented = set(spec()["components"]["messages"]["command"]["payload"]["properties"])
    assert {f.name for cls in commands.ARGUMENTS.values() for f in dataclasses.fields(cls)} == documented


def test_the_repair_event_and_the_fixed_reply_are_the_documented_ones() -> None:
    components = spec()["components"]
    schema = components["schemas"]["repairData"]
    at = datetime(2026, 12, 6, 9, 14, 3, tzinfo=UTC)
    for note in (RepairNoteRecord(1, "card_terminal", "unreachable", at, True, "Cable replugged", "crew-anna", at),
                 RepairNoteRecord(2, "display", None, None, False, "Checked", "crew-anna", at)):
        data = contract.repair_event_data(note)
        assert list(data) == list(schema["properties"]) == schema["required"]
        assert problems(data, schema) == []
    assert [problems(example, schema) for example in schema["examples"]] == [[]]
    reply = components["messages"]["reply"]
    fixed = next(e["payload"] for e in reply["examples"] if "fault_active" in e["payload"])
    assert problems(fixed, reply["payload"]) == [] and set(fixed) == {"ok", "code", "detail", "fault_active",
                                                                       "recorded_at"}
    command = components["messages"]["command"]
    assert [set(e["payload"]) for e in command["examples"] if "note" in e["payload"] or "on" in e["payload"]] == [
        {f.name for f in dataclasses.fields(commands.ARGUMENTS[name])} for name in ("fixed", "service")]
