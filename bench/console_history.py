"""The console history's apply_many on a file: batches of 1,000 messages (200 events), retained faults, export."""
from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common

from console.history import History

BATCHES = 200
STATIONS = 5000
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """A time as stations write it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(station: str, kind: str, number: int, moment: datetime, data: dict[str, object]) -> tuple[str, bytes]:
    """An event/{kind} of ``station``."""
    payload = {"id": f"{station}-{kind}-{number}", "series": "s", "seq": number, "boot": 1, "ts": stamp(moment),
               "kind": kind, "data": data}
    return f"paystation/v1/{station}/event/{kind}", json.dumps(payload).encode()


def batch(number: int) -> list[tuple[str, bytes]]:
    """1,000 messages: 200 events (help open, accept and close, feedback, fault raises and clears on 40 stations'
    card terminals) among 800 status and help/state messages the history ignores."""
    moment = T0 + timedelta(seconds=number)
    messages = []
    for i in range(200):
        station = f"ST-{(number * 40 + i // 5) % STATIONS:05d}"
        ticket = f"t{number}-{i // 5}"
        kind = i % 5
        if kind == 0:
            messages.append(envelope(station, "help", number * 1000 + i, moment,
                                     {"ticket": ticket, "action": "open", "state": "waiting",
                                      "context": {"plate": "B-AB-123", "screen": "payment", "zone": "Nord"}}))
        elif kind == 1:
            messages.append(envelope(station, "help", number * 1000 + i, moment,
                                     {"ticket": ticket, "action": "accept", "state": "connected", "agent": "ana"}))
        elif kind == 2:
            messages.append(envelope(station, "help", number * 1000 + i, moment,
                                     {"ticket": ticket, "action": "close", "state": "closed", "outcome": "solved",
                                      "agent": "ana", "text": "", "presses": 1, "time_to_accept_s": i % 60,
                                      "time_to_resolve_s": 100 + i}))
        elif kind == 3:
            messages.append(envelope(station, "feedback", number * 1000 + i, moment,
                                     {"rating": 1 + i % 5, "session_id": f"s{i}", "ticket": ticket}))
        else:
            messages.append(envelope(station, "fault", number * 1000 + i, moment,
                                     {"component": "card_terminal", "code": "unreachable", "severity": "critical",
                                      "message": "no answer", "parker_impact": "no_card_payment",
                                      "active": number % 2 == 0}))
    noise = [(f"paystation/v1/ST-{i:05d}/status", b'{"state":"online","boot":1}') for i in range(400)]
    noise += [(f"paystation/v1/ST-{i:05d}/help/state", b'{"ticket":null,"state":"idle"}') for i in range(400)]
    return messages + noise


def retained(offset: int) -> list[tuple[str, bytes]]:
    """1,000 retained fault/{component} messages as a console receives them at start: 200 active, 800 cleared."""
    messages = []
    for i in range(1000):
        station = f"ST-{(offset + i) % STATIONS:05d}"
        payload = {"active": i % 5 == 0, "code": "unreachable", "severity": "critical",
                   "since": stamp(T0 - timedelta(hours=1 + i)), "message": "no answer",
                   "parker_impact": "no_card_payment"}
        messages.append((f"paystation/v1/{station}/fault/card_terminal_{offset // 5000}", json.dumps(payload).encode()))
    return messages


def timed(history: History, messages: list[tuple[str, bytes]], now: datetime) -> float:
    """Milliseconds one apply_many takes."""
    start = time.perf_counter()
    history.apply_many(messages, now)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "history.db"
        with History(path) as history:
            startup = [timed(history, retained(i * 1000), T0) for i in range(25)]
            again = [timed(history, retained(i * 1000), T0) for i in range(25)]
            batches = [timed(history, batch(n), T0 + timedelta(seconds=n)) for n in range(BATCHES)]
            start = time.perf_counter()
            history.export_csv(Path(scratch) / "csv", T0 + timedelta(seconds=BATCHES))
            export_ms = (time.perf_counter() - start) * 1000
        size = path.stat().st_size / 1e6
    sys.stdout.write(f"apply_many, 1,000 messages with 200 events, {BATCHES} batches: {common.summary(batches)}, "
                     f"max {max(batches):.3f} ms\n"
                     f"apply_many, 1,000 retained faults (first start), 25 batches: {common.summary(startup)}\n"
                     f"apply_many, the same again (a restart): {common.summary(again)}\n"
                     f"export_csv of {BATCHES * 40} calls: {export_ms:.1f} ms; file {size:.1f} MB\n")


if __name__ == "__main__":
    main()
