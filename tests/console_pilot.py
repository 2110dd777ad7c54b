"""Agents' consoles for tests: a ConsoleApp on the test broker, and its tables and activity pane as plain text."""
from __future__ import annotations

from console.agent_link import AgentLink
from console.app import ConsoleApp


def console(port: int, agent: str) -> ConsoleApp:
    """A console on the test broker."""
    return ConsoleApp(lambda on_message, on_state: AgentLink(f"mqtt://127.0.0.1:{port}", agent, on_message=on_message,
                                                             on_state=on_state), agent)


def rows(app: ConsoleApp, table_id: str) -> list[list[str]]:
    """The cells of a table as plain text."""
    table = app.query_one(table_id)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def activity(app: ConsoleApp) -> str:
    """Everything in the activity pane, with wrapped lines joined and runs of spaces as one."""
    return " ".join(" ".join(strip.text for strip in app.query_one("#activity").lines).split())
