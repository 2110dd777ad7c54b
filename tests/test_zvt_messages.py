"""ZVT messages on the ECR side: command bytes, parsers of the PT's messages and code texts."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.payment.zvt.codec import Apdu, DecodeError, Tlv, bcd_encode, decode_bmps, encode_bmp, encode_tlv, lllvar
from drivers.payment.zvt.messages import (
    ACK_APDU,
    CONFIG_BYTE,
    DEFAULT_INTERMEDIATE_TEXT,
    EUR,
    PAYMENT_TYPE_PT_DECIDES,
    TERMINAL_INIT_REQUIRED,
    UNWELL_RESULTS,
    WAIT_APDU,
    CardTotal,
    Intermediate,
    Registered,
    StatusInformation,
    TerminalState,
    Totals,
    abort,
    authorization,
    currency_code,
    end_of_day,
    log_off,
    parse_abort,
    parse_intermediate,
    parse_print_line,
    parse_registered,
    parse_status_information,
    parse_terminal_state,
    parse_totals,
    refusal,
    registration,
    result_text,
    reversal,
    status_enquiry,
)
from drivers.payment.zvt.outcomes import decline_reason, declined, status
from kiosk.domain.events import PaymentDeclined, PaymentStatus
from kiosk.domain.payment import DeclineReason, PaymentPrompt


def hexbytes(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text.replace(" ", ""))


APPROVED = (hexbytes("27 00 04 00 00 00 00 10 00 0B 00 00 42 0C 14 30 15 0D 01 05 0E 28 12 17 00 01 19 40"
                     "22 F0 F8 67 99 99 EE EE EE 12 34 29 12 34 56 78 3B") + b"A1B2C3\x00\x00"
            + hexbytes("49 09 78 87 00 42 88 00 00 43 8A 05 8B F0 F5") + b"Visa\x00")
TOTALS = (hexbytes("00 01 00 42")
          + hexbytes("03 00 00 00 00 30 00") + hexbytes("00 00 00 00 00 00 00") + hexbytes("02 00 00 00 00 05 50")
          + hexbytes("00 00 00 00 00 00 00") + hexbytes("01 00 00 00 00 02 00") + hexbytes("00 00 00 00 00 00 00")
          + hexbytes("00 00 00 00 00 00 00"))


# --- builders -------------------------------------------------------------------------------------

def test_documented_command_bytes() -> None:
    assert registration("123456") == hexbytes("06 00 06 12 34 56 BA 09 78")
    assert authorization(1000) == hexbytes("06 01 07 04 00 00 00 00 10 00")


def test_command_bytes() -> None:
    assert authorization(1000, EUR, PAYMENT_TYPE_PT_DECIDES, 60) == hexbytes(
        "06 01 0E 04 00 00 00 00 10 00 49 09 78 19 40 01 3C")
    assert authorization(250, payment_type=0x40) == hexbytes("06 01 09 04 00 00 00 00 02 50 19 40")
    assert registration("000001", currency_code("CHF"), 0x08) == hexbytes("06 00 06 00 00 01 08 07 56")
    assert abort() == hexbytes("06 B0 00")
    assert reversal("123456", 42) == hexbytes("06 30 06 12 34 56 87 00 42")
    assert status_enquiry("123456") == hexbytes("05 01 03 12 34 56")
    assert end_of_day("123456") == hexbytes("06 50 03 12 34 56")
    assert log_off() == hexbytes("06 02 00")
    assert refusal(0x66) == hexbytes("84 66 00")
    assert ACK_APDU == hexbytes("80 00 00") and WAIT_APDU == refusal(0x9C)
    assert CONFIG_BYTE == 0x02 | 0x08 | 0x10 | 0x20 | 0x80


@pytest.mark.parametrize("build", [
    lambda: registration("12345"), lambda: registration("12345a"), lambda: registration("１２３４５６"),
    lambda: authorization(-1), lambda: authorization(10 ** 12), lambda: authorization(1, vending_window_s=256),
    lambda: authorization(1, payment_type=-1), lambda: reversal("123456", 10000), lambda: refusal(0x100),
    lambda: registration("123456", currency=10000),
])
def test_builders_reject_values_that_do_not_fit(build: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        build()


def test_currency_codes() -> None:
    assert currency_code("EUR") == 978 and currency_code("chf") == 756 and currency_code("HUF") == 348
    with pytest.raises(ValueError):
        currency_code("XYZ")


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10 ** 12 - 1), st.sampled_from([None, 978, 756]), st.one_of(st.none(), st.integers(0, 255)),
       st.one_of(st.none(), st.integers(0, 255)))
def test_authorization_round_trip(amount: int, currency: int | None, payment_type: int | None,
                                  window: int | None) -> None:
    message = Apdu.decode(authorization(amount, currency, payment_type, window))
    assert message.command == (0x06, 0x01)
    bmps = decode_bmps(message.data)
    assert bmps.unknown is None and list(bmps.fields) == [bmp for bmp, value in
                                                          ((0x04, amount), (0x49, currency), (0x19, payment_type),
                                                           (0x01, window)) if value is not None]
    assert bmps.get(0x04) == bcd_encode(amount, 6)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 999999).map(lambda n: f"{n:06d}"), st.integers(0, 9999))
def test_password_commands_round_trip(password: str, receipt_no: int) -> None:
    pwd = bytes.fromhex(password)
    assert Apdu.decode(registration(password)) == Apdu(0x06, 0x00, pwd + hexbytes("BA 09 78"))
    assert Apdu.decode(status_enquiry(password)) == Apdu(0x05, 0x01, pwd)
    assert Apdu.decode(end_of_day(password)) == Apdu(0x06, 0x50, pwd)
    message = Apdu.decode(reversal(password, receipt_no))
    assert message.data[:3] == pwd and decode_bmps(message.data[3:]).fields == {0x87: bcd_encode(receipt_no, 2)}


def test_fixed_commands_round_trip() -> None:
    for raw, command in ((abort(), (0x06, 0xB0)), (log_off(), (0x06, 0x02)), (refusal(0x83), (0x84, 0x83))):
        assert Apdu.decode(raw) == Apdu(*command)


# --- status information ---------------------------------------------------------------------------

def test_approved_status_information() -> None:
    assert parse_status_information(APPROVED) == StatusInformation(
        result_code=0x00, amount=1000, currency=978, trace_no="000042", receipt_no="0042", turnover_no="000043",
        auth_code="A1B2C3", terminal_id="12345678", masked_pan="679999******1234", card_name="Visa", card_type=5,
        payment_type=0x40, text=None, totals=None, unknown_bmp=None)


def test_declined_status_information_with_empty_pan_and_cp437_text() -> None:
    data = hexbytes("27 05 22 F0 F0 3C F0 F0 F7") + b"Gr\x81\xe1e\x00x"
    info = parse_status_information(data)
    assert info.result_code == 0x05 and info.masked_pan is None and info.text == "Grüße"
    assert info.amount is None and info.receipt_no is None


def test_odd_length_pan_and_card_name_charset() -> None:
    data = hexbytes("27 00 22 F0 F5 12 34 56 78 9F 8B F0 F4") + b"\x8erz\x00"
    info = parse_status_information(data, "latin-1")
    assert info.masked_pan == "123456789" and info.card_name == "\x8erz"
    assert parse_status_information(data).card_name == "Ärz"


def test_status_information_unknown_bmp_keeps_earlier_fields() -> None:
    info = parse_status_information(hexbytes("27 00 04 00 00 00 00 02 50 5F 01 22 F0 F0"))
    assert info.result_code == 0 and info.amount == 250 and info.unknown_bmp == 0x5F and info.masked_pan is None


@pytest.mark.parametrize("raw", ["", "04 00 00 00 00 10 00", "5F 27 00", "27", "27 00 04 00 00 00 00 1A 00",
                                 "27 00 87 00", "27 00 60 F0 F0 F1 00", "27 00 0B 00 00 4F"])
def test_status_information_rejects(raw: str) -> None:
    with pytest.raises(DecodeError):
        parse_status_information(hexbytes(raw))


def test_end_of_day_totals() -> None:
    totals = parse_totals(TOTALS)
    assert totals.receipt_from == "0001" and totals.receipt_to == "0042"
    assert totals.cards[0] == CardTotal("girocard", 3, 3000)
    assert totals.cards[2] == CardTotal("Eurocard/Mastercard", 2, 550)
    assert [card.name for card in totals.cards][-1] == "other cards"
    assert (totals.count, totals.amount) == (6, 3750)
    data = hexbytes("27 00 04 00 00 00 00 37 50 49 09 78 0C 23 00 00 0D 01 05") + encode_bmp(0x60, TOTALS)
    info = parse_status_information(data)
    assert info.totals == totals and info.amount == 3750


@pytest.mark.parametrize("size", [0, 52, 54])
def test_totals_of_the_wrong_size(size: int) -> None:
    with pytest.raises(DecodeError):
        parse_totals(bytes(size))


def test_totals_dataclass_sums() -> None:
    assert Totals("0001", "0001", ()).count == 0


# --- other PT messages ----------------------------------------------------------------------------

def test_intermediate_default_texts() -> None:
    assert parse_intermediate(b"\x0a") == Intermediate(0x0A, "Insert card")
    assert parse_intermediate(b"\x1c") == Intermediate(0x1C, "Approved, please take goods")
    assert parse_intermediate(b"\x42") == Intermediate(0x42, DEFAULT_INTERMEDIATE_TEXT)


def test_intermediate_with_the_pt_text() -> None:
    container = encode_tlv([Tlv(0x24, b"", (Tlv(0x07, b"Bitte Karte"), Tlv(0x07, b""), Tlv(0x07, b"einstecken \x81")))])
    assert parse_intermediate(b"\x0a" + encode_bmp(0x06, container)) == Intermediate(0x0A, "Bitte Karte einstecken ü")


def test_intermediate_with_unreadable_text_falls_back() -> None:
    assert parse_intermediate(hexbytes("0A 06 04 24 05 07 01")).text == "Insert card"
    assert parse_intermediate(hexbytes("0E 06 02 40 00")).text == "Please wait"
    with pytest.raises(DecodeError):
        parse_intermediate(b"")


def test_terminal_state() -> None:
    assert parse_terminal_state(lllvar(b"PT 1.2.3") + b"\x00") == TerminalState("PT 1.2.3", 0x00)
    assert parse_terminal_state(lllvar(b"") + b"\x51").status == TERMINAL_INIT_REQUIRED
    for raw in (b"", lllvar(b"1.0"), lllvar(b"1.0") + b"\x00\x00", hexbytes("F0 0F F1 41 00")):
        with pytest.raises(DecodeError):
            parse_terminal_state(raw)


def test_registered() -> None:
    assert parse_registered(hexbytes("19 00 29 12 34 56 78 49 09 78")) == Registered(0x00, "12345678", 978)
    assert parse_registered(b"") == Registered(None, None, None)
    with pytest.raises(DecodeError):
        parse_registered(hexbytes("29 12 34"))


def test_abort_and_print_line() -> None:
    assert parse_abort(b"\x6c") == 0x6C and parse_abort(b"") == 0x6C and parse_abort(hexbytes("05 27 05")) == 0x05
    assert parse_print_line(b"\x00   Betrag:  10,00 EUR  \x00junk") == (0x00, "   Betrag:  10,00 EUR")
    assert parse_print_line(b"\xff\x81") == (0xFF, "ü")
    with pytest.raises(DecodeError):
        parse_print_line(b"")


def test_result_texts() -> None:
    assert result_text(0x00) == "OK" and result_text(0x6C) == "Aborted" and result_text(0x64) == "Card not readable"
    assert result_text(0x05) == "Declined by the card issuer (code 05)"
    assert result_text(0x63) == "Declined by the card issuer (code 63)"
    assert result_text(0xA0) == "Terminal error (code A0)"
    assert UNWELL_RESULTS == {0x9A, 0xC2, 0xFF}


@pytest.mark.parametrize(("code", "reason"), [(0x05, "declined"), (0x64, "unreadable"), (0x78, "expired"),
                                              (0x6C, "aborted"), (0x7D, "terminal_timeout"), (0x9A, "terminal"),
                                              (0xFF, "terminal")])
def test_decline_reasons(code: int, reason: str) -> None:
    assert decline_reason(code) == reason


def test_a_declined_payment_carries_the_reason_and_the_zvt_code_with_its_text() -> None:
    assert declined("p1", 0x64) == PaymentDeclined("p1", DeclineReason.UNREADABLE, 0x64, "Card not readable")
    assert declined("p1", 0x05, "Abgelehnt") == PaymentDeclined("p1", DeclineReason.DECLINED, 0x05, "Abgelehnt")


# --- fuzz -----------------------------------------------------------------------------------------

PARSERS: tuple[Callable[[bytes], object], ...] = (
    parse_intermediate, parse_status_information, parse_totals, parse_terminal_state, parse_registered,
    parse_abort, parse_print_line, lambda raw: parse_status_information(raw, "no-such-charset"),
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_parsers_raise_only_decode_error(raw: bytes) -> None:
    for parse in PARSERS:
        try:
            parse(raw)
        except DecodeError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0x27, 0x04, 0x0B, 0x22, 0x29, 0x3B, 0x3C, 0x49, 0x60, 0x87, 0x88, 0x8A, 0x8B, 0x06,
                                 0x19, 0x5F]).flatmap(lambda bmp: st.tuples(st.just(bmp), st.binary(max_size=60))),
                max_size=8))
def test_fuzz_status_information_from_near_valid_fields(fields: list[tuple[int, bytes]]) -> None:
    data = b"".join(bytes([bmp]) + (encode_bmp(bmp, value) if bmp in (0x22, 0x3C, 0x60, 0x8B, 0x06) else value)[1:]
                    for bmp, value in fields)
    try:
        info = parse_status_information(data)
    except DecodeError:
        return
    assert 0 <= info.result_code <= 0xFF


def test_intermediate_codes_become_the_stations_prompts_with_the_terminals_words() -> None:
    assert status("p1", Intermediate(0x0A, "Karte einstecken")) == PaymentStatus("p1", "Karte einstecken",
                                                                                   PaymentPrompt.PRESENT_CARD)
    assert status("p1", Intermediate(0x01, "PIN eingeben")).prompt is PaymentPrompt.ENTER_PIN
    assert status("p1", Intermediate(0x15, "PIN falsch")).prompt is PaymentPrompt.WRONG_PIN
    assert status("p1", Intermediate(0x30, "Bitte Bon nehmen")).prompt is PaymentPrompt.FOLLOW_TERMINAL
    assert status("p1", Intermediate(0x4A, "Karte entnehmen")).prompt is PaymentPrompt.REMOVE_CARD


def test_the_stations_stand_in_text_is_never_passed_off_as_the_terminals() -> None:
    assert status("p1", Intermediate(0x01, "Please watch the PIN pad")) == PaymentStatus("p1", "", PaymentPrompt.ENTER_PIN)
    assert status("p1", Intermediate(0x42, "Please follow the instructions on the card terminal")).text == ""
    assert status("p1", Intermediate(0x04, "")).prompt is PaymentPrompt.WAIT
