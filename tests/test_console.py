"""The agents' console: the pure board, the link's rules, and the Textual app against a real mosquitto."""
from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from broker import Mosquitto
from certs import make_pki
from console_pilot import FakeStation, activity, console, fleet_rows, iso, js, rows, topic, until
from hypothesis import given, settings
from hypothesis import strategies as st
from mqtt_client import Staff
from paho.mqtt.client import topic_matches_sub

from console import command as console_command
from console import start as console_start
from console.agent_link import AgentLink, check_agent, parse_broker_url, subscriptions
from console.alerts import AlertKind
from console.board import Board
from console.forms import FormScreen
from console.history_messages import parse as history_parse

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ST1, ST2 = "ST-1", "ST-2"
TICKET_A = "0a0a0a0a-0000-4000-8000-00000000000a"
TICKET_B = "0b0b0b0b-0000-4000-8000-00000000000b"
PLATE = "B-AB-123"


def context(station: str = ST1, plate: str | None = PLATE) -> dict[str, Any]:
    """A help context: on the payment screen, card declined, terminal down."""
    return {"station": station, "zone": "Altstadt Nord", "screen": "payment", "plate": plate,
            "last_payment": {"result": "declined"},
            "last_payment_error": {"reason": "declined", "result_code": 5, "terminal_text": "Karte abgelehnt"},
            "active_faults": [{"fault": "card_terminal/unreachable", "severity": "critical"}]}


def help_state(ticket: str, state: str, opened: datetime, agent: str | None = None, station: str = ST1,
               **extra: Any) -> bytes:
    """A station's help/state payload."""
    return js({"ticket": ticket, "state": state, "since": iso(opened), "opened": iso(opened), "agent": agent,
               "overdue": False, "context": context(station), **extra})


def help_event(action: str, ticket: str = TICKET_A, event_id: str | None = None, **data: Any) -> bytes:
    """An event/help envelope."""
    return js({"id": event_id or str(uuid.uuid4()), "seq": 1, "boot": 3, "ts": iso(T0),
               "kind": "help", "data": {"ticket": ticket, "action": action, **data}})


def fault(code: str, severity: str, active: bool = True) -> bytes:
    """A retained fault payload."""
    return js({"active": active, "code": code, "severity": severity, "since": iso(T0), "message": f"{code}!",
               "parker_impact": "none"})


# ---- the board (pure) ----

def test_fleet_states_and_a_lost_station_alert() -> None:
    board = Board("anna")
    assert board.apply(topic(ST1, "status"), js({"state": "online", "boot": 3, "firmware": "0.4.0", "config_version": 2,
                                                "zone": "Altstadt Nord", "ts": "2026-01-05T09:00:00.000Z"}),
                       True, T0) == []
    board.apply(topic(ST2, "status"), js({"state": "offline", "boot": 7, "ts": "2026-01-05T08:00:00+00:00"}), True, T0)
    [one, two] = board.stations()
    assert (one.station, one.state, one.since, one.boot, one.zone, one.firmware) == (
        ST1, "online", T0, 3, "Altstadt Nord", "0.4.0")
    assert (two.state, two.since) == ("offline", T0 - timedelta(hours=1))

    later = T0 + timedelta(minutes=5)
    assert board.apply(topic(ST1, "status"), js({"state": "lost", "boot": 2}), False, later) == []  # stale will
    assert board.station(ST1).state == "online"
    [alert] = board.apply(topic(ST1, "status"), js({"state": "lost", "boot": 3}), False, later)
    assert (alert.kind, alert.station, alert.subject) == (AlertKind.STATION_LOST, ST1, None)
    lost = board.station(ST1)
    assert (lost.state, lost.since, lost.zone) == ("lost", later, "Altstadt Nord")  # no ts: arrival time
    assert board.apply(topic(ST1, "status"), js({"state": "lost", "boot": 3}), False, later) == []  # not twice
    assert board.apply(topic(ST2, "status"), js({"state": "lost", "boot": 7}), True, later) == []  # replayed at connect
    assert board.station(ST2).state == "lost"


def test_faults_critical_first_cleared_and_alerted_only_when_new_and_live() -> None:
    board = Board("anna")
    assert board.apply(topic(ST1, "fault/outbox"), fault("backlog", "warning"), True, T0) == []
    assert board.apply(topic(ST1, "fault/storage"), fault("full", "critical"), True, T0) == []  # retained: no alert
    assert board.apply(topic(ST1, "fault/operator"), fault("out_of_service", "info"), False, T0) == []
    [alert] = board.apply(topic(ST1, "fault/card_terminal"), fault("unreachable", "critical"), False, T0)
    assert (alert.kind, alert.subject, alert.detail) == (
        AlertKind.CRITICAL_FAULT, "card_terminal/unreachable", "Critical fault at ST-1: unreachable!")
    assert board.apply(topic(ST1, "fault/card_terminal"), fault("unreachable", "critical"), False, T0) == []  # rebirth
    assert [(f.name, f.severity) for f in board.station(ST1).faults] == [
        ("card_terminal/unreachable", "critical"), ("storage/full", "critical"), ("outbox/backlog", "warning"),
        ("operator/out_of_service", "info")]

    board.apply(topic(ST1, "fault/storage"), b"", False, T0)  # retained topic cleared
    board.apply(topic(ST1, "fault/card_terminal"), fault("unreachable", "critical", active=False), False, T0)
    assert [f.component for f in board.station(ST1).faults] == ["outbox", "operator"]
    [again] = board.apply(topic(ST1, "fault/card_terminal"), fault("not_ready", "critical"), False, T0)
    assert again.subject == "card_terminal/not_ready"


@pytest.mark.parametrize("level", ["_ack", "_alerts", "_"])
def test_the_bridges_trees_are_never_a_station(level: str, caplog: pytest.LogCaptureFixture) -> None:
    """``_ack/fault/a-1`` matches ``+/fault/+``: an account "fault" must not plant a station ``_ack`` with a fault."""
    board = Board("anna")
    for name, payload in (("status", js({"state": "lost", "boot": 1})), ("fault/a-1", fault("open", "critical")),
                          ("help/state", help_state(TICKET_A, "waiting", T0))):
        assert not board.reads(f"paystation/v1/{level}/{name}")
        assert board.apply(f"paystation/v1/{level}/{name}", payload, False, T0) == []
        assert history_parse(f"paystation/v1/{level}/{name}", payload) is None
    board.flush_warnings(T0 + timedelta(hours=1))
    assert board.stations() == [] and board.queue(T0) == [] and caplog.records == []  # ignored, not malformed
    assert board.reads(topic(ST1, "fault/door")) and history_parse(topic(ST1, "fault/door"), fault("open", "critical"))


def test_queue_is_oldest_first_with_waiting_time_and_forgets_closed_tickets() -> None:
    board = Board("anna")
    board.apply(topic(ST2, "help/state"), help_state(TICKET_B, "waiting", T0 + timedelta(seconds=30), station=ST2),
                True, T0)
    board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "waiting", T0), True, T0)
    now = T0 + timedelta(minutes=2)
    assert [(t.ticket, t.waiting_s, t.state) for t in board.queue(now)] == [
        (TICKET_A, 120, "waiting"), (TICKET_B, 90, "waiting")]
    view = board.ticket(ST1, TICKET_A, now)
    assert view.context.plate == PLATE and view.context.screen == "payment"
    assert view.context.last_payment == "declined"
    assert view.context.last_payment_error == "declined, result code 5, Karte abgelehnt"
    assert view.context.active_faults == (("card_terminal/unreachable", "critical"),)
    assert board.ticket(ST2, TICKET_A, now) is None

    board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "closed", T0, agent="anna", outcome="solved"),
                False, now)
    assert [t.ticket for t in board.queue(now)] == [TICKET_B]
    assert board.ticket(ST1, TICKET_A, now).outcome == "solved"
    assert board.apply(topic(ST1, "help/request"), js({"ticket": TICKET_A, "station": ST1, "opened": iso(T0),
                                                       "context": context()}), False, now) == []
    assert [t.ticket for t in board.queue(now)] == [TICKET_B]
    board.apply(topic(ST2, "help/state"), js({"state": "idle"}), False, now)  # the station has no ticket any more
    assert board.queue(now) == []


def test_a_ticket_shows_its_voice_call_and_each_call_step() -> None:
    board = Board("anna")
    board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "waiting", T0), True, T0)
    assert board.queue(T0)[0].voice is None, "no voice call: nothing said of one"
    voice = {"call": "4fc59b28", "uri": "sip:help@pbx", "state": "ringing", "reason": None, "direction": "outgoing",
             "since": iso(T0)}
    board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "waiting", T0, voice=voice), False, T0)
    [view] = board.queue(T0)
    assert view.voice is not None and (view.voice.summary, view.voice.call) == ("ringing", "4fc59b28")
    board.apply(topic(ST1, "event/help"), help_event("call", state="waiting", call="4fc59b28", uri="sip:help@pbx",
                                                      call_state="talking", reason=None, direction="outgoing"),
                False, T0)
    assert board.queue(T0)[0].voice.summary == "talking"
    board.apply(topic(ST1, "event/help"), help_event("call", state="waiting", call="4fc59b28", call_state="failed",
                                                      reason="busy", direction="outgoing"), False, T0)
    assert board.queue(T0)[0].voice.summary == "failed: busy"
    assert [line.text for line in board.conversation(TICKET_A)][-2:] == ["Voice call answered.",
                                                                         "Voice call failed (busy)."]
    board.apply(topic(ST1, "event/help"), help_event("call", call_state="on hold"), False, T0)  # logged, ignored
    assert board.queue(T0)[0].voice.summary == "failed: busy"


def test_ticket_taken_by_another_agent_and_my_refused_accept() -> None:
    board = Board("anna")
    board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "waiting", T0), True, T0)
    board.sent_accept(TICKET_A)
    [taken] = board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "connected", T0, agent="ben"), False, T0)
    assert (taken.kind, taken.detail) == (AlertKind.ACCEPT_TAKEN, "ben took the ticket at ST-1.")
    [view] = board.queue(T0)
    assert view.taken_by_other and not view.mine and view.agent == "ben"

    board.apply(topic(ST2, "help/state"), help_state(TICKET_B, "waiting", T0, station=ST2), True, T0)
    board.sent_accept(TICKET_B)
    assert board.apply(topic(ST2, "event/help"), help_event("refused", TICKET_B, refused="accept", agent="ben",
                                                            reason="not yours"), False, T0) == []
    [refused] = board.apply(topic(ST2, "event/help"), help_event("refused", TICKET_B, refused="accept", agent="anna",
                                                                 reason="ticket closed"), False, T0)
    assert (refused.kind, refused.detail) == (AlertKind.REFUSED, "ST-2 refused your accept: ticket closed")
    assert board.apply(topic(ST2, "help/state"), help_state(TICKET_B, "connected", T0, agent="anna", station=ST2),
                       False, T0) == []
    assert board.ticket(ST2, TICKET_B, T0).mine


def test_offered_to_me_only_through_the_shared_help_request() -> None:
    board = Board("anna")
    board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "waiting", T0), True, T0)
    assert not board.ticket(ST1, TICKET_A, T0).offered_to_me
    request = js({"ticket": TICKET_A, "station": ST1, "opened": iso(T0), "context": context()})
    [offer] = board.apply(topic(ST1, "help/request"), request, False, T0)
    assert (offer.kind, offer.subject, offer.detail) == (
        AlertKind.NEW_CALL, TICKET_A, "A parker at ST-1 (plate B-AB-123) asks for help.")
    assert board.ticket(ST1, TICKET_A, T0).offered_to_me
    assert board.apply(topic(ST1, "help/request"), request, False, T0) == []  # delivered twice (QoS 1)


def test_the_link_subscribes_to_help_requests_only_through_the_share() -> None:
    """What makes Board's offered_to_me right: no other filter of the console matches help/request."""
    request = topic(ST1, "help/request")
    filters = [f for f, _ in subscriptions("console-anna-1234")]
    shared = [f for f in filters if f.startswith("$share/")]
    assert shared == ["$share/agents/paystation/v1/+/help/request"]
    assert topic_matches_sub(shared[0].split("/", 2)[2], request)
    assert not any(topic_matches_sub(f, request) for f in filters if f not in shared)


def test_conversation_confirms_sent_lines_and_merges_the_parkers_two_copies() -> None:
    board = Board("anna")
    board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "connected", T0, agent="anna"), True, T0)
    board.sent_message(TICKET_A, "Ich schaue nach", T0)
    assert [(line.who, line.text, line.confirmed) for line in board.conversation(TICKET_A)] == [
        ("agent", "Ich schaue nach", False)]
    board.apply(topic(ST1, "help/from-parker"), js({"ticket": TICKET_A, "text": "My card is declined",
                                                    "choice": "card_declined", "ts": iso(T0)}), False, T0)
    message = help_event("message", agent="anna", text="Ich schaue nach")
    board.apply(topic(ST1, "event/help"), message, False, T0)
    board.apply(topic(ST1, "event/help"), message, False, T0)  # a duplicate delivery
    board.apply(topic(ST1, "event/help"), help_event("reply", text="My card is declined", choice="card_declined"),
                False, T0)
    board.apply(topic(ST1, "event/help"), help_event("close", outcome="solved", agent="anna", text="Gute Fahrt",
                                                     time_to_accept_s=12, time_to_resolve_s=60, presses=1),
                False, T0)
    lines = board.conversation(TICKET_A)
    assert [(line.who, line.text, line.choice, line.confirmed) for line in lines] == [
        ("agent", "Ich schaue nach", None, True),
        ("parker", "My card is declined", "card_declined", True),
        ("station", "Closed by anna: solved. Gute Fahrt", None, True)]
    assert board.queue(T0) == []


def test_texts_from_stations_cannot_smuggle_terminal_controls() -> None:
    board = Board("anna")
    board.apply(topic(ST1, "status"), js({"state": "online", "boot": 1, "zone": "\x1b[2Jzone\ud800"}), True, T0)
    assert board.station(ST1).zone == " [2Jzone?"


PAYLOAD = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                       max_leaves=12)
FIELDS = st.fixed_dictionaries({}, optional={
    key: PAYLOAD | st.sampled_from([TICKET_A, "online", "lost", "waiting", "connected", "closed", "idle", "help",
                                    "critical", "open", "message", "refused", "close", "anna", iso(T0)])
    for key in ("state", "boot", "ts", "ticket", "active", "severity", "code", "kind", "id", "agent", "opened",
                "since", "context", "data", "action", "text", "choice", "refused", "outcome")})
RESTS = st.sampled_from(["status", "fault/card_terminal", "help/state", "help/request", "event/help",
                         "help/from-parker", "cmd/rebirth", "fault/"])


@settings(max_examples=300, deadline=None)
@given(station=st.sampled_from([ST1, ST2, "", "a\x00"]), rest=RESTS, retained=st.booleans(),
       payload=st.one_of(st.binary(max_size=64), FIELDS.map(js), PAYLOAD.map(js),
                         st.builds(lambda d, data: js({**d, "kind": "help", "data": data}), FIELDS, FIELDS)))
def test_hostile_payloads_never_raise(station: str, rest: str, retained: bool, payload: bytes) -> None:
    failures: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = failures.append  # type: ignore[method-assign]
    logging.getLogger("console.board").addHandler(handler)
    try:
        board = Board("anna")
        board.apply(topic(ST1, "help/state"), help_state(TICKET_A, "waiting", T0), True, T0)
        board.apply(topic(station, rest), payload, retained, T0)
        board.stations()
        for view in board.queue(T0):
            board.conversation(view.ticket)
    finally:
        logging.getLogger("console.board").removeHandler(handler)
    assert failures == []


# ---- the link's and the command line's rules ----

@pytest.mark.parametrize("url, tls, expected", [
    ("mqtt://broker", False, ("broker", 1883, False)),
    ("mqtts://broker", False, ("broker", 8883, True)),
    ("mqtt://broker", True, ("broker", 8883, True)),
    ("mqtt://[::1]:1884/", False, ("::1", 1884, False)),
])
def test_broker_urls(url: str, tls: bool, expected: tuple[str, int, bool]) -> None:
    address = parse_broker_url(url, tls)
    assert (address.host, address.port, address.tls) == expected


@pytest.mark.parametrize("url", ["broker:1883", "http://broker", "mqtt://", "mqtt://broker:99999",
                                 "mqtt://anna:secret@broker", "mqtt://broker/topic", "mqtt://broker?x=1"])
def test_bad_broker_urls(url: str) -> None:
    with pytest.raises(ValueError, match="broker URL"):
        parse_broker_url(url)


def test_bad_link_settings() -> None:
    def link(url: str = "mqtt://broker", agent: str = "anna", **options: Any) -> AgentLink:
        return AgentLink(url, agent, on_message=lambda *_: None, on_state=lambda *_: None, **options)

    for agent in ("", " anna", "a/b", "a+", "x" * 61):
        with pytest.raises(ValueError, match="agent name"):
            check_agent(agent)
    with pytest.raises(ValueError, match="need TLS"):
        link(ca="ca.crt")
    with pytest.raises(ValueError, match="needs --username"):
        link(password_file="pw")
    assert link().client_id.startswith("console-anna-") and link().client_id != link().client_id


def test_the_station_never_imports_textual_nor_the_alert_bridge() -> None:
    """`kiosk run` wires the console's and the bridge's options, not their code: Textual costs 0.2 s and 13 MB at
    every start, the bridge's rules, store and judgement about 0.04 s."""
    code = ("import sys, kiosk.cli.main; print(sorted(m for m in sys.modules if m in "
            "('textual', 'console.app', 'bridge.rules', 'bridge.store', 'bridge.service')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def namespace(**options: Any) -> argparse.Namespace:
    """``kiosk console`` options as argparse makes them."""
    parser = argparse.ArgumentParser()
    console_command.add_arguments(parser)
    return parser.parse_args([f"--{k.replace('_', '-')}={v}" for k, v in options.items()])


def test_main_refuses_bad_options_and_explains_a_missing_textual(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert console_start.main(namespace(broker="http://broker")) == 2
    assert "broker URL 'http://broker'" in capsys.readouterr().err
    assert console_start.main(namespace(broker="mqtt://broker", username="anna", password_file="/nonexistent")) == 2
    assert "/nonexistent" in capsys.readouterr().err
    monkeypatch.setattr(console_start, "TEXTUAL_MISSING", ImportError("No module named 'textual'"))
    assert console_start.main(namespace(broker="mqtt://broker")) == 2
    assert "install the console extra: pip install 'kiosk[console]'" in capsys.readouterr().err


class Recorder:
    """An AgentLink's callbacks, recorded on paho's thread and waited for on the test's."""

    def __init__(self) -> None:
        self.states: list[tuple[bool, str]] = []
        self.topics: list[str] = []
        self.replies: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def link(self, url: str, **options: Any) -> AgentLink:
        """A started link that reports here."""
        link = AgentLink(url, "anna", on_message=lambda topic, *_: self._add(self.topics, topic),
                         on_state=lambda up, text: self._add(self.states, (up, text)), **options)
        link.start()
        return link

    def reply(self, reply: dict[str, Any]) -> None:
        """A command's on_reply."""
        self._add(self.replies, reply)

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
        """Until ``condition()`` holds."""
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; states {self.states}")

    def _add(self, where: list[Any], item: Any) -> None:
        with self._changed:
            where.append(item)
            self._changed.notify_all()


def test_the_link_reconnects_subscribes_again_and_times_out_commands(broker) -> None:
    recorder = Recorder()
    link = recorder.link(f"mqtt://127.0.0.1:{broker.port}", reply_timeout_s=0.3)
    try:
        recorder.wait(lambda: recorder.states and recorder.states[-1][0], "the connection")
        assert recorder.states[-1][1] == f"connected to mqtt://127.0.0.1:{broker.port}"
        link.command(ST1, "rebirth", {}, recorder.reply)
        recorder.wait(lambda: recorder.replies, "the timeout")
        assert recorder.replies[0]["ok"] is False and recorder.replies[0]["code"] == "timeout"

        broker.restart()
        recorder.wait(lambda: any(not up for up, _ in recorder.states), "the disconnection")
        assert next(text for up, text in recorder.states if not up).startswith("reconnecting: ")
        recorder.wait(lambda: recorder.states[-1][0], "the reconnection")
        staff = Staff(broker.port)
        staff.publish(topic(ST1, "status"), js({"state": "online", "boot": 1}), retain=True)
        staff.close()
        recorder.wait(lambda: recorder.topics == [topic(ST1, "status")], "the subscriptions to be back")
    finally:
        link.stop()


def test_the_link_speaks_tls_with_a_client_certificate(tmp_path) -> None:
    pki = make_pki(tmp_path / "pki", ("desk-anna",))
    broker = Mosquitto(tmp_path / "broker", cafile=pki.ca.cert, certfile=pki.server.cert, keyfile=pki.server.key,
                       require_certificate=True).start()
    recorder = Recorder()
    client = pki.clients["desk-anna"]
    link = recorder.link(f"mqtts://localhost:{broker.port}", ca=str(pki.ca.cert), cert=str(client.cert),
                         key=str(client.key))
    try:
        recorder.wait(lambda: recorder.states and recorder.states[-1][0], "the TLS connection")
        assert recorder.states[-1][1] == f"connected to mqtts://localhost:{broker.port}"
    finally:
        link.stop()
        broker.stop()


# ---- the app against a real mosquitto ----

def publish_station(station: FakeStation, opened: datetime) -> None:
    """ST-1 online with a critical fault and a waiting help ticket (all retained)."""
    station.publish(topic(ST1, "status"), js({"state": "online", "boot": 3, "firmware": "0.4.0", "config_version": 2,
                                              "zone": "Altstadt Nord", "ts": iso(opened)}), retain=True)
    station.publish(topic(ST1, "fault/card_terminal"), fault("unreachable", "critical"), retain=True)
    station.publish(topic(ST1, "help/state"), help_state(TICKET_A, "waiting", opened), retain=True)


def help_request(opened: datetime) -> bytes:
    """ST-1's help/request for TICKET_A."""
    return js({"ticket": TICKET_A, "station": ST1, "opened": iso(opened), "context": context()})


def test_a_refresh_timer_firing_while_the_console_closes_is_harmless(broker) -> None:
    app = console(broker.port, "anna")

    async def scenario() -> None:
        async with app.run_test(size=(160, 45)) as pilot:
            await until(pilot, lambda: app.query_one("#fleet") is not None, "the console to start")
        app._tick()  # its widgets are gone now; a timer that was already due still runs

    asyncio.run(scenario())


def test_console_shows_the_station_and_talks_to_the_parker(broker, tmp_path) -> None:
    station = FakeStation(broker.port)
    station.subscribe(topic("+", "help/to-parker"), topic("+", "cmd/#"))
    opened = datetime.now(UTC) - timedelta(seconds=75)
    publish_station(station, opened)

    async def scenario() -> None:
        app = console(broker.port, "anna")
        async with app.run_test(size=(160, 45)) as pilot:
            await until(pilot, lambda: rows(app, "#queue"), "the retained ticket in the queue")
            assert "connected to mqtt://127.0.0.1" in app.sub_title
            [fleet] = fleet_rows(app)
            assert fleet[:2] == [ST1, "online"] and fleet[3:] == ["Altstadt Nord", "card_terminal/unreachable"]
            [queued] = rows(app, "#queue")
            assert queued[0] == ST1 and queued[2:] == ["waiting", "", PLATE]
            minutes, seconds = queued[1].split(":")
            assert 75 <= 60 * int(minutes) + int(seconds) < 75 + 30  # opened 75 s before the test started

            station.publish(topic(ST1, "help/request"), help_request(opened))
            await until(pilot, lambda: rows(app, "#queue")[0][3] == "offered to you", "the offer")
            await until(pilot, lambda: "A parker at ST-1 (plate B-AB-123) asks for help." in activity(app),
                        "the call's alert, after the 2 s in which alerts gather")

            await pilot.press("f3")
            accepts = await until(pilot, lambda: station.on(topic(ST1, "help/to-parker")), "the accept")
            assert accepts[0].json() == {"ticket": TICKET_A, "type": "accept", "agent": "anna", "text": None,
                                         "outcome": None}
            assert rows(app, "#queue")[0][2] == "waiting"  # not mine until the station says so
            station.publish(topic(ST1, "help/state"), help_state(TICKET_A, "connected", opened, agent="anna"),
                            retain=True)
            await until(pilot, lambda: rows(app, "#queue")[0][2] == "connected to you", "the ticket to be mine")

            chat = app.query_one("#chat")
            chat.focus()
            chat.value = "Ich schaue nach"
            await pilot.press("enter")
            sent = await until(pilot, lambda: station.on(topic(ST1, "help/to-parker"))[1:], "the chat message")
            assert sent[0].json() == {"ticket": TICKET_A, "type": "message", "agent": "anna",
                                      "text": "Ich schaue nach", "outcome": None}
            assert chat.value == ""
            station.publish(topic(ST1, "event/help"), help_event("message", agent="anna", text="Ich schaue nach"))
            await until(pilot, lambda: [(line.who, line.confirmed) for line in app.board.conversation(TICKET_A)] == [
                ("agent", True)], "the station's confirmation")

            app.query_one("#queue").focus()
            await pilot.press("f6")
            form = await until(pilot, lambda: isinstance(app.screen, FormScreen) and app.screen, "the courtesy form")
            assert form.query_one("#field-plate").value == PLATE
            await pilot.press("enter")  # the next field: enter never confirms
            assert isinstance(app.screen, FormScreen) and not station.on(topic(ST1, "cmd/courtesy"))
            await pilot.press("ctrl+y")
            [request] = await until(pilot, lambda: station.on(topic(ST1, "cmd/courtesy")), "the courtesy command")
            assert request.json() == {"plate": PLATE, "minutes": 60, "reason": "help ticket", "ticket": TICKET_A}
            response_topic = station.response_topics[request.correlation]
            assert response_topic == topic(ST1, f"reply/{app.link.client_id}/{request.correlation.decode()}")
            station.publish(response_topic, js({"ok": True, "code": "ok", "detail": "free parking granted",
                                                "expires": "2026-01-05T10:00:00.000Z"}),
                            correlation=request.correlation)
            await until(pilot, lambda: "courtesy at ST-1: free parking granted (until " in activity(app),
                        "the reply's notification")

            app.save_screenshot(filename="console.svg", path=str(tmp_path))
        assert PLATE in (tmp_path / "console.svg").read_text(encoding="utf-8")

    try:
        asyncio.run(scenario())
    finally:
        station.close()


def test_two_consoles_see_every_ticket_but_one_gets_the_offer(broker) -> None:
    station = FakeStation(broker.port)
    opened = datetime.now(UTC)
    publish_station(station, opened)

    async def scenario() -> None:
        anna, ben = console(broker.port, "anna"), console(broker.port, "ben")
        async with anna.run_test(size=(140, 40)) as pilot_a, ben.run_test(size=(140, 40)) as pilot_b:
            for app, pilot in ((anna, pilot_a), (ben, pilot_b)):
                await until(pilot, lambda: rows(app, "#queue"), f"{app.agent}'s retained ticket")
            station.publish(topic(ST1, "help/request"), help_request(opened))
            # The marker is published after the request: once both consoles have it, the request has arrived too.
            station.publish(topic(ST1, "status"), js({"state": "offline", "boot": 3, "ts": iso(opened)}), retain=True)
            for app, pilot in ((anna, pilot_a), (ben, pilot_b)):
                await until(pilot, lambda: fleet_rows(app)[0][1] == "offline", f"{app.agent}'s marker")
            offered = [app.agent for app in (anna, ben) if app.board.queue(opened)[0].offered_to_me]
            assert len(offered) == 1, offered

    try:
        asyncio.run(scenario())
    finally:
        station.close()


def test_a_station_sending_garbage_is_summarised_not_logged_per_message(caplog: pytest.LogCaptureFixture) -> None:
    board = Board("anna")
    with caplog.at_level(logging.WARNING):
        for i in range(1000):
            board.apply(topic(ST1, "status"), b"not json", False, T0 + timedelta(seconds=i / 100))
        board.flush_warnings(T0 + timedelta(seconds=61))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # the first at once, then one summary of the other 999
    assert warnings[1].startswith("console: skipped 999 malformed messages, the first: paystation/v1/ST-1/status")
