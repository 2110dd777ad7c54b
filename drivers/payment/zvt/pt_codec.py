"""The PT simulator's own APDU, BMP and TLV codec (from docs/zvt.md), written apart from the ECR's."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_FIXED = {0x01: 1, 0x02: 1, 0x03: 1, 0x04: 6, 0x0B: 3, 0x0C: 3, 0x0D: 2, 0x0E: 2, 0x17: 2, 0x19: 1,
          0x27: 1, 0x29: 4, 0x2A: 15, 0x37: 3, 0x3B: 8, 0x49: 2, 0x87: 2, 0x88: 3, 0x8A: 1, 0xAA: 3}
_VAR_DIGITS = {0x22: 2, 0x8B: 2, 0x3C: 3, 0x60: 3}
_TLV = 0x06


class WireError(ValueError):
    """Malformed APDU, BMP or TLV content."""


class UnknownBmp(WireError):
    """A BMP id whose length the simulator cannot know."""

    def __init__(self, bmp: int) -> None:
        super().__init__(f"unknown BMP {bmp:02X}")
        self.bmp = bmp


@dataclass(frozen=True)
class Apdu:
    """A decoded APDU: class, instruction and data."""

    cls: int
    ins: int
    data: bytes

    @property
    def command(self) -> bytes:
        """The two command bytes, e.g. `06 01`."""
        return bytes([self.cls, self.ins])

    @property
    def is_answer(self) -> bool:
        """True for `80 ..` (positive) and `84 ..` (negative) answers."""
        return self.cls in (0x80, 0x84)


def is_answer(raw: bytes) -> bool:
    """True for the bytes of an answer APDU (`80 ..` or `84 ..`), decodable or not."""
    return raw[:1] in (b"\x80", b"\x84")


def encode_apdu(cls: int, ins: int, data: bytes = b"") -> bytes:
    """CLASS INSTR LEN data, with `FF` + 2-byte little-endian length above 254 bytes."""
    if len(data) < 0xFF:
        return bytes([cls, ins, len(data)]) + data
    return bytes([cls, ins, 0xFF]) + len(data).to_bytes(2, "little") + data


def decode_apdu(raw: bytes) -> Apdu:
    """Split an APDU; WireError when it is too short or LEN disagrees with the data."""
    if len(raw) < 3:
        raise WireError(f"APDU of {len(raw)} bytes is too short")
    length, start = raw[2], 3
    if length == 0xFF:
        if len(raw) < 5:
            raise WireError("APDU with extended length is too short")
        length, start = int.from_bytes(raw[3:5], "little"), 5
    if len(raw) - start != length:
        raise WireError(f"LEN says {length} bytes but {len(raw) - start} follow")
    return Apdu(raw[0], raw[1], raw[start:])


def bcd(value: int, size: int) -> bytes:
    """`value` as `size` packed-BCD bytes; ValueError when it does not fit."""
    if not 0 <= value < 10 ** (2 * size):
        raise ValueError(f"{value} does not fit in {size} BCD bytes")
    return bytes.fromhex(f"{value:0{2 * size}d}")


def from_bcd(raw: bytes) -> int:
    """The number in packed-BCD bytes; WireError on a non-decimal nibble."""
    text = raw.hex()
    if not text.isdigit():
        raise WireError(f"not BCD: {raw.hex(' ')}")
    return int(text) if text else 0


def var_field(value: bytes, digits: int = 2) -> bytes:
    """An LLVAR (digits=2) or LLLVAR (digits=3) length prefix (`Fx Fy`..) followed by the value."""
    count = f"{len(value):0{digits}d}"
    if len(count) > digits:
        raise ValueError(f"{len(value)} bytes do not fit a {digits}-digit length")
    return bytes(0xF0 | int(digit) for digit in count) + value


def pan_field(pan: str) -> bytes:
    """BMP 22's value: digits as BCD, `*` as nibble E, odd length padded with F, LLVAR."""
    nibbles = pan.replace("*", "E")
    if len(nibbles) % 2:
        nibbles += "F"
    return var_field(bytes.fromhex(nibbles))


def tlv_length(length: int) -> bytes:
    """TLV length: one byte up to 7F, else `81 nn` or `82 hi lo` (big-endian)."""
    if length < 0x80:
        return bytes([length])
    if length < 0x100:
        return bytes([0x81, length])
    return b"\x82" + length.to_bytes(2, "big")


def display_texts(lines: Iterable[str]) -> bytes:
    """BMP 06 holding one constructed `24` with a `07` text object per line (CP437)."""
    encoded = [line.encode("cp437", "replace") for line in lines]
    texts = b"".join(b"\x07" + tlv_length(len(raw)) + raw for raw in encoded)
    inner = b"\x24" + tlv_length(len(texts)) + texts
    return b"\x06" + tlv_length(len(inner)) + inner


def _read_tlv_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise WireError("TLV length missing")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    size = first - 0x80
    if size not in (1, 2) or pos + 1 + size > len(data):
        raise WireError(f"bad TLV length byte {first:02X}")
    return int.from_bytes(data[pos + 1:pos + 1 + size], "big"), pos + 1 + size


def check_tlv(data: bytes) -> None:
    """Walk TLV data objects (recursing into constructed ones); WireError when one runs past its container."""
    pos = 0
    while pos < len(data):
        first = data[pos]
        pos += 1
        if first & 0x1F == 0x1F:
            while pos < len(data) and data[pos] & 0x80:
                pos += 1
            pos += 1
        length, pos = _read_tlv_length(data, pos)
        if pos + length > len(data):
            raise WireError("TLV object runs past its container")
        if first & 0x20:
            check_tlv(data[pos:pos + length])
        pos += length


def parse_bmps(data: bytes) -> dict[int, bytes]:
    """BMP id -> value (without length prefix); UnknownBmp on an id not in docs/zvt.md, WireError on bad lengths."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        bmp = data[pos]
        pos += 1
        if bmp in _FIXED:
            size, start = _FIXED[bmp], pos
        elif bmp in _VAR_DIGITS:
            digits = _VAR_DIGITS[bmp]
            prefix = data[pos:pos + digits]
            if len(prefix) < digits or any(byte & 0xF0 != 0xF0 or byte & 0x0F > 9 for byte in prefix):
                raise WireError(f"BMP {bmp:02X}: bad length prefix {prefix.hex(' ')}")
            size, start = int("".join(str(byte & 0x0F) for byte in prefix)), pos + digits
        elif bmp == _TLV:
            size, start = _read_tlv_length(data, pos)
        else:
            raise UnknownBmp(bmp)
        if start + size > len(data):
            raise WireError(f"BMP {bmp:02X} runs past the data")
        fields[bmp] = data[start:start + size]
        if bmp == _TLV:
            check_tlv(fields[bmp])
        pos = start + size
    return fields
