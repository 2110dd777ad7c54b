"""ZVT codec: APDU lengths, BCD, LL/LLL variables, BMP fields, TLV, texts, PAN masking and log redaction."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.payment.zvt.codec import (
    BMP_FORMATS,
    Apdu,
    Bmps,
    DecodeError,
    Tlv,
    bcd_decode,
    bcd_digits,
    bcd_encode,
    decode_bmps,
    decode_text,
    decode_tlv,
    encode_bmp,
    encode_tlv,
    lllvar,
    llvar,
    masked_pan,
    redacted,
    tlv_length,
    tlv_texts,
)


def hexbytes(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text.replace(" ", ""))


# --- APDU -----------------------------------------------------------------------------------------

def test_apdu_short_length() -> None:
    assert Apdu(0x80, 0x00).encode() == hexbytes("80 00 00")
    assert Apdu(0x06, 0x01, bytes(0xFE)).encode()[:3] == hexbytes("06 01 FE")
    assert Apdu.decode(hexbytes("06 00 06 12 34 56 BA 09 78")) == Apdu(0x06, 0x00, hexbytes("12 34 56 BA 09 78"))
    assert Apdu.decode(hexbytes("84 9C 00")).command == (0x84, 0x9C)


def test_apdu_extended_length_is_low_byte_first() -> None:
    raw = Apdu(0x06, 0xD3, bytes(300)).encode()
    assert raw[:5] == hexbytes("06 D3 FF 2C 01") and len(raw) == 305
    assert Apdu.decode(raw) == Apdu(0x06, 0xD3, bytes(300))
    assert Apdu(0x06, 0xD3, bytes(0xFF)).encode()[:5] == hexbytes("06 D3 FF FF 00")


def test_apdu_too_long() -> None:
    with pytest.raises(ValueError):
        Apdu(0x06, 0xD3, bytes(0x10000)).encode()


@pytest.mark.parametrize("raw", ["", "80", "80 00", "06 01 07 04", "80 00 00 00", "06 D3 FF 2C", "06 D3 FF 02 00 01",
                                 "06 D3 FF 01 00 01 02"])
def test_apdu_decode_rejects_bad_lengths(raw: str) -> None:
    with pytest.raises(DecodeError):
        Apdu.decode(hexbytes(raw))


# --- BCD and variable lengths ----------------------------------------------------------------------

def test_bcd() -> None:
    assert bcd_encode(978, 2) == hexbytes("09 78")
    assert bcd_encode(1000, 6) == hexbytes("00 00 00 00 10 00")
    assert bcd_decode(hexbytes("00 00 00 12 34 56")) == 123456
    assert bcd_digits(hexbytes("00 42")) == "0042"
    assert bcd_decode(b"") == 0 and bcd_digits(b"") == ""


@pytest.mark.parametrize(("number", "size"), [(-1, 2), (10000, 2), (1, 0)])
def test_bcd_encode_rejects(number: int, size: int) -> None:
    with pytest.raises(ValueError):
        bcd_encode(number, size)


@pytest.mark.parametrize("raw", ["0A", "F0", "12 3F"])
def test_bcd_decode_rejects_non_digits(raw: str) -> None:
    with pytest.raises(DecodeError):
        bcd_decode(hexbytes(raw))


def test_llvar_and_lllvar() -> None:
    assert llvar(b"abc") == hexbytes("F0 F3") + b"abc"
    assert llvar(b"") == hexbytes("F0 F0")
    assert lllvar(bytes(123)) == hexbytes("F1 F2 F3") + bytes(123)
    with pytest.raises(ValueError):
        llvar(bytes(100))
    with pytest.raises(ValueError):
        lllvar(bytes(1000))


# --- BMPs -----------------------------------------------------------------------------------------

def test_bmp_table_matches_the_contract() -> None:
    fixed = {0x01: 1, 0x02: 1, 0x03: 1, 0x19: 1, 0x27: 1, 0x2A: 15, 0x3B: 8, 0x8A: 1}
    bcd = {0x04: 6, 0x0B: 3, 0x0C: 3, 0x0D: 2, 0x0E: 2, 0x17: 2, 0x29: 4, 0x37: 3, 0x49: 2, 0x87: 2, 0x88: 3,
           0xAA: 3}
    expected = {bmp: ("fixed", n) for bmp, n in fixed.items()} | {bmp: ("bcd", n) for bmp, n in bcd.items()}
    expected |= {0x22: ("llvar", 0), 0x8B: ("llvar", 0), 0x3C: ("lllvar", 0), 0x60: ("lllvar", 0), 0x06: ("tlv", 0)}
    assert BMP_FORMATS == expected


def test_encode_bmp() -> None:
    assert encode_bmp(0x04, bcd_encode(1000, 6)) == hexbytes("04 00 00 00 00 10 00")
    assert encode_bmp(0x22, b"") == hexbytes("22 F0 F0")
    assert encode_bmp(0x3C, b"hi") == hexbytes("3C F0 F0 F2") + b"hi"
    assert encode_bmp(0x06, bytes(200)) == hexbytes("06 81 C8") + bytes(200)
    with pytest.raises(ValueError):
        encode_bmp(0x49, b"\x09")
    with pytest.raises(ValueError):
        encode_bmp(0x5F, b"\x00")


def test_decode_bmps_empty_pan_and_order() -> None:
    data = hexbytes("27 00 22 F0 F0 04 00 00 00 00 10 00 8B F0 F5") + b"Visa\x00"
    bmps = decode_bmps(data)
    assert bmps == Bmps({0x27: b"\x00", 0x22: b"", 0x04: hexbytes("00 00 00 00 10 00"), 0x8B: b"Visa\x00"})
    assert bmps.get(0x22) == b"" and bmps.get(0x49) is None


def test_decode_bmps_unknown_id_stops_but_keeps_earlier_fields() -> None:
    data = hexbytes("27 00 49 09 78 5F 01 02 22 F0 F0")
    bmps = decode_bmps(data)
    assert bmps.fields == {0x27: b"\x00", 0x49: hexbytes("09 78")}
    assert bmps.unknown == 0x5F and bmps.skipped == hexbytes("5F 01 02 22 F0 F0")


def test_decode_bmps_repeated_id_keeps_the_first() -> None:
    assert decode_bmps(hexbytes("27 00 27 05")).get(0x27) == b"\x00"


@pytest.mark.parametrize("raw", ["04 00 00", "22 F0", "22 F0 F3 12", "22 F0 E1 12", "22 F1 0A", "3C F0 F0",
                                 "06 05 01", "06 82 00", "06 83 00 00 01 00"])
def test_decode_bmps_rejects_truncated_or_bad_lengths(raw: str) -> None:
    with pytest.raises(DecodeError):
        decode_bmps(hexbytes(raw))


def test_tlv_container_bmp() -> None:
    container = encode_tlv([Tlv(0x24, b"", (Tlv(0x07, b"Karte"),))])
    bmps = decode_bmps(hexbytes("06") + tlv_length(len(container)) + container + hexbytes("27 00"))
    assert bmps.get(0x06) == container and bmps.get(0x27) == b"\x00"


# --- TLV ------------------------------------------------------------------------------------------

def test_tlv_lengths() -> None:
    assert tlv_length(0x7F) == hexbytes("7F")
    assert tlv_length(0x80) == hexbytes("81 80")
    assert tlv_length(0xFF) == hexbytes("81 FF")
    assert tlv_length(0x100) == hexbytes("82 01 00")
    with pytest.raises(ValueError):
        tlv_length(0x10000)


def test_tlv_81_and_82_lengths_and_two_byte_tags() -> None:
    raw = hexbytes("1F 10 81 80") + bytes(0x80) + hexbytes("DF 81 05 82 01 02") + bytes(0x102) + hexbytes("07 00")
    assert decode_tlv(raw) == (Tlv(0x1F10, bytes(0x80)), Tlv(0xDF8105, bytes(0x102)), Tlv(0x07, b""))
    assert encode_tlv(decode_tlv(raw)) == raw


def test_tlv_constructed_is_parsed_recursively() -> None:
    raw = hexbytes("24 0A 07 03") + b"Hi!" + hexbytes("07 03") + b"Yes" + hexbytes("40 01 00")
    [texts, other] = decode_tlv(raw)
    assert texts.children == (Tlv(0x07, b"Hi!"), Tlv(0x07, b"Yes")) and texts.value == raw[2:12]
    assert other == Tlv(0x40, b"\x00")


@pytest.mark.parametrize("raw", ["07 05 41", "1F", "1F 81", "81", "07 83 00 00 01", "24 03 07 05 41"])
def test_tlv_overrun_is_an_error(raw: str) -> None:
    with pytest.raises(DecodeError):
        decode_tlv(hexbytes(raw))


def test_tlv_depth_limit() -> None:
    nested = Tlv(0x07, b"deep")
    for _ in range(8):
        nested = Tlv(0x24, b"", (nested,))
    with pytest.raises(DecodeError):
        decode_tlv(encode_tlv([nested]))
    assert decode_tlv(encode_tlv([nested.children[0]]))


def test_tlv_texts_at_any_depth_only_inside_24() -> None:
    objects = (
        Tlv(0x07, b"outside"),
        Tlv(0x24, b"", (Tlv(0x07, b"Bitte Karte"), Tlv(0x30, b"", (Tlv(0x07, b"nested"),)))),
        Tlv(0x24, b"", (Tlv(0x07, b"stecken \x81"),)),
    )
    assert tlv_texts(decode_tlv(encode_tlv(objects))) == ["Bitte Karte", "nested", "stecken ü"]


# --- texts and PAN --------------------------------------------------------------------------------

def test_decode_text() -> None:
    assert decode_text(b"M\x81nchen") == "München"
    assert decode_text(b"  Visa\x00garbage") == "Visa"
    assert decode_text(b"\xe4", "latin-1") == "ä"
    assert decode_text(b"\xe4", "utf-8") == "\ufffd"
    assert decode_text(b"\x81", "no-such-charset") == "ü"
    assert decode_text(b"\x81", "rot13") == "ü"
    assert decode_text(b"") == ""


@pytest.mark.parametrize(("raw", "shown"), [
    ("", ""),
    ("12 34 5F", "12345"),
    ("67 99 99 EE EE EE 12 34", "679999******1234"),
    ("67 99 99 12 34 56 78 12 34", "679999********1234"),
    ("67 99 99 12 34 56 78 12 34 5F", "679999*********2345"),
    ("12 34 56 78 90", "1234567890"),
    ("12 3A", "123*"),
])
def test_masked_pan(raw: str, shown: str) -> None:
    assert masked_pan(hexbytes(raw)) == shown


def test_redacted_masks_pan_and_tlv() -> None:
    apdu = Apdu(0x04, 0x0F, hexbytes("27 00 22 F0 F2 12 34 06 03 07 01 41 49 09 78")).encode()
    assert redacted(apdu) == "04 0F 0F 27 00 22 F0 F2 ** ** 06 03 ** ** ** 49 09 78"


def test_redacted_masks_after_an_unknown_bmp_and_unparsable_data() -> None:
    assert redacted(hexbytes("04 0F 05 27 00 5F 22 33")) == "04 0F 05 27 00 5F ** **"
    assert redacted(hexbytes("04 0F 04 27 00 04 01")) == "04 0F 04 ** ** ** **"
    assert redacted(hexbytes("04 0F 09 27")) == "04 0F 09 **"
    assert redacted(hexbytes("04 FF 03 0A 22 F0")) == "04 FF 03 0A ** **"
    assert redacted(hexbytes("06 AA 02 12 34")) == "06 AA 02 ** **"


def test_redacted_leaves_commands_without_card_data_readable() -> None:
    for raw in ("80 00 00", "84 9C 00", "06 00 06 12 34 56 BA 09 78", "06 01 07 04 00 00 00 00 10 00",
                "06 0F 05 F0 F0 F1 41 00", "06 1E 01 6C", "06 D1 03 00 48 69"):
        assert redacted(hexbytes(raw)) == raw


# --- round trips and fuzz -------------------------------------------------------------------------

def bmp_value(bmp: int) -> st.SearchStrategy[bytes]:
    """Valid values of one BMP."""
    kind, size = BMP_FORMATS[bmp]
    if kind == "fixed":
        return st.binary(min_size=size, max_size=size)
    if kind == "bcd":
        return st.integers(0, 10 ** (2 * size) - 1).map(lambda n: bcd_encode(n, size))
    return st.binary(max_size={"llvar": 99, "lllvar": 300, "tlv": 300}[kind])


BMP_FIELD = st.sampled_from(sorted(BMP_FORMATS)).flatmap(lambda bmp: st.tuples(st.just(bmp), bmp_value(bmp)))


@settings(max_examples=200, deadline=None)
@given(st.lists(BMP_FIELD, max_size=8, unique_by=lambda field: field[0]))
def test_bmp_round_trip(fields: list[tuple[int, bytes]]) -> None:
    data = b"".join(encode_bmp(bmp, value) for bmp, value in fields)
    assert decode_bmps(data) == Bmps(dict(fields))


def tlv_objects(depth: int = 3) -> st.SearchStrategy[tuple[Tlv, ...]]:
    """Data objects nested up to `depth` levels, constructed ones with a consistent value."""
    primitive_tag = st.sampled_from([0x07, 0x40, 0x1F10, 0x5F2A, 0xDF8105, 0x9F8101])
    primitive = st.builds(Tlv, primitive_tag, st.binary(max_size=300))
    if depth == 0:
        return st.lists(primitive, max_size=3).map(tuple)
    constructed = st.builds(lambda tag, children: Tlv(tag, encode_tlv(children), children),
                            st.sampled_from([0x24, 0x3F20, 0xE1]), tlv_objects(depth - 1))
    return st.lists(primitive | constructed, max_size=3).map(tuple)


@settings(max_examples=150, deadline=None)
@given(tlv_objects())
def test_tlv_round_trip(objects: tuple[Tlv, ...]) -> None:
    assert decode_tlv(encode_tlv(objects)) == objects


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_decoders_raise_only_decode_error(raw: bytes) -> None:
    for decode in (Apdu.decode, decode_bmps, decode_tlv, bcd_decode, bcd_digits):
        try:
            decode(raw)
        except DecodeError:
            pass
    masked_pan(raw)
    decode_text(raw)
    redacted(raw)
