"""ZVT messages on the ECR side: command builders, parsers of the PT's messages and code tables."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from drivers.payment.zvt.codec import (
    Apdu,
    DecodeError,
    bcd_decode,
    bcd_digits,
    bcd_encode,
    decode_bmps,
    decode_line,
    decode_text,
    decode_tlv,
    encode_bmp,
    masked_pan,
    read_var_length,
    tlv_texts,
)

log = logging.getLogger(__name__)

CONFIG_BYTE = 0xBA
PAYMENT_TYPE_PT_DECIDES = 0x40
EUR = 978
ACK_APDU = bytes.fromhex("800000")
WAIT_APDU = bytes.fromhex("849C00")
ABORTED = 0x6C

CURRENCIES: dict[str, int] = {
    "EUR": 978, "CHF": 756, "GBP": 826, "USD": 840, "PLN": 985,
    "CZK": 203, "DKK": 208, "SEK": 752, "NOK": 578, "HUF": 348,
}

TERMINAL_READY, TERMINAL_INIT_REQUIRED, TERMINAL_OUT_OF_ORDER = 0x00, 0x51, 0xDF

RESULT_TEXTS: dict[int, str] = {
    0x00: "OK",
    0x64: "Card not readable",
    0x6C: "Aborted",
    0x6F: "Wrong currency",
    0x78: "Card expired",
    0x7D: "Communication error",
    0x83: "Function not possible",
    0x9A: "Protocol error",
    0x9C: "Please wait",
    0xB4: "Already reversed",
    0xB5: "Reversal not possible",
    0xB8: "Pre-authorisation error",
    0xC2: "Diagnosis required",
    0xFF: "System error",
}
ISSUER_RESULTS = range(0x01, 0x64)
UNWELL_RESULTS = frozenset({0x9A, 0xC2, 0xFF})

STATUS_INSERT_CARD = 0x0A
DEFAULT_INTERMEDIATE_TEXT = "Please follow the instructions on the card terminal"
INTERMEDIATE_TEXTS: dict[int, str] = {
    0x01: "Please watch the PIN pad",
    STATUS_INSERT_CARD: "Insert card",
    0x0B: "Please remove card",
    0x0E: "Please wait",
    0x15: "Incorrect PIN",
    0x17: "Please wait",
    0x1C: "Approved, please take goods",
    0x1D: "Declined",
}

TOTALS_CARDS = ("girocard", "JCB", "Eurocard/Mastercard", "American Express", "Visa", "Diners", "other cards")
TOTALS_GROUP_SIZE = 7
TOTALS_SIZE = 4 + TOTALS_GROUP_SIZE * len(TOTALS_CARDS)


def result_text(code: int) -> str:
    """A short English text for a ZVT result code."""
    if code in RESULT_TEXTS:
        return RESULT_TEXTS[code]
    if code in ISSUER_RESULTS:
        return f"Declined by the card issuer (code {code:02X})"
    return f"Terminal error (code {code:02X})"


def currency_code(iso: str) -> int:
    """The ISO 4217 number of a currency the station supports ("EUR" -> 978); ValueError otherwise."""
    try:
        return CURRENCIES[iso.upper()]
    except KeyError:
        raise ValueError(f"unsupported currency {iso!r}") from None


def _password(password: str) -> bytes:
    """The six-digit terminal password as 3 BCD bytes; ValueError if it is not six digits."""
    if len(password) != 6 or not password.isascii() or not password.isdigit():
        raise ValueError("the terminal password must be six digits")
    return bcd_encode(int(password), 3)


def _byte(value: int, what: str) -> bytes:
    """One byte; ValueError if `value` is out of 0..255."""
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} {value} does not fit in one byte")
    return bytes((value,))


def refusal(code: int) -> bytes:
    """The negative answer 84 code 00."""
    return Apdu(0x84, _byte(code, "result code")[0]).encode()


def registration(password: str, currency: int = EUR, config: int = CONFIG_BYTE) -> bytes:
    """06 00: password, config byte and currency (no BMP ids)."""
    data = _password(password) + _byte(config, "config byte") + bcd_encode(currency, 2)
    return Apdu(0x06, 0x00, data).encode()


def authorization(amount: int, currency: int | None = None, payment_type: int | None = None,
                  vending_window_s: int | None = None) -> bytes:
    """06 01: amount in minor units, then the optional BMPs 49 currency, 19 payment type, 01 vending window."""
    data = encode_bmp(0x04, bcd_encode(amount, 6))
    if currency is not None:
        data += encode_bmp(0x49, bcd_encode(currency, 2))
    if payment_type is not None:
        data += encode_bmp(0x19, _byte(payment_type, "payment type"))
    if vending_window_s is not None:
        data += encode_bmp(0x01, _byte(vending_window_s, "vending window"))
    return Apdu(0x06, 0x01, data).encode()


def abort() -> bytes:
    """06 B0 00: abort the payment while the PT waits for a card or PIN."""
    return Apdu(0x06, 0xB0).encode()


def reversal(password: str, receipt_no: int) -> bytes:
    """06 30: password and BMP 87 receipt number of the payment to reverse."""
    return Apdu(0x06, 0x30, _password(password) + encode_bmp(0x87, bcd_encode(receipt_no, 2))).encode()


def status_enquiry(password: str) -> bytes:
    """05 01 03 pwd."""
    return Apdu(0x05, 0x01, _password(password)).encode()


def end_of_day(password: str) -> bytes:
    """06 50 03 pwd."""
    return Apdu(0x06, 0x50, _password(password)).encode()


def log_off() -> bytes:
    """06 02 00."""
    return Apdu(0x06, 0x02).encode()


@dataclass(frozen=True)
class Intermediate:
    """An intermediate status (04 FF): the code and the text to show the parker."""

    code: int
    text: str


@dataclass(frozen=True)
class CardTotal:
    """One card group of the end-of-day totals."""

    name: str
    count: int
    amount: int


@dataclass(frozen=True)
class Totals:
    """End-of-day totals (BMP 60)."""

    receipt_from: str
    receipt_to: str
    cards: tuple[CardTotal, ...]

    @property
    def count(self) -> int:
        """Number of payments over all card groups."""
        return sum(card.count for card in self.cards)

    @property
    def amount(self) -> int:
        """Total in minor units over all card groups."""
        return sum(card.amount for card in self.cards)


@dataclass(frozen=True)
class StatusInformation:
    """A status information (04 0F): the result of a payment, reversal or end of day."""

    result_code: int
    amount: int | None = None
    currency: int | None = None
    trace_no: str | None = None
    original_trace_no: str | None = None
    receipt_no: str | None = None
    turnover_no: str | None = None
    auth_code: str | None = None
    terminal_id: str | None = None
    masked_pan: str | None = None
    card_name: str | None = None
    card_type: int | None = None
    payment_type: int | None = None
    text: str | None = None
    totals: Totals | None = None
    unknown_bmp: int | None = None


@dataclass(frozen=True)
class TerminalState:
    """The answer to a status enquiry (06 0F): software version and terminal status byte."""

    version: str
    status: int


@dataclass(frozen=True)
class Registered:
    """The completion of a registration (06 0F): status byte, terminal id and currency, where sent."""

    status: int | None
    terminal_id: str | None
    currency: int | None


def parse_intermediate(data: bytes, charset: str = "cp437") -> Intermediate:
    """04 FF data: the code, then the PT's TLV text lines if any (unreadable ones are ignored)."""
    if not data:
        raise DecodeError("intermediate status without a status code")
    code, lines = data[0], []
    try:
        container = decode_bmps(data[1:]).get(0x06)
        if container is not None:
            lines = [line for line in tlv_texts(decode_tlv(container), charset) if line]
    except DecodeError as error:
        log.warning("intermediate status %02X: text unreadable (%s), showing the default", code, error)
    text = " ".join(lines) if lines else INTERMEDIATE_TEXTS.get(code, DEFAULT_INTERMEDIATE_TEXT)
    return Intermediate(code, text)


def parse_status_information(data: bytes, charset: str = "cp437") -> StatusInformation:
    """04 0F data as a StatusInformation; DecodeError if malformed or without a result code (BMP 27)."""
    fields = decode_bmps(data)
    result = fields.get(0x27)
    if result is None:
        raise DecodeError("status information without a result code (BMP 27)")
    if fields.unknown is not None:
        log.warning("status information: unknown BMP %02X, %d bytes skipped", fields.unknown, len(fields.skipped))

    def number(bmp: int) -> int | None:
        raw = fields.get(bmp)
        return None if raw is None else bcd_decode(raw)

    def digits(bmp: int) -> str | None:
        raw = fields.get(bmp)
        return None if raw is None else bcd_digits(raw)

    def byte(bmp: int) -> int | None:
        raw = fields.get(bmp)
        return None if raw is None else raw[0]

    def text(bmp: int, text_charset: str) -> str | None:
        raw = fields.get(bmp)
        return (decode_text(raw, text_charset) or None) if raw is not None else None

    pan, totals = fields.get(0x22), fields.get(0x60)
    return StatusInformation(
        result_code=result[0],
        amount=number(0x04),
        currency=number(0x49),
        trace_no=digits(0x0B),
        original_trace_no=digits(0x37),
        receipt_no=digits(0x87),
        turnover_no=digits(0x88),
        auth_code=text(0x3B, "ascii"),
        terminal_id=digits(0x29),
        masked_pan=(masked_pan(pan) or None) if pan is not None else None,
        card_name=text(0x8B, charset),
        card_type=byte(0x8A),
        payment_type=byte(0x19),
        text=text(0x3C, charset),
        totals=parse_totals(totals) if totals is not None else None,
        unknown_bmp=fields.unknown,
    )


def parse_totals(raw: bytes) -> Totals:
    """BMP 60: receipt range (2 + 2 BCD) and seven groups of count (binary) + amount (6 BCD)."""
    if len(raw) != TOTALS_SIZE:
        raise DecodeError(f"totals of {len(raw)} bytes, expected {TOTALS_SIZE}")
    cards = []
    for index, name in enumerate(TOTALS_CARDS):
        start = 4 + index * TOTALS_GROUP_SIZE
        cards.append(CardTotal(name, raw[start], bcd_decode(raw[start + 1:start + TOTALS_GROUP_SIZE])))
    return Totals(bcd_digits(raw[0:2]), bcd_digits(raw[2:4]), tuple(cards))


def parse_terminal_state(data: bytes) -> TerminalState:
    """Status-enquiry 06 0F data: LLLVAR software version (ASCII), then the terminal status byte."""
    size = read_var_length(data, 0, 3)
    if len(data) != 3 + size + 1:
        raise DecodeError(f"terminal state of {len(data)} bytes, version length {size} needs {3 + size + 1}")
    return TerminalState(decode_text(data[3:3 + size], "ascii"), data[-1])


def parse_registered(data: bytes) -> Registered:
    """Registration 06 0F data: BMPs 19 status, 29 terminal id, 49 currency, each optional."""
    fields = decode_bmps(data)
    status, terminal_id, currency = fields.get(0x19), fields.get(0x29), fields.get(0x49)
    return Registered(
        status=status[0] if status is not None else None,
        terminal_id=bcd_digits(terminal_id) if terminal_id is not None else None,
        currency=bcd_decode(currency) if currency is not None else None,
    )


def parse_abort(data: bytes) -> int:
    """06 1E data: the result code (first byte), 6C when the PT sent none."""
    return data[0] if data else ABORTED


def parse_print_line(data: bytes, charset: str = "cp437") -> tuple[int, str]:
    """06 D1 data: (attribute byte, text line with its indentation kept)."""
    if not data:
        raise DecodeError("print line without an attribute byte")
    return data[0], decode_line(data[1:], charset)
