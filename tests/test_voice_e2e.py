"""Help by voice end to end: the station's baresip calls an agent's baresip on loopback, with a real broker.

The help button is pressed through gpiozero's MockFactory; the agent's baresip records what it
hears, the station's too (through sndfile), and each recording must hold the other side's tone.
"""
from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from baresip_agent import (
    AGENT_TONE_HZ,
    BARESIP,
    STATION_TONE_HZ,
    Agent,
    finished_recording,
    free_port_pair,
    recording,
    station_voice,
    tone_strength,
)
from broker import Mosquitto
from help_station import help_desk_view, press_help, screen_says, settle_until, start_voice_station, station_publishes
from mqtt_client import Received, Staff
from sip_responder import SipResponder
from station_process import PREFIX

from drivers.intercom.baresip import BaresipIntercom
from kiosk.cli.compose import Station
from kiosk.domain import helpdesk
from kiosk.domain.events import Tap
from kiosk.domain.voice import CallPhase, FailReason

pytestmark = [pytest.mark.slow, pytest.mark.skipif(BARESIP is None, reason="baresip is not installed")]

TIMEOUT = 15
AUDIO_BYTES = 48_000  # about three seconds of 8 kHz 16-bit audio in a recording


def help_events(messages: list[Received], action: str) -> list[dict]:
    return [m.json()["data"] for m in messages if m.topic == PREFIX + "event/help" and m.json()["data"]["action"] == action]


def voice_state(messages: list[Received]) -> dict | None:
    states = [m.json() for m in messages if m.topic == PREFIX + "help/state" and m.payload]
    return states[-1].get("voice") if states else None


def agent_sees(station: Station, phone: Agent, kind: str, what: str, count: int = 1) -> dict:
    """Run the station's loop until ``phone`` has had ``count`` call events of ``kind``; the last one."""
    def seen() -> list[dict]:
        return [e for e in list(phone.events) if e.get("event") and e.get("type") == kind]
    settle_until(station, lambda: len(seen()) >= count, TIMEOUT, what)
    return seen()[-1]


def call(station: Station):
    assert station.loop.state.help is not None
    return station.loop.state.help.call


@pytest.fixture
def staff(broker: Mosquitto) -> Iterator[Staff]:
    view = help_desk_view(broker.port)
    yield view
    view.close()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    phone = Agent(tmp_path / "agent", answer="manual")
    yield phone
    phone.close()


@pytest.fixture
def voice_station(tmp_path: Path, broker: Mosquitto, agent: Agent) -> Iterator[Station]:
    station = start_voice_station(tmp_path / "station", broker.port, station_voice(tmp_path / "station", agent))
    yield station
    station.close()


def test_a_press_calls_the_agent_with_the_ticket_and_both_hear_each_other(
        tmp_path: Path, voice_station: Station, agent: Agent, staff: Staff) -> None:
    station = voice_station
    press_help(station)
    [request] = station_publishes(station, staff, lambda ms: [m.json() for m in ms
                                                              if m.topic == PREFIX + "help/request"], TIMEOUT,
                                  "the ticket in the agents' queue")
    ticket = request["ticket"]
    assert request["context"]["voice"] == {"uri": agent.uri}
    incoming = agent_sees(station, agent, "CALL_INCOMING", "the agent's phone to ring")
    invite = re.search(r"INVITE (\S+) SIP/2\.0.*?\nTo: ([^\n]+)", agent.log(20000), re.S)
    assert invite is not None
    assert f";x-kiosk-ticket={ticket};x-kiosk-station=ST-1" in invite.group(1), "the ticket in the request line"
    assert f"x-kiosk-ticket={ticket}" in invite.group(2), "and in the To header"
    assert incoming["peerdisplayname"] == "ST-1", "the station's name as the caller's"
    ringing = station_publishes(station, staff, lambda ms: (voice_state(ms) or {}).get("state") == "ringing"
                                and voice_state(ms), TIMEOUT, "help/state: ringing")
    assert ringing["call"] == incoming["id"] and ringing["direction"] == "outgoing"
    assert station.panel is not None and station.panel.led_pattern == helpdesk.LED_BLINKING
    assert screen_says(station, "Calling a person")

    agent.send("accept")
    settle_until(station, lambda: call(station).phase is CallPhase.TALKING, TIMEOUT, "the station talking")
    assert station.panel.led_pattern == helpdesk.LED_STEADY
    assert screen_says(station, "You are talking to a person")
    station_publishes(station, staff, lambda ms: (voice_state(ms) or {}).get("state") == "talking", TIMEOUT,
                      "help/state: talking")
    recordings = tmp_path / "station" / "station-recordings"
    settle_until(station, lambda: all((found := recording(folder)) is not None and found.stat().st_size > AUDIO_BYTES
                                      for folder in (agent.folder, recordings)), TIMEOUT, "three seconds of audio")

    agent.send("hangup")
    settle_until(station, lambda: call(station).phase is CallPhase.ENDED, TIMEOUT, "the agent's hang-up")
    assert station.loop.state.help is not None and station.loop.state.help.open, "the ticket goes on"
    assert screen_says(station, "The call has ended")
    assert station.panel.led_pattern == helpdesk.LED_BLINKING

    station_publishes(station, staff, lambda ms: help_events(ms, "call") and help_events(ms, "call")[-1]["state"]
                      == "waiting" and help_events(ms, "call")[-1].get("call") == incoming["id"]
                      and [e["call_state"] for e in help_events(ms, "call")] == ["dialling", "ringing", "talking",
                                                                                 "ended"], TIMEOUT, "each call step")
    staff.publish(PREFIX + "help/to-parker", f'{{"ticket":"{ticket}","type":"resolve","agent":"Ana"}}')
    [closed] = station_publishes(station, staff, lambda ms: help_events(ms, "close"), TIMEOUT, "the closing event")
    metrics = closed["voice"]
    assert metrics["calls"] == 1 and metrics["outcome"] == "answered"
    assert isinstance(metrics["answer_s"], int) and metrics["talk_s"] >= 2

    settle_until(station, lambda: finished_recording(agent.folder) and finished_recording(recordings), TIMEOUT,
                 "both recordings closed")
    agent_heard, station_heard = recording(agent.folder), recording(recordings)
    assert agent_heard is not None and station_heard is not None
    assert tone_strength(agent_heard, STATION_TONE_HZ) > 0.8, "the agent hears the station's microphone"
    assert tone_strength(agent_heard, AGENT_TONE_HZ) < 0.05
    assert tone_strength(station_heard, AGENT_TONE_HZ) > 0.8, "the parker hears the agent"
    assert tone_strength(station_heard, STATION_TONE_HZ) < 0.05


def test_a_call_with_srtp_required_carries_audio_both_ways(tmp_path: Path, broker: Mosquitto) -> None:
    agent = Agent(tmp_path / "agent", mediaenc="srtp-mand")
    station = start_voice_station(tmp_path / "station", broker.port,
                                  station_voice(tmp_path / "station", agent, srtp="required"))
    try:
        press_help(station)
        settle_until(station, lambda: call(station).phase is CallPhase.TALKING, TIMEOUT, "an encrypted call")
        recordings = tmp_path / "station" / "station-recordings"
        settle_until(station, lambda: all((found := recording(folder)) is not None and found.stat().st_size > AUDIO_BYTES
                                          for folder in (agent.folder, recordings)), TIMEOUT, "three seconds of audio")
        assert "mediaenc=srtp-mand" in (tmp_path / "station" / "baresip" / "accounts").read_text()
        assert "m=audio" in agent.log(20000) and "RTP/SAVP" in agent.log(20000), "the offer is SRTP"
        station.loop.post(Tap("help:cancel"))
        settle_until(station, lambda: station.loop.state.help is None, TIMEOUT, "the call ended")
        settle_until(station, lambda: finished_recording(agent.folder) and finished_recording(recordings), TIMEOUT,
                     "both recordings closed")
        agent_heard, station_heard = recording(agent.folder), recording(recordings)
        assert agent_heard is not None and station_heard is not None
        assert tone_strength(agent_heard, STATION_TONE_HZ) > 0.8 and tone_strength(station_heard, AGENT_TONE_HZ) > 0.8
    finally:
        station.close()
        agent.close()


def test_cancel_on_screen_hangs_up(voice_station: Station, agent: Agent) -> None:
    station = voice_station
    press_help(station)
    agent_sees(station, agent, "CALL_INCOMING", "the agent's phone to ring")
    agent.send("accept")
    settle_until(station, lambda: call(station).phase is CallPhase.TALKING, TIMEOUT, "talking")
    station.loop.post(Tap("help:cancel"))
    settle_until(station, lambda: station.loop.state.help is None, TIMEOUT, "the call ended on screen")
    agent_sees(station, agent, "CALL_CLOSED", "the agent's call to close")
    assert station.panel is not None and station.panel.led_pattern == helpdesk.LED_OFF


def fallback_on_screen(station: Station, reason: FailReason) -> None:
    settle_until(station, lambda: call(station).phase is CallPhase.FAILED, 20, f"the call to fail ({reason})")
    assert call(station).reason == reason
    ticket = station.loop.state.help
    assert ticket is not None and ticket.open, "the ticket goes on as text"
    assert screen_says(station, "We could not connect a call")
    assert screen_says(station, "Tell us what happened"), "the quick replies stay"


def test_a_busy_agent_falls_back_to_text(voice_station: Station, agent: Agent, staff: Staff) -> None:
    press_help(voice_station)
    agent_sees(voice_station, agent, "CALL_INCOMING", "the agent's phone to ring")
    agent.send("hangup")
    fallback_on_screen(voice_station, FailReason.BUSY)
    failed = station_publishes(voice_station, staff, lambda ms: (voice_state(ms) or {}).get("state") == "failed"
                               and voice_state(ms), TIMEOUT, "help/state: failed")
    assert failed["reason"] == "busy"


def test_nobody_answering_within_the_ring_timeout_falls_back_to_text(voice_station: Station, agent: Agent) -> None:
    press_help(voice_station)
    agent_sees(voice_station, agent, "CALL_INCOMING", "the agent's phone to ring")
    fallback_on_screen(voice_station, FailReason.NO_ANSWER)
    agent_sees(voice_station, agent, "CALL_CLOSED", "the station to hang up")


def test_an_unreachable_destination_falls_back_to_text(tmp_path: Path, broker: Mosquitto, agent: Agent) -> None:
    voice = station_voice(tmp_path / "station", agent, destination=f"sip:nobody@127.0.0.1:{free_port_pair()}")
    station = start_voice_station(tmp_path / "station", broker.port, voice)
    try:
        press_help(station)
        fallback_on_screen(station, FailReason.UNREACHABLE)
    finally:
        station.close()


@pytest.mark.parametrize(("status", "reason"), [("603 Decline", FailReason.REJECTED),
                                                ("404 Not Found", FailReason.UNREACHABLE),
                                                ("600 Busy Everywhere", FailReason.BUSY)])
def test_a_refusing_destination_falls_back_to_text(tmp_path: Path, broker: Mosquitto, agent: Agent, status: str,
                                                   reason: FailReason) -> None:
    responder = SipResponder(status)
    station = start_voice_station(tmp_path / "station", broker.port,
                                  station_voice(tmp_path / "station", agent, destination=responder.uri))
    try:
        press_help(station)
        fallback_on_screen(station, reason)
        assert responder.invites >= 1
    finally:
        station.close()
        responder.close()


def test_an_allowed_agent_calls_back_and_anyone_else_is_refused(tmp_path: Path, voice_station: Station,
                                                                  agent: Agent) -> None:
    station = voice_station
    press_help(station)
    agent_sees(station, agent, "CALL_INCOMING", "the agent's phone to ring")
    agent.send("hangup")
    settle_until(station, lambda: call(station).phase is CallPhase.FAILED, TIMEOUT, "busy")
    station_uri = f"sip:ST-1@{station.loop.state.settings.voice.listen}"

    stranger = Agent(tmp_path / "stranger", user="stranger")
    try:
        stranger.send("dial", station_uri)
        closed = agent_sees(station, stranger, "CALL_CLOSED", "the stranger refused")
        assert closed["param"].startswith("486"), closed
        assert call(station).phase is CallPhase.FAILED, "the ticket's call is untouched"
    finally:
        stranger.close()

    agent.send("dial", station_uri)
    settle_until(station, lambda: call(station).phase is CallPhase.TALKING, TIMEOUT, "the callback answered")
    assert screen_says(station, "A person is calling you back")
    established = agent_sees(station, agent, "CALL_ESTABLISHED", "the agent connected")
    assert call(station).id == established["id"]


def test_baresip_killed_during_a_call_recovers_and_the_ticket_goes_on(voice_station: Station, agent: Agent) -> None:
    station = voice_station
    intercom = station.intercom
    assert isinstance(intercom, BaresipIntercom)
    press_help(station)
    agent_sees(station, agent, "CALL_INCOMING", "the agent's phone to ring")
    agent.send("accept")
    settle_until(station, lambda: call(station).phase is CallPhase.TALKING, TIMEOUT, "talking")
    pid = intercom.process_id
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    settle_until(station, lambda: call(station).phase is CallPhase.ENDED, TIMEOUT, "the call ended with baresip")
    settle_until(station, lambda: any(f.component == "help" and f.code == "voice_down"
                                      for f in station.loop.state.faults), TIMEOUT, "the voice fault")
    assert station.loop.state.help is not None and station.loop.state.help.open, "the ticket goes on"
    settle_until(station, lambda: intercom.ready and not any(f.component == "help" for f in station.loop.state.faults),
                 TIMEOUT, "baresip started again and the fault cleared")
    press_help(station)
    agent_sees(station, agent, "CALL_INCOMING", "a second call after the restart", count=2)
