"""Line state after a restart, byte for byte: stale answers, a PT still master, and never an answer to an answer."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_port import FakeClock, FakePort
from drivers.zvt import messages as msg
from drivers.zvt.ecr import CommandRefused, EcrSession, TerminalUnreachable
from drivers.zvt.link import ACK, Frame, FrameDecoder, Link, encode_frame

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
    line.script(acked(APPROVED), acked(ABORTED))
    session.resync(QUIET_S, 30)
    assert line.answers()[2:] == [POSITIVE, NOT_VENDED, POSITIVE], \
        "Please wait answered, the approval refused (no session), the abort acknowledged"


def test_a_terminal_that_keeps_talking_is_unreachable_after_the_limit() -> None:
    line = Line()
    session = line.session()
    chatter = [acked(INSERT_CARD)] * 100
    line.script(*chatter)
    line.waiting(frame(INSERT_CARD))
    with pytest.raises(TerminalUnreachable, match="did not fall quiet"):
        session.resync(QUIET_S, 3)
    assert set(line.answers()) == {POSITIVE}


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


QUESTIONS = [INSERT_CARD, PLEASE_WAIT, APPROVED, ABORTED, "06 D1 02 00 41", "06 0F 02 27 00"]
ANSWERS = [POSITIVE, BUSY_IN_PAYMENT, "84 9C 00", NOT_VENDED, "80 00 00 FF", "84 00"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(QUESTIONS + ANSWERS), max_size=12), st.booleans())
def test_fuzz_the_ecr_answers_each_question_once_and_never_an_answer(sequence: list[str], buffered: bool) -> None:
    """Whatever mix of questions and stale answers the PT puts on the line, one ECR answer per question."""
    line = Line()
    session = line.session()
    frames = [frame(text) for text in sequence]
    if buffered:
        line.waiting(b"".join(frames))
    else:
        for index, data in enumerate(frames):
            line.port.arrive(data, 0.3 * index)
    session.resync(QUIET_S, 60)
    questions = sum(1 for text in sequence if text in QUESTIONS)
    assert len(line.answers()) == questions
    assert line.port.written.count(bytes((ACK,))) >= len(sequence), "every frame is ACKed at the link level"
