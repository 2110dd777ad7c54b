"""The console with a fleet: the synthetic fleet keeps the contract, keys during loading, and 5,000 stations."""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from broker import Mosquitto
from console_pilot import console, rows, until

from console.board import Board

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import fleet_sim  # the synthetic fleet of bench/console_scale.py

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
WAITING = "00000000-0000-0001-0000-000000000018"  # ST-00024's ticket in the 100-station fleet
SCHEMAS = {"status": "status", "fault": "fault", "help/state": "helpState", "help/request": "helpRequest",
           "telemetry": "telemetry"}
TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str), "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list), "null": lambda v: v is None}


def contract_problems(schema: dict[str, Any], value: Any, where: str, components: dict[str, Any]) -> list[str]:
    """Where ``value`` breaks ``schema`` (type, enum, required, properties; $ref within docs/asyncapi.yaml)."""
    if "$ref" in schema:
        schema = components["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    types = schema.get("type")
    if types is not None and not any(TYPES[t](value) for t in ([types] if isinstance(types, str) else types)):
        return [f"{where}: {value!r} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    if not isinstance(value, dict):
        return []
    problems = [f"{where}: {key} missing" for key in schema.get("required", []) if key not in value]
    properties = schema.get("properties", {})
    for key, item in value.items():
        if properties and key not in properties:
            problems.append(f"{where}: {key} is not in the contract")
        elif key in properties:
            problems += contract_problems(properties[key], item, f"{where}.{key}", components)
    return problems


def message_problems(message: fleet_sim.Message, components: dict[str, Any]) -> list[str]:
    """What is wrong with one of the fleet's messages against docs/asyncapi.yaml and docs/mqtt.md's QoS table."""
    rest = message.topic.split("/", 3)[3]
    name = "fault" if rest.startswith("fault/") else rest
    qos, retain = (0, False) if name == "telemetry" else (1, name in ("status", "fault", "help/state"))
    problems = [] if (message.qos, message.retain) == (qos, retain) else [f"{message.topic}: QoS/retain"]
    return problems + contract_problems(components["messages"][SCHEMAS[name]]["payload"],
                                        yaml.safe_load(message.payload), message.topic, components)


def test_the_synthetic_fleet_keeps_the_contract_and_the_board_knows_all_of_it(caplog: pytest.LogCaptureFixture) -> None:
    components = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))["components"]
    fleet = fleet_sim.build_fleet(100, NOW)
    assert fleet_sim.build_fleet(100, NOW).messages == fleet.messages
    assert (len(fleet.messages), fleet.fault_count, dict(fleet.waiting)) == (223, 16, {"ST-00024": WAITING})
    changes = list(fleet_sim.burst(fleet, 40))
    messages = (fleet.messages + fleet_sim.help_requests(fleet) + [c.message for c in changes]
                + [fleet_sim.telemetry(fleet, station, NOW, 60) for station in fleet.states])
    assert [p for m in messages for p in message_problems(m, components)] == []
    board = Board("anna")
    with caplog.at_level(logging.WARNING):
        alerts = [a for m in fleet.messages + [c.message for c in changes] for a in board.apply(m.topic, m.payload,
                                                                                                   True, NOW)]
    assert (alerts, caplog.records) == ([], [])
    assert fleet_sim.unknown_to(board, fleet, list(fleet.states), NOW) == []
    *_, last = changes
    assert (last.last, last.active, last.index) == (True, True, 39)
    stamp = fleet_sim.parse_stamp(json.loads(last.message.payload)["message"])
    assert stamp is not None and stamp[0] == 39 and stamp[2] is True and stamp[1] <= time.monotonic()
    assert fleet_sim.parse_stamp("The card terminal does not answer.") is None


def test_keys_in_the_empty_help_queue_while_the_fleet_loads_keep_the_console_running(broker: Mosquitto) -> None:
    fleet = fleet_sim.build_fleet(20, NOW)
    statuses = [m for m in fleet.messages if m.topic.endswith("/status")]
    publisher = fleet_sim.Publisher(broker.port)
    publisher.publish_all(statuses, 10)  # the broker sends a late subscriber the statuses first, help/state last
    app = console(broker.port, "anna")

    async def scenario() -> None:
        async with app.run_test(size=(200, 60)) as pilot:
            await until(pilot, lambda: app.fleet.total == 20, "the fleet listed")
            await pilot.press("escape")  # to the help queue, empty so far
            assert (app.focused, rows(app, "#queue")) == (app.query_one("#queue"), [])
            await pilot.press("up", "pagedown", "down")
            assert app.is_running, "the console ended"
            publisher.publish_all([m for m in fleet.messages if m not in statuses], 10)
            [(station, ticket)] = fleet.waiting.items()
            await until(pilot, lambda: rows(app, "#queue"), "the waiting ticket")
            await pilot.press("down")
            assert [row[0] for row in rows(app, "#queue")] == [station]
            assert app.board.ticket(station, ticket, datetime.now(UTC)) is not None
            assert app.is_running

    try:
        asyncio.run(scenario())
    finally:
        publisher.close()


@pytest.mark.slow
def test_five_thousand_stations_are_listed_and_applied_within_seconds_on_a_default_broker(tmp_path: Path) -> None:
    """mosquitto left at its defaults: at QoS 1 it would hand a console about 1,020 of the fleet's messages."""
    broker = Mosquitto(tmp_path / "broker").start()
    fleet = fleet_sim.build_fleet(5000, datetime.now(UTC))
    publisher = fleet_sim.Publisher(broker.port)
    try:
        publisher.publish_all(fleet.messages, 20)
        app = console(broker.port, "anna")

        async def scenario() -> None:
            async with app.run_test(size=(200, 60)) as pilot:
                tracker = fleet_sim.Tracker(fleet)
                await until(pilot, lambda: tracker.known(app.board, datetime.now(UTC)),
                            "every station, fault and ticket on the board", timeout=10.0)
                await until(pilot, lambda: not app.loading, "the loading state to end", timeout=5.0)
                assert (app.fleet.total, len(app.fleet)) == (5000, 5000)
                assert str(app.query_one("#fleet").border_title).startswith("Fleet 5,000 · ")
                assert "LOADING" not in str(app.query_one("#fleet").border_title)
                assert {t.station for t in app.board.queue(datetime.now(UTC))} == set(fleet.waiting)

        asyncio.run(scenario())
    finally:
        publisher.close()
        broker.stop()
