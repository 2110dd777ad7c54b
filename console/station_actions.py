"""What an agent sends to stations from the console: accept, chat, courtesy, end journey, notice, resolve, commands."""
from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.widgets import Input
from textual.widgets.option_list import Option

from console.agent_link import NotConnected
from console.crew import CREW_COMMANDS, CrewCommand, describe_reply
from console.fleet_list import FleetList
from console.forms import ConfirmScreen, Field, FormScreen, length_check, number_check
from console.screens import PickScreen

if TYPE_CHECKING:
    from console.app import ConsoleApp

__all__ = ["StationActions"]

OUTCOMES = ("solved", "courtesy", "technician", "no_answer", "other")  # help/to-parker resolve (MQTT contract)
COURTESY_MINUTES = 60
COURTESY_REASON = "help ticket"
MAX_CHAT = 500  # what the station accepts on help/to-parker and for its commands' arguments
MAX_NOTICE = 200
MAX_PLATE = 16
MAX_COURTESY_MINUTES = 10080
MAX_REPLIES = 5  # command replies kept per station for its detail pane


class StationActions:
    """The ConsoleApp's actions that reach a station; every one that changes it asks for ctrl+y first."""

    def __init__(self, app: ConsoleApp) -> None:
        self.app = app

    def accept(self) -> None:
        """Ask the station to connect the selected ticket's parker to this agent; the chat gets the focus."""
        view = self.app.ticket_or_hint()
        if view is None:
            return
        if view.mine:
            self.app.notify("This ticket is already yours.")
            return
        if self.send(lambda: self.app.link.to_parker(view.station, view.ticket, "accept")):
            self.app.board.sent_accept(view.ticket)
            self.app.note(f"accept sent for {view.station}")
            self.app.query_one("#chat", Input).focus()

    def chat(self, event: Input.Submitted) -> None:
        """Enter in the chat sends its text to the selected ticket's parker."""
        words = event.value.strip()
        view = self.app.ticket_or_hint()
        if not words or view is None:
            return
        if not view.mine:  # the station would refuse it: say so here, and keep the text
            self.app.notify("Accept the call first (F3): the station takes messages from the agent it connected.",
                            severity="warning")
            return
        if self.send(lambda: self.app.link.to_parker(view.station, view.ticket, "message", text=words)):
            self.app.board.sent_message(view.ticket, words, self.app.clock())
            event.input.value = ""
            self.app.show_ticket()

    def courtesy(self) -> None:
        """Grant the selected ticket's parker a free session (a form, confirmed with ctrl+y)."""
        view = self.app.ticket_or_hint()
        if view is None:
            return
        plate = view.context.plate if view.context and view.context.plate else ""
        fields = [Field("plate", "Plate", plate, check=length_check(2, MAX_PLATE)),
                  Field("minutes", "Minutes", str(COURTESY_MINUTES), check=number_check(1, MAX_COURTESY_MINUTES)),
                  Field("reason", "Reason", COURTESY_REASON, check=length_check(1, MAX_NOTICE))]

        def granted(values: dict[str, str] | None) -> None:
            if values is not None:
                self.command(view.station, "courtesy", {"plate": values["plate"].upper(),
                                                         "minutes": int(values["minutes"]),
                                                         "reason": values["reason"], "ticket": view.ticket})

        self.app.push_screen(FormScreen(f"Grant a courtesy session at {view.station}", fields, "Grant"), granted)

    def cancel_journey(self) -> None:
        """End the selected ticket's parker's journey on the station (confirmed; never during a payment)."""
        view = self.app.ticket_or_hint()
        if view is None:
            return

        def confirmed(values: dict[str, str] | None) -> None:
            if values is not None:
                self.command(view.station, "journey/cancel",
                              {"reason": f"ended by agent {self.app.agent}", "ticket": view.ticket})

        self.app.push_screen(ConfirmScreen(f"End the parker's journey at {view.station}?",
                                       "The station returns to Welcome and forgets the plate; the call goes on.",
                                       "End journey"), confirmed)

    def notice(self) -> None:
        """Set or clear (empty text) the notice parkers see at a station (confirmed with ctrl+y)."""
        station = self.app.target_station()
        if station is None:
            self.app.notify("Select a station or a ticket first.", severity="warning")
            return

        def chosen(values: dict[str, str] | None) -> None:
            if values is not None:
                self.command(station, "notice", {"text": values["text"] or None})

        self.app.push_screen(FormScreen(f"Notice for parkers at {station} (empty clears it)",
                                    [Field("text", "Text", check=length_check(0, MAX_NOTICE))], "Set notice"), chosen)

    def resolve(self) -> None:
        """Close the selected ticket: an outcome and closing words shown to the parker (confirmed with ctrl+y)."""
        view = self.app.ticket_or_hint()
        if view is None:
            return

        def resolved(values: dict[str, str] | None) -> None:
            if values is not None and self.send(lambda: self.app.link.to_parker(
                    view.station, view.ticket, "resolve", text=values["text"], outcome=values["outcome"])):
                self.app.note(f"resolve ({values['outcome']}) sent for {view.station}")

        self.app.push_screen(FormScreen(f"Resolve the ticket at {view.station}",
                                    [Field("outcome", "Outcome", OUTCOMES[0], choices=OUTCOMES),
                                     Field("text", "Closing words for the parker", check=length_check(0, MAX_CHAT))],
                                    "Resolve"), resolved)

    def crew(self) -> None:
        """A command for a station: mode, restart, rebirth, the card terminal, doctor."""
        station = self.app.target_station()
        if station is None:
            self.app.notify("Select a station or a ticket first.", severity="warning")
            return

        def picked(index: int | None) -> None:
            if index is not None:
                self.crew_command(station, CREW_COMMANDS[index])

        self.app.push_screen(PickScreen(f"Command for {station}",
                                    [Option(command.label) for command in CREW_COMMANDS]), picked)

    def crew_command(self, station: str, command: CrewCommand) -> None:
        """Send a crew command, after its form or question when it changes the station."""
        def send(values: dict[str, str] | None) -> None:
            if values is not None:
                self.command(station, command.name, command.arguments(values))

        if command.fields:
            self.app.push_screen(FormScreen(f"{command.label} at {station}", list(command.fields), "Send",
                                            command.check), send)
        elif command.changes_station:
            self.app.push_screen(ConfirmScreen(f"{command.label} at {station}?", command.detail, "Send"), send)
        else:
            send({})

    def send(self, send: Callable[[], object]) -> bool:
        """Run ``send``; False (and an error shown) when the console is not connected."""
        try:
            send()
        except NotConnected as exc:
            self.app.tell(str(exc), "Not sent", "error")
            return False
        return True

    def command(self, station: str, name: str, args: dict[str, Any]) -> None:
        """Send ``cmd/{name}`` to a station; its reply comes to :meth:`command_reply`."""
        on_reply = functools.partial(self.app.relay, self.command_reply, station, name)  # on paho's or a timer's thread
        if self.send(lambda: self.app.link.command(station, name, args, on_reply)):
            self.app.note(f"{name} sent to {station}")

    def command_reply(self, station: str, command: str, reply: dict[str, Any]) -> None:
        """A station's reply: kept for the station pane, shown, and noted in Activity."""
        summary = describe_reply(command, reply)
        kept = self.app.replies.setdefault(station, deque(maxlen=MAX_REPLIES))
        kept.appendleft((self.app.clock(), f"{command}: {summary}"))
        self.app.tell(summary, f"{command} at {station}" + ("" if reply.get("ok") else " refused"),
                   "information" if reply.get("ok") else "error")
        if self.app.query_one("#fleet", FleetList).station == station:
            self.app.show_station()
