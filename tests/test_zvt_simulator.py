"""The ZVT terminal simulator (PT side): hand-written ZVT bytes over a real pty, exact frames expected back.

Over 600 lines on purpose: every case writes its frames by hand (hex, from docs/zvt.md) and
reads the exact bytes back; the frames are the bulk of the file, and they share one pty pair.
"""
from __future__ import annotations

import os
import select
import termios
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import serial
from conftest import wait_for
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.payment.zvt import pt_codec, pt_wire
from drivers.payment.zvt.simulator import Behaviour, PtyLink, Simulator, open_pty

ACK, NAK = b"\x06", b"\x15"
REGISTRATION = "10 02 06 00 06 12 34 56 BA 09 78 10 03 24 C3"
POSITIVE_FRAME = "10 02 80 00 00 10 03 F5 1F"
INSERT_CARD = "04 FF 12 0A 06 0F 24 0D 07 0B 49 6E 73 65 72 74 20 63 61 72 64"
PLEASE_WAIT = "04 FF 12 0E 06 0F 24 0D 07 0B 50 6C 65 61 73 65 20 77 61 69 74"
ABORTED = "06 1E 01 6C"
COMPLETION = "06 0F 02 27 00"
ENQUIRY = "05 01 03 12 34 56"


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """conftest.wait_for with this file's usual 3 s."""
    wait_for(predicate, timeout)


def crc(data: bytes) -> int:
    """The test's own CRC-16/KERMIT (reflected 0x8408, init 0)."""
    value = 0
    for byte in data:
        for bit in range(8):
            mix = (value ^ (byte >> bit)) & 1
            value >>= 1
            if mix:
                value ^= 0x8408
    return value


def frame(hexed: str) -> bytes:
    """The frame carrying the APDU `hexed`."""
    apdu = bytes.fromhex(hexed)
    check = crc(apdu + b"\x03")
    return b"\x10\x02" + apdu.replace(b"\x10", b"\x10\x10") + b"\x10\x03" + bytes([check & 0xFF, check >> 8])


def hx(text: str) -> str:
    """Text as hex."""
    return text.encode("cp437").hex()


def apdu(command: str, data: str = "") -> str:
    """`command` + LEN + `data` (short APDUs only), as hex."""
    return f"{command} {len(bytes.fromhex(data)):02X} {data}"


def llvar(length: int) -> str:
    """An LLVAR length prefix: `F1 F2` for 12 bytes."""
    return " ".join(f"F{digit}" for digit in f"{length:02d}")


def status(code: str, text: str) -> str:
    """04 FF with the text as TLV 24/07."""
    n = len(text)
    return apdu("04 FF", f"{code} 06 {n + 4:02X} 24 {n + 2:02X} 07 {n:02X} {hx(text)}")


def auth(amount: int = 190, window: int = 30) -> str:
    """Authorization of `amount` cents EUR, PT chooses the payment type, vending window `window` s."""
    return apdu("06 01", f"04 {amount:012d} 49 09 78 19 40 01 {window:02X}")


def approval(amount: int, n: int, hhmmss: str, mmdd: str, brand: str = "VISA", card: str = "0A",
             pan: str = "F0 F8 41 11 11 EE EE EE 11 11") -> str:
    """The approved 04 0F for the n-th payment (trace, receipt and turnover n)."""
    code = f"{n * 7919 % 0x1000000:06X}  "
    return apdu("04 0F", f"27 00 04 {amount:012d} 0B {n:06d} 0C {hhmmss} 0D {mmdd} 17 00 01 19 40 22 {pan} "
                         f"29 52 50 00 01 3B {hx(code)} 49 09 78 87 {n:04d} 88 {n:06d} 8A {card} "
                         f"8B {llvar(len(brand) + 1)} {hx(brand)} 00")


class Ecr:
    """The test's end of the line: raw bytes to and from the pty slave, with arrival times."""

    def __init__(self, path: str = "", fd: int = -1) -> None:
        self.path = path
        self.fd = fd
        self.buf = bytearray()
        self.stamps: list[float] = []
        self.bytes_in = 0
        self.bytes_out = 0
        if path:
            self.reopen()

    def reopen(self) -> None:
        """Close and open the slave path again, dropping unread input, as a restarted station does."""
        self.close()
        self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        termios.tcflush(self.fd, termios.TCIFLUSH)
        self.buf.clear()
        self.stamps.clear()

    def close(self) -> None:
        """Close the slave end (once)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def write(self, data: bytes) -> None:
        """Put bytes on the line."""
        os.write(self.fd, data)
        self.bytes_out += len(data)

    def _fill(self, deadline: float) -> bool:
        if not select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            return False
        data = os.read(self.fd, 4096)
        self.buf += data
        self.stamps += [time.monotonic()] * len(data)
        self.bytes_in += len(data)
        return True

    def _take(self, n: int) -> tuple[bytes, list[float]]:
        data, stamps = bytes(self.buf[:n]), self.stamps[:n]
        del self.buf[:n], self.stamps[:n]
        return data, stamps

    def read(self, n: int, timeout: float = 3.0) -> bytes:
        """Exactly n bytes."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            assert self._fill(deadline), f"wanted {n} bytes, got {self.buf.hex(' ')}"
        return self._take(n)[0]

    def nothing(self, within: float = 0.3) -> None:
        """Nothing arrives within `within` seconds."""
        self._fill(time.monotonic() + within)
        assert not self.buf, f"unexpected {self.buf.hex(' ')}"

    def read_frame(self, timeout: float = 3.0, skip_noise: bool = False) -> tuple[bytes, list[float]]:
        """One whole raw frame and the arrival time of each byte."""
        deadline = time.monotonic() + timeout
        while True:
            if skip_noise:
                start = self.buf.find(b"\x10\x02")
                self._take(start if start >= 0 else max(0, len(self.buf) - 1))
            end = self._frame_end()
            if end:
                return self._take(end)
            assert self._fill(deadline), f"no whole frame: {self.buf.hex(' ')}"

    def _frame_end(self) -> int:
        if len(self.buf) >= 2:
            assert self.buf[:2] == b"\x10\x02", f"not a frame: {self.buf.hex(' ')}"
        i = 2
        while i + 1 < len(self.buf):
            if self.buf[i] == 0x10:
                if self.buf[i + 1] == 0x03:
                    return i + 4 if i + 4 <= len(self.buf) else 0
                i += 2
            else:
                i += 1
        return 0

    def command(self, hexed: str) -> None:
        """Send an APDU and see it ACKed."""
        self.write(frame(hexed))
        assert self.read(1) == ACK

    def expect(self, hexed: str) -> None:
        """The next frame carries exactly `hexed`; ACK it."""
        raw, _ = self.read_frame()
        assert raw.hex(" ") == frame(hexed).hex(" ")
        self.write(ACK)

    def receive(self) -> bytes:
        """The next frame (CRC checked), ACKed; its APDU."""
        raw, _ = self.read_frame()
        body = raw[2:-4].replace(b"\x10\x10", b"\x10")
        assert raw[-2:] == crc(body + b"\x03").to_bytes(2, "little")
        self.write(ACK)
        return body

    def answer(self, hexed: str = "80 00 00") -> None:
        """Answer the PT's last message."""
        self.command(hexed)

    def ask(self, hexed: str) -> None:
        """Send a command, expect 80 00 00 for it."""
        self.command(hexed)
        self.expect("80 00 00")


def expect_approval(ecr: Ecr, amount: int, n: int, **kwargs: str) -> str:
    """Receive the approval 04 0F and check every byte; its time and date must be the wall clock's."""
    got = ecr.receive()
    hhmmss, mmdd = got[17:20].hex(), got[21:23].hex()
    now = datetime.now()
    drift = abs(now.hour * 3600 + now.minute * 60 + now.second
                - (int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:])))
    assert min(drift, 86400 - drift) <= 5
    assert mmdd == now.strftime("%m%d")
    expected = approval(amount, n, hhmmss, mmdd, **kwargs)
    assert got.hex(" ") == bytes.fromhex(expected).hex(" ")
    return expected


def start_payment(ecr: Ecr, amount: int = 190, window: int = 30) -> None:
    """Authorization up to the 04 0F: 80 00 00 and the two default statuses, answered."""
    ecr.ask(auth(amount, window))
    for text in (INSERT_CARD, PLEASE_WAIT):
        ecr.expect(text)
        ecr.answer()


def book(ecr: Ecr, amount: int, n: int, **kwargs: str) -> None:
    """A whole approved payment, booked with 80 00 00."""
    start_payment(ecr, amount)
    expect_approval(ecr, amount, n, **kwargs)
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()


def events(sim: Simulator) -> list[str]:
    """The journal's event names."""
    return [entry["event"] for entry in sim.journal()]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., tuple[Simulator, Ecr]]]:
    """Start simulators on fresh ptys (journal in tmp_path); all stopped and closed afterwards."""
    made: list[tuple[PtyLink, Simulator, Ecr]] = []

    def start(**kwargs: object) -> tuple[Simulator, Ecr]:
        pty = open_pty()
        options: dict = {"answer_timeout_s": 1.0, "ask_again_s": 0.2, **kwargs}
        sim = Simulator(pty.master_fd, tmp_path / "pt.jsonl", **options)
        sim.start()
        ecr = Ecr(pty.slave_path)
        made.append((pty, sim, ecr))
        return sim, ecr

    yield start
    for pty, sim, ecr in made:
        sim.stop()
        ecr.close()
        pty.close()


@pytest.fixture
def pair(make: Callable[..., tuple[Simulator, Ecr]]) -> tuple[Simulator, Ecr]:
    """One started simulator and the test's ECR end."""
    return make()


# -- wire ------------------------------------------------------------------------------------

def test_crc_check_value_and_the_documented_frames() -> None:
    assert pt_wire.crc16_kermit(b"123456789") == 0x2189 == crc(b"123456789")
    documented = {"80 00 00": POSITIVE_FRAME, "06 00 06 12 34 56 BA 09 78": REGISTRATION,
                  "06 01 07 04 00 00 00 00 10 00": "10 02 06 01 07 04 00 00 00 00 10 10 00 10 03 62 91",
                  "06 0F 00": "10 02 06 0F 00 10 03 C6 33"}
    for apdu_hex, frame_hex in documented.items():
        assert pt_wire.encode_frame(bytes.fromhex(apdu_hex)) == bytes.fromhex(frame_hex) == frame(apdu_hex)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=3, max_size=300), st.lists(st.integers(1, 40), min_size=1, max_size=20))
def test_reader_finds_any_frame_in_any_chunking(body: bytes, cuts: list[int]) -> None:
    raw = b"\x06\xff" + frame(body.hex()) + b"\x15"
    reader, found, pos, now = pt_wire.FrameReader(), [], 0, 0.0
    for cut in cuts * (len(raw) // sum(cuts) + 1):
        found += reader.feed(raw[pos:pos + cut], now)
        pos, now = pos + cut, now + 0.01
    assert found == [pt_wire.Received("ack"), pt_wire.Received("frame", body), pt_wire.Received("nak")]


def test_bmp_parser_and_extended_length() -> None:
    fields = pt_codec.parse_bmps(bytes.fromhex("04 000000000190 22 F0 F0 06 06 24 04 07 02 48 69 3C F0 F0 F1 41"))
    assert fields == {0x04: bytes.fromhex("000000000190"), 0x22: b"", 0x06: bytes.fromhex("24 04 07 02 48 69"),
                      0x3C: b"A"}
    with pytest.raises(pt_codec.UnknownBmp):
        pt_codec.parse_bmps(bytes.fromhex("04 000000000190 D0 01"))
    with pytest.raises(pt_codec.WireError):
        pt_codec.parse_bmps(bytes.fromhex("06 05 24 09 07 02 48 69"))
    long = pt_codec.encode_apdu(0x06, 0xD1, bytes(300))
    assert long[:5] == bytes.fromhex("06 D1 FF 2C 01") and pt_codec.decode_apdu(long).data == bytes(300)


def test_script_words() -> None:
    sim = Simulator(-1)
    for words in (["approve"], ["approve", "girocard"], ["decline", "05", "No", "funds"], ["wait-card"],
                  ["silent"], ["pin", "1.5", "AMEX"]):
        sim.script_words(words)
    assert list(sim._script) == [Behaviour(), Behaviour(brand="girocard"),
                                 Behaviour(kind="decline", result_code=5, text="No funds"), Behaviour(kind="wait-card"),
                                 Behaviour(kind="silent"), Behaviour(pin_delay_s=1.5, brand="AMEX")]
    for bad in ([], ["decline"], ["decline", "0x1G"], ["decline", "100"], ["decline", "00"], ["pin", "soon"],
                ["refund"], ["silent", "please"]):
        with pytest.raises(ValueError, match=r"."):
            sim.script_words(bad)
    with pytest.raises(ValueError, match="fault"):
        sim.inject("lightning")


# -- commands --------------------------------------------------------------------------------

def test_registration_reply(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    ecr.write(bytes.fromhex(REGISTRATION))
    assert ecr.read(1) == ACK
    raw, _ = ecr.read_frame()
    assert raw == bytes.fromhex(POSITIVE_FRAME)
    ecr.write(ACK)
    ecr.expect("06 0F 0A 19 00 29 52 50 00 01 49 09 78")
    ecr.answer()
    wait_until(sim.quiet)
    assert (sim.bytes_in, sim.bytes_out) == (ecr.bytes_out, ecr.bytes_in)


@pytest.mark.parametrize("terminal_status", [0x00, 0x51, 0xDF])
def test_status_enquiry(pair: tuple[Simulator, Ecr], terminal_status: int) -> None:
    sim, ecr = pair
    sim.set_status(terminal_status)
    ecr.ask(ENQUIRY)
    ecr.expect(f"06 0F 0B F0 F0 F7 {hx('SIM 1.0')} {terminal_status:02X}")
    ecr.answer()
    if terminal_status:
        ecr.command(auth())
        ecr.expect("84 83 00")
        assert events(sim) == []


def test_approve_booked(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    book(ecr, 190, 1)
    wait_until(sim.quiet)
    journal = sim.journal()
    assert [e["event"] for e in journal] == ["started", "authorized", "booked"]
    assert {k: journal[1][k] for k in ("receipt", "trace", "amount", "currency", "turnover", "brand")} == {
        "receipt": "0001", "trace": "000001", "amount": 190, "currency": 978, "turnover": 1, "brand": "VISA"}
    assert journal[2]["receipt"] == "0001" and journal[2]["ts"].endswith("+00:00")


def test_brand_and_empty_pan(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.script(Behaviour(brand="girocard", pan="", statuses=()))
    ecr.ask(auth(1000))
    expect_approval(ecr, 1000, 1, brand="girocard", card="05", pan="F0 F0")
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()


def test_busy_vending_answer_asks_again(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    start_payment(ecr)
    first = expect_approval(ecr, 190, 1)
    ecr.answer("84 9C 00")
    asked = time.monotonic()
    again = ecr.receive()
    assert time.monotonic() - asked >= 0.15
    assert again == bytes.fromhex(first)
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "authorized", "booked"]


def test_refused_vending_answer_reverses(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    start_payment(ecr)
    expect_approval(ecr, 190, 1)
    ecr.answer("84 66 00")
    ecr.expect(ABORTED)
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "authorized", "reversed"]


def test_no_vending_answer_repeats_then_auto_reverses(make: Callable[..., tuple[Simulator, Ecr]]) -> None:
    sim, ecr = make(answer_timeout_s=0.3)
    start_payment(ecr, window=1)
    first = bytes.fromhex(expect_approval(ecr, 190, 1))
    times = [time.monotonic()]
    while (got := ecr.receive()) == first:
        times.append(time.monotonic())
    assert got == bytes.fromhex(ABORTED)
    ecr.answer()
    assert len(times) >= 3 and all(b - a >= 0.25 for a, b in zip(times, times[1:]))
    assert times[-1] - times[0] < 1.3
    wait_until(sim.quiet)
    assert events(sim) == ["started", "authorized", "auto-reversed"]


def test_restarted_ecr_books_within_the_window(make: Callable[..., tuple[Simulator, Ecr]]) -> None:
    sim, ecr = make(answer_timeout_s=0.3)
    start_payment(ecr)
    first = bytes.fromhex(expect_approval(ecr, 190, 1))
    ecr.reopen()
    raw, _ = ecr.read_frame(skip_noise=True)
    assert raw == frame(first.hex())
    ecr.write(ACK)
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "authorized", "booked"]


def test_decline(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.script_words(["decline", "05", "Insufficient", "funds"])
    start_payment(ecr, 450)
    ecr.expect(status("1D", "Insufficient funds"))
    ecr.answer()
    ecr.expect(apdu("04 0F", "27 05 04 000000000450 0B 000001"))
    ecr.answer()
    ecr.expect("06 1E 01 05")
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "declined"]
    assert sim.journal()[1]["result_code"] == 5


def test_wait_card_then_abort(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.script_words(["wait-card"])
    ecr.ask(auth())
    ecr.expect(INSERT_CARD)
    ecr.answer()
    wait_until(sim.quiet)
    ecr.command(ENQUIRY)
    ecr.expect("84 83 00")
    ecr.ask("06 B0 00")
    ecr.expect(ABORTED)
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "aborted"]


def test_abort_crossing_a_status(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    ecr.ask(auth())
    raw, _ = ecr.read_frame()
    assert raw == frame(INSERT_CARD)
    ecr.write(frame("06 B0 00"))
    assert ecr.read(1) == ACK
    ecr.write(ACK)
    ecr.answer()
    ecr.expect("80 00 00")
    ecr.expect(ABORTED)
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "aborted"]


@pytest.mark.parametrize(("pairing", "ending"), [("loose", "booked"), ("strict", "reversed")])
def test_an_answer_that_crosses_the_next_question_is_taken_loosely_dropped_strictly(
        make: Callable[..., tuple[Simulator, Ecr]], pairing: str, ending: str) -> None:
    """An ECR answer on the line before the PT's question was ACKed: loose takes it for that question's answer."""
    sim, ecr = make(pairing=pairing)
    ecr.ask(auth(200))
    ecr.expect(INSERT_CARD)
    ecr.answer()
    raw, _ = ecr.read_frame()
    assert raw == frame(PLEASE_WAIT)
    ecr.command("80 00 00")  # one positive answer too many, before the ECR ACKs Please wait
    ecr.write(ACK)
    raw, _ = ecr.read_frame()
    assert raw[2:4] == b"\x04\x0f", "the approval"
    ecr.command("80 00 00")  # the ECR's answer to Please wait, before it ACKs the approval
    ecr.write(ACK)
    if pairing == "strict":
        ecr.answer("84 66 00")  # the ECR's real vending answer: no session
        ecr.expect(ABORTED)
    else:
        ecr.expect(COMPLETION)
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim)[-1] == ending


def test_abort_after_status_information_is_refused(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    start_payment(ecr)
    expect_approval(ecr, 190, 1)
    ecr.command("06 B0 00")
    ecr.expect("84 83 00")
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "authorized", "booked"]


def test_pin_entry(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.script_words(["pin", "0.3"])
    ecr.ask(auth())
    ecr.expect(INSERT_CARD)
    ecr.answer()
    ecr.expect(status("01", "Enter PIN"))
    ecr.answer()
    asked = time.monotonic()
    ecr.expect(PLEASE_WAIT)
    assert time.monotonic() - asked >= 0.3
    ecr.answer()
    expect_approval(ecr, 190, 1)
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()


def test_reversal(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    book(ecr, 190, 1)
    ecr.ask(apdu("06 30", "12 34 56 87 00 01"))
    ecr.expect(apdu("04 0F", "27 00 04 000000000190 0B 000001 87 0001 49 0978"))
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()
    ecr.ask(apdu("06 30", "12 34 56 87 00 01"))
    ecr.expect("06 1E 01 B4")
    ecr.answer()
    ecr.ask(apdu("06 30", "12 34 56 87 00 99"))
    ecr.expect("06 1E 01 B5")
    ecr.answer()
    wait_until(sim.quiet)
    assert events(sim) == ["started", "authorized", "booked", "reversed"]


def expect_totals(ecr: Ecr, total: int, totals: str) -> None:
    """The end-of-day 04 0F (time and date taken from the frame) and its completion."""
    got = ecr.receive()
    hhmmss, mmdd = got[16:19].hex(), got[20:22].hex()
    assert mmdd == datetime.now().strftime("%m%d")
    expected = apdu("04 0F", f"27 00 04 {total:012d} 49 09 78 0C {hhmmss} 0D {mmdd} 60 F0 F5 F3 {totals}")
    assert got.hex(" ") == bytes.fromhex(expected).hex(" ")
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()


def test_end_of_day_totals(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    book(ecr, 190, 1)
    sim.script_words(["approve", "girocard"])
    book(ecr, 250, 2, brand="girocard", card="05")
    sim.script_words(["approve", "Mastercard"])
    start_payment(ecr, 300)
    expect_approval(ecr, 300, 3, brand="Mastercard", card="06")
    ecr.answer("84 66 00")
    ecr.expect(ABORTED)
    ecr.answer()
    zero = "00 000000000000"
    ecr.ask("06 50 03 12 34 56")
    expect_totals(ecr, 440, f"0001 0002 01 000000000250 {zero} {zero} {zero} 01 000000000190 {zero} {zero}")
    ecr.ask("06 50 03 12 34 56")
    expect_totals(ecr, 0, "0000 0000" + f" {zero}" * 7)
    wait_until(sim.quiet)
    eod = [entry for entry in sim.journal() if entry["event"] == "end-of-day"]
    assert [(e["amount"], e["count"], e["totals"]["visa"]) for e in eod] == [
        (440, 2, {"count": 1, "amount": 190}), (0, 0, {"count": 0, "amount": 0})]


@pytest.mark.parametrize("command", [
    "08 01 00",                                        # unknown command
    apdu("06 01", "04 000000000190 D0 01"),             # unknown BMP
    apdu("06 01", "49 09 78"),                          # no amount
    "06 01 09 04 00 00 00 01 90",                       # LEN disagrees with the data
    "06 B0 00",                                         # abort with no payment
])
def test_refused_commands(pair: tuple[Simulator, Ecr], command: str) -> None:
    sim, ecr = pair
    ecr.command(command)
    ecr.expect("84 83 00")
    wait_until(sim.quiet)
    ecr.nothing(0.1)
    ecr.ask("06 02 00")


def test_silent_terminal_ignores_the_authorization_and_its_repeats(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.script_words(["silent"])
    for _ in range(3):
        ecr.write(frame(auth()))
        ecr.nothing()
    ecr.ask(ENQUIRY)
    ecr.expect(f"06 0F 0B F0 F0 F7 {hx('SIM 1.0')} 00")
    ecr.answer()
    book(ecr, 190, 1)


# -- link layer and faults -------------------------------------------------------------------

def test_noise_bad_crc_and_t1_gap(pair: tuple[Simulator, Ecr]) -> None:
    _sim, ecr = pair
    ecr.write(bytes.fromhex("FF 00 10 41 03"))
    bad = bytearray(frame("06 02 00"))
    bad[-1] ^= 1
    ecr.write(bytes(bad))
    assert ecr.read(1) == NAK
    ecr.write(frame("06 02 00")[:4])
    sent = time.monotonic()
    assert ecr.read(1) == NAK
    assert time.monotonic() - sent >= 0.19
    ecr.ask("06 02 00")


def test_crossing_frame_is_kept(pair: tuple[Simulator, Ecr]) -> None:
    _sim, ecr = pair
    ecr.write(frame("06 02 00"))
    assert ecr.read(1) == ACK
    raw, _ = ecr.read_frame()
    assert raw == bytes.fromhex(POSITIVE_FRAME)
    ecr.write(frame("06 02 00"))
    assert ecr.read(1) == ACK
    ecr.write(ACK)
    ecr.expect("80 00 00")


def test_fault_nak(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.inject("nak", 2)
    for _ in range(2):
        ecr.write(bytes.fromhex(REGISTRATION))
        assert ecr.read(1) == NAK
    ecr.ask("06 00 06 12 34 56 BA 09 78")
    ecr.expect("06 0F 0A 19 00 29 52 50 00 01 49 09 78")
    ecr.answer()


def test_fault_bad_crc(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.inject("bad-crc")
    ecr.command("06 02 00")
    raw, _ = ecr.read_frame()
    assert raw == bytes.fromhex("10 02 80 00 00 10 03 0A E0")
    ecr.write(NAK)
    ecr.expect("80 00 00")


def test_fault_stall(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.inject("stall")
    ecr.command("06 02 00")
    raw, stamps = ecr.read_frame()
    assert raw == bytes.fromhex(POSITIVE_FRAME)
    assert max(b - a for a, b in zip(stamps, stamps[1:])) > 0.2
    ecr.write(NAK)
    raw, stamps = ecr.read_frame()
    assert raw == bytes.fromhex(POSITIVE_FRAME) and stamps[-1] - stamps[0] < 0.2
    ecr.write(ACK)


def test_fault_silent(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.inject("silent")
    ecr.write(frame("06 02 00"))
    ecr.nothing()
    ecr.ask("06 02 00")


def test_fault_busy(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.inject("busy")
    ecr.command(ENQUIRY)
    ecr.expect("84 9C 00")
    ecr.ask(ENQUIRY)
    ecr.expect(f"06 0F 0B F0 F0 F7 {hx('SIM 1.0')} 00")
    ecr.answer()


def test_fault_ignore_abort(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.script(Behaviour(kind="wait-card"))
    ecr.ask(auth())
    ecr.expect(INSERT_CARD)
    ecr.answer()
    sim.inject("ignore-abort")
    ecr.command("06 B0 00")
    ecr.nothing()
    assert sim.quiet()
    ecr.ask("06 B0 00")
    ecr.expect(ABORTED)
    ecr.answer()


def test_fault_disconnect(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.inject("disconnect", 1)
    assert not sim.quiet()
    ecr.write(frame("06 02 00"))
    ecr.nothing()
    wait_until(sim.quiet, 2.0)
    ecr.ask("06 02 00")
    wait_until(lambda: sim.quiet() and sim.bytes_in == ecr.bytes_out)


def test_a_pulled_cable_stays_pulled_until_plugged_back_in(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    sim.inject("disconnect", 3600)
    ecr.write(frame("06 02 00"))
    ecr.nothing()
    sim.reconnect()
    wait_until(sim.quiet)
    ecr.ask("06 02 00")
    wait_until(lambda: sim.quiet() and sim.bytes_in == ecr.bytes_out)


def test_fault_drop_ack(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    start_payment(ecr)
    expect_approval(ecr, 190, 1)
    sim.inject("drop-ack")
    ecr.write(frame("80 00 00"))
    raw, _ = ecr.read_frame()                # no ACK: the completion comes instead (crossing)
    assert raw == frame(COMPLETION)
    ecr.write(ACK)
    ecr.answer()                              # the ECR repeats its unacknowledged 80 00 00
    ecr.answer()                              # and answers the completion it kept
    wait_until(sim.quiet)
    ecr.nothing(0.1)
    assert events(sim) == ["started", "authorized", "booked"]


# -- memory, quiet, stop ---------------------------------------------------------------------

def test_journal_recovery(make: Callable[..., tuple[Simulator, Ecr]]) -> None:
    first, ecr = make()
    book(ecr, 190, 1)
    start_payment(ecr, 500)
    expect_approval(ecr, 500, 2)
    first.stop()
    second, ecr = make()
    assert events(second)[-2:] == ["authorized", "auto-reversed"]
    assert second.journal()[-1]["receipt"] == "0002"
    book(ecr, 700, 3)
    ecr.ask(apdu("06 30", "12 34 56 87 00 02"))
    ecr.expect("06 1E 01 B4")
    ecr.answer()
    ecr.ask(apdu("06 30", "12 34 56 87 00 01"))
    ecr.expect(apdu("04 0F", "27 00 04 000000000190 0B 000001 87 0001 49 0978"))
    ecr.answer()
    ecr.expect(COMPLETION)
    ecr.answer()


def test_quiet_and_prompt_stop(pair: tuple[Simulator, Ecr]) -> None:
    sim, ecr = pair
    wait_until(sim.quiet)
    sim.script(Behaviour(kind="wait-card"))
    ecr.ask(auth())
    raw, _ = ecr.read_frame()
    assert raw == frame(INSERT_CARD)
    assert not sim.quiet()
    ecr.write(ACK)
    ecr.answer()
    wait_until(sim.quiet)
    assert (sim.bytes_in, sim.bytes_out) == (ecr.bytes_out, ecr.bytes_in)
    began = time.monotonic()
    sim.stop()
    sim.stop()
    assert time.monotonic() - began < 0.3
    assert not sim.quiet()


def test_pyserial_port_object() -> None:
    pty = open_pty()
    port = serial.Serial(pty.slave_path, timeout=1.0)
    sim = Simulator(port)
    sim.start()
    try:
        ecr = Ecr(fd=pty.master_fd)
        ecr.ask(ENQUIRY)
        ecr.expect(f"06 0F 0B F0 F0 F7 {hx('SIM 1.0')} 00")
        ecr.answer()
        wait_until(lambda: sim.quiet() and sim.bytes_in == ecr.bytes_out)
    finally:
        sim.stop()
        port.close()
        pty.close()
    assert port.timeout == 1.0 and sim.journal() == []
