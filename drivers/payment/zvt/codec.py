"""ZVT APDU codec: APDU header, BMP fields, packed BCD, TLV containers, texts and PAN masking."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_SHORT_LEN = 0xFE
EXTENDED_LEN = 0xFF
MAX_DATA_LEN = 0xFFFF
TLV_CONTAINER = 0x06
BMP_PAN = 0x22
TAG_TEXT_LINES = 0x24
TAG_TEXT = 0x07
TLV_MAX_DEPTH = 8
FALLBACK_CHARSET = "cp437"
PAN_VISIBLE_HEAD = 6
PAN_VISIBLE_TAIL = 4


class DecodeError(ValueError):
    """Bytes from the other side that do not follow the ZVT encoding."""


@dataclass(frozen=True)
class Apdu:
    """One application message: class byte, instruction byte and data."""

    cls: int
    instr: int
    data: bytes = b""

    @property
    def command(self) -> tuple[int, int]:
        """(class, instruction), e.g. (0x06, 0x01) for an authorization."""
        return (self.cls, self.instr)

    @property
    def is_answer(self) -> bool:
        """An answer (80 .. positive, 84 .. negative) to the other side's message; never itself answered."""
        return self.cls in (0x80, 0x84)

    def encode(self) -> bytes:
        """CLASS INSTR LEN data; LEN is FF + 2 bytes, low byte first, above FE bytes of data."""
        size = len(self.data)
        if size <= MAX_SHORT_LEN:
            header = bytes((self.cls, self.instr, size))
        elif size <= MAX_DATA_LEN:
            header = bytes((self.cls, self.instr, EXTENDED_LEN, size & 0xFF, size >> 8))
        else:
            raise ValueError(f"APDU data of {size} bytes exceeds {MAX_DATA_LEN}")
        return header + self.data

    @classmethod
    def decode(cls, raw: bytes) -> Apdu:
        """Parse a whole APDU; DecodeError when it is short or its LEN disagrees with the data."""
        if len(raw) < 3:
            raise DecodeError(f"APDU of {len(raw)} bytes is shorter than its 3-byte header")
        if raw[2] == EXTENDED_LEN:
            if len(raw) < 5:
                raise DecodeError("APDU with extended LEN FF lacks its 2 length bytes")
            start, size = 5, raw[3] | raw[4] << 8
        else:
            start, size = 3, raw[2]
        if len(raw) - start != size:
            raise DecodeError(f"APDU LEN says {size} data bytes, frame holds {len(raw) - start}")
        return cls(raw[0], raw[1], bytes(raw[start:]))


def bcd_encode(number: int, size: int) -> bytes:
    """`number` as `size` packed-BCD bytes, left-padded with zeros; ValueError if negative or too big."""
    if number < 0 or number >= 10 ** (2 * size):
        raise ValueError(f"{number} does not fit in {size} BCD bytes")
    return bytes.fromhex(f"{number:0{2 * size}d}")


def bcd_digits(raw: bytes) -> str:
    """The decimal digits of packed-BCD bytes ('0978'); DecodeError on a nibble above 9."""
    digits = raw.hex()
    if digits and not digits.isdigit():
        raise DecodeError(f"not packed BCD: {digits.upper()}")
    return digits


def bcd_decode(raw: bytes) -> int:
    """The number held in packed-BCD bytes (0 for no bytes); DecodeError on a nibble above 9."""
    digits = bcd_digits(raw)
    return int(digits) if digits else 0


def _length_digits(value: bytes, count: int) -> bytes:
    """The Fx Fy (Fz) prefix giving len(value) in `count` decimal digits."""
    size = len(value)
    if size >= 10 ** count:
        raise ValueError(f"{size} bytes do not fit a {count}-digit length prefix")
    return bytes(0xF0 | int(digit) for digit in f"{size:0{count}d}")


def llvar(value: bytes) -> bytes:
    """`value` with its LLVAR prefix (F0 F3 for 3 bytes)."""
    return _length_digits(value, 2) + value


def lllvar(value: bytes) -> bytes:
    """`value` with its LLLVAR prefix (F0 F1 F2 for 12 bytes)."""
    return _length_digits(value, 3) + value


def read_var_length(data: bytes, offset: int, count: int) -> int:
    """The length held by `count` Fx bytes at `offset`; DecodeError if short or not F0..F9."""
    prefix = data[offset:offset + count]
    if len(prefix) < count:
        raise DecodeError("truncated LL length prefix")
    size = 0
    for byte in prefix:
        if byte & 0xF0 != 0xF0 or byte & 0x0F > 9:
            raise DecodeError(f"bad length digit {byte:02X} (expected F0..F9)")
        size = size * 10 + (byte & 0x0F)
    return size


BMP_FORMATS: dict[int, tuple[str, int]] = {
    0x01: ("fixed", 1),
    0x02: ("fixed", 1),
    0x03: ("fixed", 1),
    0x04: ("bcd", 6),
    0x0B: ("bcd", 3),
    0x0C: ("bcd", 3),
    0x0D: ("bcd", 2),
    0x0E: ("bcd", 2),
    0x17: ("bcd", 2),
    0x19: ("fixed", 1),
    0x22: ("llvar", 0),
    0x27: ("fixed", 1),
    0x29: ("bcd", 4),
    0x2A: ("fixed", 15),
    0x37: ("bcd", 3),
    0x3B: ("fixed", 8),
    0x3C: ("lllvar", 0),
    0x49: ("bcd", 2),
    0x60: ("lllvar", 0),
    0x87: ("bcd", 2),
    0x88: ("bcd", 3),
    0x8A: ("fixed", 1),
    0x8B: ("llvar", 0),
    0xAA: ("bcd", 3),
    0x06: ("tlv", 0),
}


def encode_bmp(bmp: int, value: bytes) -> bytes:
    """BMP id + value, with the length prefix its format needs; ValueError for a wrong size or unknown id."""
    if bmp not in BMP_FORMATS:
        raise ValueError(f"unknown BMP {bmp:02X}")
    kind, size = BMP_FORMATS[bmp]
    if kind == "llvar":
        return bytes((bmp,)) + llvar(value)
    if kind == "lllvar":
        return bytes((bmp,)) + lllvar(value)
    if kind == "tlv":
        return bytes((bmp,)) + tlv_length(len(value)) + value
    if len(value) != size:
        raise ValueError(f"BMP {bmp:02X} takes {size} bytes, got {len(value)}")
    return bytes((bmp,)) + value


@dataclass(frozen=True)
class Bmps:
    """The BMP fields of an APDU's data, by id; decoding stops at the first unknown id."""

    fields: dict[int, bytes]
    unknown: int | None = None
    skipped: bytes = b""

    def get(self, bmp: int) -> bytes | None:
        """The raw value of a field (without id or length prefix), None if absent."""
        return self.fields.get(bmp)


def _read_tlv_length(data: bytes, offset: int) -> tuple[int, int]:
    """(length, offset after the length bytes) of a TLV length at `offset`; DecodeError if malformed."""
    if offset >= len(data):
        raise DecodeError("truncated TLV length")
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    width = first - 0x80
    if width not in (1, 2):
        raise DecodeError(f"unsupported TLV length byte {first:02X}")
    if offset + 1 + width > len(data):
        raise DecodeError("truncated TLV length")
    return int.from_bytes(data[offset + 1:offset + 1 + width], "big"), offset + 1 + width


def scan_bmps(data: bytes) -> tuple[list[tuple[int, int, int]], int | None]:
    """([(id, value start, value end)], offset of the first unknown id or None); DecodeError on truncation."""
    spans: list[tuple[int, int, int]] = []
    offset = 0
    while offset < len(data):
        bmp = data[offset]
        layout = BMP_FORMATS.get(bmp)
        if layout is None:
            return spans, offset
        kind, size = layout
        start = offset + 1
        if kind == "llvar":
            size, start = read_var_length(data, start, 2), start + 2
        elif kind == "lllvar":
            size, start = read_var_length(data, start, 3), start + 3
        elif kind == "tlv":
            size, start = _read_tlv_length(data, start)
        end = start + size
        if end > len(data):
            raise DecodeError(f"BMP {bmp:02X} needs {size} bytes, {len(data) - start} left")
        spans.append((bmp, start, end))
        offset = end
    return spans, None


def decode_bmps(data: bytes) -> Bmps:
    """Parse BMP fields; DecodeError for a truncated known field or a bad length digit."""
    spans, unknown_at = scan_bmps(data)
    fields: dict[int, bytes] = {}
    for bmp, start, end in spans:
        fields.setdefault(bmp, bytes(data[start:end]))
    if unknown_at is None:
        return Bmps(fields)
    return Bmps(fields, data[unknown_at], bytes(data[unknown_at:]))


@dataclass(frozen=True)
class Tlv:
    """One TLV data object; a constructed one (tag bit 0x20) also carries its parsed children."""

    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()


def tlv_length(n: int) -> bytes:
    """A TLV length: one byte up to 7F, 81 nn, 82 hi lo (big-endian)."""
    if n < 0 or n > 0xFFFF:
        raise ValueError(f"TLV length {n} out of range")
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def _tag_bytes(tag: int) -> bytes:
    """The tag number as its big-endian bytes (at least one)."""
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_tlv(objects: Sequence[Tlv]) -> bytes:
    """Data objects as bytes; a constructed object's value is encoded from its children."""
    out = bytearray()
    for item in objects:
        tag = _tag_bytes(item.tag)
        value = encode_tlv(item.children) if tag[0] & 0x20 else item.value
        out += tag + tlv_length(len(value)) + value
    return bytes(out)


def _read_tag(data: bytes, offset: int) -> tuple[int, bool, int]:
    """(tag, constructed, offset after the tag); DecodeError if the tag runs past the data."""
    first = data[offset]
    end = offset + 1
    if first & 0x1F == 0x1F:
        while True:
            if end >= len(data):
                raise DecodeError("truncated multi-byte TLV tag")
            end += 1
            if not data[end - 1] & 0x80:
                break
    return int.from_bytes(data[offset:end], "big"), bool(first & 0x20), end


def decode_tlv(data: bytes) -> tuple[Tlv, ...]:
    """Parse data objects (constructed ones recursively, up to depth 8); DecodeError on overrun."""
    return _decode_tlv(data, 0)


def _decode_tlv(data: bytes, depth: int) -> tuple[Tlv, ...]:
    """decode_tlv at nesting level `depth`."""
    if depth >= TLV_MAX_DEPTH:
        raise DecodeError(f"TLV nested deeper than {TLV_MAX_DEPTH} levels")
    objects: list[Tlv] = []
    offset = 0
    while offset < len(data):
        tag, constructed, offset = _read_tag(data, offset)
        size, offset = _read_tlv_length(data, offset)
        if offset + size > len(data):
            raise DecodeError(f"TLV tag {tag:02X} length {size} runs past its container")
        value = bytes(data[offset:offset + size])
        offset += size
        children = _decode_tlv(value, depth + 1) if constructed else ()
        objects.append(Tlv(tag, value, children))
    return tuple(objects)


def tlv_texts(objects: Sequence[Tlv], charset: str = FALLBACK_CHARSET) -> list[str]:
    """Every 07 text line inside a 24 container (at any depth), decoded, in order."""
    texts: list[str] = []

    def walk(items: Sequence[Tlv], inside_text_lines: bool) -> None:
        for item in items:
            if item.tag == TAG_TEXT and inside_text_lines:
                texts.append(decode_text(item.value, charset))
            if item.children:
                walk(item.children, inside_text_lines or item.tag == TAG_TEXT_LINES)

    walk(objects, False)
    return texts


def decode_line(raw: bytes, charset: str = FALLBACK_CHARSET) -> str:
    """Text up to the first NUL, undecodable bytes as U+FFFD, trailing blanks dropped, indentation kept."""
    cut = raw.split(b"\x00", 1)[0]
    try:
        text = cut.decode(charset, errors="replace")
    except (LookupError, UnicodeError, TypeError, ValueError):
        log.debug("charset %r unusable, decoding as %s", charset, FALLBACK_CHARSET)
        text = cut.decode(FALLBACK_CHARSET, errors="replace")
    return text.rstrip()


def decode_text(raw: bytes, charset: str = FALLBACK_CHARSET) -> str:
    """Text up to the first NUL, undecodable bytes as U+FFFD, stripped; an unknown charset means CP437."""
    return decode_line(raw, charset).strip()


def masked_pan(raw: bytes) -> str:
    """A BCD PAN as text: E nibbles (and any other non-digit) as '*', F padding dropped, only first 6 / last 4 shown."""
    nibbles = raw.hex().upper().rstrip("F")
    shown = "".join(nibble if nibble.isdigit() else "*" for nibble in nibbles)
    hidden = len(shown) - PAN_VISIBLE_HEAD - PAN_VISIBLE_TAIL
    if hidden <= 0:
        return shown
    return shown[:PAN_VISIBLE_HEAD] + "*" * hidden + shown[-PAN_VISIBLE_TAIL:]


BMP_DATA_OFFSET: dict[tuple[int, int], int] = {
    (0x04, 0x0F): 0,
    (0x04, 0xFF): 1,
    (0x06, 0x0F): 0,
    (0x06, 0x1E): 1,
    (0x06, 0x01): 0,
    (0x06, 0x30): 3,
}
PLAIN_COMMANDS = frozenset({(0x06, 0x00), (0x05, 0x01), (0x06, 0x50), (0x06, 0x02), (0x06, 0xB0), (0x06, 0xD1)})
PLAIN_CLASSES = frozenset({0x80, 0x84})


def _hidden_ranges(apdu: bytes) -> list[tuple[int, int]]:
    """Byte ranges of `apdu` that may hold card data: PAN and TLV values, or everything not understood."""
    try:
        message = Apdu.decode(apdu)
    except DecodeError:
        return [(min(len(apdu), 3), len(apdu))]
    header = len(apdu) - len(message.data)
    data = message.data
    if message.cls in PLAIN_CLASSES or message.command in PLAIN_COMMANDS:
        return []
    if message.command == (0x06, 0x0F) and data[:1] and data[0] & 0xF0 == 0xF0:
        return []
    skip = BMP_DATA_OFFSET.get(message.command)
    if skip is None or skip > len(data):
        return [(header, len(apdu))]
    base = header + skip
    try:
        spans, unknown_at = scan_bmps(data[skip:])
    except DecodeError:
        return [(base, len(apdu))]
    hidden = [(base + start, base + end) for bmp, start, end in spans if bmp in (BMP_PAN, TLV_CONTAINER)]
    if unknown_at is not None:
        hidden.append((base + unknown_at + 1, len(apdu)))
    return hidden


def redacted(apdu: bytes) -> str:
    """The APDU as spaced hex for logs, with the PAN, TLV container values and anything unparsed shown as '**'."""
    cells = [f"{byte:02X}" for byte in apdu]
    for start, end in _hidden_ranges(apdu):
        cells[start:end] = ["**"] * (end - start)
    return " ".join(cells)
