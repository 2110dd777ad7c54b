"""The intercom's parts without a network: ctrl_tcp framing (fuzzed), baresip's files, the [voice] settings, the
driver against a fake baresip on a socket, and the journey under random call events."""
from __future__ import annotations

import json
import queue
import socket
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.intercom import baresip as baresip_driver
from drivers.intercom.baresip import BaresipIntercom
from drivers.intercom.baresip_files import PasswordUnusable, account_line, config_text, dial_uri, write_folder
from drivers.intercom.netstring import MAX_FRAME, FrameError, NetstringReader, encode
from drivers.intercom.simulated import SimulatedIntercom
from kiosk import config
from kiosk.config import Settings, VoiceSettings
from kiosk.domain import helpdesk, journey
from kiosk.domain.events import (
    CallOffered,
    CallProgress,
    EndCall,
    HelpPressed,
    HelpTicketOpened,
    IntercomHealth,
    PlaceCall,
    Tap,
    Tick,
)
from kiosk.domain.helpdesk import LedPattern
from kiosk.domain.voice import CallPhase, FailReason

VOICE = VoiceSettings(enabled=True, destination="sip:help@pbx.example.org", registrar="sip:pbx.example.org:5060",
                      user="de-ber-0042", callback_from=("sip:ana@pbx.example.org",))
TICKET = "3f2a9c4e-1b7d-4e8a-9c0f-5d6e7f8a9b0c"


# ---- framing ----


@given(st.lists(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=20), st.integers(), st.booleans(),
                                                                   st.none()), max_size=5), max_size=5),
       st.integers(min_value=1, max_value=7))
def test_netstrings_round_trip_however_the_stream_is_cut(messages: list[dict], chunk: int) -> None:
    stream = b"".join(encode(m) for m in messages)
    reader = NetstringReader()
    got: list[dict] = []
    for i in range(0, len(stream), chunk):
        got += reader.feed(stream[i:i + chunk])
    assert got == messages


@given(st.binary(max_size=64))
def test_any_bytes_are_messages_or_a_frame_error_never_a_crash(data: bytes) -> None:
    reader = NetstringReader()
    try:
        for message in reader.feed(data):
            assert isinstance(message, dict)
    except FrameError:
        pass


@pytest.mark.parametrize("bad", [b"x:{}", b"-1:{},", b"01:{},", b"2:{}x", b"4:null,", b"5:[1,2],", b"3:\xff\xfe\xfd,",
                                 b"5006:" + b'{"a":' + b"9" * 5000 + b"},",  # a number Python will not convert
                                 f"{MAX_FRAME + 1}:".encode(), b"1234567890"])
def test_broken_framing_is_refused(bad: bytes) -> None:
    with pytest.raises(FrameError):
        NetstringReader().feed(bad)


# ---- baresip's files ----


def test_the_dialled_uri_names_the_ticket_and_the_station() -> None:
    assert dial_uri(VOICE, TICKET, "DE-BER-0042") == \
        f"sip:help@pbx.example.org;x-kiosk-ticket={TICKET};x-kiosk-station=DE-BER-0042"
    with_headers = VoiceSettings(enabled=True, destination="sip:help@pbx;user=phone?Priority=urgent")
    assert dial_uri(with_headers, "t", "st 1") == "sip:help@pbx;user=phone;x-kiosk-ticket=t;x-kiosk-station=st-1" \
                                                  "?Priority=urgent"


def test_the_account_line_registers_with_codecs_and_encryption() -> None:
    line = account_line(VoiceSettings(**{**VOICE.__dict__, "srtp": "required", "transport": "tls"}), "DE-BER-0042",
                        "s3cret")
    assert line == ('"DE-BER-0042" <sip:de-ber-0042@pbx.example.org:5060;transport=tls>;audio_codecs=opus,G722,PCMA,'
                    'PCMU;answermode=manual;regint=3600;auth_pass=s3cret;mediaenc=srtp-mand')
    named = account_line(VoiceSettings(**{**VOICE.__dict__, "registrar": "sip:reg@pbx.example.org;transport=tcp"}),
                         "ST-1", "")
    assert "<sip:de-ber-0042@pbx.example.org;transport=udp>" in named, "the registrar's own user is not the station's"
    direct = account_line(VoiceSettings(enabled=True, destination="sip:a@b", listen="0.0.0.0:5070"), "ST-1", "")
    assert direct.startswith('"ST-1" <sip:ST-1@127.0.0.1;transport=udp>') and "regint=0" in direct
    assert "auth_pass" not in direct


@pytest.mark.parametrize("password", ["with space", "semi;colon", "angle>", 'quote"', "comma,"])
def test_a_password_baresip_cannot_carry_is_refused_not_mangled(password: str) -> None:
    with pytest.raises(PasswordUnusable):
        account_line(VOICE, "ST-1", password)


def test_the_config_loads_what_the_settings_need_and_nothing_else() -> None:
    text = config_text(VoiceSettings(enabled=True, destination="sip:a@b", codecs=("PCMA", "PCMU"), srtp="optional",
                                     audio_source="ausine,440", audio_player="alsa,default", listen="127.0.0.1:5070"))
    modules = [line.split()[1] for line in text.splitlines() if line.startswith("module\t")]
    assert modules == ["g711.so", "ausine.so", "alsa.so", "srtp.so"]
    for line in ("call_max_calls\t\t1", "ctrl_tcp_listen\t\t127.0.0.1:4444", "net_interface\t\t127.0.0.1",
                 "ausrc_srate\t\t48000", "rtp_timeout\t\t30"):
        assert line in text.splitlines()
    assert "net_interface" not in config_text(VOICE)


def test_the_folder_is_the_owners_only_and_an_unreadable_password_is_a_clear_error(tmp_path: Path) -> None:
    secret = tmp_path / "sip-password"
    secret.write_text("s3cret\n")
    voice = VoiceSettings(**{**VOICE.__dict__, "password_file": str(secret)})
    files = write_folder(tmp_path / "baresip", voice, "ST-1")
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((files.folder / "accounts").stat().st_mode) == 0o600
    assert (files.folder / "accounts").read_text().endswith(";auth_pass=s3cret\n"), "the password, its newline cut"
    missing = VoiceSettings(**{**VOICE.__dict__, "password_file": str(tmp_path / "nope")})
    with pytest.raises(PasswordUnusable, match=r"cannot read voice\.password_file"):
        write_folder(tmp_path / "baresip", missing, "ST-1")


# ---- the settings ----


@pytest.mark.parametrize(("voice", "key"), [
    ({"enabled": True}, "voice.destination"),
    ({"enabled": True, "destination": "tel:+4930"}, "voice.destination"),
    ({"enabled": True, "destination": "sip:a@b", "registrar": "sip:pbx"}, "voice.user"),
    ({"enabled": True, "destination": "sip:a@b", "transport": "sctp"}, "voice.transport"),
    ({"enabled": True, "destination": "sip:a@b", "codecs": []}, "voice.codecs"),
    ({"enabled": True, "destination": "sip:a@b", "codecs": ["mp3"]}, "voice.codecs[0]"),
    ({"enabled": True, "destination": "sip:a@b", "rtp_ports": "9000-8000"}, "voice.rtp_ports"),
    ({"enabled": True, "destination": "sip:a@b", "listen": "0.0.0.0:5060", "control_port": 5061},
     "voice.control_port"),
    ({"enabled": True, "destination": "sip:a@b", "ring_timeout_s": 5}, "voice.ring_timeout_s"),
    ({"enabled": True, "destination": "sip:a@b", "callback_from": ["ana@pbx"]}, "voice.callback_from[0]"),
    ({"enabled": True, "destination": "sip:a@b", "user": "a b"}, "voice.user"),
    ({"enabled": True, "destination": "sip:a@b", "listen": "pbx:5060"}, "voice.listen"),
    ({"enabled": "yes"}, "voice.enabled"),
    ({"enabled": True, "destination": "sip:a@b", "audio_source": "ausine,440\rmodule\t\tauloop.so"},
     "voice.audio_source"),
    ({"enabled": True, "destination": "sip:a@b", "audio_player": "alsa,my card"}, "voice.audio_player"),
])
def test_bad_voice_settings_are_each_named(voice: dict, key: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.from_mapping({"voice": voice}, "test")
    assert key in [problem.key for problem in refused.value.problems]


def test_voice_is_off_by_default_and_not_remotely_configurable() -> None:
    from kiosk.remote_config import REMOTE_SECTIONS

    assert not Settings().voice.enabled and "voice" not in REMOTE_SECTIONS


# ---- the driver against a fake baresip ----


class FakeBaresip:
    """A ctrl_tcp server on loopback: records the commands, sends the events a test gives it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.commands: queue.Queue[dict] = queue.Queue()
        self.conn: socket.socket | None = None
        self.accepted = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.conn, _ = self.server.accept()
        self.accepted.set()
        reader = NetstringReader()
        while True:
            data = self.conn.recv(4096)
            if not data:
                return
            for message in reader.feed(data):
                self.commands.put(message)

    def say(self, **event: object) -> None:
        assert self.conn is not None
        self.conn.sendall(encode({"event": True, **event}))

    def send_raw(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)


@pytest.fixture
def fake(tmp_path: Path):
    """The driver with a 'baresip' that is a sleeping shell, and a fake control socket where baresip's would be."""
    baresip = FakeBaresip()
    program = tmp_path / "baresip"
    program.write_text("#!/bin/sh\nexec sleep 60\n")
    program.chmod(0o755)
    posted: queue.Queue[object] = queue.Queue()
    voice = VoiceSettings(enabled=True, destination="sip:help@pbx", control_port=baresip.port, program=str(program))
    intercom = BaresipIntercom(voice, "ST-1", tmp_path / "folder", posted.put)
    intercom.start()
    assert baresip.accepted.wait(10)
    assert posted.get(timeout=10) == IntercomHealth(None)
    yield intercom, baresip, posted
    intercom.close()
    baresip.server.close()


def test_a_dial_and_baresip_s_events_become_the_ticket_s_call(fake) -> None:
    intercom, baresip, posted = fake
    intercom.dial(TICKET)
    command = baresip.commands.get(timeout=5)
    assert command == {"command": "dial", "params": f"sip:help@pbx;x-kiosk-ticket={TICKET};x-kiosk-station=ST-1",
                       "token": f"dial:{TICKET}"}
    baresip.say(type="CALL_LOCAL_SDP", direction="outgoing", param="offer")
    baresip.say(type="CALL_RINGING", direction="outgoing", id="c1", peeruri="sip:help@pbx")
    baresip.say(type="CALL_RTCP", direction="outgoing", id="c1")
    baresip.say(type="CALL_ESTABLISHED", direction="outgoing", id="c1", peeruri="sip:help@pbx")
    baresip.say(type="CALL_CLOSED", direction="outgoing", id="c1", param="Connection reset by peer")
    assert [posted.get(timeout=5) for _ in range(3)] == [
        CallProgress(TICKET, CallPhase.RINGING, "c1", "sip:help@pbx"),
        CallProgress(TICKET, CallPhase.TALKING, "c1", "sip:help@pbx"),
        CallProgress(TICKET, CallPhase.ENDED, "c1", "", "Connection reset by peer")]
    intercom.hang_up(TICKET)  # the call is gone already: nothing is sent
    intercom.dial("second")
    assert baresip.commands.get(timeout=5)["command"] == "dial"


def test_a_refused_dial_a_second_dial_and_a_stranger_s_call(fake) -> None:
    intercom, baresip, posted = fake
    intercom.dial(TICKET)
    baresip.commands.get(timeout=5)
    intercom.dial("other")  # one call at a time
    assert posted.get(timeout=5) == CallProgress("other", CallPhase.FAILED, reason=FailReason.UNREACHABLE)
    baresip.send_raw(encode({"response": True, "ok": False, "data": "invalid uri", "token": f"dial:{TICKET}"}))
    assert posted.get(timeout=5) == CallProgress(TICKET, CallPhase.FAILED, reason=FailReason.UNREACHABLE)
    baresip.say(type="CALL_INCOMING", direction="incoming", id="c9", peeruri="sip:eve@pbx")
    assert posted.get(timeout=5) == CallOffered("c9", "sip:eve@pbx")
    intercom.refuse("c9")
    assert baresip.commands.get(timeout=5) == {"command": "hangup", "token": "refuse:c9"}
    baresip.say(type="REGISTER_FAIL", param="401 Unauthorized")
    assert posted.get(timeout=5) == IntercomHealth("voice_unregistered", "401 Unauthorized")


def test_a_callback_the_agent_gave_up_before_the_answer_fails_and_frees_the_line(fake) -> None:
    """Found in review: the answer bound a call that was gone, so every later dial failed as 'another call'."""
    intercom, baresip, posted = fake
    baresip.say(type="CALL_INCOMING", direction="incoming", id="c5", peeruri="sip:ana@pbx")
    assert posted.get(timeout=5) == CallOffered("c5", "sip:ana@pbx")
    baresip.say(type="CALL_CLOSED", direction="incoming", id="c5", param="Request Terminated")
    baresip.say(type="REGISTER_OK")  # a marker: everything before it was read
    assert posted.get(timeout=5) == IntercomHealth(None)
    intercom.answer(TICKET, "c5")
    assert posted.get(timeout=5) == CallProgress(TICKET, CallPhase.ENDED, "c5", reason="the caller hung up")
    intercom.dial(TICKET)
    assert baresip.commands.get(timeout=5)["command"] == "dial", "the line is free"


def test_late_events_of_a_hung_up_call_are_not_the_next_call_s(fake) -> None:
    """Found in review: the old call's close, arriving after the next dial, failed the new call."""
    intercom, baresip, posted = fake
    intercom.dial("t1")
    baresip.commands.get(timeout=5)
    baresip.say(type="CALL_RINGING", direction="outgoing", id="c1")
    assert posted.get(timeout=5).call_id == "c1"
    intercom.hang_up("t1")
    intercom.dial("t0")  # hung up before baresip named its call
    intercom.hang_up("t0")
    intercom.dial("t2")
    baresip.say(type="CALL_CLOSED", direction="outgoing", id="c1", param="487 Request Terminated")
    baresip.say(type="CALL_CLOSED", direction="outgoing", id="c0", param="487 Request Terminated")
    baresip.say(type="CALL_RINGING", direction="outgoing", id="c2")
    assert posted.get(timeout=5) == CallProgress("t2", CallPhase.RINGING, "c2", "")


def test_a_dial_hung_up_before_baresip_refused_it_does_not_swallow_the_next_call_s_close(fake) -> None:
    """Found in the second review: the refused dial left a stray, which ate the next call's close."""
    intercom, baresip, posted = fake
    intercom.dial("t0")
    intercom.hang_up("t0")
    baresip.commands.get(timeout=5)
    baresip.send_raw(encode({"response": True, "ok": False, "data": "ua_connect failed", "token": "dial:t0"}))
    intercom.dial("t1")
    baresip.say(type="CALL_CLOSED", direction="outgoing", id="c1", param="486 Busy Here")
    assert posted.get(timeout=5) == CallProgress("t1", CallPhase.ENDED, "c1", "", "486 Busy Here")


def test_a_broken_control_stream_fails_the_call_raises_the_fault_and_restarts(fake) -> None:
    intercom, baresip, posted = fake
    intercom.dial(TICKET)
    baresip.commands.get(timeout=5)
    baresip.send_raw(b"not a frame,")
    assert posted.get(timeout=10) == CallProgress(TICKET, CallPhase.ENDED, reason="the SIP user agent stopped")
    health = posted.get(timeout=10)
    assert isinstance(health, IntercomHealth) and health.fault == "voice_down" and "broken" in health.detail
    intercom.dial("while down")
    assert posted.get(timeout=5) == CallProgress("while down", CallPhase.FAILED, reason=FailReason.UNREACHABLE)


def test_a_baresip_that_stops_answering_is_restarted(fake, monkeypatch: pytest.MonkeyPatch) -> None:
    _, baresip, posted = fake
    monkeypatch.setattr(baresip_driver, "PING_S", 0.05)
    baresip.say(type="REGISTER_OK")  # the reader's next wait uses the short interval
    assert posted.get(timeout=5) == IntercomHealth(None)
    assert baresip.commands.get(timeout=5) == {"command": "reginfo", "token": "ping"}
    health = posted.get(timeout=5)  # the fake never answers
    assert isinstance(health, IntercomHealth) and health.fault == "voice_down" and "does not answer" in health.detail


def test_a_missing_program_is_the_voice_fault(tmp_path: Path) -> None:
    posted: queue.Queue[object] = queue.Queue()
    voice = VoiceSettings(enabled=True, destination="sip:a@b", program=str(tmp_path / "no-baresip"))
    intercom = BaresipIntercom(voice, "ST-1", tmp_path / "folder", posted.put)
    intercom.start()
    try:
        health = posted.get(timeout=10)
        assert isinstance(health, IntercomHealth) and health.fault == "voice_down" and "no-baresip" in health.detail
    finally:
        intercom.close()


def test_the_simulated_agent_rings_answers_and_hangs_up() -> None:
    posted: queue.Queue[object] = queue.Queue()
    intercom = SimulatedIntercom(posted.put, ring_s=0.01)
    intercom.start()
    assert posted.get(timeout=5) == IntercomHealth(None)
    intercom.dial(TICKET)
    ringing, talking = posted.get(timeout=5), posted.get(timeout=5)
    assert (ringing.phase, talking.phase) == (CallPhase.RINGING, CallPhase.TALKING)
    intercom.hang_up(TICKET)
    assert posted.get(timeout=5).phase is CallPhase.ENDED
    intercom.close()


# ---- the journey under random call events ----

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = Settings(voice=VOICE)
EVENTS = st.one_of(
    st.builds(CallProgress, st.sampled_from([TICKET, "other"]), st.sampled_from(list(CallPhase)),
              st.sampled_from(["", "c1", "c2"]), st.just(""), st.sampled_from(["", "486 Busy Here", "bye"])),
    st.builds(CallOffered, st.sampled_from(["c1", "c3"]), st.sampled_from(["sip:ana@pbx.example.org", "sip:eve@x"])),
    st.just(HelpPressed()), st.just(Tick()), st.just(Tap("help:cancel")), st.just(Tap("help:reply:other")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(EVENTS, st.integers(min_value=0, max_value=120)), max_size=25))
def test_any_order_of_call_events_keeps_the_ticket_honest(steps: list[tuple[object, int]]) -> None:
    state, _ = journey.step(journey.initial(SETTINGS, NOW), HelpPressed(), NOW)
    state, _ = journey.step(state, HelpTicketOpened(TICKET), NOW)
    now, live_calls = NOW, 1
    for event, seconds in steps:
        now += timedelta(seconds=seconds)
        before = state.help
        state, effects = journey.step(state, event, now)
        placed = sum(isinstance(e, PlaceCall) for e in effects)
        ended = sum(isinstance(e, EndCall) for e in effects)
        ticket = state.help
        if placed:
            assert placed == 1 and ticket is not None and ticket.call is not None
            assert ticket.call.phase is CallPhase.DIALLING
        if ended:
            assert before is not None and before.call is not None and before.call.live, "only a live call is hung up"
        if ticket is not None and ticket.call is not None:
            if ticket.call.phase is CallPhase.TALKING:
                assert ticket.call.answered is not None and helpdesk.led(ticket) is LedPattern.STEADY
            if ticket.call.phase is CallPhase.FAILED:
                assert ticket.call.reason in {reason.value for reason in FailReason}
            if ticket.call.live:
                assert ticket.open and not ticket.overdue
        if ticket is None:
            assert helpdesk.led(ticket) is LedPattern.OFF
        live_calls = int(ticket is not None and ticket.on_the_phone)
        assert live_calls <= 1
    json.dumps(journey.help_context(state))  # the context stays JSON


def test_a_voice_fault_left_from_before_is_cleared_when_voice_is_off(tmp_path: Path) -> None:
    from kiosk.cli.compose import build_station
    from kiosk.storage.store import Store

    database = tmp_path / "kiosk.db"
    with Store.open(database, "ST-1", NOW) as store:
        store.raise_fault("help", "voice_down", "warning", "baresip does not run", "notice", NOW)
    settings = config.from_mapping({"station": {"id": "ST-1"}, "storage": {"database": str(database)}}, "test")
    station = build_station(settings, lambda: NOW, simulate=True, headless=True, online=False)
    try:
        assert all(f.component != "help" for f in station.loop.fault_board.active())
        assert station.store is not None and station.store.active_faults() == []
    finally:
        station.close()


def test_a_simulated_station_with_voice_calls_a_pretend_agent(tmp_path: Path) -> None:
    from conftest import wait_for

    from kiosk.cli.compose import build_station

    settings = config.from_mapping({"station": {"id": "ST-1"}, "storage": {"database": str(tmp_path / "kiosk.db")},
                                    "voice": {"enabled": True, "destination": "sip:help@pbx.example.org"}}, "test")
    station = build_station(settings, lambda: datetime.now(UTC), simulate=True, headless=True)
    try:
        assert isinstance(station.intercom, SimulatedIntercom)
        station.start()
        station.loop.post(HelpPressed())
        wait_for(lambda: station.loop.state.help is not None and station.loop.state.help.call is not None
                 and station.loop.state.help.call.phase is CallPhase.RINGING, 10, "the pretend agent's phone ringing",
                 between=station.loop.settle)
    finally:
        station.close()
