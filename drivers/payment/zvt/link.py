"""ZVT serial link layer: DLE/STX framing, CRC-16/KERMIT, ACK/NAK, T1/T2 timers and repeats."""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from drivers.payment.zvt.clock import REAL_CLOCK, Clock
from drivers.payment.zvt.codec import redacted

log = logging.getLogger(__name__)

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15
ANSWER_CLASSES = (b"\x80", b"\x84")  # the first byte of an answer APDU: 80 00 00 positive, 84 xx negative


def is_answer(apdu: bytes) -> bool:
    """True for an answer APDU (80/84 ..), decodable or not."""
    return apdu[:1] in ANSWER_CLASSES
T1_S = 0.2
T2_S = 5.0
RETRIES = 2
MAX_APDU = 65535 + 5
READ_CHUNK = 256


def _crc_table() -> tuple[int, ...]:
    """The byte-wise lookup table of the reflected polynomial 0x8408."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


CRC_TABLE = _crc_table()


def crc16_kermit(data: bytes) -> int:
    """CRC-16/KERMIT (reflected 0x8408, init 0, no final XOR); crc16_kermit(b"123456789") == 0x2189."""
    crc = 0
    table = CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def encode_frame(apdu: bytes) -> bytes:
    """10 02 + APDU with every 10 doubled + 10 03 + CRC low, high (CRC over the plain APDU and 03)."""
    crc = crc16_kermit(apdu + b"\x03")
    return b"\x10\x02" + apdu.replace(b"\x10", b"\x10\x10") + bytes((DLE, ETX, crc & 0xFF, crc >> 8))


@dataclass(frozen=True)
class Frame:
    """A whole frame with a correct CRC."""

    apdu: bytes


@dataclass(frozen=True)
class Control:
    """A bare ACK (06) or NAK (15) seen outside a frame."""

    byte: int


@dataclass(frozen=True)
class Corrupt:
    """A frame that must be NAKed: bad CRC, T1 gap, oversize or bad escape."""

    reason: str


Received = Frame | Control | Corrupt

IDLE, AFTER_DLE, IN_FRAME, IN_FRAME_DLE, CRC_LOW, CRC_HIGH = range(6)


class FrameDecoder:
    """Incremental, never raises on any input, bounded memory."""

    def __init__(self, t1: float = T1_S) -> None:
        """A decoder that drops a partial frame after a byte gap of `t1` seconds or more."""
        self._t1 = t1
        self._state = IDLE
        self._apdu = bytearray()
        self._size = 0
        self._crc_low = 0
        self._last_byte_at = 0.0

    @property
    def in_frame(self) -> bool:
        """True between a frame's 10 02 and its last CRC byte."""
        return self._state >= IN_FRAME

    def _reset(self) -> None:
        """Forget any partial frame."""
        self._state = IDLE
        self._apdu = bytearray()
        self._size = 0

    def expire(self, now: float) -> Corrupt | None:
        """Corrupt (and a reset) if a partial frame's last byte is T1 or more old, else None."""
        late = now >= self._last_byte_at + self._t1
        if self._state == AFTER_DLE and late:
            self._state = IDLE
        if not self.in_frame or not late:
            return None
        gap_ms = (now - self._last_byte_at) * 1000
        self._reset()
        return Corrupt(f"T1 gap of {gap_ms:.0f} ms inside a frame")

    def feed(self, data: bytes, now: float) -> list[Received]:
        """Decode bytes that arrived at monotonic time `now`; whatever they complete, in order."""
        events: list[Received] = []
        if data:
            expired = self.expire(now)
            if expired is not None:
                events.append(expired)
            self._last_byte_at = now
        index, end = 0, len(data)
        while index < end:
            state = self._state
            if state == IN_FRAME:
                stop = data.find(DLE, index)
                stop = end if stop < 0 else stop
                self._append(data[index:stop])
                if stop < end:
                    self._state = IN_FRAME_DLE
                index = stop + 1
                continue
            self._step(data[index], events)
            index += 1
        return events

    def _append(self, chunk: bytes) -> None:
        """Add unstuffed APDU bytes, keeping none beyond MAX_APDU (the frame is then rejected at its end)."""
        self._size += len(chunk)
        room = MAX_APDU + 1 - len(self._apdu)
        if room > 0:
            self._apdu += chunk[:room]

    def _step(self, byte: int, events: list[Received]) -> None:
        """Advance the state machine by one byte outside the fast in-frame path."""
        state = self._state
        if state == IDLE:
            if byte in (ACK, NAK):
                events.append(Control(byte))
            elif byte == DLE:
                self._state = AFTER_DLE
        elif state == AFTER_DLE:
            if byte == STX:
                self._reset()
                self._state = IN_FRAME
            else:
                self._state = IDLE
                self._step(byte, events)
        elif state == IN_FRAME_DLE:
            if byte == DLE:
                self._append(b"\x10")
                self._state = IN_FRAME
            elif byte == ETX:
                self._state = CRC_LOW
            else:
                events.append(Corrupt(f"bad escape 10 {byte:02X} inside a frame"))
                self._reset()
                if byte == STX:
                    self._state = IN_FRAME
        elif state == CRC_LOW:
            self._crc_low = byte
            self._state = CRC_HIGH
        else:
            events.append(self._finish(self._crc_low | byte << 8))

    def _finish(self, crc: int) -> Received:
        """The completed frame, or why it is rejected; the decoder is reset either way."""
        apdu, size = bytes(self._apdu), self._size
        self._reset()
        if size > MAX_APDU:
            return Corrupt(f"oversize APDU of {size} bytes")
        if crc16_kermit(apdu + b"\x03") != crc:
            return Corrupt(f"bad CRC {crc:04X}")
        return Frame(apdu)


class TransmissionError(Exception):
    """The other side did not acknowledge a frame after all repeats."""


class AnswerNotAcknowledged(TransmissionError):
    """An answer was sent once and not acknowledged: the other side may have it (only its ACK lost), or not."""


class Port(Protocol):
    """What pyserial's Serial offers; read blocks at most the port's own short timeout."""

    def read(self, size: int) -> bytes:
        """Up to `size` bytes that are available, possibly none."""

    def write(self, data: bytes) -> int | None:
        """Send bytes."""


class Link:
    """One side's link layer over a Port. Used by exactly one thread."""

    def __init__(self, port: Port, *, clock: Clock = REAL_CLOCK, t1: float = T1_S, t2: float = T2_S,
                 retries: int = RETRIES) -> None:
        """A link over `port`; every timer runs on `clock`, which waits by reading the port once at a time."""
        self._port = port
        self._clock = clock
        self._t2 = t2
        self._retries = retries
        self._decoder = FrameDecoder(t1)
        self._received: deque[bytes] = deque()
        self._before_ack = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def answer_pending(self) -> bool:
        """True if a received frame is queued (it crossed one of ours on the line)."""
        return bool(self._received)

    def take_crossed(self) -> list[bytes]:
        """The queued frames that arrived before the other side ACKed our last frame, oldest first.

        The other side ACKs a frame before it acts on it, so none of these can be its answer
        to that frame: whatever answer (80/84 ..) is among them is stale.
        """
        crossed = [self._received.popleft() for _ in range(min(self._before_ack, len(self._received)))]
        self._before_ack = 0
        return crossed

    def send(self, apdu: bytes) -> None:
        """Send a frame until it is ACKed, repeating on NAK or T2 silence; TransmissionError after the repeats.

        An answer APDU (80/84 ..) is repeated only after a NAK: after silence the other side may
        have it with only its ACK lost, and a second copy would be one answer too many, which a
        loosely pairing terminal takes for the answer to its next question.
        """
        frame = encode_frame(apdu)
        sends = self._retries + 1
        failure = "silence"
        for attempt in range(1, sends + 1):
            if log.isEnabledFor(logging.DEBUG):
                log.debug("-> %s (send %d of %d)", redacted(apdu), attempt, sends)
            self._write(frame)
            answer = self._await_answer(self._t2)
            if answer == ACK:
                return
            failure = "NAK" if answer == NAK else "silence"
            log.debug("no ACK for %s: %s", apdu[:2].hex(" ").upper(), failure)
            if answer != NAK and is_answer(apdu):
                raise AnswerNotAcknowledged(f"no ACK for the answer {apdu[:3].hex(' ').upper()}: not repeated")
        raise TransmissionError(f"no ACK after {sends} sends of {apdu[:2].hex(' ').upper()} (last: {failure})")

    def receive(self, timeout: float) -> bytes | None:
        """The next good APDU (queued ones first), ACKed at once; None when `timeout` passes without one."""
        if self._received:
            return self._pop()

        def arrived(block: float) -> bool:
            for event in self._poll():
                if isinstance(event, Control):
                    log.debug("stray control byte %02X ignored", event.byte)
            return bool(self._received)

        return self._pop() if self._clock.wait(arrived, timeout) else None

    def _pop(self) -> bytes:
        """The oldest queued frame (one fewer of those that crossed our last frame)."""
        self._before_ack = max(0, self._before_ack - 1)
        return self._received.popleft()

    def _await_answer(self, timeout: float) -> int | None:
        """The first ACK/NAK byte within `timeout`, None on silence; frames meanwhile are ACKed and queued."""
        answer: int | None = None

        def answered(block: float) -> bool:
            nonlocal answer
            events = self._poll()
            for index, event in enumerate(events):
                if isinstance(event, Control):
                    later = sum(isinstance(after, Frame) for after in events[index + 1:])
                    self._before_ack = len(self._received) - later
                    answer = event.byte
                    return True
            return False

        self._clock.wait(answered, timeout)
        return answer

    def _poll(self) -> list[Received]:
        """Read once, answer whole and corrupt frames at once, and return what was decoded."""
        # Ask for what is waiting (at least one byte): pyserial's read(n) blocks until n bytes
        # or its timeout, which would hold every frame back by the timeout.
        data = self._port.read(max(1, min(READ_CHUNK, getattr(self._port, "in_waiting", 0))))
        now = self._clock.monotonic()
        if data:
            self.bytes_in += len(data)
            events = self._decoder.feed(data, now)
        else:
            expired = self._decoder.expire(now)
            events = [expired] if expired is not None else []
        for event in events:
            if isinstance(event, Frame):
                self._write(bytes((ACK,)))
                self._received.append(event.apdu)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("<- %s (ACKed)", redacted(event.apdu))
            elif isinstance(event, Corrupt):
                self._write(bytes((NAK,)))
                log.debug("<- corrupt frame (NAKed): %s", event.reason)
        return events

    def _write(self, data: bytes) -> None:
        """Write raw bytes and count them."""
        self._port.write(data)
        self.bytes_out += len(data)
