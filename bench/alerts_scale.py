"""The alert bridge's judging at fleet scale: 5,000 stations' retained state, a fleet-wide burst, ticks with alerts open."""
from __future__ import annotations

import json
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common

from bridge.messages import parse
from bridge.problems import Engine, Outcome
from bridge.rules import Rules
from bridge.rules import parse as parse_rules
from bridge.store import Store

STATIONS = 5000
BATCH = 500  # messages the bridge takes in one step (one transaction)
ZONES = ("Altstadt Nord", "Altstadt Süd", "Hafen", "Messe", "Flughafen", "Westend")
EXAMPLE = Path(__file__).resolve().parent.parent / "provisioning" / "alerts.example.toml"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """A time as stations write it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fleet() -> list[tuple[str, bytes]]:
    """What a fresh connection receives: every station's birth, and the active faults of 1 in 12 (a bad day)."""
    messages = []
    for n in range(STATIONS):
        station = f"DE-{n:05d}"
        messages.append((f"paystation/v1/{station}/status", json.dumps(
            {"state": "online", "boot": 1_795_338_000 + n, "zone": ZONES[n % len(ZONES)], "ts": stamp(T0)}).encode()))
        if n % 12 == 0:
            component, code = ("card_terminal", "unreachable") if n % 24 == 0 else (f"part{n % 7}", f"code{n % 5}")
            messages.append((f"paystation/v1/{station}/fault/{component}", json.dumps(
                {"active": True, "code": code, "severity": "critical", "since": stamp(T0 - timedelta(minutes=n % 90)),
                 "message": "no answer", "parker_impact": "no_card_payment"}).encode()))
    return messages


def rules(database: Path) -> Rules:
    """The example configuration, on a scratch database."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["bridge"]["database"] = str(database)
    return parse_rules(data)


def main() -> None:
    """Print the figures: per batch the baseline (JSON only), parsing and judging, and saving; then ticks."""
    messages = fleet()
    batches = [messages[i:i + BATCH] for i in range(0, len(messages), BATCH)]
    with tempfile.TemporaryDirectory() as scratch:
        config = rules(Path(scratch) / "alerts.db")
        engine = Engine(config)
        baseline, judged, saved = [], [], []
        with Store(config.bridge.database) as store:
            for batch in batches:
                start = time.perf_counter()
                for _, payload in batch:
                    json.loads(payload)
                baseline.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                step = Outcome()  # as Service.step does: what a batch changed, merged
                for topic, payload in batch:
                    if (seen := parse(topic, payload, True)) is not None:
                        step.merge(engine.observe(seen, T0))
                judged.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                store.apply(step, T0)
                saved.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            opened = engine.tick(T0 + timedelta(seconds=config.bridge.grace_s + 1))
            store.apply(opened, T0 + timedelta(seconds=config.bridge.grace_s + 1))
            first_tick = (time.perf_counter() - start) * 1000
            ticks = []
            for second in range(100):
                now = T0 + timedelta(seconds=config.bridge.grace_s + 2 + second)
                start = time.perf_counter()
                store.apply(engine.tick(now), now)
                ticks.append((time.perf_counter() - start) * 1000)
        alerts = len(engine.alerts)
        deliveries = len(opened.deliveries)
    ratio = sum(judged) / sum(baseline)
    sys.stdout.write(
        f"{len(messages)} retained messages of {STATIONS} stations, batches of {BATCH}:\n"
        f"  baseline (json.loads only): {common.summary(baseline)} per batch\n"
        f"  parse and judge:            {common.summary(judged)} per batch (x{ratio:.1f} the baseline)\n"
        f"  save (one transaction):     {common.summary(saved)} per batch\n"
        f"the tick that opens the alerts: {first_tick:.1f} ms, {alerts} alerts open, {deliveries} messages queued\n"
        f"idle ticks with them open: {common.summary(ticks)}\n")


if __name__ == "__main__":
    main()
