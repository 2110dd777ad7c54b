"""Line state after a restart, byte for byte: stale answers, a PT still master, and never an answer to an answer."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_port import FakeClock, FakePort
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.payment.zvt import messages as msg
from drivers.payment.zvt.driver import OwedPayment, ZvtTerminal
from drivers.payment.zvt.ecr import CommandRefused, EcrSession, TerminalUnreachable
from drivers.payment.zvt.link import ACK, Frame, FrameDecoder, Link, encode_frame

POSITIVE = "80 00 00"
BUSY_IN_PAYMENT = "84 83 00"
NOT_VENDED = "84 66 00"
INSERT_CARD = "04 FF 01 0A"
PLEASE_WAIT = "04 FF 01 0E"
REGISTERED = "06 0F 0A 19 00 29 52 50 00 01 49 09 78"
# An approved payment: result 00, amount 2.00, trace 000007, receipt 0007.
APPROVED = "04 0F 10 27 00 04 00 00 00 00 02 00 0B 00 00 07 87 00 07"
ABORTED = "06 1E 01 6C"
QUIET_S = 1.0


def apdu(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text.replace(" ", ""))


def frame(text: str) -> bytes:
    """The frame of an APDU given in spaced hex."""
    return encode_frame(apdu(text))


class Line:
    """The PT's end of a fake serial line: replies scripted per ECR frame, every ECR APDU recorded."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.port = FakePort(self.clock, self._on_write)
        self.replies: list[list[bytes]] = []
        self.sent: list[bytes] = []
        self._decoder = FrameDecoder()

    def session(self) -> EcrSession:
        """An ECR session over this line, on its clock."""
        return EcrSession(Link(self.port, clock=self.clock), "000000", clock=self.clock)

    def script(self, *replies: list[bytes]) -> None:
        """What the PT sends after each next ECR frame (each list in order, 50 ms apart)."""
        self.replies.extend(replies)

    def waiting(self, *data: bytes) -> None:
        """Bytes already on the line (in the port's buffer) when the ECR starts reading."""
        for chunk in data:
            self.port.arrive(chunk)

    def answers(self) -> list[str]:
        """The ECR's APDUs, as spaced hex, in the order it sent them."""
        return [sent.hex(" ").upper() for sent in self.sent]

    def _on_write(self, port: FakePort, data: bytes) -> None:
        for item in self._decoder.feed(data, self.clock.now):
            if isinstance(item, Frame):
                self.sent.append(item.apdu)
                reply = self.replies.pop(0) if self.replies else [bytes((ACK,))]
                for index, chunk in enumerate(reply):
                    port.arrive(chunk, 0.01 + 0.05 * index)


def acked(*apdus: str) -> list[bytes]:
    """ACK the ECR's frame, then send these APDUs."""
    return [bytes((ACK,))] + [frame(text) for text in apdus]


def test_a_stale_positive_answer_waiting_before_registration_is_discarded_not_answered() -> None:
    line = Line()
    line.waiting(frame(POSITIVE))
    session = line.session()
    assert session.resync(QUIET_S, 30) == 1
    assert line.answers() == [] and line.port.written == bytes((ACK,)), "the stale frame is ACKed, never answered"
    line.script(acked(POSITIVE, REGISTERED))
    assert session.register().terminal_id == "52500001"
    assert line.answers() == ["06 00 06 00 00 00 BA 09 78", POSITIVE]


def test_a_stale_answer_that_crosses_the_registration_is_not_taken_for_its_answer() -> None:
    line = Line()
    session = line.session()
    line.script([frame(POSITIVE), bytes((ACK,)), frame(BUSY_IN_PAYMENT)])
    with pytest.raises(CommandRefused) as refused:
        session.register()
    assert refused.value.code == 0x83
    assert line.answers() == ["06 00 06 00 00 00 BA 09 78"], "neither answer was answered"


def test_a_stale_refusal_that_crosses_the_registration_does_not_fail_it() -> None:
    line = Line()
    session = line.session()
    line.script([frame(BUSY_IN_PAYMENT), bytes((ACK,)), frame(POSITIVE), frame(REGISTERED)])
    assert session.register().terminal_id == "52500001"
    assert line.answers() == ["06 00 06 00 00 00 BA 09 78", POSITIVE]


def test_the_audited_line_a_refusal_after_a_stale_positive_answer_gets_no_positive_answer() -> None:
    """The frames of issue 12's log: the extra 80 00 00 that got a payment booked is never sent."""
    line = Line()
    session = line.session()
    line.script(acked(POSITIVE, INSERT_CARD), acked(BUSY_IN_PAYMENT, PLEASE_WAIT))
    with pytest.raises(CommandRefused) as refused:
        session.register()
    assert refused.value.code == 0x83
    assert line.answers() == ["06 00 06 00 00 00 BA 09 78", POSITIVE], "only Insert card was answered"
    line.port.arrive(frame(APPROVED), 0.5)
    line.port.arrive(frame(ABORTED), 0.9)
    session.resync(QUIET_S, 30)
    assert line.answers()[2:] == [NOT_VENDED, POSITIVE], \
        "Please wait left unanswered (it may be a stale copy), the approval refused (no session), the abort acknowledged"


def test_a_terminal_that_keeps_talking_is_unreachable_after_the_limit() -> None:
    line = Line()
    session = line.session()
    for index in range(40):
        line.port.arrive(frame(INSERT_CARD), 0.5 * index)
    with pytest.raises(TerminalUnreachable, match="did not fall quiet"):
        session.resync(QUIET_S, 3)
    assert line.answers() == []


def test_an_authorization_refused_after_a_stale_positive_answer_fails_and_is_not_answered() -> None:
    line = Line()
    session = line.session()
    line.script(acked(POSITIVE, BUSY_IN_PAYMENT))
    outcome = session.pay(200, on_status=lambda text: None, decide=lambda info: True)
    assert (outcome.ending, outcome.approval) == ("failed", None)
    assert line.answers() == [msg.authorization(200, msg.EUR, 0x40, 30).hex(" ").upper()], "no answer to 84 83 00"


def test_an_approval_of_another_amount_is_not_this_payment() -> None:
    line = Line()
    session = line.session()
    line.script(acked(POSITIVE, APPROVED))
    asked: list[object] = []
    outcome = session.pay(350, on_status=lambda text: None, decide=lambda info: asked.append(info) or True)
    assert outcome.ending == "failed" and asked == [], "the station was never asked to book 2.00 for a 3.50 payment"
    assert line.answers()[1:] == [NOT_VENDED]


def test_a_vending_question_for_another_receipt_during_a_reversal_is_not_acknowledged() -> None:
    line = Line()
    session = line.session()
    reversed_receipt_3 = "04 0F 10 27 00 04 00 00 00 00 02 00 0B 00 00 03 87 00 03"
    line.script(acked(POSITIVE, APPROVED), acked(reversed_receipt_3), acked("06 0F 02 27 00"))
    outcome = session.reverse(3)
    assert outcome.reversed and outcome.info is not None and outcome.info.receipt_no == "0003"
    assert line.answers()[1:] == [NOT_VENDED, POSITIVE, POSITIVE]


ANSWERED_OUTSIDE_A_SEQUENCE = [APPROVED, ABORTED, "06 0F 02 27 00"]
QUESTIONS = [INSERT_CARD, PLEASE_WAIT, "06 D1 02 00 41", *ANSWERED_OUTSIDE_A_SEQUENCE]
ANSWERS = [POSITIVE, BUSY_IN_PAYMENT, "84 9C 00", NOT_VENDED, "80 00 00 FF", "84 00"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(QUESTIONS + ANSWERS), max_size=12), st.booleans())
def test_fuzz_the_ecr_answers_each_question_once_and_never_an_answer(sequence: list[str], buffered: bool) -> None:
    """Whatever the PT puts on the line: answers never answered, vending questions and endings answered once each,
    statuses and print lines (which may be copies the PT gave up on) acknowledged only."""
    line = Line()
    session = line.session()
    frames = [frame(text) for text in sequence]
    if buffered:
        line.waiting(b"".join(frames))
    else:
        for index, data in enumerate(frames):
            line.port.arrive(data, 0.3 * index)
    session.resync(QUIET_S, 60)
    answered = sum(1 for text in sequence if text in ANSWERED_OUTSIDE_A_SEQUENCE)
    assert len(line.answers()) == answered
    assert line.port.written.count(bytes((ACK,))) >= len(sequence), "every frame is ACKed at the link level"


def test_a_lost_ack_on_the_authorization_ends_it_as_failed_so_that_the_line_is_recovered() -> None:
    """The PT ran the first copy (its ACK was lost) and refuses the repeat: nothing charged, but not a plain decline."""
    line = Line()
    session = line.session()
    line.script([frame(POSITIVE), frame(INSERT_CARD)], acked(BUSY_IN_PAYMENT))
    outcome = session.pay(200, on_status=lambda text: None, decide=lambda info: True)
    assert (outcome.ending, outcome.result_code, outcome.approval) == ("failed", 0x83, None)
    assert len(line.answers()) == 2 and line.answers()[0] == line.answers()[1], "the authorization, twice"


def test_an_answer_whose_ack_is_lost_is_not_sent_again() -> None:
    line = Line()
    session = line.session()
    line.waiting(frame(ABORTED))
    line.script([], [], [])  # the PT never ACKs the station's 80 00 00
    with pytest.raises(TerminalUnreachable, match="not repeated"):
        session.resync(QUIET_S, 30)
    assert line.answers() == [POSITIVE], "one question, one answer on the line"


def never_opened() -> FakePort:
    raise AssertionError("the driver's own port is not used here")


@pytest.fixture
def owing() -> Iterator[tuple[Line, EcrSession, list[object]]]:
    """A line whose ECR answers the PT from the driver of a station owing receipt 0007 (trace 000007, 2.00)."""
    posted: list[object] = []
    station = ZvtTerminal(never_opened, posted.append, password="000000", currency="EUR",
                          owed=(OwedPayment("p1", "0007", "000007", 200),))
    line = Line()
    session = EcrSession(Link(line.port, clock=line.clock), "000000", clock=line.clock,
                         unsolicited=station.answer_unsolicited, unsolicited_sent=station.unsolicited_answered)
    yield line, session, posted
    station.close()


def test_a_failed_book_it_answer_never_counts_for_a_later_message(owing) -> None:
    """The PT asks about the owed payment, the station's 80 00 00 is not acknowledged; a later 06 1E must not book it."""
    line, session, posted = owing
    line.waiting(frame(APPROVED))
    line.script([])  # no ACK for the station's 80 00 00
    with pytest.raises(TerminalUnreachable):
        session.resync(QUIET_S, 60)
    line.port.arrive(frame(ABORTED))  # later: the PT auto-reversed it and says so
    session.resync(QUIET_S, 60)
    assert line.answers() == [POSITIVE, POSITIVE] and posted == []


def test_the_owed_payment_is_booked_once_its_answer_is_acknowledged(owing) -> None:
    line, session, posted = owing
    line.waiting(frame(APPROVED))
    session.resync(QUIET_S, 60)
    assert line.answers() == [POSITIVE]
    assert [(e.payment_id, e.outcome) for e in posted] == [("p1", "booked")]


def test_t3_counts_from_the_terminals_ack_not_from_the_first_send() -> None:
    """A command whose first ACK is lost is repeated after T2 (5 s); the answer 1 s later is still in time."""
    line = Line()
    session = line.session()
    line.script([], [bytes((ACK,))])
    line.port.arrive(frame(POSITIVE), 6.0)
    line.port.arrive(frame("06 0F 04 F0 F0 F0 00"), 6.1)
    assert session.status().status == 0


def test_a_reversal_report_with_a_receipt_of_its_own_names_the_original_by_bmp_37() -> None:
    """Some terminals give the reversal its own receipt and trace, and name the original's trace in BMP 37."""
    line = Line()
    session = line.session()
    report = "04 0F 14 27 00 04 00 00 00 00 02 00 0B 00 00 10 37 00 00 07 87 00 09"
    line.script(acked(POSITIVE, report), acked("06 0F 02 27 00"))
    outcome = session.reverse(7)
    assert outcome.reversed and outcome.info is not None
    assert (outcome.info.receipt_no, outcome.info.trace_no, outcome.info.original_trace_no) == ("0009", "000010",
                                                                                                "000007")
    assert line.answers()[1:] == [POSITIVE, POSITIVE], "the report acknowledged as the reversal's own"
    assert OwedPayment("p1", "0007", "000007", 200).reversed_by(outcome.info)
    assert not OwedPayment("p1", "0007", "000008", 200).reversed_by(outcome.info)
    assert not OwedPayment("p1", "0007", "000007", 250).reversed_by(outcome.info)


@pytest.mark.parametrize("then", [["06 0F 02 27 00"], [APPROVED, "06 0F 02 27 00"]], ids=["completes", "asks-again"])
def test_a_book_it_answer_whose_ack_is_lost_is_settled_by_the_terminals_next_message(then: list[str]) -> None:
    """Sent once, never repeated: the completion proves the PT had it; a repeated question is answered again."""
    line = Line()
    session = line.session()
    booked: list[object] = []
    line.script(acked(POSITIVE, APPROVED), [])  # the PT's ACK for the station's 80 00 00 is lost
    for index, text in enumerate(then):
        line.port.arrive(frame(text), 6.0 + index)
    outcome = session.pay(200, on_status=lambda text: None, decide=lambda info: True, on_booked=booked.append)
    assert outcome.ending == "booked" and len(booked) == 1
    answers = line.answers()[1:]
    assert answers == [POSITIVE] * (len(then) + 1), "one answer per question the PT put, no copy"


def test_an_end_of_day_never_takes_a_payments_approval_for_its_report() -> None:
    """An approval names its receipt; the end of day's report names none (it has totals): no "book it" here."""
    line = Line()
    session = line.session()
    line.script(acked(POSITIVE, APPROVED), acked("06 0F 02 27 00"))
    day = session.end_of_day()
    assert line.answers()[1:] == [NOT_VENDED, POSITIVE] and day.info is None


def test_a_payment_booked_while_another_is_reversed_is_not_reversed_after_it() -> None:
    """Owing receipts 7 and 8: during 7's reversal the PT asks again about 8, which is booked; 8 is then left alone."""
    approved_8 = "04 0F 10 27 00 04 00 00 00 00 03 00 0B 00 00 08 87 00 08"
    reversed_7 = "04 0F 10 27 00 04 00 00 00 00 02 00 0B 00 00 07 87 00 07"
    posted: list[object] = []
    station = ZvtTerminal(never_opened, posted.append, password="000000", currency="EUR",
                          owed=(OwedPayment("p1", "0007", "000007", 200), OwedPayment("p2", "0008", "000008", 300)))
    line = Line()
    session = EcrSession(Link(line.port, clock=line.clock), "000000", clock=line.clock,
                         unsolicited=station.answer_unsolicited, unsolicited_sent=station.unsolicited_answered)
    line.script(acked(POSITIVE, approved_8), acked(reversed_7), acked("06 0F 02 27 00"), acked())
    try:
        station.settle_owed(session)
    finally:
        station.close()
    assert [(e.payment_id, e.outcome) for e in posted] == [("p2", "booked"), ("p1", "reversed")]
    assert [a for a in line.answers() if a.startswith("06 30")] == ["06 30 06 00 00 00 87 00 07"], "8 never reversed"


def test_a_status_the_station_cannot_read_ends_the_payment_as_failed_never_as_an_exception() -> None:
    line = Line()
    session = line.session()
    line.script(acked(POSITIVE, "04 FF 00"))
    outcome = session.pay(200, on_status=lambda text: None, decide=lambda info: True)
    assert (outcome.ending, outcome.result_code, outcome.approval) == ("failed", 0x9A, None)
