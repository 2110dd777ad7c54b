"""Typed, immutable events that flow into the main loop, and the effects the state machines ask for."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kiosk.config import Settings
from kiosk.domain.doctor import Finding, Report
from kiosk.domain.outage import Outage
from kiosk.domain.payment import DeclineReason, PaymentPrompt
from kiosk.domain.records import FaultRecord, PaymentResultData, PaymentState, SessionRecord
from kiosk.domain.voice import Call, CallPhase

# ---- events: facts that happened (from the parker, devices, the store, the clock) ----


@dataclass(frozen=True)
class Tap:
    """The parker released a touch inside the target with this id."""

    target: str


@dataclass(frozen=True)
class Tick:
    """A deadline the state machine asked for has been reached."""


@dataclass(frozen=True)
class HelpPressed:
    """The physical help button (or its stand-in) was pressed."""


@dataclass(frozen=True)
class HelpReleased:
    """The physical help button was released."""


@dataclass(frozen=True)
class HelpButtonStuck:
    """The help button has been held down for longer than gpio.button_stuck_s (stuck or jammed)."""

    held_s: int


@dataclass(frozen=True)
class HelpButtonFreed:
    """The stuck help button was released again."""


@dataclass(frozen=True)
class DoorChanged:
    """The cabinet door switch changed (also posted once at start with the door's current position)."""

    open: bool


@dataclass(frozen=True)
class AgentSays:
    """An agent's word on help/to-parker: ``kind`` is accept, message or resolve (already validated)."""

    ticket: str
    kind: str
    agent: str
    text: str = ""
    outcome: str = ""


@dataclass(frozen=True)
class CourtesyGranted:
    """Staff granted free parking while a help ticket is open; the parker is told on screen."""

    ticket: str
    plate: str
    expires: datetime


@dataclass(frozen=True)
class JourneyCancelled:
    """An agent ended the parker's journey: back to Welcome (never during a payment); ``ticket`` if for a call."""

    reason: str
    ticket: str | None = None


@dataclass(frozen=True)
class SessionLookedUp:
    """Answer to LookupSession: the plate's active session in this zone, if any."""

    plate: str
    session: SessionRecord | None


@dataclass(frozen=True)
class PaymentPending:
    """The pending payment row is durable and the terminal has been asked to charge."""

    payment_id: str


@dataclass(frozen=True)
class PaymentNotStarted:
    """The payment could not even be recorded as pending, so the terminal was never asked."""

    reason: str


@dataclass(frozen=True)
class PaymentStatus:
    """What the payment method asks of the parker now: ``prompt`` in the station's words, ``text`` in its own."""

    payment_id: str
    text: str
    prompt: PaymentPrompt = PaymentPrompt.FOLLOW_TERMINAL


@dataclass(frozen=True)
class PaymentAuthorized:
    """The terminal approved the card and waits for the station's vending answer."""

    payment_id: str
    result: PaymentResultData


@dataclass(frozen=True)
class PaymentDeclined:
    """The payment method ended the payment without charging: ``reason`` says why in the station's words.

    ``result_code`` is the method's own code for it, opaque detail for staff and storage (the
    payment row's result_code); ``text`` is what the method said, shown word for word.
    """

    payment_id: str
    reason: DeclineReason
    result_code: int
    text: str = ""


@dataclass(frozen=True)
class PaymentConfirmed:
    """The terminal acknowledged the station's positive vending answer: it books the payment."""

    payment_id: str


@dataclass(frozen=True)
class PaymentReconciled:
    """A payment approved before a restart was settled with the terminal.

    ``outcome``: ``booked`` (the terminal asked again and the station confirmed it),
    ``reversed`` (the money went back) or ``unknown`` (the terminal would not say).
    """

    payment_id: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class MethodHealth:
    """A payment method's health changed: ``code`` None means ready, else a fault code of the method's component.

    ``method`` is the method's name (its fault component); None stands for the station's first method.
    """

    code: str | None
    detail: str = ""
    method: str | None = None


@dataclass(frozen=True)
class MethodReport:
    """A payment method's answer to a staff request (``kind`` status or end_of_day), as plain data."""

    request_id: str
    kind: str
    ok: bool
    data: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class SessionCommitted:
    """The paid session and its payment are durable (answer to CommitSession)."""

    payment_id: str
    session: SessionRecord


@dataclass(frozen=True)
class CommitFailed:
    """The paid session could not be stored; the payment must be refused."""

    payment_id: str
    reason: str


@dataclass(frozen=True)
class FaultsChanged:
    """The set of active faults changed."""

    faults: tuple[FaultRecord, ...]


@dataclass(frozen=True)
class HelpTicketOpened:
    """Answer to OpenHelpTicket: the ticket is durable."""

    ticket_id: str


@dataclass(frozen=True)
class HelpTicketFailed:
    """Answer to OpenHelpTicket when the ticket could not be stored: nobody can be reached this way."""

    reason: str


@dataclass(frozen=True)
class CallProgress:
    """The intercom's word on the voice call it placed or answered for help ticket ``ticket``.

    ``call_id`` is the SIP Call-ID, ``uri`` the far end, ``reason`` the SIP reason of a call that
    closed ("486 Busy Here"), as the user agent gave them; ENDED or FAILED both mean "closed".
    """

    ticket: str
    phase: CallPhase
    call_id: str = ""
    uri: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CallOffered:
    """Someone calls the station: ``caller`` is the From URI, ``call_id`` the SIP Call-ID."""

    call_id: str
    caller: str


@dataclass(frozen=True)
class IntercomHealth:
    """The voice path's health: ``fault`` is a code of the ``help`` component's faults, None when it works."""

    fault: str | None
    detail: str = ""


@dataclass(frozen=True)
class DoctorAsked:
    """Someone wants the doctor's report (a technician's `kiosk doctor`); ``answer`` gets it on the loop thread."""

    answer: Callable[[Report, datetime], None] = field(compare=False)


@dataclass(frozen=True)
class ControlAsked:
    """A command of a simulated station's local control (`kiosk sim`): ``run`` it on the loop thread, given the time."""

    run: Callable[[datetime], None] = field(compare=False)


@dataclass(frozen=True)
class DoctorExamined:
    """The doctor's worker examined the computer and the database for examination ``token``."""

    token: int
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class UpdateProgress:
    """The updater's worker finished a step of update ``job`` (``status``: an UpdateStatus value).

    ``prepared`` says release ``version`` is installed side by side and may be switched to.
    """

    job: str
    status: str
    reason: str = ""
    version: str | None = None
    prepared: bool = False


@dataclass(frozen=True)
class SettingsChanged:
    """New validated settings; they take effect for the next parker."""

    settings: Settings


@dataclass(frozen=True)
class NoticeChanged:
    """Staff set (or, with an empty text, cleared) a message shown to parkers."""

    text: str


@dataclass(frozen=True)
class OutageChanged:
    """Staff said (with the `mode` command) whether parking is free meanwhile and when the station is back; None: nothing."""

    outage: Outage | None


class LinkState(StrEnum):
    """Where the MQTT link to the operator's broker is (``link.state`` in telemetry)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass(frozen=True)
class LinkUp:
    """The MQTT link is connected with this ``boot`` number and its subscriptions are granted."""

    boot: int


@dataclass(frozen=True)
class LinkDown:
    """The MQTT link lost (or could not make) its connection; ``used`` when the broker had accepted it (CONNACK),
    so that its boot number is used up (the contract counts boots per connection, not per attempt)."""

    reason: str
    used: bool = True


@dataclass(frozen=True)
class LinkAcked:
    """The broker acknowledged publishes; the link's take_acks() lists them (posted once per batch)."""


@dataclass(frozen=True)
class MessageIn:
    """An MQTT message for this station: ``topic`` without the station prefix, payload as received."""

    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation: bytes | None = None
    retained: bool = False


Event = (
    Tap | Tick | HelpPressed | HelpReleased | SessionLookedUp | PaymentPending | PaymentNotStarted | PaymentStatus
    | PaymentAuthorized | PaymentDeclined | SessionCommitted | CommitFailed | FaultsChanged
    | HelpTicketOpened | SettingsChanged | PaymentConfirmed | PaymentReconciled | MethodHealth
    | MethodReport | NoticeChanged | OutageChanged | LinkUp | LinkDown | LinkAcked | MessageIn | HelpButtonStuck
    | HelpButtonFreed
    | DoorChanged | AgentSays | CourtesyGranted | JourneyCancelled | HelpTicketFailed | CallProgress | CallOffered
    | IntercomHealth | DoctorAsked | DoctorExamined | UpdateProgress | ControlAsked
)

# ---- effects: what a state machine asks the loop to do ----


@dataclass(frozen=True)
class LookupSession:
    """Find the plate's active session in the zone, however it was spelled; answer with SessionLookedUp."""

    plate: str
    zone: str
    look_alikes: bool = True  # O/0 and I/1 count as one character (config plate.look_alikes)


@dataclass(frozen=True)
class BeginPayment:
    """Store a pending payment, then ask the terminal to charge; answer with PaymentPending."""

    plate: str
    zone: str
    amount: int
    currency: str
    minutes: int
    starts: datetime
    expires: datetime
    extends_id: str | None


@dataclass(frozen=True)
class CancelPayment:
    """Ask the terminal to abort the payment in progress."""


@dataclass(frozen=True)
class CommitSession:
    """Store the approved payment and its session in one transaction; answer SessionCommitted or CommitFailed."""

    payment_id: str
    result: PaymentResultData


@dataclass(frozen=True)
class ConfirmPayment:
    """The vending answer to the terminal: accept books the payment, refuse reverses it."""

    payment_id: str
    accept: bool


@dataclass(frozen=True)
class FailPayment:
    """Record that a payment ended without a session (declined or reversed)."""

    payment_id: str
    state: PaymentState
    result_code: int


@dataclass(frozen=True)
class SaveFeedback:
    """Store the parker's rating, with the session and the help ticket of the journey it rates."""

    rating: int
    session_id: str | None
    ticket_id: str | None


@dataclass(frozen=True)
class OpenHelpTicket:
    """Open a durable help ticket with the context an agent needs; answer HelpTicketOpened."""

    context: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class RecordHelp:
    """Commit one step of a help ticket with its outbox rows (see Store.record_help for the actions)."""

    ticket_id: str
    action: str
    agent: str = ""
    text: str = ""
    outcome: str = ""
    choice: str = ""
    presses: int = 0
    call: Call | None = None  # action "call": the call as it is now


@dataclass(frozen=True)
class PlaceCall:
    """Call the agents for help ticket ``ticket_id`` (voice.destination); the intercom answers with CallProgress."""

    ticket_id: str


@dataclass(frozen=True)
class EndCall:
    """Hang up the voice call of help ticket ``ticket_id``, whatever phase it is in."""

    ticket_id: str


@dataclass(frozen=True)
class AnswerCall:
    """Answer the incoming call ``call_id``: an agent calling back for help ticket ``ticket_id``."""

    ticket_id: str
    call_id: str


@dataclass(frozen=True)
class RefuseCall:
    """Refuse the incoming call ``call_id``; ``reason`` is logged."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class Ignored:
    """The event meant nothing in this state; the loop logs why."""

    event: object
    reason: str


Effect = (
    LookupSession | BeginPayment | CancelPayment | CommitSession | ConfirmPayment | FailPayment
    | SaveFeedback | OpenHelpTicket | RecordHelp | PlaceCall | EndCall | AnswerCall | RefuseCall | Ignored
)


UPLINK_EVENTS = (LinkUp, LinkDown, LinkAcked, MessageIn, MethodReport)
"""Events the loop routes to the uplink: the MQTT link's, and payment method reports that answer staff requests."""
