"""ZVT link layer: frames, CRC, the incremental decoder and the ACK/NAK/repeat rules, on a fake port and clock."""
from __future__ import annotations

import logging

import pytest
from fake_port import BYTE_TIME_S, IDLE_STEP_S, answering, make_link
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.payment.zvt.link import (
    ACK,
    MAX_APDU,
    NAK,
    RETRIES,
    T1_S,
    T2_S,
    Control,
    Corrupt,
    Frame,
    FrameDecoder,
    TransmissionError,
    crc16_kermit,
    encode_frame,
)

DOC_FRAMES = {
    "800000": "10 02 80 00 00 10 03 F5 1F",
    "060006123456BA0978": "10 02 06 00 06 12 34 56 BA 09 78 10 03 24 C3",
    "06010704000000001000": "10 02 06 01 07 04 00 00 00 00 10 10 00 10 03 62 91",
    "060F00": "10 02 06 0F 00 10 03 C6 33",
}
def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` split at the given positions (taken modulo its length)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def hexbytes(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text.replace(" ", ""))


# --- CRC and frames -------------------------------------------------------------------------------

def test_crc_check_value() -> None:
    assert crc16_kermit(b"123456789") == 0x2189
    assert crc16_kermit(b"") == 0


@pytest.mark.parametrize(("apdu", "frame"), DOC_FRAMES.items())
def test_documented_frames_encode(apdu: str, frame: str) -> None:
    assert encode_frame(hexbytes(apdu)) == hexbytes(frame)


@pytest.mark.parametrize(("apdu", "frame"), DOC_FRAMES.items())
def test_documented_frames_decode(apdu: str, frame: str) -> None:
    assert FrameDecoder().feed(hexbytes(frame), 0.0) == [Frame(hexbytes(apdu))]


def test_crc_bytes_are_not_stuffed() -> None:
    apdu = next(bytes([0x84, n, 0x00]) for n in range(256) if crc16_kermit(bytes([0x84, n, 0x00, 0x03])) & 0xFF == 0x10)
    crc = crc16_kermit(apdu + b"\x03")
    frame = encode_frame(apdu)
    assert frame[-2:] == bytes([0x10, crc >> 8]) and frame == b"\x10\x02" + apdu + b"\x10\x03" + frame[-2:]
    assert FrameDecoder().feed(frame, 0.0) == [Frame(apdu)]


# --- decoder --------------------------------------------------------------------------------------

def test_decoder_byte_by_byte_and_controls() -> None:
    decoder = FrameDecoder()
    events = []
    for byte in b"\x06" + encode_frame(b"\x06\x0f\x00") + b"\x15":
        events += decoder.feed(bytes([byte]), 0.0)
    assert events == [Control(ACK), Frame(b"\x06\x0f\x00"), Control(NAK)]


def test_decoder_ignores_noise_before_a_frame() -> None:
    noise = b"\x00\xff\x10\x41\x10\x10\x03"
    assert FrameDecoder().feed(noise + encode_frame(b"\x80\x00\x00"), 0.0) == [Frame(b"\x80\x00\x00")]


def test_decoder_bad_crc() -> None:
    frame = bytearray(encode_frame(b"\x80\x00\x00"))
    frame[-1] ^= 0x01
    [event] = FrameDecoder().feed(bytes(frame), 0.0)
    assert isinstance(event, Corrupt) and "CRC" in event.reason


def test_decoder_t1_gap_on_feed_drops_partial_and_starts_fresh() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"\x06\x00\x06\x12\x34\x56\xba\x09\x78")
    assert decoder.feed(frame[:6], 0.0) == [] and decoder.in_frame
    events = decoder.feed(frame[6:] + encode_frame(b"\x80\x00\x00"), T1_S)
    assert isinstance(events[0], Corrupt) and events[0].reason.startswith("T1")
    assert events[1:] == [Frame(b"\x80\x00\x00")]


def test_decoder_gap_just_below_t1_is_fine() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"\x80\x00\x00")
    decoder.feed(frame[:4], 0.0)
    assert decoder.feed(frame[4:], T1_S - 0.001) == [Frame(b"\x80\x00\x00")]


def test_decoder_expire() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x10\x02\x80", 1.0)
    assert decoder.expire(1.1) is None
    expired = decoder.expire(1.0 + T1_S)
    assert isinstance(expired, Corrupt) and not decoder.in_frame
    assert decoder.expire(5.0) is None


def test_decoder_bad_escape() -> None:
    events = FrameDecoder().feed(b"\x10\x02\x80\x10\x41\x00\x00", 0.0)
    assert len(events) == 1 and isinstance(events[0], Corrupt) and "escape" in events[0].reason


def test_decoder_restart_inside_a_frame_is_a_bad_escape_then_a_new_frame() -> None:
    events = FrameDecoder().feed(b"\x10\x02\x06\x01" + encode_frame(b"\x80\x00\x00"), 0.0)
    assert isinstance(events[0], Corrupt) and events[1:] == [Frame(b"\x80\x00\x00")]


def test_decoder_oversize_frame_is_corrupt_and_memory_is_bounded() -> None:
    decoder = FrameDecoder()
    body = b"\x00" * (MAX_APDU + 1)
    events = decoder.feed(b"\x10\x02" + body, 0.0)
    assert events == [] and len(decoder._apdu) <= MAX_APDU + 1
    [event] = decoder.feed(b"\x10\x03\x00\x00", 0.0)
    assert isinstance(event, Corrupt) and "oversize" in event.reason


def test_largest_apdu_passes() -> None:
    apdu = b"\x06\xd3\xff\xff\xff" + bytes(range(256)) * 255 + bytes(255)
    assert len(apdu) == MAX_APDU
    assert FrameDecoder().feed(encode_frame(apdu), 0.0) == [Frame(apdu)]


# --- Link.receive ---------------------------------------------------------------------------------

def test_receive_good_frame_is_acked() -> None:
    link, port, _ = make_link()
    port.arrive(hexbytes(DOC_FRAMES["060F00"]))
    assert link.receive(1.0) == b"\x06\x0f\x00"
    assert bytes(port.written) == b"\x06"
    assert link.bytes_in == 9 and link.bytes_out == 1


def test_receive_bad_crc_is_naked() -> None:
    link, port, _ = make_link()
    port.arrive(hexbytes("10 02 80 00 00 10 03 F5 1E"))
    assert link.receive(1.0) is None
    assert bytes(port.written) == b"\x15"


def test_receive_t1_gap_naks_and_drops_the_partial_frame() -> None:
    link, port, clock = make_link()
    frame = hexbytes(DOC_FRAMES["060006123456BA0978"])
    port.arrive(frame[:7])
    port.arrive(frame[7:], delay=0.5)
    start = clock()
    assert link.receive(1.0) is None
    assert bytes(port.written) == b"\x15"
    assert start + T1_S <= clock() and port.arrivals == []
    port.arrive(frame)
    assert link.receive(1.0) == hexbytes("060006123456BA0978")
    assert bytes(port.written) == b"\x15\x06"


def test_receive_unstuffs_dle() -> None:
    link, port, _ = make_link()
    port.arrive(hexbytes(DOC_FRAMES["06010704000000001000"]))
    assert link.receive(1.0) == hexbytes("06010704000000001000")


def test_receive_ignores_stray_controls_and_noise() -> None:
    link, port, _ = make_link()
    port.arrive(b"\x06\x15\x00\x55" + encode_frame(b"\x80\x00\x00"))
    assert link.receive(1.0) == b"\x80\x00\x00"
    assert bytes(port.written) == b"\x06"


def test_receive_times_out_on_the_clock() -> None:
    link, port, clock = make_link()
    start = clock()
    assert link.receive(0.5) is None
    assert start + 0.5 <= clock() < start + 0.5 + 2 * IDLE_STEP_S
    assert port.written == b""


def test_link_debug_log_masks_the_pan(caplog: pytest.LogCaptureFixture) -> None:
    apdu = hexbytes("04 0F 0A 27 00 22 F0 F5 67 99 99 12 3F")
    link, port, _ = make_link(answering(b"\x06"))
    port.arrive(encode_frame(apdu))
    with caplog.at_level(logging.DEBUG, logger="drivers.payment.zvt.link"):
        assert link.receive(1.0) == apdu
        link.send(apdu)
    assert "22 F0 F5 ** ** ** ** **" in caplog.text and "67 99" not in caplog.text


def test_receive_returns_frames_of_one_read_in_order() -> None:
    link, port, _ = make_link()
    port.arrive(encode_frame(b"\x04\xff\x01\x0a") + encode_frame(b"\x06\x0f\x00"))
    assert link.receive(1.0) == b"\x04\xff\x01\x0a"
    assert link.answer_pending()
    assert link.receive(0.0) == b"\x06\x0f\x00"
    assert bytes(port.written) == b"\x06\x06" and not link.answer_pending()


# --- Link.send ------------------------------------------------------------------------------------

def test_send_writes_stuffed_frame_and_returns_on_ack() -> None:
    link, port, _ = make_link(answering(b"\x06"))
    link.send(hexbytes("06010704000000001000"))
    assert port.writes == [hexbytes(DOC_FRAMES["06010704000000001000"])]


def test_send_repeats_after_nak() -> None:
    link, port, _ = make_link(answering(b"\x15", b"\x06"))
    link.send(b"\x06\x00\x06\x12\x34\x56\xba\x09\x78")
    assert port.writes == [hexbytes(DOC_FRAMES["060006123456BA0978"])] * 2


def test_send_repeats_after_t2_silence_then_succeeds() -> None:
    link, port, clock = make_link(answering(b"", b"\x06"))
    start = clock()
    link.send(b"\x05\x01\x00")
    assert port.writes == [encode_frame(b"\x05\x01\x00")] * 2
    assert T2_S <= clock() - start < T2_S + 1


@pytest.mark.parametrize("answer", [b"\x80\x00\x00", b"\x84\x66\x00"])
def test_an_answer_is_never_repeated_after_silence_only_after_a_nak(answer: bytes) -> None:
    """The other side may have the answer with only its ACK lost: a second copy would be one answer too many."""
    link, port, _clock = make_link(answering(b""))
    with pytest.raises(TransmissionError, match="not repeated"):
        link.send(answer)
    assert port.writes == [encode_frame(answer)]
    link, port, _clock = make_link(answering(b"\x15", b"\x06"))
    link.send(answer)
    assert port.writes == [encode_frame(answer)] * 2, "a NAK says it did not arrive: repeated"


def test_send_gives_up_after_three_sends_of_silence() -> None:
    link, port, clock = make_link()
    start = clock()
    with pytest.raises(TransmissionError, match="no ACK after 3 sends of 06 01"):
        link.send(hexbytes("06010704000000001000"))
    assert port.writes == [hexbytes(DOC_FRAMES["06010704000000001000"])] * (RETRIES + 1)
    assert clock() - start >= 3 * T2_S


def test_send_gives_up_after_three_naks() -> None:
    link, port, _ = make_link(answering(b"\x15", b"\x15", b"\x15", b"\x06"))
    with pytest.raises(TransmissionError, match="NAK"):
        link.send(b"\x06\xb0\x00")
    assert port.writes == [encode_frame(b"\x06\xb0\x00")] * 3


def test_send_acks_a_crossing_frame_and_keeps_it() -> None:
    crossing = encode_frame(b"\x04\xff\x01\x0a")
    link, port, _ = make_link(answering(crossing + b"\x06"))
    link.send(b"\x06\xb0\x00")
    assert port.writes == [encode_frame(b"\x06\xb0\x00"), b"\x06"]
    assert link.answer_pending()
    assert link.receive(0.0) == b"\x04\xff\x01\x0a"
    assert not link.answer_pending()


def test_send_naks_a_corrupt_frame_while_waiting_and_keeps_waiting() -> None:
    garbled = bytearray(encode_frame(b"\x04\xff\x01\x0a"))
    garbled[4] ^= 0xFF
    link, port, _ = make_link(answering(bytes(garbled) + b"\x06"))
    link.send(b"\x06\xb0\x00")
    assert port.writes == [encode_frame(b"\x06\xb0\x00"), b"\x15"]
    assert not link.answer_pending()


def test_send_ack_inside_a_partial_frame_is_not_an_ack() -> None:
    link, port, _ = make_link(answering(b"\x10\x02\x06", b"\x06"))
    link.send(b"\x05\x01\x00")
    assert port.writes == [encode_frame(b"\x05\x01\x00"), b"\x15", encode_frame(b"\x05\x01\x00")]


LINE_BYTES = st.sampled_from([0x10, 0x02, 0x03, 0x06, 0x15]) | st.integers(0, 255)


# --- fuzz -----------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(LINE_BYTES, max_size=400).map(bytes), st.lists(st.integers(0, 400), max_size=12))
def test_fuzz_decoder_never_raises_and_frames_have_valid_crc(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    events = [event for chunk in chunked(data, cuts) for event in decoder.feed(chunk, 0.0)]
    assert all(isinstance(event, (Frame, Control, Corrupt)) for event in events)
    for event in events:
        if isinstance(event, Frame):
            assert encode_frame(event.apdu) in data
        if isinstance(event, Control):
            assert event.byte in (ACK, NAK)


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE_BYTES, max_size=300).map(bytes), st.lists(st.integers(0, 700), max_size=10))
def test_fuzz_frames_survive_any_chunking(apdu: bytes, cuts: list[int]) -> None:
    data = encode_frame(apdu)
    decoder = FrameDecoder()
    events = [event for chunk in chunked(data, cuts) for event in decoder.feed(chunk, 0.0)]
    assert events == [Frame(apdu)]


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE_BYTES, min_size=3, max_size=60).map(bytes), st.data())
def test_fuzz_damaged_frames_never_yield_a_wrong_apdu(apdu: bytes, draw: st.DataObject) -> None:
    frame = bytearray(encode_frame(apdu))
    if draw.draw(st.booleans(), "truncate"):
        damaged = bytes(frame[:draw.draw(st.integers(0, len(frame) - 1), "keep")])
    else:
        for _ in range(draw.draw(st.integers(1, 3), "flips")):
            bit = draw.draw(st.integers(0, len(frame) * 8 - 1), "bit")
            frame[bit // 8] ^= 1 << (bit % 8)
        damaged = bytes(frame)
    for event in FrameDecoder().feed(damaged, 0.0):
        if isinstance(event, Frame):
            assert event.apdu == apdu or encode_frame(event.apdu) in damaged


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.5), st.binary(min_size=1, max_size=300)), max_size=8),
       st.floats(0.0, 3.0))
def test_fuzz_link_receive_terminates_within_its_timeout(arrivals: list[tuple[float, bytes]], timeout: float) -> None:
    link, port, clock = make_link()
    for delay, data in arrivals:
        port.arrive(data, delay)
    start = clock()
    result = link.receive(timeout)
    assert result is None or isinstance(result, bytes)
    assert clock() <= start + timeout + IDLE_STEP_S + 256 * BYTE_TIME_S
    assert set(port.written) <= {ACK, NAK}
