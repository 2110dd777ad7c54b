"""Agents' consoles for tests: a ConsoleApp on the test broker, and its panes as plain text."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mqtt_client import Staff
from textual import events

from console.agent_link import AgentLink, BrokerAddress
from console.app import ConsoleApp


def topic(station: str, rest: str) -> str:
    """A full topic of the contract."""
    return f"paystation/v1/{station}/{rest}"


def js(value: Any) -> bytes:
    """A JSON payload."""
    return json.dumps(value).encode()


def iso(moment: datetime) -> str:
    """A timestamp as stations write it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeStation(Staff):
    """The test's staff client playing stations: it also keeps each message's MQTT 5 response topic."""

    def __init__(self, port: int) -> None:
        self.response_topics: dict[bytes, str] = {}
        super().__init__(port)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None:
            self.response_topics[correlation] = getattr(message.properties, "ResponseTopic", "")
        super()._on_message(client, userdata, message)


async def until(pilot: Any, condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Let the app run until ``condition()`` is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.02)
    return value



def console(port: int, agent: str, **options: Any) -> ConsoleApp:
    """A console on the test broker (``options``: ConsoleApp's keywords, such as its alert desk)."""
    return ConsoleApp(lambda on_message, on_state: AgentLink(f"mqtt://127.0.0.1:{port}", agent, on_message=on_message,
                                                             on_state=on_state), agent, **options)


def rows(app: ConsoleApp, table_id: str) -> list[list[str]]:
    """The cells of a table as plain text."""
    table = app.query_one(table_id)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def fleet_rows(app: ConsoleApp) -> list[list[str]]:
    """The fleet pane's visible rows as drawn, split into their columns."""
    fleet = app.query_one("#fleet")
    lines = [fleet.render_line(y).text.strip() for y in range(fleet.size.height)]
    return [re.split(r"\s{2,}", line) for line in lines if line]


async def type_burst(app: ConsoleApp, pilot: Any, keys: str) -> None:
    """Type ``keys`` (``\\r`` enter, ``\\t`` tab) as a fast typist: every key queued at once, as a terminal sends them."""
    for key in keys:
        name = {" ": "space", ".": "full_stop", ",": "comma", "?": "question_mark", "!": "exclamation_mark",
                "/": "slash", "-": "minus", "\r": "enter", "\t": "tab"}.get(key, key)
        app.post_message(events.Key(name, key if key.isprintable() else None))
    await pilot.pause()


def activity(app: ConsoleApp) -> str:
    """Everything in the activity pane, with wrapped lines joined and runs of spaces as one."""
    return " ".join(" ".join(strip.text for strip in app.query_one("#activity").lines).split())


class FakeLink:
    """A link with no broker: the test puts messages into the console's intake itself, batch by batch."""

    def __init__(self, on_message: Callable[[str, bytes, bool], None], on_state: Callable[[bool, str], None]) -> None:
        self.on_message, self.on_state = on_message, on_state
        self.address = BrokerAddress("fake", 1883, False)
        self.sent: list[tuple[Any, ...]] = []

    def start(self) -> None:
        """Connected and subscribed at once."""
        self.on_state(True, "connected to the fake broker")

    def stop(self) -> None:
        """Nothing to close."""

    def to_parker(self, station: str, ticket: str, kind: str, text: str = "", outcome: str = "") -> None:
        """Kept in ``sent``."""
        self.sent.append(("to_parker", station, ticket, kind, text))

    def command(self, station: str, name: str, args: dict[str, Any], on_reply: Callable[..., None]) -> str:
        """Kept in ``sent``."""
        self.sent.append(("command", station, name, args))
        return "correlation"


def offline_console(agent: str = "anna", **options: Any) -> ConsoleApp:
    """A console over a FakeLink (``app.link.sent`` has what it sent)."""
    def link(on_message: Callable[[str, bytes, bool], None], on_state: Callable[[bool, str], None]) -> Any:
        return FakeLink(on_message, on_state)

    return ConsoleApp(link, agent, **options)
