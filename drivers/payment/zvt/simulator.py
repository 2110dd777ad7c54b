"""An honest fake ZVT payment terminal (the PT side) speaking real ZVT bytes over a pseudo-terminal or serial port."""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.payment.zvt import pt_codec as codec
from drivers.payment.zvt import pt_wire as wire
from drivers.payment.zvt.clock import REAL_CLOCK, Clock
from drivers.payment.zvt.pt_codec import Apdu, WireError
from drivers.payment.zvt.pt_wire import PtyLink, open_pty

if TYPE_CHECKING:
    import serial

__all__ = ["PAIRINGS", "Behaviour", "PtyLink", "Simulator", "open_pty"]

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 30
KINDS = ("approve", "decline", "wait-card", "silent")
PAIRINGS = ("loose", "strict")
FAULTS = ("nak", "bad-crc", "stall", "silent", "busy", "ignore-abort", "disconnect", "drop-ack")
POSITIVE = bytes.fromhex("80 00 00")
NOT_POSSIBLE = bytes.fromhex("84 83 00")
BUSY = bytes.fromhex("84 9C 00")
COMPLETION_OK = bytes.fromhex("06 0F 02 27 00")
RC_ABORTED, RC_ALREADY_REVERSED, RC_REVERSAL_NOT_POSSIBLE = 0x6C, 0xB4, 0xB5
# BMP 60 totals groups, in the order docs/zvt.md gives them.
GROUPS = ("girocard", "jcb", "mastercard", "amex", "visa", "diners", "other")
# card name (lower case) -> (card type byte of BMP 8A, index into GROUPS)
CARDS = {"girocard": (0x05, 0), "mastercard": (0x06, 2), "amex": (0x08, 3), "american express": (0x08, 3),
         "visa": (0x0A, 4)}
OTHER_CARD = (0xFF, 6)
WORDS_HELP = "approve [BRAND] | decline CODE [TEXT..] (CODE hex 01..FF) | wait-card | silent | pin SECONDS [BRAND]"


@dataclass(frozen=True)
class Behaviour:
    """What the PT does with the next payment.

    kind: "approve", "decline" (with result_code and the display text `text`), "wait-card"
    (waits for a card that never comes: only an abort ends it) or "silent" (the Authorization
    is ignored completely, not even ACKed). pin_delay_s > 0 adds "Enter PIN" (04 FF 01) after
    "Insert card" and waits that long (on the simulator's clock) before going on.
    """

    kind: str = "approve"
    result_code: int = 0
    text: str = ""
    brand: str = "VISA"
    pan: str = "411111******1111"
    pin_delay_s: float = 0.0
    statuses: tuple[tuple[int, str], ...] = ((0x0A, "Insert card"), (0x0E, "Please wait"))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"behaviour kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "decline" and not 0 < self.result_code <= 0xFF:
            raise ValueError(f"a decline needs a result code 01..FF, got {self.result_code:#x}")
        if self.pin_delay_s < 0:
            raise ValueError("pin_delay_s cannot be negative")
        if self.pan.strip("0123456789*") or len(self.pan) > 19:
            raise ValueError(f"PAN must be up to 19 digits or '*', got {self.pan!r}")
        if len(self.brand) > 40 or any(not 0 <= code <= 0xFF for code, _ in self.statuses):
            raise ValueError("card name up to 40 characters and status codes 00..FF, please")


@dataclass(frozen=True)
class _Request:
    amount: int
    currency: int
    payment_type: int
    window_s: float


@dataclass(frozen=True)
class _Booking:
    receipt: str
    trace: str
    amount: int
    currency: int
    brand: str
    state: str

    def entry(self) -> dict[str, object]:
        return {"receipt": self.receipt, "trace": self.trace, "amount": self.amount, "currency": self.currency}


def _card(brand: str) -> tuple[int, int]:
    return CARDS.get(brand.lower(), OTHER_CARD)


def _auth_code(trace: int) -> str:
    """The approval code (BMP 3B): six hex digits derived from the trace number, then two spaces."""
    return f"{trace * 7919 % 0x1000000:06X}  "


def _status_apdu(code: int, text: str) -> bytes:
    return codec.encode_apdu(0x04, 0xFF, bytes([code]) + (codec.display_texts([text]) if text else b""))


def _abort_apdu(code: int) -> bytes:
    return codec.encode_apdu(0x06, 0x1E, bytes([code]))


def _stray(raw: bytes) -> bool:
    """An answer (80/84 ..) nobody waits for: logged and otherwise ignored."""
    if codec.is_answer(raw):
        log.info("stray answer %s ignored", raw.hex(" "))
        return True
    return False


def _parse(raw: bytes) -> Apdu | None:
    try:
        return codec.decode_apdu(raw)
    except WireError as exc:
        log.warning("malformed APDU %s: %s", raw.hex(" "), exc)
        return None


class Simulator:
    """A ZVT payment terminal on a file descriptor or serial port, serving the ECR in a daemon thread.

    Every timer, the link layer's (T1, T2, stall, disconnect) and the protocol's (pin delay,
    answer_timeout_s, ask_again_s, the vending window), runs on `clock`. The journal (JSON lines,
    fsynced) is the terminal's memory: on construction every authorization never booked or
    reversed is auto-reversed, and trace, receipt and turnover numbers continue from it.

    ``pairing`` says how the PT pairs the ECR's answers with its questions: "loose" (the
    default, as some real terminals do) takes the first answer waiting, even one that was on
    the line before the question; "strict" drops answers that reached it before the ECR
    acknowledged the question. ``t2_s`` is the link's ACK timer (ZVT: 5 s).
    """

    def __init__(self, port: int | serial.Serial, journal: Path | None = None, *, terminal_id: str = "52500001",
                 version: str = "SIM 1.0", clock: Clock = REAL_CLOCK, ask_again_s: float = 2.0,
                 answer_timeout_s: float = 5.0, t2_s: float = wire.T2_S, pairing: str = "loose") -> None:
        if len(terminal_id) != 8 or not terminal_id.isdigit():
            raise ValueError(f"terminal id must be 8 digits, got {terminal_id!r}")
        if pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {pairing!r}")
        if not 0 < t2_s <= 60:
            raise ValueError(f"t2_s must be more than 0 and at most 60 s, got {t2_s}")
        self._raw_port = port
        self._journal_path = journal
        self._tid = codec.bcd(int(terminal_id), 4)
        self._version = version
        self._clock = clock
        self._ask_again_s = ask_again_s
        self._answer_timeout_s = answer_timeout_s
        self._lock = threading.Lock()
        self._script: deque[Behaviour] = deque()
        self._status = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: wire.Port | None = None
        self._link = wire.PtLink(self._stop, self._ignores, t2_s=t2_s, strict=pairing == "strict", clock=clock)
        self._silent_apdu: bytes | None = None
        self._in_payment = False
        self._abort = False
        self._currency = 978
        self._trace = self._receipt = self._turnover = 0
        self._bookings: dict[str, _Booking] = {}
        self._recover()

    # -- public API --------------------------------------------------------------------------

    def start(self) -> None:
        """Serve the ECR in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the simulator was already started")
        port = self._raw_port
        self._port = wire.FdPort(port) if isinstance(port, int) else wire.SerialPort(port)
        self._link.attach(self._port)
        self._thread = threading.Thread(target=self._run, name="zvt-pt-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent); the port stays open."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def script(self, behaviour: Behaviour) -> None:
        """Queue what the PT does with the next payment (unscripted payments approve with Behaviour())."""
        with self._lock:
            self._script.append(behaviour)

    def clear_script(self) -> None:
        """Forget the behaviours no payment has used yet."""
        with self._lock:
            self._script.clear()

    def script_words(self, words: list[str]) -> None:
        """Script from words: approve [BRAND] | decline CODE [TEXT..] | wait-card | silent | pin SECONDS [BRAND]."""
        kind, *rest = words or [""]
        if kind == "approve":
            self.script(Behaviour(brand=" ".join(rest)) if rest else Behaviour())
        elif kind == "decline" and rest:
            try:
                code = int(rest[0], 16)
            except ValueError:
                raise ValueError(f"decline needs a hex result code like 05 or 64, got {rest[0]!r}") from None
            if not 0 < code <= 0xFF:
                raise ValueError(f"result code out of range 01..FF: {rest[0]!r}")
            self.script(Behaviour(kind="decline", result_code=code, text=" ".join(rest[1:])))
        elif kind in ("wait-card", "silent") and not rest:
            self.script(Behaviour(kind=kind))
        elif kind == "pin" and rest:
            try:
                delay = float(rest[0])
            except ValueError:
                raise ValueError(f"pin needs a delay in seconds like 3 or 0.5, got {rest[0]!r}") from None
            self.script(Behaviour(pin_delay_s=delay, brand=" ".join(rest[1:]) or Behaviour.brand))
        else:
            raise ValueError(f"expected {WORDS_HELP}; got {' '.join(words)!r}")

    def inject(self, fault: str, count: int = 1) -> None:
        """Arm a fault (see FAULTS) for the next `count` frames or commands ("disconnect": `count` seconds)."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {fault!r}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self._link.arm(fault, count)
        log.info("fault %s armed (%d)", fault, count)

    def reconnect(self) -> None:
        """End an injected "disconnect" now: the cable is plugged back in."""
        self._link.reconnect()
        log.info("cable plugged back in")

    def set_status(self, status: int) -> None:
        """The terminal status reported to a status enquiry; while not 00, Authorization is refused."""
        if not 0 <= status <= 0xFF:
            raise ValueError(f"status must be one byte, got {status}")
        self._status = status

    def quiet(self) -> bool:
        """True when the PT waits for ECR bytes (or a card that never comes) with no timed action pending."""
        return self._link.quiet and not self._link.disconnected() and not self._stop.is_set()

    @property
    def bytes_in(self) -> int:
        """Raw bytes read from the port so far."""
        return self._link.bytes_in

    @property
    def bytes_out(self) -> int:
        """Raw bytes written to the port so far."""
        return self._link.bytes_out

    def journal(self) -> list[dict]:
        """The journal entries so far (empty without a journal file); a torn last line is skipped."""
        if self._journal_path is None or not self._journal_path.exists():
            return []
        entries = []
        for line in self._journal_path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("journal line skipped: %r", line)
        return entries

    # -- journal -----------------------------------------------------------------------------

    def _recover(self) -> None:
        for entry in self.journal():
            event, receipt = entry.get("event"), str(entry.get("receipt", ""))
            if event in ("authorized", "declined"):
                self._trace = int(entry["trace"])
            if event == "authorized":
                self._receipt, self._turnover = int(receipt), int(entry.get("turnover", self._turnover))
                self._bookings[receipt] = _Booking(receipt, entry["trace"], entry["amount"], entry["currency"],
                                                   entry.get("brand", ""), "authorized")
            elif event in ("booked", "reversed", "auto-reversed") and receipt in self._bookings:
                self._bookings[receipt] = replace(self._bookings[receipt], state=event)
            elif event == "end-of-day":
                self._bookings.clear()
        for booking in list(self._bookings.values()):
            if booking.state == "authorized":
                log.warning("receipt %s was never confirmed: auto-reversed", booking.receipt)
                self._settle(booking, "auto-reversed")

    def _record(self, event: str, **fields: object) -> None:
        if self._journal_path is None:
            return
        entry = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        self._journal_path.parent.mkdir(parents=True, exist_ok=True)
        with self._journal_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _settle(self, booking: _Booking, event: str, **extra: object) -> None:
        self._record(event, **booking.entry(), **extra)
        self._bookings[booking.receipt] = replace(booking, state=event)

    def _ignores(self, raw: bytes) -> bool:
        """A silent behaviour: swallow the Authorization and its repeats, unACKed."""
        if self._silent_apdu is not None:
            if raw == self._silent_apdu:
                log.info("silent terminal ignores the repeated authorization")
                return True
            self._silent_apdu = None
        if raw[:2] != b"\x06\x01" or self._in_payment or self._status:
            return False
        with self._lock:
            if not self._script or self._script[0].kind != "silent":
                return False
            self._script.popleft()
        log.info("silent terminal ignores the authorization")
        self._silent_apdu = raw
        return True

    # -- sequences ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                raw = self._link.next_apdu(None)
                if raw is not None:
                    self._on_command(raw)
        except wire.Stopped:
            log.debug("terminal simulator stopped")
        except Exception:
            log.exception("terminal simulator failed")
        finally:
            self._link.quiet = False
            if self._port is not None:
                self._port.release()

    def _on_command(self, raw: bytes) -> None:
        apdu = _parse(raw)
        if _stray(raw):
            return
        if self._link.take("busy"):
            log.info("busy (fault): %s not run", raw.hex(" "))
            self._link.send(BUSY)
            return
        handlers = {b"\x06\x00": self._register, b"\x06\x01": self._authorize, b"\x06\x02": self._log_off,
                    b"\x06\x30": self._reverse, b"\x05\x01": self._status_enquiry, b"\x06\x50": self._end_of_day}
        handler = None if apdu is None else handlers.get(apdu.command)
        if apdu is None or handler is None:
            log.info("command %s not possible", raw[:2].hex(" "))
            self._link.send(NOT_POSSIBLE)
            return
        try:
            handler(apdu)
        except WireError as exc:
            log.info("command %s refused: %s", raw[:2].hex(" "), exc)
            self._link.send(NOT_POSSIBLE)

    def _during_payment(self, raw: bytes, abortable: bool) -> None:
        """A command that arrives while the PT is master: an abort (when allowed) or 84 83 00."""
        apdu = _parse(raw)
        if _stray(raw):
            return
        if apdu is not None and apdu.command == b"\x06\xb0" and abortable:
            if self._link.take("ignore-abort"):
                log.info("abort swallowed (fault ignore-abort)")
                return
            self._abort = True
            return
        log.info("command %s refused: payment in progress", raw[:2].hex(" "))
        self._link.send(NOT_POSSIBLE)

    def _answer(self, deadline: float, abortable: bool) -> Apdu | None:
        """The ECR's answer APDU, taking any commands that arrive first; None after `deadline`."""
        while (raw := self._link.next_apdu(deadline)) is not None:
            apdu = _parse(raw)
            if apdu is not None and apdu.is_answer:
                return apdu
            self._during_payment(raw, abortable)
        return None

    def _ask(self, apdu: bytes, *, abortable: bool = False) -> Apdu | None:
        """Send a PT message and return the ECR's answer (None: not ACKed or no answer within answer_timeout_s)."""
        self._link.awaiting_status_answer = apdu[:2] == b"\x04\x0f"
        try:
            if not self._link.send(apdu):
                return None
            answer = self._answer(self._clock.monotonic() + self._answer_timeout_s, abortable)
            if answer is None:
                log.info("no answer to %s: going on", apdu[:2].hex(" "))
            return answer
        finally:
            self._link.awaiting_status_answer = False

    def _take_commands(self, deadline: float | None, abortable: bool) -> None:
        """Wait for time to pass (a card, a PIN, a re-ask) taking commands, until `deadline` or an abort."""
        while not self._abort:
            raw = self._link.next_apdu(deadline)
            if raw is None:
                return
            self._during_payment(raw, abortable)

    def _register(self, apdu: Apdu) -> None:
        if len(apdu.data) < 4 or len(apdu.data) == 5:
            raise WireError("registration needs password, config byte and currency")
        if len(apdu.data) >= 6:
            codec.parse_bmps(apdu.data[6:])
            self._currency = codec.from_bcd(apdu.data[4:6])
        self._link.send(POSITIVE)
        data = b"\x19" + bytes([self._status]) + b"\x29" + self._tid + b"\x49" + codec.bcd(self._currency, 2)
        self._ask(codec.encode_apdu(0x06, 0x0F, data))

    def _log_off(self, apdu: Apdu) -> None:
        self._link.send(POSITIVE)

    def _status_enquiry(self, apdu: Apdu) -> None:
        codec.parse_bmps(apdu.data[3:])
        self._link.send(POSITIVE)
        version = codec.var_field(self._version.encode("ascii", "replace"), 3)
        self._ask(codec.encode_apdu(0x06, 0x0F, version + bytes([self._status])))

    def _authorize(self, apdu: Apdu) -> None:
        fields = codec.parse_bmps(apdu.data)
        if 0x04 not in fields:
            raise WireError("authorization without amount (BMP 04)")
        if self._status:
            log.info("authorization refused: terminal status %02X", self._status)
            self._link.send(NOT_POSSIBLE)
            return
        window = fields[0x01][0] if fields.get(0x01, b"\x00")[0] else DEFAULT_WINDOW_S
        request = _Request(codec.from_bcd(fields[0x04]), codec.from_bcd(fields.get(0x49, codec.bcd(self._currency, 2))),
                           fields.get(0x19, b"\x40")[0], window)
        with self._lock:
            behaviour = self._script.popleft() if self._script else Behaviour()
        if behaviour.kind == "silent":
            log.info("silent terminal ignores the authorization")
            return
        self._record("started", amount=request.amount, currency=request.currency)
        self._link.send(POSITIVE)
        self._in_payment, self._abort = True, False
        try:
            self._pay(behaviour, request)
        finally:
            self._in_payment = False

    def _pay(self, behaviour: Behaviour, request: _Request) -> None:
        statuses = [(code, text, 0.0) for code, text in behaviour.statuses]
        if behaviour.kind == "wait-card":
            card = next((i for i, (code, _, _) in enumerate(statuses) if code == 0x0A), None)
            steps = statuses[:card + 1] if card is not None else [(0x0A, "Insert card", 0.0)]
            if self._show(steps):
                self._take_commands(None, abortable=True)
            self._aborted(request)
            return
        if behaviour.pin_delay_s > 0:
            at = next((i + 1 for i, (code, _, _) in enumerate(statuses) if code == 0x0A), 0)
            pin = [(0x01, "Enter PIN", behaviour.pin_delay_s)]
            if at >= len(statuses) or statuses[at][0] != 0x0E:
                pin.append((0x0E, "Please wait", 0.0))
            statuses[at:at] = pin
        if behaviour.kind == "decline":
            statuses.append((0x1D, behaviour.text, 0.0))
        if not self._show(statuses):
            self._aborted(request)
        elif behaviour.kind == "decline":
            self._decline(behaviour, request)
        else:
            self._approve(behaviour, request)

    def _show(self, steps: list[tuple[int, str, float]]) -> bool:
        """Send intermediate statuses (waiting `delay` seconds after one); False when aborted."""
        for code, text, delay in steps:
            self._ask(_status_apdu(code, text), abortable=True)
            if delay > 0 and not self._abort:
                self._take_commands(self._clock.monotonic() + delay, abortable=True)
            if self._abort:
                return False
        return True

    def _aborted(self, request: _Request) -> None:
        log.info("payment aborted by the ECR")
        self._record("aborted", amount=request.amount, currency=request.currency)
        self._link.send(POSITIVE)
        self._ask(_abort_apdu(RC_ABORTED))

    def _decline(self, behaviour: Behaviour, request: _Request) -> None:
        self._trace = self._trace % 999999 + 1
        trace = f"{self._trace:06d}"
        self._record("declined", trace=trace, amount=request.amount, currency=request.currency,
                     result_code=behaviour.result_code)
        data = (bytes([0x27, behaviour.result_code]) + b"\x04" + codec.bcd(request.amount, 6)
                + b"\x0b" + codec.bcd(self._trace, 3))
        self._ask(codec.encode_apdu(0x04, 0x0F, data))
        self._ask(_abort_apdu(behaviour.result_code))

    def _approve(self, behaviour: Behaviour, request: _Request) -> None:
        self._trace = self._trace % 999999 + 1
        self._receipt = self._receipt % 9999 + 1
        self._turnover = self._turnover % 999999 + 1
        card_type, _ = _card(behaviour.brand)
        now = datetime.now()
        data = b"".join((
            b"\x27\x00", b"\x04" + codec.bcd(request.amount, 6), b"\x0b" + codec.bcd(self._trace, 3),
            b"\x0c" + codec.bcd(int(now.strftime("%H%M%S")), 3), b"\x0d" + codec.bcd(int(now.strftime("%m%d")), 2),
            b"\x17" + codec.bcd(1, 2), b"\x19" + bytes([request.payment_type]),
            b"\x22" + codec.pan_field(behaviour.pan), b"\x29" + self._tid,
            b"\x3b" + _auth_code(self._trace).encode("ascii"),
            b"\x49" + codec.bcd(request.currency, 2), b"\x87" + codec.bcd(self._receipt, 2),
            b"\x88" + codec.bcd(self._turnover, 3), b"\x8a" + bytes([card_type]),
            b"\x8b" + codec.var_field(behaviour.brand.encode("cp437", "replace") + b"\x00"),
        ))
        booking = _Booking(f"{self._receipt:04d}", f"{self._trace:06d}", request.amount, request.currency,
                           behaviour.brand, "authorized")
        self._bookings[booking.receipt] = booking
        self._record("authorized", **booking.entry(), turnover=self._turnover, brand=behaviour.brand,
                     pan=behaviour.pan, auth_code=_auth_code(self._trace).strip())
        answer = self._vend(codec.encode_apdu(0x04, 0x0F, data), request.window_s)
        if answer is None:
            log.warning("no vending answer for receipt %s within %.0f s: auto-reversed", booking.receipt,
                        request.window_s)
            self._settle(booking, "auto-reversed")
            self._ask(_abort_apdu(RC_ABORTED))
        elif answer.cls == 0x80:
            self._settle(booking, "booked")
            self._ask(COMPLETION_OK)
        else:
            log.info("ECR refused receipt %s (%02X): reversed", booking.receipt, answer.ins)
            self._settle(booking, "reversed", result_code=answer.ins)
            self._ask(_abort_apdu(RC_ABORTED))

    def _vend(self, info: bytes, window_s: float) -> Apdu | None:
        """Send the 04 0F until the ECR gives its vending answer; None when the window is over without one."""
        end = self._clock.monotonic() + window_s
        while True:
            sent = self._clock.monotonic()
            self._link.awaiting_status_answer = True
            try:
                self._link.send(info)
                answer = self._answer(sent + self._answer_timeout_s, abortable=False)
            finally:
                self._link.awaiting_status_answer = False
            if answer is not None and answer.command == b"\x84\x9c":
                log.info("ECR still committing: asking again in %.1f s", self._ask_again_s)
                self._take_commands(self._clock.monotonic() + self._ask_again_s, abortable=False)
            elif answer is not None:
                return answer
            if self._clock.monotonic() >= end:
                return None
            log.info("asking again for the vending answer")

    def _reverse(self, apdu: Apdu) -> None:
        fields = codec.parse_bmps(apdu.data[3:])
        if 0x87 not in fields:
            raise WireError("reversal without receipt number (BMP 87)")
        receipt = f"{codec.from_bcd(fields[0x87]):04d}"
        self._link.send(POSITIVE)
        booking = self._bookings.get(receipt)
        if booking is None or booking.state not in ("booked", "reversed", "auto-reversed"):
            log.info("reversal of receipt %s not possible", receipt)
            self._ask(_abort_apdu(RC_REVERSAL_NOT_POSSIBLE))
            return
        if booking.state != "booked":
            log.info("receipt %s already reversed", receipt)
            self._ask(_abort_apdu(RC_ALREADY_REVERSED))
            return
        self._settle(booking, "reversed", by="reversal")
        data = (b"\x27\x00\x04" + codec.bcd(booking.amount, 6) + b"\x0b" + codec.bcd(int(booking.trace), 3)
                + b"\x87" + codec.bcd(int(receipt), 2) + b"\x49" + codec.bcd(booking.currency, 2))
        self._ask(codec.encode_apdu(0x04, 0x0F, data))
        self._ask(COMPLETION_OK)

    def _end_of_day(self, apdu: Apdu) -> None:
        codec.parse_bmps(apdu.data[3:])
        self._link.send(POSITIVE)
        booked = [b for b in self._bookings.values() if b.state == "booked"]
        groups = [[0, 0] for _ in GROUPS]
        for booking in booked:
            group = groups[_card(booking.brand)[1]]
            group[0] += 1
            group[1] += booking.amount
        total = sum(b.amount for b in booked)
        first, last = (int(booked[0].receipt), int(booked[-1].receipt)) if booked else (0, 0)
        self._record("end-of-day", amount=total, currency=self._currency, count=len(booked),
                     receipt_from=f"{first:04d}", receipt_to=f"{last:04d}",
                     totals={name: {"count": count, "amount": amount} for name, (count, amount) in zip(GROUPS, groups)})
        self._bookings.clear()
        totals = codec.bcd(first, 2) + codec.bcd(last, 2) + b"".join(
            bytes([min(count, 0xFF)]) + codec.bcd(amount, 6) for count, amount in groups)
        now = datetime.now()
        data = (b"\x27\x00\x04" + codec.bcd(total, 6) + b"\x49" + codec.bcd(self._currency, 2)
                + b"\x0c" + codec.bcd(int(now.strftime("%H%M%S")), 3)
                + b"\x0d" + codec.bcd(int(now.strftime("%m%d")), 2) + b"\x60" + codec.var_field(totals, 3))
        self._ask(codec.encode_apdu(0x04, 0x0F, data))
        self._ask(COMPLETION_OK)
