"""The station's help desk over a real broker: button to agent and back, faults from the panel, no ticket lost."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from broker import Mosquitto
from help_station import help_desk_view, press_help, screen_says, settle_until, start_station, station_publishes
from mqtt_client import Received, Staff
from station_process import PREFIX, REPLY_TOPIC

from kiosk.domain import helpdesk
from kiosk.domain.events import Tap

pytestmark = pytest.mark.slow

TIMEOUT = 15


def help_requests(messages: list[Received]) -> list[dict]:
    return [m.json() for m in messages if m.topic == PREFIX + "help/request"]


def help_events(messages: list[Received], action: str | None = None) -> list[dict]:
    found = [m.json()["data"] for m in messages if m.topic == PREFIX + "event/help"]
    return [d for d in found if action is None or d["action"] == action]


def latest_state(messages: list[Received]) -> dict | None:
    states = [m for m in messages if m.topic == PREFIX + "help/state" and m.payload]
    return states[-1].json() if states else None


@pytest.fixture
def staff(broker: Mosquitto):
    agent = help_desk_view(broker.port)
    yield agent
    agent.close()


def to_parker(staff: Staff, **message: object) -> None:
    staff.publish(PREFIX + "help/to-parker", json.dumps(message))


def test_button_to_agent_and_back(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        press_help(station)
        assert station.panel.led_pattern == helpdesk.LED_BLINKING
        settle_until(station, lambda: screen_says(station, "A person is being called"), TIMEOUT, "the help overlay")
        [request] = station_publishes(station, staff, help_requests, TIMEOUT, "the ticket in the agents' queue")
        ticket = request["ticket"]
        assert request["context"]["screen"] == "welcome" and request["station"] == "ST-1"

        to_parker(staff, ticket=ticket, type="accept", agent="Ana")
        settle_until(station, lambda: station.panel.led_pattern == helpdesk.LED_STEADY, TIMEOUT, "a steady LED")
        settle_until(station, lambda: screen_says(station, "Ana"), TIMEOUT, "the agent's name on screen")
        station_publishes(station, staff, lambda ms: (latest_state(ms) or {}).get("agent") == "Ana", TIMEOUT,
                          "help/state connected")

        to_parker(staff, ticket=ticket, type="message", agent="Ana", text="I can see your station.")
        settle_until(station, lambda: screen_says(station, "I can see your station."), TIMEOUT, "the message")
        station_publishes(station, staff, lambda ms: help_events(ms, "message"), TIMEOUT,
                          "the message confirmed by an event")

        to_parker(staff, ticket=ticket, type="accept", agent="Bo")
        [refused] = station_publishes(station, staff, lambda ms: help_events(ms, "refused"), TIMEOUT,
                                      "Bo's accept refused")
        assert refused == {"ticket": ticket, "action": "refused", "refused": "accept", "agent": "Bo",
                           "reason": "taken by Ana"}

        station.loop.post(Tap("help:reply:card_declined"))
        [said] = station_publishes(station, staff,
                                   lambda ms: [m.json() for m in ms if m.topic == PREFIX + "help/from-parker"],
                                TIMEOUT, "the parker's quick reply")
        assert said["choice"] == "card_declined" and said["ticket"] == ticket

        to_parker(staff, ticket=ticket, type="resolve", agent="Ana", outcome="solved", text="Have a nice day")
        settle_until(station, lambda: screen_says(station, "Have a nice day"), TIMEOUT, "the resolution")
        assert station.panel.led_pattern == helpdesk.LED_OFF
        [closed] = station_publishes(station, staff, lambda ms: help_events(ms, "close"), TIMEOUT, "the closing event")
        assert closed["outcome"] == "solved" and closed["agent"] == "Ana" and closed["presses"] == 1
        assert isinstance(closed["time_to_accept_s"], int) and closed["time_to_resolve_s"] >= closed["time_to_accept_s"]
    finally:
        station.close()


def test_bad_agent_messages_change_nothing(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        press_help(station)
        [request] = station_publishes(station, staff, help_requests, TIMEOUT, "the ticket")
        ticket = request["ticket"]
        for bad in (b"", b"not json", b"[]", b'{"ticket": "x", "type": "accept", "agent": "A"}',
                    json.dumps({"ticket": ticket, "type": "message", "agent": "A"}).encode(),
                    json.dumps({"ticket": ticket, "type": "resolve", "agent": "A", "outcome": "bribed"}).encode(),
                    json.dumps({"ticket": ticket, "type": "accept", "agent": "A", "text": "x" * 501}).encode()):
            staff.publish(PREFIX + "help/to-parker", bad)
        staff.publish(PREFIX + "help/to-parker", json.dumps({"ticket": ticket, "type": "accept", "agent": "Old"}),
                      retain=True)
        to_parker(staff, ticket=ticket, type="accept", agent="Ana")
        settle_until(station, lambda: station.loop.state.help.agent == "Ana", TIMEOUT, "the one valid accept")
        assert [e["agent"] for e in station_publishes(station, staff, lambda ms: help_events(ms, "accept"), TIMEOUT,
                                                      "accept")] == ["Ana"]
        staff.publish(PREFIX + "help/to-parker", b"", retain=True)
        refusals = station_publishes(station, staff, lambda ms: len(help_events(ms, "refused")) >= 9 and
                                     help_events(ms, "refused"), TIMEOUT, "every bad message answered")
        assert [(r["ticket"], r["refused"], r["agent"]) for r in refusals] == [
            (None, None, None), (None, None, None), (None, None, None), ("x", "accept", "A"),
            (ticket, "message", "A"), (ticket, "resolve", "A"), (ticket, "accept", "A"), (ticket, "accept", "Old"),
            (None, None, None)]
        reasons = [r["reason"] for r in refusals]
        assert "UTF-8 JSON" in reasons[0] and "JSON object" in reasons[2] and "ticket id" in reasons[3]
        assert "text: required" in reasons[4] and "outcome" in reasons[5] and "retained" in reasons[7]
    finally:
        station.close()


def test_resolve_without_outcome_is_solved(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        press_help(station)
        [request] = station_publishes(station, staff, help_requests, TIMEOUT, "the ticket")
        to_parker(staff, ticket=request["ticket"], type="resolve", agent="Ana")
        [closed] = station_publishes(station, staff, lambda ms: help_events(ms, "close"), TIMEOUT, "the closing event")
        assert closed["outcome"] == "solved" and closed["agent"] == "Ana"
        station_publishes(station, staff, lambda ms: (latest_state(ms) or {}).get("outcome") == "solved", TIMEOUT,
                          "help/state closed, solved")
    finally:
        station.close()


def test_help_state_is_idle_until_the_first_ticket(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        idle = station_publishes(station, staff, lambda ms: [m for m in ms if m.topic == PREFIX + "help/state"],
                                 TIMEOUT, "a help/state before any ticket")[-1]
        assert {k: v for k, v in idle.json().items() if k != "since"} == {"ticket": None, "state": "idle"}
        late = Staff(broker.port)
        late.subscribe(PREFIX + "help/state")
        late.wait_for(lambda ms: [m for m in ms if m.retain and m.json()["state"] == "idle"], TIMEOUT,
                      "a late subscriber finds idle")
        late.close()
        press_help(station)
        station_publishes(station, staff, lambda ms: (latest_state(ms) or {}).get("state") == "waiting", TIMEOUT,
                          "the ticket's state replaces idle")
    finally:
        station.close()
    station = start_station(tmp_path / "station", broker.port)
    try:
        settle_until(station, lambda: station.link is not None and station.link.connected, TIMEOUT, "the link")
        later = Staff(broker.port)
        later.subscribe(PREFIX + "help/state")
        state = later.wait_for(lambda ms: [m.json() for m in ms if m.retain], TIMEOUT, "the retained state")
        assert state[-1]["state"] == "waiting", "a station that had a ticket never says idle again"
        later.close()
    finally:
        station.close()


def test_courtesy_and_journey_cancel_for_a_ticket(tmp_path: Path, broker: Mosquitto, staff: Staff) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        station.loop.post(Tap("start"))
        settle_until(station, lambda: station.loop.state.screen == "plate", TIMEOUT, "the plate screen")
        press_help(station)
        [request] = station_publishes(station, staff, help_requests, TIMEOUT, "the ticket")
        ticket = request["ticket"]
        assert request["context"]["screen"] == "plate"
        to_parker(staff, ticket=ticket, type="accept", agent="Ana")

        correlation = uuid.uuid4().bytes
        staff.publish(PREFIX + "cmd/courtesy", json.dumps({"plate": "B-HELP1", "minutes": 60, "reason": "declined card",
                                                            "ticket": ticket}),
                      response_topic=REPLY_TOPIC + "/1", correlation=correlation)
        [answer] = station_publishes(station, staff,
                                     lambda ms: [m.json() for m in ms if m.correlation == correlation], TIMEOUT, "reply")
        assert answer["ok"] is True
        settle_until(station, lambda: screen_says(station, "B-HELP1"), TIMEOUT, "the courtesy line on screen")
        [session] = station.store.rows("parking_session", plate="B-HELP1")
        assert session["kind"] == "courtesy" and ticket in session["reason"] and session["payment_id"] is None

        correlation = uuid.uuid4().bytes
        staff.publish(PREFIX + "cmd/journey/cancel", json.dumps({"reason": "ended by agent Ana", "ticket": ticket}),
                      response_topic=REPLY_TOPIC + "/2", correlation=correlation)
        [answer] = station_publishes(station, staff,
                                     lambda ms: [m.json() for m in ms if m.correlation == correlation], TIMEOUT, "reply")
        assert answer["ok"] is True
        settle_until(station, lambda: station.loop.state.screen == "welcome", TIMEOUT, "Welcome")
        assert station.loop.state.help is not None, "the call goes on"
    finally:
        station.close()


def test_no_ticket_is_lost_across_a_broker_outage_and_a_station_restart(tmp_path: Path, broker: Mosquitto) -> None:
    station = start_station(tmp_path / "station", broker.port)
    try:
        settle_until(station, lambda: station.link is not None and station.link.connected, TIMEOUT, "the link")
        broker.stop()
        settle_until(station, lambda: not station.link.connected, TIMEOUT, "the link to notice the outage")
        press_help(station)
        settle_until(station, lambda: station.loop.state.help.id is not None, TIMEOUT, "a durable ticket")
        ticket = station.loop.state.help.id
    finally:
        station.close()
    station = start_station(tmp_path / "station", broker.port)
    try:
        assert station.loop.state.help is not None and station.loop.state.help.id == ticket, "restored on screen"
        settle_until(station, lambda: screen_says(station, "A person is being called"), TIMEOUT, "the overlay again")
        assert station.panel.led_pattern == helpdesk.LED_BLINKING
        broker.start()
        # The agent is back before the station sends (its outbox waits for the loop, which this test runs).
        agent = Staff(broker.port)
        agent.subscribe("$share/agents/paystation/v1/+/help/request", PREFIX + "help/state")
        [request] = station_publishes(station, agent, help_requests, 30, "the ticket after the outage")
        assert request["ticket"] == ticket
        station_publishes(station, agent, lambda ms: (latest_state(ms) or {}).get("ticket") == ticket, TIMEOUT,
                          "its help/state")
        to_parker(agent, ticket=ticket, type="accept", agent="Ana")
        settle_until(station, lambda: station.panel.led_pattern == helpdesk.LED_STEADY, TIMEOUT, "the agent connected")
        agent.close()
    finally:
        station.close()


def test_refused_attempts_do_not_use_up_boot_numbers(tmp_path: Path, broker: Mosquitto,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Issue 16: the contract counts boots per connection; a broker that is down cost one boot per outage."""
    broker.stop()
    station = start_station(tmp_path / "station", broker.port)
    try:
        first = station.store.boot
        settle_until(station, lambda: len([r for r in caplog.records if "failed:" in r.getMessage()]) >= 3, TIMEOUT,
                     "three refused attempts")
        broker.start()
        staff = Staff(broker.port)
        staff.subscribe(PREFIX + "status")
        [birth] = station_publishes(station, staff, lambda ms: [m.json() for m in ms if m.topic == PREFIX + "status"
                                                                and m.json()["state"] == "online"], TIMEOUT, "birth")
        assert birth["boot"] == first, "no number was used by the refused attempts"
        staff.close()
    finally:
        station.close()
