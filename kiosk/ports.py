"""The seams of the station: what each adapter must implement, and what it may, for the application on the loop thread.

The application (kiosk.app) talks to its parts through these protocols only; the composition
root (kiosk.cli.compose) picks the real or simulated adapter behind each one:

- PaymentMethod: a way to pay, with declared capabilities (drivers.payment.zvt: a ZVT card terminal);
- Display: the touchscreen (screens.display);
- HelpPanel: the help button's LED (drivers.gpio);
- Intercom: help by voice, a SIP user agent (drivers.intercom: baresip);
- Store: the station's durable memory (kiosk.storage), StorageError when it cannot be used;
- Uplink: the staff side over MQTT (kiosk.mqtt.uplink);
- FaultBoard and StaffOperations: the application's own parts, as the uplink sees them;
- ServiceManager: systemd, told when the station is ready and that its loop still turns (kiosk.cli.sd_notify);
- Host: the computer itself, its temperature, disk, clock and addresses (drivers.host);
- Clock: the time, injected everywhere (a manual clock in scenarios and tests).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from kiosk.domain.doctor import Finding
from kiosk.domain.events import Event, MethodReport
from kiosk.domain.faults import FaultKind
from kiosk.domain.helpdesk import LedPattern
from kiosk.domain.outage import Outage
from kiosk.domain.parker_state import State
from kiosk.domain.payment import Capability
from kiosk.domain.records import (
    CommandRecord,
    FaultRecord,
    HelpTicketRecord,
    OutboxRow,
    PaymentRecord,
    PaymentResultData,
    RepairNoteRecord,
    SessionRecord,
)
from kiosk.domain.staff import Done
from kiosk.domain.voice import Call

__all__ = [
    "REASONS",
    "Clock",
    "Display",
    "FaultBoard",
    "FaultLedger",
    "HelpLedger",
    "HelpPanel",
    "Host",
    "Intercom",
    "OutboxLedger",
    "PaymentLedger",
    "PaymentMethod",
    "Post",
    "ServiceManager",
    "StaffOperations",
    "StationLedger",
    "StorageError",
    "Store",
    "Uplink",
]

Post = Callable[[Event], None]
"""Queue an event for the loop, from any thread (adapters' only way in)."""

Clock = Callable[[], datetime]
"""The time now, timezone-aware (UTC in production; a manual clock in scenarios and tests)."""


class PaymentMethod(Protocol):
    """A way for the parker to pay (a card terminal, ...), charged with vending semantics.

    This is the one interface between the station and a payment device; adapters live in
    ``drivers.payment``, one folder per kind of device. An adapter is built with the
    :data:`Post` callable of the loop and never blocks its caller: it answers by posting
    events tagged with the payment id (PaymentStatus, PaymentAuthorized, PaymentConfirmed,
    PaymentDeclined) and, about itself, MethodHealth (and MethodReport, PaymentReconciled
    for the capabilities below).

    Adapters *must* implement:

    * :attr:`name`: the component its faults are raised under and staff see (MethodHealth
      codes are fault codes of this component). It is part of MQTT topics and stored faults,
      so an adapter keeps it for good: the ZVT terminal's is ``"card_terminal"``.
    * :attr:`fault_kinds`: every fault it raises (MethodHealth codes), each under its
      :attr:`name`, with its severity and what it means for parkers. A fault that stops the
      method has the impact ``no_card_payment`` (a card terminal) or
      ``payment_method_unavailable`` (any other method): parkers can still pay with the other
      methods, and the station is out of service only once every method is stopped. A code
      not declared is treated as critical and out of service, so declare them all.
    * :attr:`capabilities`: what it *may* do besides paying (below); empty if nothing.
    * :meth:`start`, :meth:`close`
    * :meth:`start_payment`, :meth:`cancel_payment`, :meth:`confirm_payment`: a payment
      ends in PaymentDeclined, carrying a :class:`~kiosk.domain.payment.DeclineReason` and the
      method's own result code (opaque: stored for staff, never interpreted by the station),
      or in PaymentAuthorized. After PaymentAuthorized the method holds the payment until
      confirm_payment: accept=True books it (the session is already durable; PaymentConfirmed
      follows once the device has the answer), accept=False, or no answer at all before the
      method's own timeout, reverses it. So a station that dies before committing the session
      never keeps the parker's money.
    * :meth:`request`: even without request capabilities (it then refuses every kind).

    Adapters *may* implement the following, and declare each in :attr:`capabilities`:

    * :attr:`~kiosk.domain.payment.Capability.STATUS`,
      :attr:`~kiosk.domain.payment.Capability.END_OF_DAY`: staff requests of that ``kind``
      through :meth:`request`, answered by a MethodReport event. The station asks only for
      the kinds declared.
    * :attr:`~kiosk.domain.payment.Capability.RECONCILE`: settling the payments owed from
      before a restart (approved, session stored, booking not known). The adapter is built
      with them and posts one PaymentReconciled for each (booked, reversed or unknown).
    """

    @property
    def name(self) -> str:
        """The fault component of this method, e.g. ``"card_terminal"``."""

    @property
    def fault_kinds(self) -> tuple[FaultKind, ...]:
        """The faults this method raises, as the station's fault catalogue describes them."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional features this method has."""

    def start(self) -> None:
        """Start talking to the device (from the composition root, once the loop exists)."""

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None:
        """Ask the method to charge `amount` minor units of `currency`."""

    def cancel_payment(self) -> None:
        """Abort the payment in progress (the parker pressed Cancel); ends in PaymentDeclined."""

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        """The vending answer for an authorized payment."""

    def request(self, kind: str, request_id: str) -> None:
        """Queue a staff request of a declared ``kind`` (a Capability value); ValueError for any other kind."""

    def close(self) -> None:
        """Release the device."""


class FaultBoard(Protocol):
    """The one owner of the station's active faults (kiosk.app.faults.FaultBoard implements it)."""

    def active(self) -> tuple[FaultRecord, ...]:
        """The active faults, one per component."""

    def raise_fault(self, component: str, code: str, now: datetime, detail: str = "") -> None:
        """Raise ``component``'s fault (durably when the database works); the same code again changes nothing."""

    def clear_fault(self, component: str, now: datetime, *, must_store: bool = False) -> None:
        """Clear ``component``'s fault; with ``must_store``, StorageError unless the database recorded it."""


class StaffOperations(Protocol):
    """Staff commands executed on the loop thread (kiosk.app.operations.Operations implements it)."""

    def execute(self, name: str, args: Any, now: datetime) -> Done:
        """Run command ``name`` with its validated ``args``; Refusal if it must not run now."""

    def ask_payment_method(self, kind: str, request_id: str) -> None:
        """Pass a staff request to the payment method (a MethodReport answers it); Refusal while a parker pays."""

    def keep_report(self, event: MethodReport, now: datetime) -> str:
        """Store what a report carries (an end of day's totals); words to add to the reply."""


class Display(Protocol):
    """The screen as the loop drives it (screens.display.Display; scenarios use a recording one).

    MUST: draw a state, wait for input up to a timeout (returning the events it produced),
    be woken from another thread, and say when its window was closed.
    """

    quit_requested: bool

    def render(self, state: State, now: datetime) -> None:
        """Draw ``state`` as of ``now``."""

    def wait(self, timeout: float | None) -> list[Event]:
        """Block until input, a wake() or ``timeout`` seconds; the events the input meant."""

    def wake(self) -> None:
        """End a wait() from any thread."""

    def examine(self) -> Finding:
        """The doctor's finding on the screen: its driver and size, or why nothing can be seen."""


class HelpPanel(Protocol):
    """The help button's panel as the loop drives it (drivers.gpio.HelpPanel): its LED.

    MUST: show an LED pattern. The button and the door switch reach the loop as posted events.
    """

    def show(self, pattern: LedPattern) -> None:
        """Show ``pattern``; showing the current one again changes nothing."""


class ServiceManager(Protocol):
    """What supervises the station (kiosk.cli.sd_notify: systemd's notify protocol); optional.

    MUST: :meth:`ready` once the loop can serve, :meth:`alive` from the loop thread at least every
    :attr:`watchdog_interval` seconds (None: no watchdog), :meth:`status` with what the station is
    doing, :meth:`stopping` when it stops on purpose. None of them may block or raise.
    """

    watchdog_interval: float | None

    def ready(self, status: str) -> None:
        """The station can serve parkers now."""

    def alive(self) -> None:
        """The loop went round."""

    def status(self, text: str) -> None:
        """What the station is doing now."""

    def stopping(self) -> None:
        """The station stops on purpose."""


class Host(Protocol):
    """The computer the station runs on (drivers.host.LinuxHost), for the doctor, telemetry and the service menu.

    MUST: answer each read quickly (a few seconds at worst) and say None where it cannot tell; never raise.
    """

    def cpu_temperature_c(self) -> float | None:
        """The CPU's temperature in °C."""

    def throttling(self) -> int | None:
        """The firmware's throttling word (kiosk.domain.doctor.Throttling); None on other machines than a Pi."""

    def disk_free_bytes(self, path: Path) -> int | None:
        """Free bytes on the file system holding ``path``."""

    def clock_synchronised(self) -> tuple[bool | None, str]:
        """Whether the clock is synchronised, and who said so."""

    def service_state(self) -> str | None:
        """systemd's word on the kiosk service (``active``, ``failed``, ...); None without systemd."""

    def addresses(self) -> tuple[str, ...]:
        """The IP addresses with their interfaces, loopback left out."""


class Intercom(Protocol):
    """Help by voice: a SIP user agent calling the agents and answering their callbacks (drivers.intercom).

    Built with the loop's :data:`Post`, it never blocks its caller and answers by posting events:
    CallProgress for the call of a ticket (ringing, talking, ended or failed with the SIP reason),
    CallOffered when someone calls the station, and IntercomHealth (its ``help`` fault: the user
    agent down, the registration failed; None once it works).

    MUST: :meth:`start`, :meth:`dial`, :meth:`hang_up`, :meth:`answer`, :meth:`refuse`,
    :meth:`close`. A ticket has at most one call; a call asked for while the user agent is down
    fails at once (CallProgress FAILED), so that the parker is told and the ticket goes on as text.
    """

    def start(self) -> None:
        """Start the user agent (and keep it running until close)."""

    def dial(self, ticket_id: str) -> None:
        """Call the agents (voice.destination) for ``ticket_id``, the ticket and station named in the call."""

    def hang_up(self, ticket_id: str) -> None:
        """End ``ticket_id``'s call, whatever phase it is in; nothing if it has none."""

    def answer(self, ticket_id: str, call_id: str) -> None:
        """Answer the incoming call ``call_id`` (an agent calling back) as ``ticket_id``'s call."""

    def refuse(self, call_id: str) -> None:
        """Refuse the incoming call ``call_id``."""

    def close(self) -> None:
        """Hang up and stop the user agent."""


REASONS = ("corrupt", "unwritable", "full", "too_new", "io")
_EXPLAIN = {
    "corrupt": "the database file is damaged or is not a kiosk database; it was left untouched",
    "unwritable": "the database file or its directory cannot be opened for writing",
    "full": "the disk or the database size limit is full",
    "too_new": "the database was written by a newer firmware with an unknown schema",
    "io": "the database could not be read or written",
}


class StorageError(Exception):
    """The database cannot be used; ``reason`` is one of ``REASONS`` (see docs/storage.md), the storage fault's code."""

    def __init__(self, reason: str, path: Path, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown storage error reason {reason!r}; valid: {', '.join(REASONS)}")
        super().__init__(f"{path}: {_EXPLAIN[reason]} ({detail})")
        self.reason = reason
        self.path = path


class PaymentLedger(Protocol):
    """Parking sessions and payments: begun, committed, failed, confirmed, reconciled; courtesy sessions."""

    def active_session(self, plate: str, zone: str, now: datetime, *, look_alikes: bool = True) -> SessionRecord | None:
        """The session of ``plate`` (however spelled) in ``zone`` with the latest expiry after ``now``, if any."""

    def begin_payment(self, plate: str, zone: str, amount: int, currency: str, minutes: int, starts: datetime,
                      expires: datetime, extends_id: str | None, now: datetime, *, method: str) -> PaymentRecord:
        """Record a payment about to be asked of the payment method ``method`` (state pending, no event yet)."""

    def commit_paid_session(self, payment_id: str, result: PaymentResultData, now: datetime) -> SessionRecord:
        """Approve a pending payment and create its session, with both events, in one transaction."""

    def fail_payment(self, payment_id: str, state: str, result_code: int | None, now: datetime) -> PaymentRecord:
        """Mark a pending payment ``declined`` or ``reversed`` and report it."""

    def mark_confirmed(self, payment_id: str, now: datetime) -> PaymentRecord:
        """Record that the terminal received the positive vending answer for an approved payment."""

    def mark_unreconciled(self, payment_id: str, detail: str, now: datetime) -> PaymentRecord:
        """Record that an approved, unconfirmed payment could not be settled with its payment method, and why."""

    def reverse_unconfirmed_payment(self, payment_id: str, reason: str, now: datetime) -> SessionRecord:
        """The terminal reversed an approved payment: mark it reversed and make its session a courtesy one."""

    def resolve_pending_payments(self, now: datetime) -> list[PaymentRecord]:
        """At start-up, settle every pending payment: reversed, or approved if a session for it exists."""

    def unconfirmed_payments(self) -> list[PaymentRecord]:
        """Approved payments (their session is stored) whose vending answer their payment method may not have had."""

    def grant_courtesy_session(self, plate: str, zone: str, minutes: int, starts: datetime, expires: datetime,
                               reason: str, now: datetime) -> SessionRecord:
        """Create a free session (amount 0, currency XXX, no payment) and report it."""

    def save_feedback(self, rating: int, session_id: str | None, ticket_id: str | None, now: datetime) -> None:
        """Store a parker's rating (1..5), of a session and of the parker's help call if they had them, and report it."""


class HelpLedger(Protocol):
    """Help tickets: each step committed with its help/state, help/request and event rows."""

    def open_help_ticket(self, context: dict[str, Any], now: datetime) -> str:
        """Open a ticket in state ``waiting``: help/state, help/request (for the agents' queue) and the event."""

    def open_help_ticket_record(self, now: datetime) -> HelpTicketRecord | None:
        """The ticket that was open when the station stopped, to show it again; older open ones are closed."""

    def record_help(self, ticket_id: str, action: str, now: datetime, *, agent: str = "", text: str = "", outcome: str = "",
                    choice: str = "", presses: int = 0, call: Call | None = None) -> bool:
        """Commit one step of an open ticket with its outbox rows; False if nothing was written."""


class FaultLedger(Protocol):
    """Faults: raised and cleared with their retained fault/{component} rows."""

    def active_faults(self) -> list[FaultRecord]:
        """Every active fault, ordered by component."""

    def raise_fault(self, component: str, code: str, severity: str, message: str, parker_impact: str,
                    now: datetime) -> FaultRecord:
        """Make ``code`` the active fault of ``component``, replacing another code."""

    def clear_fault(self, component: str, now: datetime) -> bool:
        """Clear the active fault of ``component``; False (and nothing written) if there is none."""

    def sync_faults(self, active: Iterable[FaultRecord], cleared: Iterable[str], now: datetime) -> int:
        """Record the faults kept in memory while the database failed, in one transaction; returns how many changed."""

    def raised_since(self, component: str, code: str, since: datetime) -> bool:
        """Whether the fault ``component``/``code`` was raised at or after ``since`` (active or cleared)."""

    def note_repair(self, component: str, note: str, by: str, now: datetime) -> RepairNoteRecord:
        """Store a crew member's "fixed" note on ``component`` (with the fault it notes) and its ``event/repair``."""


class OutboxLedger(Protocol):
    """The outbox: rows queued in the same transaction as their fact, sent in order, marked on PUBACK."""

    def unsent_outbox(self, after_id: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows with id > ``after_id``, in id (= commit) order."""

    def mark_sent(self, ids: Sequence[int], now: datetime) -> int:
        """Mark rows as delivered (PUBACK received); returns how many were newly marked."""

    def outbox_depth(self) -> int:
        """How many rows wait to be sent."""

    @property
    def outbox_writes(self) -> int:
        """How many outbox rows this process has queued (rolled back ones included): unchanged means nothing new."""

    def prune_sent(self, older_than: datetime) -> int:
        """Delete rows sent before ``older_than``; returns how many. Unsent rows are never pruned."""

    def retained_messages(self) -> list[tuple[str, str]]:
        """(topic, payload) of every retained topic's current message, ordered by topic (for a rebirth)."""


class StationLedger(Protocol):
    """The station's own state: boot numbers, event series, commands run at most once, notice, remote configuration."""

    @property
    def usable(self) -> bool:
        """A database is open. False for the stand-in while none could be opened: every other call refuses."""

    @property
    def boot(self) -> int:
        """The boot number later events carry: this open's, then the newest from ``next_boot`` or ``adopt_boot``."""

    @property
    def series(self) -> str:
        """The random id of this database's event series (every event carries it with its ``seq``)."""

    @property
    def replaced_at(self) -> datetime | None:
        """When this database was made in place of a file that held none (lost data); None if never."""

    def next_boot(self, now: datetime) -> int:
        """Count one more boot for a new MQTT connection, durably, and return it."""

    def adopt_boot(self, boot: int) -> None:
        """The link used ``boot`` while the database could not count: keep the counter at least there, durably."""

    def begin_command(self, key: str, name: str, now: datetime) -> CommandRecord | None:
        """Remember a command about to run: None if ``key`` is new (stored as running)."""

    def finish_command(self, key: str, reply: str, now: datetime) -> None:
        """Store the reply (compact JSON text) of a running command and mark it done."""

    def prune_commands(self, older_than: datetime) -> int:
        """Forget commands created before ``older_than`` (running or done); returns how many."""

    def notice(self) -> str | None:
        """The operator's message shown to parkers, None if there is none."""

    def set_notice(self, text: str | None, now: datetime) -> None:
        """Set the operator's message shown to parkers; None clears it."""

    def outage(self) -> Outage | None:
        """What the `mode` command said about parking meanwhile and the return to service; None if nothing."""

    def set_outage(self, outage: Outage | None, now: datetime) -> None:
        """Keep what the `mode` command said for this outage; None forgets it."""

    def remote_config(self) -> dict[str, Any] | None:
        """The stored remote config; None if there is none or it is not a JSON object (logged as an error)."""

    def report_config(self, reported: dict[str, Any], now: datetime) -> None:
        """Queue the retained ``cfg/reported`` only (a rejected desired config leaves the applied one)."""

    def save_remote_config(self, desired: dict[str, Any], reported: dict[str, Any], now: datetime) -> None:
        """Store the applied remote config and queue the retained ``cfg/reported``, together."""

    def record_terminal_report(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/terminal`` event, e.g. the end-of-day totals."""

    def record_service(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/service`` event: the service menu opened or closed, or an action taken in it."""

    def record_update(self, data: dict[str, Any], now: datetime) -> None:
        """Queue an ``event/update`` event: a step of a remote update (docs/updates.md)."""

    def rows(self, table: str, **equals: Any) -> list[dict[str, Any]]:
        """The rows of ``table`` whose columns equal ``equals``, as dictionaries (scenario expectations, tools)."""

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL). Safe to call twice."""


class Store(PaymentLedger, HelpLedger, FaultLedger, OutboxLedger, StationLedger, Protocol):
    """The station's durable memory (kiosk.storage.store.Store implements it on SQLite).

    An adapter MUST implement every method above. Each write is one transaction with the
    outbox rows that tell staff of it (durable before visible), and every method raises
    StorageError when the database cannot be used: the application keeps what it must in
    memory, raises the storage fault and tries again (kiosk.app.healing). Expected refusals
    (an unknown payment, a step a ticket cannot take) are ValueError subclasses.
    """


class Uplink(Protocol):
    """The staff side as the loop drives it (kiosk.mqtt.uplink.Uplink): optional, a station may run without it.

    MUST: handle the link and report events routed to it, keep its own timers (deadline and
    on_due), publish what the outbox gained (pump), hear every fault change, carry help calls
    the database cannot keep, write what it kept in memory once the database works, and stop.
    """

    def attach(self, station: Any, now: datetime) -> None:
        """Start serving the loop ``station`` and schedule the timers."""

    def handle(self, event: Event, now: datetime) -> None:
        """An event of LINK_EVENTS from the loop's queue."""

    def deadline(self) -> datetime | None:
        """When on_due is next wanted."""

    def on_due(self, now: datetime) -> None:
        """Run the timers that are due."""

    def pump(self, now: datetime) -> None:
        """Publish what the outbox gained (cheap when nothing changed)."""

    def fault_changed(self, fault: FaultRecord, active: bool, stored: bool, now: datetime) -> None:
        """A fault was raised or cleared (``stored``: the database has it and its outbox row)."""

    def open_help_directly(self, context: dict[str, Any], now: datetime) -> str | None:
        """A help call the database could not open, published at once; its id, or None if nobody can be reached."""

    def holds_directly(self, ticket_id: str) -> bool:
        """The call ``ticket_id`` was opened by open_help_directly."""

    def help_step_directly(self, ticket_id: str, action: str, now: datetime, **details: str) -> None:
        """One step of a call opened by open_help_directly; ValueError for any other ticket."""

    def help_stored(self) -> None:
        """A ticket was stored again."""

    def persist_unstored(self, store: Store, now: datetime) -> None:
        """Write what was kept in memory while the database failed (StorageError if it still fails)."""

    def storage_healed(self, now: datetime) -> None:
        """The database works again: send the outbox and the retained view again."""

    def stop(self, now: datetime) -> None:
        """Say offline and disconnect."""

    def examine(self) -> Finding:
        """The doctor's finding on the broker: connected, refused publishes (the ACL), events waiting."""

    def status_changed(self, now: datetime) -> None:
        """What the birth says changed: published again while connected."""

    def link_summary(self) -> str:
        """The link in a few words (``connected to host:port with TLS``, ``down (host:port)``), for the service menu."""
