"""The PT simulator's own ZVT wire: byte I/O, frames and the link layer with line faults (from docs/zvt.md)."""
from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import select
import threading
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drivers.payment.zvt.clock import REAL_CLOCK, Clock
from drivers.payment.zvt.pt_codec import is_answer

if TYPE_CHECKING:
    import serial

log = logging.getLogger(__name__)

DLE, STX, ETX = 0x10, 0x02, 0x03
ACK, NAK = b"\x06", b"\x15"
T1_S = 0.2
T2_S = 5.0
REPEATS = 2
STALL_S = 0.5
SLICE_S = 0.05
WRITE_WAIT_S = 0.1
MAX_APDU = 65535 + 5

_IDLE, _START, _BODY, _ESCAPE, _CRC = range(5)


def crc16_kermit(data: bytes) -> int:
    """CRC-16/KERMIT: reflected polynomial 0x8408, initial value 0, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def encode_frame(apdu: bytes, *, corrupt_crc: bool = False) -> bytes:
    """`10 02` + stuffed APDU + `10 03` + CRC low, high (the CRC inverted when `corrupt_crc`)."""
    crc = crc16_kermit(apdu + bytes([ETX]))
    if corrupt_crc:
        crc ^= 0xFFFF
    return b"\x10\x02" + apdu.replace(b"\x10", b"\x10\x10") + b"\x10\x03" + crc.to_bytes(2, "little")


@dataclass(frozen=True)
class Received:
    """One thing found on the line: kind "ack", "nak", "frame" (with apdu) or "broken" (with why)."""

    kind: str
    apdu: bytes = b""
    why: str = ""


class FrameReader:
    """Splits the incoming byte stream into bare ACK/NAK bytes, good frames and broken frames (bad CRC, T1 gap)."""

    def __init__(self) -> None:
        self._state = _IDLE
        self._body = bytearray()
        self._crc = bytearray()
        self._last = 0.0

    def reset(self) -> None:
        """Forget any partial frame."""
        self._state = _IDLE
        self._body.clear()

    def t1_deadline(self) -> float | None:
        """When the partial frame in progress (if any) runs into T1."""
        return None if self._state == _IDLE else self._last + T1_S

    def expire(self, now: float) -> list[Received]:
        """Drop a partial frame whose last byte is T1 old: broken (a lone `10` outside a frame is just noise)."""
        if self._state == _IDLE or now - self._last < T1_S:
            return []
        was = self._state
        self.reset()
        return [] if was == _START else [Received("broken", why="T1 gap inside a frame")]

    def feed(self, data: bytes, now: float) -> list[Received]:
        """Consume bytes read at `now` (monotonic seconds)."""
        found = self.expire(now)
        for byte in data:
            item = self._step(byte)
            if item is not None:
                found.append(item)
        self._last = now
        return found

    def _step(self, byte: int) -> Received | None:
        state = self._state
        if state == _IDLE:
            if byte in ACK:
                return Received("ack")
            if byte in NAK:
                return Received("nak")
            if byte == DLE:
                self._state = _START
            return None
        if state == _START:
            if byte == STX:
                self._body.clear()
                self._state = _BODY
                return None
            self._state = _IDLE
            return self._step(byte)
        if state == _BODY:
            if byte == DLE:
                self._state = _ESCAPE
                return None
            return self._append(byte)
        if state == _ESCAPE:
            if byte == DLE:
                self._state = _BODY
                return self._append(byte)
            if byte == ETX:
                self._crc.clear()
                self._state = _CRC
                return None
            if byte == STX:
                log.debug("frame restarted by 10 02 after %d bytes", len(self._body))
                self._body.clear()
                self._state = _BODY
                return None
            self.reset()
            return Received("broken", why=f"10 followed by {byte:02X}")
        self._crc.append(byte)
        if len(self._crc) < 2:
            return None
        self._state = _IDLE
        apdu = bytes(self._body)
        if int.from_bytes(self._crc, "little") != crc16_kermit(apdu + bytes([ETX])):
            return Received("broken", why="CRC mismatch")
        return Received("frame", apdu)

    def _append(self, byte: int) -> Received | None:
        self._body.append(byte)
        if len(self._body) > MAX_APDU:
            self.reset()
            return Received("broken", why="APDU too long")
        return None


class Stopped(Exception):
    """Unwinds the serving thread once stop was requested."""


class Port(Protocol):
    """Byte I/O for the link: read waits at most `timeout` seconds."""

    def read(self, timeout: float) -> bytes:
        """Bytes available within `timeout` (empty when none)."""

    def write(self, data: bytes) -> int:
        """Write, returning how many bytes went out."""

    def release(self) -> None:
        """Undo what the adapter changed on the port (it never closes it)."""


class FdPort:
    """A file descriptor (pty master): select() to read, non-blocking writes that drop what nobody reads."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, self._flags | os.O_NONBLOCK)
        self._pause = threading.Event()

    def read(self, timeout: float) -> bytes:
        """Bytes available within `timeout` (empty when none)."""
        if not select.select([self._fd], [], [], timeout)[0]:
            return b""
        try:
            return os.read(self._fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            self._pause.wait(timeout)
            return b""

    def write(self, data: bytes) -> int:
        """Write what the line takes within WRITE_WAIT_S; the rest is dropped, as on a cable nobody listens to."""
        written = 0
        while written < len(data):
            try:
                written += os.write(self._fd, data[written:])
            except BlockingIOError:
                if not select.select([], [self._fd], [], WRITE_WAIT_S)[1]:
                    log.warning("nobody reads the line: %d bytes dropped", len(data) - written)
                    break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                break
        return written

    def release(self) -> None:
        """Restore the descriptor's blocking mode."""
        fcntl.fcntl(self._fd, fcntl.F_SETFL, self._flags)


class SerialPort:
    """A pyserial-like object (read/write/timeout), read in slices of SLICE_S."""

    def __init__(self, port: serial.Serial) -> None:
        self._port = port
        self._timeout = port.timeout
        port.timeout = SLICE_S

    def read(self, timeout: float) -> bytes:
        """One byte within SLICE_S, plus whatever else is waiting."""
        data = bytes(self._port.read(1))
        waiting = getattr(self._port, "in_waiting", 0) if data else 0
        return data + bytes(self._port.read(waiting)) if waiting else data

    def write(self, data: bytes) -> int:
        """Write all of `data`."""
        self._port.write(data)
        return len(data)

    def release(self) -> None:
        """Restore the port's timeout."""
        self._port.timeout = self._timeout


class PtLink:
    """The PT's link layer: ACK/NAK every frame at once, repeat own frames, keep crossing frames, play line faults.

    Line faults (armed with `arm`): "nak", "bad-crc", "stall", "silent", "drop-ack" count frames,
    "disconnect" counts seconds; other names are just counted for the caller's `take`. `ignore`
    may swallow a good frame unACKed. Every timer (T1, T2, stall, disconnect) and every wait
    runs on `clock`.
    """

    def __init__(self, stop: threading.Event, ignore: Callable[[bytes], bool], *, t2_s: float = T2_S,
                 strict: bool = False, clock: Clock = REAL_CLOCK) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.quiet = False
        self.awaiting_status_answer = False
        self._stop = stop
        self._ignore = ignore
        self._port: Port | None = None
        self._lock = threading.Lock()
        self._faults: dict[str, int] = {}
        self._disconnect_until = 0.0
        self._reader = FrameReader()
        self._inbox: deque[bytes] = deque()
        self._answer: str | None = None
        self._t2_s = t2_s
        self._strict = strict
        self._sending = False
        self._clock = clock

    def attach(self, port: Port) -> None:
        """Start using `port`."""
        self._port = port

    def arm(self, fault: str, count: int) -> None:
        """Arm a fault for the next `count` frames (or `count` seconds of "disconnect")."""
        with self._lock:
            if fault == "disconnect":
                self._disconnect_until = self._clock.monotonic() + count
            else:
                self._faults[fault] = self._faults.get(fault, 0) + count

    def reconnect(self) -> None:
        """End a "disconnect" fault now (the cable is plugged back in)."""
        with self._lock:
            self._disconnect_until = 0.0

    def take(self, fault: str) -> bool:
        """Use up one count of `fault`; False when it is not armed."""
        with self._lock:
            left = self._faults.get(fault, 0)
            if left:
                self._faults[fault] = left - 1
            return bool(left)

    def disconnected(self) -> bool:
        """True while the cable is "pulled"."""
        return self._clock.monotonic() < self._disconnect_until

    def send(self, apdu: bytes) -> bool:
        """Send an APDU in a frame, repeating on NAK or T2 silence; True once ACKed, False on a transmission error.

        With strict pairing, answers (80/84 ..) that reached the PT before the ECR acknowledged
        this frame are dropped: they cannot be answers to it. Loose pairing (the default, as on
        some real terminals) keeps them, and the next wait for an answer takes the first one.
        """
        if self._strict:
            self._drop_answers("it came before the question")
        self._sending = True
        try:
            for _ in range(1 + REPEATS):
                self._answer = None
                self._write_frame(encode_frame(apdu, corrupt_crc=self.take("bad-crc")))
                self._clock.wait(self._answered, self._t2_s)
                if self._answer == "ack":
                    return True
                log.info("%s %s: repeating", apdu.hex(" "), "NAKed" if self._answer else "not acknowledged")
        finally:
            self._sending = False
        log.error("transmission error: %s not acknowledged after %d sends", apdu.hex(" "), 1 + REPEATS)
        return False

    def _drop_answers(self, why: str) -> None:
        """Strict pairing: forget the answers waiting in the inbox."""
        kept = deque(raw for raw in self._inbox if not is_answer(raw))
        for raw in self._inbox:
            if is_answer(raw):
                log.info("stray answer %s dropped: %s (strict pairing)", raw.hex(" "), why)
        self._inbox = kept

    def _answered(self, block: float) -> bool:
        """Read a slice while a frame of ours waits for its ACK or NAK; True once it came."""
        self._read(block, forever=False)
        return self._answer is not None

    def next_apdu(self, deadline: float | None) -> bytes | None:
        """The next APDU the ECR sent (crossing frames first); None once the clock reaches `deadline`."""
        if not self._inbox:
            if deadline is not None and self._clock.monotonic() >= deadline:
                return None

            def arrived(block: float) -> bool:
                self._read(block, forever=deadline is None)
                return bool(self._inbox)

            if not self._clock.wait(arrived, math.inf if deadline is None else deadline - self._clock.monotonic()):
                return None
        return self._inbox.popleft()

    def _write(self, data: bytes) -> None:
        if self.disconnected():
            log.debug("cable pulled: %s not sent", data.hex(" "))
            return
        assert self._port is not None
        self.bytes_out += self._port.write(data)

    def _write_frame(self, frame: bytes) -> None:
        if self.take("stall"):
            log.info("stalling %.1f s inside a frame (fault)", STALL_S)
            self._write(frame[:len(frame) // 2])
            if self._clock.wait(self._stop.wait, STALL_S):
                raise Stopped
            frame = frame[len(frame) // 2:]
        self._write(frame)

    def _read(self, block: float, forever: bool) -> None:
        """Read for at most one slice (and `block` seconds) and act on what arrived; `forever`: nothing timed waits."""
        if self._stop.is_set():
            raise Stopped
        timeout = min(SLICE_S, block)
        t1 = self._reader.t1_deadline()
        if t1 is not None:
            timeout = min(timeout, max(0.0, t1 - self._clock.monotonic()))
        self.quiet = forever and t1 is None and not self.disconnected()
        assert self._port is not None
        data = self._port.read(timeout)
        if not data:
            found = self._reader.expire(self._clock.monotonic())
        else:
            self.quiet = False
            self.bytes_in += len(data)
            if self.disconnected():
                log.debug("cable pulled: %s discarded", data.hex(" "))
                self._reader.reset()
                return
            found = self._reader.feed(data, self._clock.monotonic())
        for item in found:
            self.quiet = False
            self._on_received(item)

    def _on_received(self, item: Received) -> None:
        if item.kind in ("ack", "nak"):
            self._answer = item.kind
            return
        if self.take("silent"):
            log.info("frame ignored (fault silent)")
            return
        if item.kind == "broken":
            log.info("broken frame (%s): NAK", item.why)
            self._write(NAK)
            return
        if self.take("nak"):
            log.info("frame %s NAKed (fault)", item.apdu.hex(" "))
            self._write(NAK)
            return
        if self._ignore(item.apdu):
            return
        if self.awaiting_status_answer and is_answer(item.apdu) and self.take("drop-ack"):
            log.info("ACK for %s withheld (fault drop-ack)", item.apdu.hex(" "))
        else:
            self._write(ACK)
        if self._strict and self._sending and self._answer is None and is_answer(item.apdu):
            log.info("stray answer %s dropped: it crossed the question (strict pairing)", item.apdu.hex(" "))
            return
        self._inbox.append(item.apdu)


@dataclass(frozen=True)
class PtyLink:
    """A pseudo-terminal pair: the simulator serves the master, the ECR opens slave_path (or the link to it)."""

    master_fd: int
    slave_fd: int
    slave_path: str
    link: Path | None

    def close(self) -> None:
        """Close both ends and remove the symlink this pair created."""
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.slave_path:
            self.link.unlink()
        for fd in (self.master_fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError as exc:
                log.debug("closing fd %d: %s", fd, exc)


def open_pty(link: Path | None = None) -> PtyLink:
    """Open a raw pty pair, keeping the slave open so the master never sees EIO; optionally symlink `link` to it."""
    master_fd, slave_fd = os.openpty()
    tty.setraw(slave_fd)
    slave_path = os.ttyname(slave_fd)
    if link is not None:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(slave_path)
    return PtyLink(master_fd, slave_fd, slave_path, link)
