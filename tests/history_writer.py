"""The kill test's victim: writes batches of help calls and fault changes into a console history until killed.

Usage: python tests/history_writer.py HISTORY FIRST_BATCH. After each batch is committed it prints the batch's
number; batch b holds the calls ``b{b:06d}-{i:03d}`` (i < CALLS) and one fault change of each of FAULTS components.
"""
from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

from console.history import History

CALLS = 150
FAULTS = 50
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def batch(number: int) -> list[tuple[str, bytes]]:
    """The messages of batch ``number``: its calls' close events, fault changes, and status noise."""
    at = (T0 + timedelta(seconds=number)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    messages = []
    for i in range(CALLS):
        data = {"ticket": f"b{number:06d}-{i:03d}", "action": "close", "outcome": "solved", "agent": "ana",
                "presses": 1, "time_to_accept_s": i % 30, "time_to_resolve_s": 60 + i}
        envelope = {"id": f"call-{number}-{i}", "series": "s", "seq": number * 1000 + i, "boot": 1, "ts": at,
                    "kind": "help", "data": data}
        messages.append(("paystation/v1/ST-KILL/event/help", json.dumps(envelope).encode()))
    for i in range(FAULTS):
        data = {"component": f"part{i}", "code": "broken", "severity": "warning", "message": "m",
                "parker_impact": "none", "active": number % 2 == 0}
        envelope = {"id": f"fault-{number}-{i}", "series": "s", "seq": number * 1000 + 500 + i, "boot": 1, "ts": at,
                    "kind": "fault", "data": data}
        messages.append(("paystation/v1/ST-KILL/event/fault", json.dumps(envelope).encode()))
    messages += [("paystation/v1/ST-KILL/status", b'{"state":"online"}')] * 200
    return messages


def main() -> None:
    """Write batches from FIRST_BATCH on, forever."""
    history = History(sys.argv[1])
    number = int(sys.argv[2])
    while True:
        history.apply_many(batch(number), T0 + timedelta(seconds=number))
        sys.stdout.write(f"{number}\n")
        sys.stdout.flush()
        number += 1


if __name__ == "__main__":
    main()
