"""The station's card terminal over ZVT: one worker thread runs payments, health polls and start-up reconciliation.

Over 600 lines on purpose: ZvtTerminal is the one owner of the port and of the terminal's
state (health, the payment_timeout notice, owed payments), and its worker's steps read and
change that state together; the protocol itself lives in ecr.py, link.py and messages.py.
"""
from __future__ import annotations

import logging
import os
import queue
import select
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from drivers.payment.zvt import messages as msg
from drivers.payment.zvt.clock import REAL_CLOCK, Clock
from drivers.payment.zvt.codec import Apdu, DecodeError
from drivers.payment.zvt.ecr import (
    BUSY_RETRY_S,
    DECISION_WAIT_S,
    RESULT_ABORTED,
    RESULT_COMMUNICATION,
    AnswerUnacknowledged,
    CommandRefused,
    EcrSession,
    EndOfDay,
    PaymentOutcome,
    TerminalUnreachable,
)
from drivers.payment.zvt.faults import COMPONENT, FAULT_KINDS
from drivers.payment.zvt.link import Link, Port
from drivers.payment.zvt.outcomes import declined, status
from kiosk.domain.events import MethodHealth, MethodReport, PaymentAuthorized, PaymentConfirmed, PaymentReconciled
from kiosk.domain.payment import Capability
from kiosk.domain.records import PaymentResultData
from kiosk.ports import Post

log = logging.getLogger(__name__)
T = TypeVar("T")

RECONNECT_S = 5.0
DOWN_POLL_S = 10.0
TIMEOUT_NOTICE_S = 15 * 60.0  # a payment_timeout notice without a payment since ends at the first ready status after this
PAYMENT_WAIT_S = 60.0  # how long a parker's payment may wait for the terminal's recovery before it is declined
REFUSED_BY_BUSY_PT = 0x83  # registration refused: the PT is still in a payment of an earlier run
REQUESTS = (Capability.STATUS, Capability.END_OF_DAY)


class SerialPort(Port, Protocol):
    """A Port that select() can wait on (pyserial's Serial on POSIX)."""

    def fileno(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OwedPayment:
    """An approved payment whose session is stored but whose vending answer the PT may not have had."""

    payment_id: str
    receipt_no: str | None
    trace_no: str | None
    amount: int

    def matches(self, info: msg.StatusInformation) -> bool:
        """True if the PT's status information names this payment: receipt, trace and amount all agree."""
        return (info.receipt_no, info.trace_no, info.amount) == (self.receipt_no, self.trace_no, self.amount)

    def reversed_by(self, info: msg.StatusInformation) -> bool:
        """True if the PT's report of a reversal names this payment: its trace number and amount.

        A terminal that gives the reversal a receipt and trace number of its own names the
        original transaction's trace in BMP 37; otherwise the report carries the reversed
        payment's receipt and trace numbers.
        """
        if info.original_trace_no is not None:
            return (info.original_trace_no, info.amount) == (self.trace_no, self.amount)
        return self.matches(info)

    def described(self) -> str:
        """Receipt, trace and amount, for logs and staff."""
        return f"receipt {self.receipt_no}, trace {self.trace_no}, amount {self.amount}"


def _take(waiting: queue.SimpleQueue[T]) -> T | None:
    """The next queued item, or None: the worker never blocks on its queues (a Cancel may take from them too)."""
    try:
        return waiting.get_nowait()
    except queue.Empty:
        return None


class Closing(Exception):
    """The station closes: the worker stops what it waits for."""


@dataclass(frozen=True)
class _Pay:
    payment_id: str
    amount: int
    queued_at: float


def serial_opener(port: str, baud: int) -> Callable[[], SerialPort]:
    """Opens the PT's serial line as ZVT wants it: 8 data bits, no parity, 2 stop bits, no flow control."""
    import serial

    def open_port() -> SerialPort:
        try:
            return serial.Serial(port, baud, bytesize=serial.EIGHTBITS, parity=serial.PARITY_NONE,
                                 stopbits=serial.STOPBITS_TWO, timeout=0.02, exclusive=True)
        except serial.SerialException as exc:
            raise OSError(str(exc)) from exc

    return open_port


def status_data(state: msg.TerminalState) -> dict[str, Any]:
    """A status enquiry's answer as plain data (for staff tools and the technician's CLI)."""
    return {"status": f"{state.status:02X}", "ready": state.status == msg.TERMINAL_READY, "version": state.version}


def end_of_day_data(day: EndOfDay) -> dict[str, Any]:
    """An end of day's result and totals as plain data (no card data: the totals are per card type)."""
    data: dict[str, Any] = {"result_code": f"{day.result_code:02X}", "text": msg.result_text(day.result_code),
                            "lines": list(day.lines)}
    totals = day.info.totals if day.info is not None else None
    if totals is not None:
        data.update(count=totals.count, amount=totals.amount, receipts=[totals.receipt_from, totals.receipt_to],
                    cards=[asdict(card) for card in totals.cards if card.count])
    return data


def result_data(info: msg.StatusInformation) -> PaymentResultData:
    """The receipt data the station keeps from an approving 04 0F (never more than the masked PAN)."""
    return PaymentResultData(result_code=info.result_code, brand=info.card_name, masked_pan=info.masked_pan or None,
                             auth_code=info.auth_code, receipt_no=info.receipt_no, trace_no=info.trace_no)


class ZvtTerminal:
    """kiosk.ports.PaymentMethod for a ZVT PT on a serial port, with every Capability.

    Every public method only queues work and returns at once; the worker thread owns the
    port and posts PaymentStatus, PaymentAuthorized, PaymentConfirmed, PaymentDeclined,
    PaymentReconciled, MethodHealth and MethodReport events. A PaymentDeclined carries
    the ZVT result code as its opaque code (drivers.payment.zvt.outcomes).
    """

    name = COMPONENT
    fault_kinds = FAULT_KINDS
    capabilities = frozenset({Capability.STATUS, Capability.END_OF_DAY, Capability.RECONCILE})

    def __init__(self, open_port: Callable[[], SerialPort], post: Post, *, password: str, currency: str,
                 charset: str = "cp437", payment_timeout_s: float = 180.0, status_interval_s: float = 60.0,
                 vending_window_s: int = 30, line_quiet_s: float = 6.0, owed: tuple[OwedPayment, ...] = (),
                 clock: Clock = REAL_CLOCK) -> None:
        """A driver that opens its port with ``open_port`` and posts to ``post``; every timer runs on ``clock``."""
        self._clock = clock
        self._open_port = open_port
        self._post = post
        self._password = password
        self._currency = msg.currency_code(currency)
        self._charset = charset
        self._t4 = payment_timeout_s
        self._status_interval = status_interval_s
        self._vending_window = vending_window_s
        self._line_quiet = line_quiet_s
        self._owed = {p.payment_id: p for p in owed}
        self._commands: queue.SimpleQueue[_Pay] = queue.SimpleQueue()
        self._requests: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._decisions: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()
        self._abort = threading.Event()
        self._closing = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._port: SerialPort | None = None
        self._session: EcrSession | None = None
        self._health: str | None = "unknown"
        self._timed_out_at: float | None = None  # when the payment_timeout notice went up (the terminal itself is well)
        self._recover = False
        self._next_poll = 0.0
        self._thread = threading.Thread(target=self._run, name="zvt", daemon=True)

    # ---- PaymentMethod ----

    def start(self) -> None:
        """Open the port and start the worker."""
        self._thread.start()

    def start_payment(self, payment_id: str, amount: int, currency: str) -> None:
        """Queue an Authorization for ``amount`` minor units."""
        if msg.currency_code(currency) != self._currency:
            self._post(declined(payment_id, 0x6F))
            return
        self._abort.clear()
        self._commands.put(_Pay(payment_id, amount, self._clock.monotonic()))
        self._wake()

    def cancel_payment(self) -> None:
        """Abort the payment in progress (06 B0) if the PT still waits for the card; one still queued ends at once."""
        self._abort.set()
        while (pay := _take(self._commands)) is not None:
            self._post(declined(pay.payment_id, RESULT_ABORTED))

    def confirm_payment(self, payment_id: str, accept: bool) -> None:
        """The vending answer: book (True) or refuse (False) the authorized payment."""
        self._decisions.put((payment_id, accept))

    def request(self, kind: str, request_id: str) -> None:
        """Queue a staff request (``status`` or ``end_of_day``); answered by a MethodReport event."""
        if kind not in REQUESTS:
            raise ValueError(f"unknown terminal request {kind!r}; valid: {', '.join(REQUESTS)}")
        self._requests.put((kind, request_id))
        self._wake()

    def close(self) -> None:
        """Stop the worker (it finishes the sequence in progress for a few seconds at most) and close the port.

        Closing again does nothing.
        """
        if self._closing.is_set():
            return
        self._closing.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._thread.is_alive():
            log.warning("card terminal worker still busy at close; left to end with the process")
            return
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    @property
    def bytes_in(self) -> int:
        """Raw bytes read from the PT so far."""
        return self._session.link.bytes_in if self._session else 0

    @property
    def bytes_out(self) -> int:
        """Raw bytes written to the PT so far."""
        return self._session.link.bytes_out if self._session else 0

    # ---- worker ----

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # closing

    def _run(self) -> None:
        refusals = 0
        while not self._closing.is_set():
            if self._session is None and not self._connect():
                self._idle(RECONNECT_S)
                continue
            try:
                self._work()
                refusals = 0
            except AnswerUnacknowledged as exc:
                # The PT talks but one of our answers got no ACK: recover the line, no fault (docs/zvt.md).
                log.warning("%s: the line is recovered", exc)
                self._recover = True
            except TerminalUnreachable as exc:
                self._set_health("unreachable", str(exc))
                self._recover = True
                self._idle(min(DOWN_POLL_S, self._status_interval))
            except DecodeError as exc:
                log.warning("the terminal sent what the station cannot read (%s): the line is recovered", exc)
                self._recover = True
                self._idle(BUSY_RETRY_S)
            except CommandRefused as exc:
                # E.g. registration refused while the PT still waits for a vending answer from
                # before a restart: answer what it sends, then try again.
                refusals += 1
                log.warning("%s (%d in a row)", exc, refusals)
                if refusals >= 3:
                    self._set_health("not_ready", str(exc))
                self._recover = True
                self._idle(min(2.0 * refusals, DOWN_POLL_S))
            except OSError as exc:
                log.error("card terminal port failed: %s", exc)
                self._set_health("unreachable", f"serial port error: {exc}")
                self._disconnect()
            except Closing:
                break
        self._disconnect()

    def _connect(self) -> bool:
        try:
            self._port = self._open_port()
        except OSError as exc:
            self._set_health("unreachable", f"cannot open the serial port: {exc}")
            return False
        link = Link(self._port, clock=self._clock)
        self._session = EcrSession(link, self._password, currency=self._currency, charset=self._charset,
                                   t4=self._t4, vending_window_s=self._vending_window,
                                   unsolicited=self.answer_unsolicited, unsolicited_sent=self.unsolicited_answered,
                                   clock=self._clock)
        self._recover = True
        return True

    def _disconnect(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except OSError:
                pass
        self._port = None
        self._session = None

    def _idle(self, seconds: float) -> None:
        """Wait while the PT cannot take commands, answering what it sends.

        A parker's payment asked for meanwhile waits for the recovery while the terminal has no
        fault and for PAYMENT_WAIT_S at most; otherwise it is declined at once.
        """
        def over(block: float) -> bool:
            """One select() of the wait; True when it ends early (the station closes, or the line failed)."""
            if self._closing.is_set():
                return True
            watched = [self._wake_r] + ([self._port.fileno()] if self._port is not None else [])
            ready, _, _ = select.select(watched, [], [], block)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            self._decline_waiting_payments()
            while (request := _take(self._requests)) is not None:
                kind, request_id = request
                self._post(MethodReport(request_id, kind, False, {"error": "the card terminal is not ready"}))
            if self._session is not None and self._port is not None and self._port.fileno() in ready:
                try:
                    self._session.serve_unsolicited(0.5)
                except (TerminalUnreachable, OSError) as exc:
                    log.warning("while waiting for the terminal: %s", exc)
                    return True
            return self._closing.is_set()

        if seconds > 0:
            self._clock.wait(over, seconds)

    def _decline_waiting_payments(self) -> None:
        """While the line is recovered: decline queued payments that cannot be served.

        A payment waits while the terminal has no fault, for PAYMENT_WAIT_S at most.
        """
        waiting: list[_Pay] = []
        while (pay := _take(self._commands)) is not None:
            waiting.append(pay)
        now = self._clock.monotonic()
        for pay in waiting:
            if self._abort.is_set():  # the parker's Cancel found the queue empty while the payment was here
                self._post(declined(pay.payment_id, RESULT_ABORTED))
            elif self._health not in (None, "unknown") or now - pay.queued_at >= PAYMENT_WAIT_S:
                self._post(declined(pay.payment_id, RESULT_COMMUNICATION, "The card terminal is not ready"))
                self._payment_timed_out(f"payment {pay.payment_id} waited {now - pay.queued_at:.0f} s for the line")
            else:
                self._commands.put(pay)

    def _while_recovering(self) -> None:
        """Between the reads of a resync: serve the queued payments' deadlines; stop when the station closes."""
        if self._closing.is_set():
            raise Closing
        self._decline_waiting_payments()

    def _work(self) -> None:
        session = self._session
        assert session is not None and self._port is not None
        if self._recover:
            self._recover_line(session)
        if (pay := _take(self._commands)) is not None:
            self._pay(session, pay)
            return
        if (request := _take(self._requests)) is not None:
            self._serve_request(session, *request)
            return
        now = self._clock.monotonic()
        if now >= self._next_poll:
            self._check(session)
            return
        if session.link.answer_pending():
            session.serve_unsolicited(0)
            return
        watched = [self._wake_r, self._port.fileno()]
        ready: list[int] = []

        def woken(block: float) -> bool:
            ready[:] = select.select(watched, [], [], block)[0]
            return bool(ready)

        self._clock.wait(woken, self._next_poll - now)
        if self._wake_r in ready:
            os.read(self._wake_r, 4096)
        if self._port.fileno() in ready:
            session.serve_unsolicited(0.5)

    def _serve_request(self, session: EcrSession, kind: str, request_id: str) -> None:
        try:
            data = status_data(session.status()) if kind == "status" else end_of_day_data(session.end_of_day())
        except (TerminalUnreachable, CommandRefused, OSError) as exc:
            self._post(MethodReport(request_id, kind, False, {"error": str(exc)}))
            raise
        log.info("terminal %s for staff: %s", kind, data.get("text") or data.get("status"))
        self._post(MethodReport(request_id, kind, True, data))

    def _recover_line(self, session: EcrSession) -> None:
        """Bring the line to a known state, register, settle owed payments, then check the PT (docs/zvt.md).

        A PT that refuses the registration with 84 83 00 may still be master of a payment that
        the last run started and no vending question will end (it waits for a card): it is
        aborted, and the line brought to a known state again, once.
        """
        limit = self._t4 + self._vending_window
        for attempt in (1, 2):
            session.resync(self._line_quiet, limit, tick=self._while_recovering)
            try:
                registered = session.register()
                break
            except CommandRefused as exc:
                if exc.code != REFUSED_BY_BUSY_PT or attempt == 2:
                    raise
                log.warning("%s: the terminal may still be in a payment of the last run; aborting it", exc)
                try:
                    session.abort()
                except CommandRefused as refused:
                    log.warning("abort refused too: %s", refused)
        log.info("registered at the card terminal: status %s, terminal id %s", registered.status,
                 registered.terminal_id)
        self.settle_owed(session)
        self._recover = False
        self._check(session)

    def _check(self, session: EcrSession) -> None:
        state = session.status()
        if state.status == msg.TERMINAL_READY:
            self._set_health(None, "")
            held = self._timed_out_at
            if held is not None and self._clock.monotonic() - held >= TIMEOUT_NOTICE_S:
                self._end_timeout_notice(f"card terminal ready for {TIMEOUT_NOTICE_S / 60:.0f} min without a payment")
        elif state.status == msg.TERMINAL_OUT_OF_ORDER:
            self._set_health("out_of_order", f"terminal status {state.status:02X} (version {state.version})")
        else:
            self._set_health("not_ready", f"terminal status {state.status:02X} (version {state.version})")

    def _set_health(self, code: str | None, detail: str) -> None:
        interval = self._status_interval if code is None else min(DOWN_POLL_S, self._status_interval)
        self._next_poll = self._clock.monotonic() + interval
        if code == self._health:
            return
        self._health = code
        self._timed_out_at = None  # a fault (or its end) takes the notice's place on the fault board
        if code is None:
            log.info("card terminal ready")
        else:
            log.error("card terminal %s: %s", code, detail)
        self._post(MethodHealth(code, detail, self.name))

    def _pay(self, session: EcrSession, pay: _Pay) -> None:
        if self._abort.is_set():
            self._post(declined(pay.payment_id, RESULT_ABORTED))
            return
        while True:  # decisions left from an earlier payment mean nothing now
            try:
                self._decisions.get_nowait()
            except queue.Empty:
                break
        authorized = False
        decision: bool | None = None

        last_code: list[int] = []

        def on_status(intermediate: msg.Intermediate) -> None:
            last_code[:] = [intermediate.code]
            self._post(status(pay.payment_id, intermediate))

        def decide(info: msg.StatusInformation) -> bool | None:
            nonlocal authorized, decision
            if not authorized:
                authorized = True
                self._post(PaymentAuthorized(pay.payment_id, result_data(info)))
            decision = self._decision(pay.payment_id)
            return decision

        def on_booked(info: msg.StatusInformation) -> None:
            self._post(PaymentConfirmed(pay.payment_id))
            if self._timed_out_at is not None and self._health is None:  # payments go through again
                self._end_timeout_notice("card terminal finished a payment again")

        outcome = session.pay(pay.amount, on_status=on_status, decide=decide, on_booked=on_booked,
                              abort_requested=self._abort.is_set)
        self._finish(session, pay, outcome, refused_by_station=decision is False,
                     waited_for_card=last_code == [msg.STATUS_INSERT_CARD])

    def _decision(self, payment_id: str) -> bool | None:
        answers: list[bool] = []

        def decided(block: float) -> bool:
            try:
                decided_id, accept = self._decisions.get(timeout=block)
            except queue.Empty:
                return False
            if decided_id == payment_id:
                answers.append(accept)
            return bool(answers)

        if self._clock.wait(decided, DECISION_WAIT_S):
            return answers[0]
        log.info("vending answer for %s not ready yet: the terminal is asked to wait", payment_id)
        return None

    def _finish(self, session: EcrSession, pay: _Pay, outcome: PaymentOutcome, refused_by_station: bool,
                waited_for_card: bool = False) -> None:
        """Settle what the Authorization left: a decline, an owed payment, the terminal's health.

        A payment that timed out while the terminal still asked for the card is a parker who
        walked away, not a slow terminal: it raises no notice (``waited_for_card``).
        """
        log.info("payment %s ended at the terminal: %s (%02X) %s", pay.payment_id, outcome.ending,
                 outcome.result_code, outcome.text)
        if outcome.approval is None:
            if outcome.ending in ("declined", "failed"):
                self._post(declined(pay.payment_id, outcome.result_code, outcome.text))
        elif outcome.ending != "booked" and not refused_by_station:
            # Approved, the station may have committed the session, and the PT did not book it
            # (or we cannot tell): settle it once the PT's vending window is over.
            log.warning("payment %s: the terminal may not have our vending answer; reconciling", pay.payment_id)
            self._owe(OwedPayment(pay.payment_id, outcome.approval.receipt_no, outcome.approval.trace_no, pay.amount))
        if outcome.result_code in msg.UNWELL_RESULTS:
            self._set_health("error", msg.result_text(outcome.result_code))
        elif outcome.timed_out and outcome.approval is None and not waited_for_card:
            self._payment_timed_out(outcome.text)
        if outcome.abort_unanswered:
            # Some terminals stay silent after an abort: abort again, then register (docs/zvt.md 4).
            try:
                session.abort()
            except (CommandRefused, TerminalUnreachable) as exc:
                log.warning("second abort after a silent terminal: %s", exc)
            self._recover = True
        if outcome.ending == "failed":
            self._recover = True

    def _payment_timed_out(self, detail: str) -> None:
        """A payment ended because the terminal did not finish it in time: the next parkers are told.

        The ``payment_timeout`` notice (card payment may be slow or fail) stays until a payment
        is booked again, the terminal has been ready for TIMEOUT_NOTICE_S without one, or a
        fault of the terminal takes its place.
        """
        if self._health not in (None, "unknown") or self._timed_out_at is not None:
            return
        self._timed_out_at = self._clock.monotonic()
        log.warning("card terminal payment_timeout: %s", detail)
        self._post(MethodHealth("payment_timeout", detail, self.name))

    def _end_timeout_notice(self, why: str) -> None:
        self._timed_out_at = None
        log.info("%s: payment_timeout notice cleared", why)
        self._post(MethodHealth(None, "", self.name))

    def _owe(self, owed: OwedPayment) -> None:
        """Settle ``owed`` at the next recovery of the line, before any other payment."""
        self._owed[owed.payment_id] = owed
        self._recover = True

    # ---- payments owed from before a restart ----

    def _matching_owed(self, apdu: Apdu) -> OwedPayment | None:
        try:
            info = msg.parse_status_information(apdu.data, self._charset)
        except DecodeError:
            return None
        if info.result_code != 0:
            return None
        return next((p for p in self._owed.values() if p.matches(info)), None)

    def answer_unsolicited(self, apdu: Apdu) -> bytes:
        """The answer to a PT message outside a sequence (EcrSession's ``unsolicited``): from committed state only.

        Book an owed payment the PT asks about again (receipt, trace and amount match), refuse
        every other vending question (84 66 00: no session for it), acknowledge the rest.
        """
        if apdu.command != (0x04, 0x0F):
            return msg.ACK_APDU
        owed = self._matching_owed(apdu)
        if owed is None:
            log.warning("the terminal asks about a payment the station has no session for: refused")
            return msg.refusal(0x66)
        log.info("the terminal asks again about payment %s, whose session is stored: booked", owed.payment_id)
        return msg.ACK_APDU

    def unsolicited_answered(self, apdu: Apdu, answer: bytes) -> None:
        """The PT acknowledged our answer (EcrSession's ``unsolicited_sent``): a "book it" to an owed payment counts."""
        owed = self._matching_owed(apdu) if apdu.command == (0x04, 0x0F) and answer == msg.ACK_APDU else None
        if owed is not None:
            del self._owed[owed.payment_id]
            self._post(PaymentReconciled(owed.payment_id, "booked", "booked when the terminal asked again"))

    def settle_owed(self, session: EcrSession) -> None:
        """Settle every payment still owed (the worker's, on a synchronised line, before any new payment).

        The PT is no longer asking about them (the line was quiet), so each was booked or
        reversed there: a reversal by receipt number makes the outcome certain. It counts only
        if the PT's report of what it reversed names the same trace number and amount; anything
        else is left to staff as unreconciled, never guessed.
        """
        for owed in list(self._owed.values()):
            if owed.payment_id not in self._owed:
                continue  # the PT asked about it again during an earlier reversal and it was booked
            if owed.receipt_no is None or not owed.receipt_no.isdigit():
                self._settled(owed, "unknown", "no receipt number to reverse it by")
                continue
            outcome = session.reverse(int(owed.receipt_no))
            if outcome.result_code == 0xB4:
                self._settled(owed, "reversed", "the terminal had already reversed it")
            elif not outcome.reversed:
                self._settled(owed, "unknown", f"reversal of receipt {owed.receipt_no} refused: {outcome.text}")
            elif outcome.info is None or not owed.reversed_by(outcome.info):
                info = outcome.info
                reported = "nothing" if info is None else (
                    f"receipt {info.receipt_no}, trace {info.original_trace_no or info.trace_no}, amount {info.amount}")
                log.error("terminal reversed %s; the station's payment %s is %s", reported, owed.payment_id,
                          owed.described())
                self._settled(owed, "unknown", f"the terminal reported reversing {reported}, not {owed.described()}")
            else:
                self._settled(owed, "reversed", "reversed by the station: the terminal never had its vending answer")

    def _settled(self, owed: OwedPayment, outcome: str, detail: str) -> None:
        del self._owed[owed.payment_id]
        self._post(PaymentReconciled(owed.payment_id, outcome, detail))
