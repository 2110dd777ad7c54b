"""Operator commands: validation of names, payloads and arguments before anything runs."""
import pytest

from kiosk.domain.staff import CourtesyArgs, ModeArgs, NoArgs, NoticeArgs, Refusal
from kiosk.mqtt import commands
from kiosk.mqtt.commands import Request

PREFIX = "paystation/v1/ST-1/"


def request(name: str, payload: bytes, correlation: bytes | None = b"c1", retained: bool = False,
            response_topic: str | None = PREFIX + "reply/x") -> Request:
    return Request(name, payload, response_topic, correlation, retained)


@pytest.mark.parametrize(("name", "payload", "expected"), [
    ("rebirth", b"", NoArgs()),
    ("rebirth", b"{}", NoArgs()),
    ("notice", b'{"text": "Closed on Sunday"}', NoticeArgs("Closed on Sunday")),
    ("notice", b'{"text": null}', NoticeArgs(None)),
    ("mode", b'{"mode": "out_of_service", "reason": "works"}', ModeArgs("out_of_service", "works")),
    ("courtesy", b'{"plate": "B-AB-1", "minutes": 30, "reason": "x"}', CourtesyArgs("B-AB-1", 30, "x")),
])
def test_valid_commands(name: str, payload: bytes, expected: object) -> None:
    assert commands.parse(request(name, payload)) == expected


@pytest.mark.parametrize(("req", "code"), [
    (request("rebirth", b"{}", retained=True), "retained"),
    (request("rebirth", b"x" * (commands.MAX_COMMAND_BYTES + 1)), "too_large"),
    (request("fly", b"{}"), "unknown_command"),
    (request("rebirth", b"{}", correlation=None), "bad_arguments"),
    (request("rebirth", b"{}", correlation=b""), "bad_arguments"),
    (request("rebirth", b"\xff"), "bad_json"),
    (request("rebirth", b"[" * 10_000), "bad_json"),
    (request("notice", b'{"text": "\\ud800"}'), "bad_json"),
    (request("rebirth", b"[]"), "bad_arguments"),
    (request("rebirth", b'{"x": 1}'), "bad_arguments"),
    (request("mode", b'{"mode": "out_of_service"}'), "bad_arguments"),
    (request("notice", b'{"text": " leading space"}'), "bad_arguments"),
    (request("courtesy", b'{"plate": "B-1", "minutes": 10081, "reason": "x"}'), "bad_arguments"),
])
def test_refusals_have_a_code(req: Request, code: str) -> None:
    with pytest.raises(Refusal) as refused:
        commands.parse(req)
    assert refused.value.code == code and refused.value.detail


@pytest.mark.parametrize(("topic", "ok"), [
    (PREFIX + "reply/console-1", True), (PREFIX + "reply/a/b", True), (PREFIX + "reply/", False),
    (PREFIX + "reply/#", False), ("paystation/v1/ST-2/reply/x", False), ("elsewhere", False), (None, False),
])
def test_only_the_own_reply_subtree_is_answered(topic: str | None, ok: bool) -> None:
    assert commands.can_answer(request("rebirth", b"{}", response_topic=topic), PREFIX) is ok


def test_replies_and_keys() -> None:
    assert commands.reply(True, "ok", "done", session="s1") == '{"ok":true,"code":"ok","detail":"done","session":"s1"}'
    assert commands.dedupe_key(request("rebirth", b"", correlation=b"\x01\xff")) == "01ff"
    assert commands.dedupe_key(request("rebirth", b"", correlation=None)) is None
