"""ZVT command sequences of the ECR (the station): registration, payment with vending, abort, reversal, status, EOD."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from drivers.payment.zvt import messages as msg
from drivers.payment.zvt.clock import REAL_CLOCK, Clock
from drivers.payment.zvt.codec import Apdu, DecodeError
from drivers.payment.zvt.link import AnswerNotAcknowledged, Link, TransmissionError, is_answer

log = logging.getLogger(__name__)

T3_S = 5.0
T4_S = 180.0
BUSY_RETRY_S = 1.0
RESULT_ABORTED = 0x6C
RESULT_COMMUNICATION = 0x7D
RESULT_NOT_VENDED = 0x66
RESULT_PROTOCOL = 0x9A
DECISION_WAIT_S = 1.0
INTERMEDIATE_DECLINED = 0x1D  # the PT's own words for a decline come in this 04 FF
RESYNC_SLICE_S = 0.05
UNANSWERED_OUTSIDE_A_SEQUENCE = ((0x04, 0xFF), (0x06, 0xD1))  # intermediate status, print line


class TerminalUnreachable(Exception):
    """The PT did not answer a command (no ACK after the link's retries, or no 80/84 within T3)."""


class AnswerUnacknowledged(TerminalUnreachable):
    """Our answer to a PT message got no ACK (sent once, never repeated): the PT's next message tells whether it has it."""


class CommandRefused(Exception):
    """The PT answered a command with 84 xx; ``code`` is xx."""

    def __init__(self, command: str, code: int) -> None:
        super().__init__(f"{command} refused by the terminal: {msg.result_text(code)} (84 {code:02X})")
        self.code = code


@dataclass(frozen=True)
class PaymentOutcome:
    """How an Authorization ended.

    ``ending``: ``booked`` (the PT acknowledged the station's positive vending answer),
    ``refused`` (the station answered no, so the PT reverses), ``declined`` (card, bank or
    terminal said no, or the parker aborted; ``result_code`` says which) or ``failed``
    (a link or timer failure, a refused command or a frame the station cannot read; with an
    ``approval`` the PT may have booked it, so the station owes it a settlement).
    """

    ending: str
    result_code: int
    text: str
    approval: msg.StatusInformation | None = None
    abort_unanswered: bool = False
    timed_out: bool = False  # failed because the PT did not finish in time (T4, or the link gave up)


@dataclass(frozen=True)
class ReversalOutcome:
    """``reversed`` True if the PT reversed the receipt now; ``result_code`` B4 means it already was."""

    reversed: bool
    result_code: int
    text: str
    info: msg.StatusInformation | None = None


@dataclass(frozen=True)
class EndOfDay:
    """The settlement the PT reported."""

    result_code: int
    info: msg.StatusInformation | None
    lines: tuple[str, ...]


Unsolicited = Callable[[Apdu], bytes]
Answered = Callable[[Apdu, bytes], None]


def _no_one_waits(apdu: Apdu) -> bytes:
    """Answer for PT messages outside a sequence when nobody else decides: refuse a payment, ack the rest."""
    if apdu.command == (0x04, 0x0F):
        return msg.refusal(RESULT_NOT_VENDED)
    return msg.ACK_APDU


class EcrSession:
    """Synchronous ZVT sequences over one Link; used by one thread at a time.

    ``unsolicited`` answers PT messages that belong to no running sequence, e.g. a 04 0F the
    PT repeats for a payment the station committed before it restarted (see docs/zvt.md).
    """

    def __init__(self, link: Link, password: str, *, currency: int = msg.EUR, charset: str = "cp437",
                 t3: float = T3_S, t4: float = T4_S, vending_window_s: int = 30,
                 unsolicited: Unsolicited = _no_one_waits, unsolicited_sent: Answered = lambda apdu, answer: None,
                 clock: Clock = REAL_CLOCK) -> None:
        self.link = link
        self.password = password
        self.currency = currency
        self.charset = charset
        self.t3 = t3
        self.t4 = t4
        self.vending_window_s = vending_window_s
        self.unsolicited = unsolicited
        self.unsolicited_sent = unsolicited_sent
        self.clock = clock

    # ---- plumbing ----

    def _send(self, apdu: bytes) -> None:
        try:
            self.link.send(apdu)
        except AnswerNotAcknowledged as exc:
            raise AnswerUnacknowledged(str(exc)) from exc
        except TransmissionError as exc:
            raise TerminalUnreachable(str(exc)) from exc

    def _receive(self, timeout: float) -> Apdu | None:
        raw = self.link.receive(timeout)
        return None if raw is None else self._decoded(raw)

    def _decoded(self, raw: bytes) -> Apdu | None:
        """The APDU of a received frame; None for one that cannot be read (refused with 84 9A 00 unless an answer)."""
        try:
            return Apdu.decode(raw)
        except DecodeError as exc:
            log.warning("undecodable APDU from the terminal skipped: %s", exc)
            if not is_answer(raw):
                self._send(msg.refusal(RESULT_PROTOCOL))
            return None

    def _command(self, apdu: bytes, name: str) -> None:
        """Send a command and wait for 80 00 00; retry busy (84 9C) answers within T3."""
        self._send_command(apdu, name)
        deadline = self.clock.monotonic() + self.t3  # T3 runs from the PT's ACK: a lost ACK's repeat does not eat it
        while True:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise TerminalUnreachable(f"no answer to {name} within {self.t3:g} s (T3)")
            answer = self._receive(remaining)
            if answer is None:
                continue
            if answer.command == (0x80, 0x00):
                return
            if answer.cls == 0x84 and answer.instr == 0x9C:
                if self.clock.monotonic() + BUSY_RETRY_S > deadline:
                    raise CommandRefused(name, 0x9C)
                log.info("terminal busy, %s again in %g s", name, BUSY_RETRY_S)
                self._wait(BUSY_RETRY_S)
                self._send_command(apdu, name)
                continue
            if answer.cls == 0x84:
                raise CommandRefused(name, answer.instr)
            self._answer_unsolicited(answer)

    def _send_command(self, apdu: bytes, name: str) -> None:
        """Send a command; what arrived before the PT acknowledged it cannot answer it (docs/zvt.md, line state)."""
        self._send(apdu)
        for raw in self.link.take_crossed():
            if is_answer(raw):
                log.warning("stale answer %s discarded: it was on the line before the terminal had our %s",
                            raw[:3].hex(" ").upper(), name)
                continue
            crossed = self._decoded(raw)
            if crossed is not None:
                self._answer_unsolicited(crossed)

    def _wait(self, seconds: float) -> None:
        """Let time pass while still answering anything the PT sends."""
        end = self.clock.monotonic() + seconds
        while (remaining := end - self.clock.monotonic()) > 0:
            answer = self._receive(remaining)
            if answer is not None:
                self._answer_unsolicited(answer)

    def serve_unsolicited(self, timeout: float) -> bool:
        """Answer one PT message outside any sequence, if one arrives within ``timeout``."""
        apdu = self._receive(timeout)
        if apdu is None:
            return False
        self._answer_unsolicited(apdu)
        return True

    def _answer_unsolicited(self, apdu: Apdu) -> None:
        """Answer a PT message outside the running sequence from the station's own state.

        An answer (80/84 ..) is never answered. Neither is an intermediate status or print line:
        it may be a copy the PT repeated to a dead process and gave up on, and a positive answer
        to it would be one answer too many on the line. The PT's vending question, completion
        and abort are answered (docs/zvt.md, section 5).
        """
        if apdu.is_answer:
            log.warning("stale answer %02X %02X from the terminal discarded (never answered)", apdu.cls, apdu.instr)
            return
        if apdu.command in UNANSWERED_OUTSIDE_A_SEQUENCE:
            log.info("%02X %02X from the terminal outside a sequence: acknowledged, not answered", apdu.cls,
                     apdu.instr)
            return
        answer = self.unsolicited(apdu)
        self._send(answer)
        self.unsolicited_sent(apdu, answer)

    def resync(self, quiet_s: float, limit_s: float, tick: Callable[[], None] = lambda: None) -> int:
        """Bring the line to a known state before new commands (docs/zvt.md, "Line state").

        Reads until no byte has arrived for ``quiet_s``: stale answers are discarded, the PT's
        messages answered from the station's own state (a vending question without a committed
        session is refused), so a PT still master of an earlier payment ends it. ``tick`` runs
        between reads (at least every RESYNC_SLICE_S). Returns the number of APDUs handled;
        TerminalUnreachable if the line is not quiet within ``limit_s``.
        """
        started = last_heard = self.clock.monotonic()
        heard = self.link.bytes_in
        handled = 0

        def heard_more(block: float) -> bool:
            nonlocal handled
            tick()
            apdu = self._receive(min(RESYNC_SLICE_S, block))
            if apdu is not None:
                handled += 1
                self._answer_unsolicited(apdu)
            return self.link.bytes_in != heard

        while True:
            now = self.clock.monotonic()
            if self.link.bytes_in != heard:
                heard, last_heard = self.link.bytes_in, now
            if now - last_heard >= quiet_s:
                if handled:
                    log.info("line quiet after %d stale APDUs (%.1f s)", handled, now - started)
                return handled
            if now - started >= limit_s:
                raise TerminalUnreachable(f"the terminal did not fall quiet within {limit_s:g} s")
            self.clock.wait(heard_more, min(last_heard + quiet_s, started + limit_s) - now)

    # ---- sequences ----

    def register(self) -> msg.Registered:
        """Registration 06 00; returns the PT's status, terminal id and currency."""
        return msg.parse_registered(self._completed(msg.registration(self.password, self.currency), "registration"))

    def status(self) -> msg.TerminalState:
        """Status enquiry 05 01; returns the PT's software version and status byte."""
        return msg.parse_terminal_state(self._completed(msg.status_enquiry(self.password), "status enquiry"))

    def _completed(self, command: bytes, name: str) -> bytes:
        """Run a short command and return the data of the PT's 06 0F completion (within T3)."""
        self._command(command, name)
        for apdu in _MasterPhase(self, self.t3):
            if apdu.command == (0x06, 0x0F):
                self._send(msg.ACK_APDU)
                return apdu.data
            self._other(apdu, name)
        raise TerminalUnreachable(f"no completion after {name}")

    def abort(self) -> None:
        """Abort 06 B0 outside a payment (recovery after a swallowed abort); waits T3 for the PT's 06 1E."""
        self._command(msg.abort(), "abort")
        for apdu in _MasterPhase(self, self.t3):
            if apdu.command in ((0x06, 0x1E), (0x06, 0x0F)):
                self._send(msg.ACK_APDU)
                return
            self._other(apdu, "abort")

    def log_off(self) -> None:
        """Log off 06 02."""
        self._command(msg.log_off(), "log off")

    def pay(self, amount: int, *, on_status: Callable[[msg.Intermediate], None],
            decide: Callable[[msg.StatusInformation], bool | None],
            on_booked: Callable[[msg.StatusInformation], None] = lambda info: None,
            abort_requested: Callable[[], bool] = lambda: False) -> PaymentOutcome:
        """Authorization 06 01 with vending semantics (docs/zvt.md); never raises for the PT's behaviour.

        ``decide`` is asked for the vending answer each time the PT sends an approving 04 0F:
        True books (80 00 00), False refuses (84 66 00), None asks the PT to wait (84 9C 00).
        ``on_booked`` runs as soon as the PT acknowledged the positive answer.
        """
        request = msg.authorization(amount, self.currency, msg.PAYMENT_TYPE_PT_DECIDES, self.vending_window_s)
        run = _Payment(amount, on_status, decide, on_booked, abort_requested)
        try:
            self._command(request, "authorization")
        except CommandRefused as exc:
            # Nothing was charged, but the PT may be busy with something else: the line is recovered.
            return PaymentOutcome("failed", exc.code, msg.result_text(exc.code))
        except TerminalUnreachable as exc:
            return PaymentOutcome("failed", RESULT_COMMUNICATION, str(exc))
        try:
            return self._pay_as_slave(run)
        except TerminalUnreachable as exc:
            return run.failed(RESULT_COMMUNICATION, str(exc), timed_out=True)
        except DecodeError as exc:
            log.warning("the terminal sent what the station cannot read during the payment: %s", exc)
            return run.failed(RESULT_PROTOCOL, str(exc))

    def _pay_as_slave(self, run: _Payment) -> PaymentOutcome:
        phase = _MasterPhase(self, self.t4, run.check_abort)
        for apdu in phase:
            if apdu.is_answer:
                refused = self._answer_in_payment(apdu, run)
                if refused is not None:
                    return refused
            elif apdu.command == (0x04, 0xFF):
                phase.restart_t4()
                phase.answer(msg.ACK_APDU)
                status = msg.parse_intermediate(apdu.data, self.charset)
                if status.code == INTERMEDIATE_DECLINED:
                    run.decline_text = status.text
                run.on_status(status)
            elif apdu.command == (0x04, 0x0F):
                phase.restart_t4()
                info = self._status_information(apdu, phase)
                if info is None:
                    continue
                if info.result_code != 0:
                    run.declined_code = info.result_code
                    phase.answer(msg.ACK_APDU)
                    continue
                if info.amount is not None and info.amount != run.amount:
                    log.error("the terminal approved %d, not the %d asked for: not this payment, refused",
                              info.amount, run.amount)
                    phase.answer(msg.refusal(RESULT_NOT_VENDED))
                    return run.failed(RESULT_COMMUNICATION, "the card terminal reported another payment")
                run.approval = info
                self._vend(info, phase, run)
            elif apdu.command == (0x06, 0x0F):
                phase.answer(msg.ACK_APDU)
                if run.approval is not None and run.decision:
                    run.confirm_booked(run.approval)  # the completion proves the PT had our "book it"
                    return PaymentOutcome("booked", 0, "", run.approval)
                log.warning("completion without a booked payment (approved %s, answer %s)",
                            run.approval is not None, run.decision)
                return PaymentOutcome("refused" if run.approval else "declined", RESULT_ABORTED,
                                      msg.result_text(RESULT_ABORTED), run.approval)
            elif apdu.command == (0x06, 0x1E):
                phase.answer(msg.ACK_APDU)
                code = msg.parse_abort(apdu.data)
                if run.approval is not None:
                    return PaymentOutcome("refused", code, msg.result_text(code), run.approval)
                code = run.declined_code if run.declined_code is not None else code
                return PaymentOutcome("declined", code, run.decline_text or msg.result_text(code))
            else:
                self._other(apdu, "authorization")
        if phase.silent_after_abort:
            log.warning("terminal silent after the abort: payment ended here, link to be re-registered")
            return PaymentOutcome("declined", RESULT_ABORTED, msg.result_text(RESULT_ABORTED), abort_unanswered=True)
        text = f"The card terminal did not finish the payment within {phase.limit:g} s"
        return run.failed(RESULT_ABORTED, text, timed_out=True)

    @staticmethod
    def _answer_in_payment(apdu: Apdu, run: _Payment) -> PaymentOutcome | None:
        """An 80/84 while the PT is master of a payment: never answered; an outcome if it ends the payment.

        ``80 ..`` accepts our abort (or is stale). ``84 xx`` refuses our abort, or, before any
        approval, says the authorization's ``80 00 00`` was stale and the PT refused it.
        """
        if apdu.cls == 0x80:
            return None
        if run.aborting or run.approval is not None or run.booked:
            log.warning("terminal answered 84 %02X during the payment (abort refused or stale): ignored", apdu.instr)
            return None
        log.warning("terminal refused the authorization after all (84 %02X): its 80 00 00 was stale", apdu.instr)
        return run.failed(RESULT_COMMUNICATION, f"the card terminal refused the payment: {msg.result_text(apdu.instr)}")

    def _status_information(self, apdu: Apdu, phase: _MasterPhase) -> msg.StatusInformation | None:
        try:
            info = msg.parse_status_information(apdu.data, self.charset)
        except DecodeError as exc:
            log.warning("status information not understood (%s): refused", exc)
            phase.answer(msg.refusal(RESULT_PROTOCOL))
            return None
        if info.unknown_bmp is not None:
            log.warning("status information has unknown BMP %02X; fields before it used", info.unknown_bmp)
        return info

    def _vend(self, info: msg.StatusInformation, phase: _MasterPhase, run: _Payment) -> None:
        """Give the vending answer to an approving 04 0F (asked again after each 84 9C 00)."""
        if run.decision is None:
            run.decision = run.decide(info)
        if run.decision is None:
            phase.answer(msg.WAIT_APDU)
            return
        if not run.decision:
            phase.answer(msg.refusal(RESULT_NOT_VENDED))
            return
        if phase.answer(msg.ACK_APDU):
            run.confirm_booked(info)

    def reverse(self, receipt_no: int) -> ReversalOutcome:
        """Reversal 06 30 of ``receipt_no``."""
        try:
            self._command(msg.reversal(self.password, receipt_no), "reversal")
        except CommandRefused as exc:
            return ReversalOutcome(False, exc.code, msg.result_text(exc.code))
        ending = self._admin_sequence("reversal", f"{receipt_no:04d}")
        return ReversalOutcome(ending.code == 0 and not ending.aborted, ending.code, msg.result_text(ending.code),
                               ending.info)

    def end_of_day(self) -> EndOfDay:
        """End of day 06 50: the PT settles and reports its totals."""
        self._command(msg.end_of_day(self.password), "end of day")
        ending = self._admin_sequence("end of day")
        return EndOfDay(ending.code, ending.info, ending.lines)

    def _admin_sequence(self, name: str, receipt: str | None = None) -> _AdminEnding:
        """The PT-master part of a reversal or end of day: its 04 0F, print lines, then 06 0F or 06 1E.

        A payment's approval (a vending question) that arrives here is never acknowledged as the
        sequence's report: it is answered from the station's own state (see _belongs).
        """
        info = None
        lines: list[str] = []
        phase = _MasterPhase(self, self.t4)
        for apdu in phase:
            if apdu.command in ((0x04, 0x0F), (0x04, 0xFF)):
                phase.restart_t4()
            if apdu.command == (0x04, 0x0F):
                status = self._status_information(apdu, phase)
                if status is not None and not _belongs(status, receipt):
                    log.warning("status information for receipt %s during the %s: answered as a stray one",
                                status.receipt_no, name)
                    self._answer_unsolicited(apdu)
                elif status is not None:
                    info = status
                    phase.answer(msg.ACK_APDU)
            elif apdu.command in ((0x06, 0x0F), (0x06, 0x1E)):
                phase.answer(msg.ACK_APDU)
                if apdu.instr == 0x1E:
                    return _AdminEnding(msg.parse_abort(apdu.data), True, info, tuple(lines))
                return _AdminEnding(info.result_code if info is not None else 0, False, info, tuple(lines))
            elif apdu.command == (0x06, 0xD1):
                lines.append(msg.parse_print_line(apdu.data, self.charset)[1])
                phase.answer(msg.ACK_APDU)
            else:
                self._other(apdu, name)
        raise TerminalUnreachable(f"no end of the {name} within {phase.limit:g} s (T4)")

    def _other(self, apdu: Apdu, name: str) -> None:
        """Answer a PT message the running sequence ``name`` has no use for.

        An ``84 xx`` after the PT's ``80 00 00`` means that 80 00 00 was stale and the command
        was refused after all (CommandRefused); a second ``80 ..`` is stale and discarded.
        """
        if apdu.cls == 0x84:
            raise CommandRefused(name, apdu.instr)
        if apdu.command in ((0x04, 0xFF), (0x06, 0xD1)):
            try:
                self._send(msg.ACK_APDU)
            except AnswerUnacknowledged as exc:
                log.warning("%s; the terminal's next message tells whether it has it", exc)
            return
        log.info("unexpected %02X %02X from the terminal during a sequence", apdu.cls, apdu.instr)
        self._answer_unsolicited(apdu)


def _belongs(status: msg.StatusInformation, receipt: str | None) -> bool:
    """Whether a 04 0F during a reversal of ``receipt`` (None: an end of day) is that sequence's own report.

    An end of day reports totals and names no receipt; a reversal names the reversed receipt,
    or the original transaction's trace number (BMP 37) when it carries a receipt number of its
    own. A payment's approval (a vending question, which names its receipt) is neither.
    """
    if receipt is None:
        return status.totals is not None or status.receipt_no is None
    return status.receipt_no in (None, receipt) or status.original_trace_no is not None


@dataclass(frozen=True)
class _AdminEnding:
    """How a reversal or end of day ended: result code, whether by 06 1E, its 04 0F and print lines."""

    code: int
    aborted: bool
    info: msg.StatusInformation | None
    lines: tuple[str, ...]


@dataclass
class _Payment:
    """What one Authorization has seen so far."""

    amount: int
    on_status: Callable[[msg.Intermediate], None]
    decide: Callable[[msg.StatusInformation], bool | None]
    on_booked: Callable[[msg.StatusInformation], None]
    abort_requested: Callable[[], bool]
    approval: msg.StatusInformation | None = None
    declined_code: int | None = None
    decline_text: str = ""
    decision: bool | None = None
    booked: bool = False
    aborting: bool = False

    def confirm_booked(self, info: msg.StatusInformation) -> None:
        """The PT has our positive vending answer (it acknowledged it, or completed the payment): booked, once."""
        if not self.booked:
            self.booked = True
            self.on_booked(info)

    def failed(self, code: int, text: str, *, timed_out: bool = False) -> PaymentOutcome:
        """The sequence broke off: booked anyway if the PT had acknowledged our positive answer."""
        if self.booked:
            log.warning("payment sequence broke off after the terminal had our vending answer (%s): booked", text)
            return PaymentOutcome("booked", 0, "", self.approval)
        return PaymentOutcome("failed", code, text, self.approval, timed_out=timed_out)

    def check_abort(self, phase: _MasterPhase) -> None:
        """While the PT waits for the card: send the parker's abort once."""
        if self.aborting or self.approval is not None or self.declined_code is not None:
            return
        if self.abort_requested():
            self.aborting = True
            phase.abort()


class _MasterPhase:
    """The PT is master: iterate over its messages until the caller returns, T4 runs out, or an abort goes unanswered."""

    POLL_S = 0.05

    def __init__(self, session: EcrSession, limit: float,
                 idle: Callable[[_MasterPhase], None] = lambda phase: None) -> None:
        self.session = session
        self.limit = limit
        self.idle = idle
        self.deadline = session.clock.monotonic() + limit
        self.abort_deadline: float | None = None
        self.silent_after_abort = False

    def __iter__(self) -> _MasterPhase:
        return self

    def __next__(self) -> Apdu:
        clock = self.session.clock
        got: list[Apdu] = []

        def arrived(block: float) -> bool:
            """One slice of reading; the idle callback after a silent one (True if it sent an abort)."""
            aborting = self.abort_deadline
            apdu = self.session._receive(min(self.POLL_S, block))
            if apdu is not None:
                got.append(apdu)
                return True
            self.idle(self)
            return self.abort_deadline != aborting

        while True:
            now = clock.monotonic()
            if now >= self.deadline:
                raise StopIteration
            if self.abort_deadline is not None and now >= self.abort_deadline:
                self.silent_after_abort = True
                raise StopIteration
            clock.wait(arrived, min(self.deadline, self.abort_deadline or self.deadline) - now)
            if got:
                if self.abort_deadline is not None:
                    self.abort_deadline = clock.monotonic() + self.session.t3
                return got.pop()

    def answer(self, apdu: bytes) -> bool:
        """Send the ECR's answer to the PT's last message; False if the PT did not acknowledge it.

        Then the PT has it with only its ACK lost and goes on, or it asks again: its next
        message tells, and the phase goes on either way (the answer is never sent twice).
        """
        try:
            self.session._send(apdu)
        except AnswerUnacknowledged as exc:
            log.warning("%s; the terminal's next message tells whether it has it", exc)
            return False
        return True

    def restart_t4(self) -> None:
        """Every 04 FF and 04 0F restarts T4."""
        self.deadline = self.session.clock.monotonic() + self.limit

    def abort(self) -> None:
        """Send 06 B0 (the PT answers 80 00 00, then ends with 06 1E); give up after T3 of silence."""
        log.info("aborting the payment at the terminal")
        self.session._send(msg.abort())
        self.abort_deadline = self.session.clock.monotonic() + self.session.t3
