"""The alert bridge against a real mosquitto, a real SMTP server and a local webhook receiver, on a manual clock."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alerts_kit import PREFIX, HookSink, Mail, MailSink, ManualClock, config_text, fault, lost, online
from broker import Mosquitto
from conftest import wait_for
from mqtt_client import Staff

from bridge.model import SendKind
from bridge.rules import load
from bridge.service import Service
from bridge.store import Store

TICK_S = 0.02  # how often the bridge looks at the (manual) clock
WAIT_S = 10.0


@dataclass
class Rig:
    """The broker, the receivers, a station-side client that also watches the retained alerts, and the bridge."""

    broker: Mosquitto
    mail: MailSink
    hooks: HookSink
    clock: ManualClock
    stations: Staff
    config: Path
    service: Service | None = None

    def start(self) -> Service:
        self.service = Service(load(self.config), clock=self.clock, tick_s=TICK_S)
        self.service.start()
        return self.service

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def publish(self, station: str, subtopic: str, payload: str, retain: bool = True) -> None:
        self.stations.publish(f"{PREFIX}/{station}/{subtopic}", payload, retain=retain)

    def watched(self, station: str, subject: str, active: bool = True) -> bool:
        assert self.service is not None
        case = self.service.snapshot().cases.get((station, subject))
        return case is not None and case.active is active

    def alerts(self) -> dict[str, dict[str, Any]]:
        """The retained alerts as the broker's subscribers see them now (empty payloads remove)."""
        found: dict[str, dict[str, Any]] = {}
        for message in self.stations.messages:
            if message.topic.startswith(f"{PREFIX}/_alerts/"):
                alert_id = message.topic.rsplit("/", 1)[1]
                if message.payload:
                    found[alert_id] = message.json()
                else:
                    found.pop(alert_id, None)
        return found


def make_rig(tmp_path: Path, failures: int = 0, broker_extra: str = "", **bridge: object) -> Iterator[Rig]:
    broker = Mosquitto(tmp_path / "broker", extra=broker_extra).start()
    mail, hooks = MailSink().start(), HookSink(failures).start()
    config = tmp_path / "alerts.toml"
    config.write_text(config_text(tmp_path / "alerts.db", broker.port, mail.port, hooks.url, **bridge), encoding="utf-8")
    stations = Staff(broker.port)
    stations.subscribe(f"{PREFIX}/_alerts/+")
    rig = Rig(broker, mail, hooks, ManualClock(), stations, config)
    try:
        yield rig
    finally:
        rig.stop()
        stations.close()
        hooks.stop()
        mail.stop()
        broker.stop()


@pytest.fixture
def rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """A rig; ``indirect`` parametrisation gives its options (``failures`` and [bridge] settings)."""
    yield from make_rig(tmp_path, **getattr(request, "param", {}))


def mails_to(rig: Rig, count: int, what: str) -> list[Mail]:
    """Wait until at least ``count`` mails arrived; all of them."""
    mails: list[Mail] = rig.mail.wait_for(lambda items: items if len(items) >= count else None, WAIT_S, what)
    return mails


def test_routing_grace_escalation_acknowledgement_night_and_resolution(rig: Rig) -> None:
    rig.start()
    rig.publish("ST-A", "status", online("Altstadt Nord"))
    rig.publish("ST-B", "status", online("Altstadt Nord"))
    rig.publish("ST-H", "status", online("Hafen"))
    rig.publish("ST-A", "fault/card_terminal", fault(True, since="2026-12-07T09:00:00.000Z"))
    rig.publish("ST-B", "fault/printer", fault(True, code="paper_low", severity="warning", message="Paper is low.",
                                               impact="notice", since="2026-12-07T09:00:00.000Z"))
    rig.publish("ST-H", "fault/door", fault(True, code="open", message="Door open.", impact="none",
                                            since="2026-12-07T09:00:00.000Z"))
    wait_for(lambda: rig.watched("ST-H", "fault/door"), WAIT_S, "the door fault watched")
    rig.clock.advance(60)
    rig.publish("ST-H", "fault/door", fault(False, code="open", since="2026-12-07T09:01:00.000Z"))
    wait_for(lambda: rig.watched("ST-H", "fault/door", active=False), WAIT_S, "the door fault cleared")
    rig.clock.advance(61)  # 09:02:01: ST-A and ST-B are over their grace; ST-H's door cleared within it
    mails = mails_to(rig, 4, "two alerts to anna and ben")
    posts = rig.hooks.wait_for(lambda items: items if len(items) == 2 else None, WAIT_S, "two ntfy posts")
    alerts = wait_for_alerts(rig, 2)
    by_station = {alert["stations"][0]: alert for alert in alerts.values()}
    a, b = by_station["ST-A"], by_station["ST-B"]
    assert a == {"id": a["id"], "problem": "fault", "state": "open", "title": "ST-A: card_terminal unreachable",
                 "stations": ["ST-A"], "zone": "Altstadt Nord", "component": "card_terminal", "code": "unreachable",
                 "severity": "critical", "message": "The card terminal does not answer.",
                 "parker_impact": "no_card_payment", "since": "2026-12-07T09:00:00.000Z",
                 "opened": "2026-12-07T09:02:01.000Z", "level": 0, "group": "crew-nord", "acked_by": None,
                 "acked_at": None, "changes": 1}
    assert sorted((m.to, m.subject) for m in mails) == sorted([
        (("anna@example.org",), "[critical] ST-A: card_terminal unreachable"),
        (("ben@example.org",), "[critical] ST-A: card_terminal unreachable"),
        (("anna@example.org",), "[warning] ST-B: printer paper_low"),
        (("ben@example.org",), "[warning] ST-B: printer paper_low")])
    link = f"https://crew.example.org:8885/?station=ST-A#ack={a['id']}"
    body = next(m.body for m in mails if "ST-A" in m.subject)
    assert body == (
        "ST-A: card_terminal unreachable\n\nThe card terminal does not answer.\n\nStations: ST-A (Altstadt Nord)\n"
        "Component: card_terminal, code unreachable\nSeverity: critical\nParker impact: no_card_payment\n"
        "Since: 2026-12-07 10:00 CET\n"
        f"Alert: {a['id']}, opened 2026-12-07 10:02 CET\n\nAcknowledge it (and see the station): {link}\n")
    ntfy = next(p for p in posts if p.headers["Title"].startswith("[critical]"))
    assert (ntfy.path, ntfy.headers["Title"], ntfy.headers["Priority"], ntfy.headers["Tags"], ntfy.headers["Click"],
            ntfy.body.decode()) == ("/ntfy/crew-nord", "[critical] ST-A: card_terminal unreachable", "5",
                                    "rotating_light", link, body)
    # Anna acknowledges ST-A's alert over MQTT; ST-B's is not acknowledged and escalates to the leads after 15 min.
    rig.stations.publish(f"{PREFIX}/_ack/crew-anna/{a['id']}", json.dumps({"note": "on my way"}))
    acked = wait_for_alerts(rig, 2, lambda found: found[a["id"]]["state"] == "acknowledged")
    assert (acked[a["id"]]["acked_by"], acked[a["id"]]["acked_at"]) == ("crew-anna", "2026-12-07T09:02:01.000Z")
    rig.stations.publish(f"{PREFIX}/_ack/crew-ben/{a['id']}", "{}")  # a second one keeps the first
    # A marker after it: a retained alert the bridge does not know, which it removes once it got there.
    rig.stations.publish(f"{PREFIX}/_alerts/a-marker", "{}", retain=True)
    rig.stations.wait_for(lambda found: any(m.topic.endswith("/a-marker") and not m.payload for m in found), WAIT_S,
                          "the marker removed, so the second acknowledgement was handled")
    assert wait_for_alerts(rig, 2)[a["id"]]["acked_by"] == "crew-anna"
    rig.clock.advance(900)
    escalated = mails_to(rig, 5, "the escalation to clara")[4]
    assert (escalated.to, escalated.subject) == (
        ("clara@example.org",), "[warning] Escalated: ST-B: printer paper_low")
    assert "it now goes to leads (escalation level 1)" in escalated.body
    escalated_state = wait_for_alerts(rig, 2, lambda found: found[b["id"]]["level"] == 1)
    assert (escalated_state[b["id"]]["group"], escalated_state[a["id"]]["acked_by"]) == ("leads", "crew-anna")
    # At night (22:30 in Berlin) a critical fault in the harbour goes to the night desk's JSON webhook.
    rig.clock.advance(12 * 3600 + 28 * 60 - 900 - 1)  # 21:30:00 UTC
    rig.publish("ST-H", "fault/door", fault(True, code="open", message="Door open.", impact="none",
                                            since="2026-12-07T21:30:00.000Z"))
    wait_for(lambda: rig.watched("ST-H", "fault/door"), WAIT_S, "the door fault again")
    rig.clock.advance(120)
    desk = rig.hooks.wait_for(lambda items: [p for p in items if p.path == "/desk"], WAIT_S, "the night desk's post")[0]
    document = desk.json()
    night = wait_for_alerts(rig, 3)
    night_id = next(alert_id for alert_id in night if alert_id not in (a["id"], b["id"]))
    assert desk.headers["Content-Type"] == "application/json"
    assert {key: document[key] for key in ("event", "delivery", "title", "link")} == {
        "event": "alert", "delivery": f"{night_id}.0.alert", "title": "[critical] ST-H: door open",
        "link": f"https://crew.example.org:8885/?station=ST-H#ack={night_id}"}
    assert document["alert"] == night[night_id] and document["alert"]["group"] == "night"
    # ST-A's fault ends: after the grace, the people who got the alert hear it is resolved, and it leaves the broker.
    rig.publish("ST-A", "fault/card_terminal", fault(False, since="2026-12-07T21:32:00.000Z"))
    wait_for(lambda: rig.watched("ST-A", "fault/card_terminal", active=False), WAIT_S, "ST-A cleared")
    rig.clock.advance(120)
    resolved = mails_to(rig, 7, "the resolved mails")[5:]
    assert sorted((m.to[0], m.subject) for m in resolved) == [
        ("anna@example.org", "Resolved: ST-A: card_terminal unreachable"),
        ("ben@example.org", "Resolved: ST-A: card_terminal unreachable")]
    assert "Acknowledged by crew-anna at 2026-12-07 10:02 CET." in resolved[0].body
    wait_for_alerts(rig, 2, lambda found: a["id"] not in found)
    assert len(rig.mail.items) == 7


Alerts = dict[str, dict[str, Any]]


def wait_for_alerts(rig: Rig, count: int, also: Callable[[Alerts], bool] | None = None) -> Alerts:
    """Wait until the broker holds ``count`` retained alerts (and ``also`` holds); them."""
    def ready(_: object) -> Alerts | None:
        found = rig.alerts()
        return found if len(found) == count and (also is None or also(found)) else None
    alerts: Alerts = rig.stations.wait_for(ready, WAIT_S, f"{count} retained alerts")
    return alerts


@pytest.mark.parametrize("rig", [{"escalate_after_s": 604_800}], indirect=True)
def test_a_burst_of_200_fault_changes_at_50_stations_gives_exactly_six_alerts(rig: Rig) -> None:
    rig.start()
    stations = [f"B{n:02}" for n in range(50)]
    for station in stations:
        rig.publish(station, "status", online("Altstadt Nord"))
    since = "2026-12-07T09:00:00.000Z"
    changes: list[tuple[str, str, str]] = []
    for step in range(4):  # 4 changes per station, the stations interleaved: 200 fault messages
        for n, station in enumerate(stations):
            if n < 30:  # the card terminal: up, down, up, up with a new message: a fleet-wide fault
                payload = fault(step != 1, since=since, message=f"no answer ({step})")
                changes.append((station, "fault/card_terminal", payload))
            elif n < 45:  # the door: up, down, up, down within the grace: nothing
                changes.append((station, "fault/door", fault(step % 2 == 0, code="open", since=since)))
            else:  # the display: unavailable, clear, render_failed, render_failed again: one alert each
                code = "unavailable" if step < 2 else "render_failed"
                changes.append((station, "fault/display", fault(step != 1, code=code, since=since,
                                                                message=f"display ({step})", impact="out_of_service")))
    assert len(changes) == 200
    for station, subtopic, payload in changes:
        rig.publish(station, subtopic, payload)
    wait_for(lambda: rig.watched("B49", "fault/display") and rig.watched("B44", "fault/door", active=False)
             and rig.watched("B29", "fault/card_terminal"), WAIT_S, "the burst judged")
    snapshot = rig.service.snapshot() if rig.service else None
    assert snapshot is not None and not snapshot.alerts
    rig.clock.advance(121)
    mails = mails_to(rig, 12, "six alerts to anna and ben")
    posts = rig.hooks.wait_for(lambda items: items if len(items) >= 6 else None, WAIT_S, "six ntfy posts")
    alerts = wait_for_alerts(rig, 6)
    # A sentinel: a fault in the harbour goes to the leads; once its mail is there, every earlier send was made.
    rig.publish("H1", "status", online("Hafen"))
    rig.publish("H1", "fault/door", fault(True, code="open", since=since))
    wait_for(lambda: rig.watched("H1", "fault/door"), WAIT_S, "the sentinel")
    rig.clock.advance(120)  # its grace counts from when the bridge saw it, however old its since
    mails = mails_to(rig, 13, "the sentinel's mail")
    assert mails[-1].to == ("clara@example.org",) and len(rig.hooks.items) == len(posts) == 6
    assert sorted(subject for subject in {m.subject for m in mails[:12]}) == [
        "[critical] B45: display render_failed", "[critical] B46: display render_failed",
        "[critical] B47: display render_failed", "[critical] B48: display render_failed",
        "[critical] B49: display render_failed", "[critical] card_terminal unreachable at 30 stations"]
    # The 30 terminals were all seen at the same bridge time, so the fleet names them in station order. Its changes
    # is the most raises of one station (flapping is per station and component): each terminal was raised twice
    # (up, then up again after its clear; the last change only changes the message), so 2, not 30 x 2 = 60. The
    # 15 doors rose and cleared within the grace (nothing), the 5 displays were raised twice each and each has an
    # alert of its own (5 render_failed < fleet_threshold 10): 1 + 5 = 6 alerts.
    fleet = next(alert for alert in alerts.values() if alert["problem"] == "fleet_fault")
    assert (fleet["stations"], fleet["zone"], fleet["changes"], fleet["message"]) == (
        stations[:30], "Altstadt Nord", 2, "no answer (3)")
    displays = sorted((alert["stations"], alert["changes"], alert["message"]) for alert in alerts.values()
                      if alert["problem"] == "fault")
    assert displays == [([station], 2, "display (3)") for station in stations[45:]]
    fleet_mail = next(m for m in mails if "30 stations" in m.subject)
    assert "Stations: B00 (Altstadt Nord), B01 (Altstadt Nord)," in fleet_mail.body
    assert "Raised up to 2 times at one station (flapping: one alert, not one per change)" in fleet_mail.body


@pytest.mark.parametrize("rig", [{"failures": 1}], indirect=True)  # the first post fails: retried after the restart
def test_a_restart_of_the_bridge_sends_nothing_twice_and_misses_nothing(rig: Rig) -> None:
    rig.start()
    rig.publish("ST-A", "status", online("Altstadt Nord"))
    rig.publish("ST-A", "fault/card_terminal", fault(True, since="2026-12-07T09:00:00.000Z"))
    wait_for(lambda: rig.watched("ST-A", "fault/card_terminal"), WAIT_S, "the fault watched")
    rig.clock.advance(120)
    mails_to(rig, 2, "the alert to anna and ben")
    rig.hooks.wait_for(lambda items: items[0].path == "FAILED /ntfy/crew-nord" if items else None, WAIT_S,
                       "the failed post")
    first = wait_for_alerts(rig, 1)
    rig.stop()
    rig.publish("ST-A", "fault/printer", fault(True, code="jam", severity="warning", since="2026-12-07T09:02:00.000Z"))
    service = rig.start()  # the same database: the retained fault and alert come again and are known
    wait_for(lambda: rig.watched("ST-A", "fault/printer"), WAIT_S, "the new fault seen after the restart")
    assert list(service.snapshot().alerts) == list(first)
    rig.clock.advance(30)  # the failed post's retry is due (retry_s = 30)
    retried = rig.hooks.wait_for(lambda items: items[1:], WAIT_S, "the retried post")
    assert [post.path for post in retried] == ["/ntfy/crew-nord"]
    rig.clock.advance(90)  # the printer's grace is over: one new alert, and still only one for the terminal
    mails = mails_to(rig, 4, "the printer's alert")
    assert sorted(m.subject for m in mails) == [
        "[critical] ST-A: card_terminal unreachable", "[critical] ST-A: card_terminal unreachable",
        "[warning] ST-A: printer jam", "[warning] ST-A: printer jam"]
    rig.stop()  # while the bridge is down, the terminal comes back: the next run sees it and resolves the alert
    rig.publish("ST-A", "fault/card_terminal", fault(False, since="2026-12-07T09:05:00.000Z"))
    rig.start()
    wait_for(lambda: rig.watched("ST-A", "fault/card_terminal", active=False), WAIT_S, "the cleared fault seen")
    rig.clock.advance(120)
    mails = mails_to(rig, 6, "the resolved mails")
    assert [m.subject for m in mails[4:]] == ["Resolved: ST-A: card_terminal unreachable"] * 2
    remaining = wait_for_alerts(rig, 1, lambda found: next(iter(found.values()))["component"] == "printer")
    assert list(remaining) != list(first) and len(rig.mail.items) == 6
    assert [post.path for post in rig.hooks.wait_for(lambda items: items if len(items) == 4 else None, WAIT_S,
                                                     "the printer's and the resolved posts")] == [
        "FAILED /ntfy/crew-nord", "/ntfy/crew-nord", "/ntfy/crew-nord", "/ntfy/crew-nord"]
    rig.stop()
    (alert_id,) = first
    with Store(rig.config.parent / "alerts.db") as store:  # each message once, and recorded as sent
        kept = store.sends(alert_id)
        closed = store.alert(alert_id)
    assert [(d.kind, d.target.address, sent is not None) for d, sent in kept] == [
        (SendKind.ALERT, "anna@example.org", True), (SendKind.ALERT, "phones", True),
        (SendKind.ALERT, "ben@example.org", True), (SendKind.RESOLVED, "anna@example.org", True),
        (SendKind.RESOLVED, "phones", True), (SendKind.RESOLVED, "ben@example.org", True)]
    assert closed is not None and closed.closed is not None and closed.acked_at is None
    assert (closed.closed - closed.since).total_seconds() == 360  # closed at 09:06, after the grace
    assert closed.repaired is not None and (closed.repaired - closed.since).total_seconds() == 300  # the stations' 09:05


def test_a_lost_station_is_alerted_after_its_grace_with_zone_and_since_and_hostile_messages_change_nothing(
        rig: Rig) -> None:
    rig.start()
    rig.publish("ST-L", "status", online("Altstadt Süd", boot=7))
    wait_for(lambda: rig.service is not None and rig.service.engine.stations.get("ST-L") is not None, WAIT_S,
             "the birth seen")
    rig.clock.advance(60)
    hostile = [("ST-L/status", b"\xff\xfe"), ("ST-L/status", b"[]"), ("ST-L/status", b'{"state":"gone"}'),
               ("ST-L/fault/door", b'{"active":"yes"}'), ("ST-L/fault/DOOR", b"{}"), ("_ack/x/y", b"{}"),
               ("_ack/crew-anna/a-1", b'{"note":""}'), ("_alerts/NOT-AN-ID", b"{}"), ("ST-L/help/state", b"null"),
               ("ST-L/fault/door", b"[" * 100_000), ("bad station/status", b"{}")]
    for subtopic, payload in hostile:
        rig.stations.publish(f"{PREFIX}/{subtopic}", payload)
    rig.publish("ST-L", "status", lost(boot=7))
    wait_for(lambda: rig.watched("ST-L", "lost"), WAIT_S, "the will seen")
    rig.clock.advance(300)
    mail = mails_to(rig, 2, "the lost alert")[0]
    assert mail.subject == "[critical] Station ST-L lost"
    assert ("Station ST-L in zone Altstadt Süd has no connection to the broker since 2026-12-07 10:01 CET.\n"
            in mail.body)
    assert rig.service is not None and rig.service.failure is None


def test_a_fault_that_cleared_while_the_bridge_was_away_is_never_alerted(rig: Rig) -> None:
    """Time is judged only once the broker's retained state is back: not while disconnected, not before it settled."""
    service = rig.start()
    rig.publish("ST-A", "status", online("Altstadt Nord"))
    rig.publish("ST-A", "fault/card_terminal", fault(True, since="2026-12-07T09:00:00.000Z"))
    wait_for(lambda: rig.watched("ST-A", "fault/card_terminal"), WAIT_S, "the fault watched")
    rig.stop()
    rig.publish("ST-A", "fault/card_terminal", fault(False, since="2026-12-07T09:00:30.000Z"))
    rig.broker.stop()  # the bridge comes back an hour later, to a broker that is not there yet
    rig.clock.advance(3600)
    service = rig.start()
    steps = service.steps
    wait_for(lambda: service.steps >= steps + 5, WAIT_S, "steps taken while disconnected")
    assert not service.judging and rig.watched("ST-A", "fault/card_terminal")
    rig.clock.advance(300)  # broker_down_alert_s: the fallback group (the leads) hears of it, without the broker
    down = mails_to(rig, 1, "the broker-down notice")[0]
    assert (down.to, down.subject, down.message["Message-ID"]) == (
        ("clara@example.org",), "Alert bridge: no connection to the broker",
        "<bridge-down.20261207T100000.89a394e4e3e9@example.org>")
    assert down.body == (f"The alert bridge has no connection to the broker mqtt://127.0.0.1:{rig.broker.port} since "
                         "2026-12-07 11:00 CET.\n\nUntil it is back, the bridge sees no station and sends no alert: "
                         "watch the stations another way.\nAnother message follows when the connection is back.\n")
    rig.broker.start()
    wait_for(lambda: rig.watched("ST-A", "fault/card_terminal", active=False), WAIT_S, "the cleared fault seen")
    wait_for(lambda: service.judging, WAIT_S, "the state settled")
    sentinel = Staff(rig.broker.port)  # a harbour fault goes to the leads: once its mail is there, all was judged
    try:
        sentinel.publish(f"{PREFIX}/H1/status", online("Hafen"), retain=True)
        sentinel.publish(f"{PREFIX}/H1/fault/door", fault(True, code="open", since="2026-12-07T10:00:00.000Z"),
                         retain=True)
        wait_for(lambda: rig.watched("H1", "fault/door"), WAIT_S, "the sentinel watched")
        rig.clock.advance(121)
        mails = mails_to(rig, 3, "the sentinel's mail")
    finally:
        sentinel.close()
    assert [(m.to, m.subject) for m in mails] == [
        (("clara@example.org",), "Alert bridge: no connection to the broker"),
        (("clara@example.org",), "Alert bridge: connection to the broker back"),
        (("clara@example.org",), "[critical] H1: door open")]
    assert "connected to the broker mqtt://127.0.0.1:" in mails[1].body and "again since 2026-12-07 11:05 CET" in \
        mails[1].body


@pytest.mark.parametrize("rig", [{"broker_extra": "log_type all\n"}], indirect=True)
def test_acknowledgements_during_a_stop_and_a_restart_are_kept(rig: Rig) -> None:
    """An ack the bridge took while stopping is judged and saved; one sent while it is down waits at the broker."""
    service = rig.start()
    for station in ("ST-A", "ST-B"):
        rig.publish(station, "status", online("Altstadt Nord"))
        rig.publish(station, "fault/card_terminal", fault(True, since="2026-12-07T09:00:00.000Z"))
        wait_for(lambda station=station: rig.watched(station, "fault/card_terminal"), WAIT_S, f"{station} watched")
    rig.clock.advance(120)
    by_station = {alert["stations"][0]: alert_id for alert_id, alert in wait_for_alerts(rig, 2).items()}
    service.interrupt()  # what SIGTERM does: the owner is told to stop(); an ack arrives in between
    rig.stations.publish(f"{PREFIX}/_ack/crew-anna/{by_station['ST-A']}", "{}")
    wait_for(lambda: "Received PUBACK from kiosk-alerts" in rig.broker.log(), WAIT_S,
             "the bridge's client took the acknowledgement")
    rig.stop()
    rig.stations.publish(f"{PREFIX}/_ack/crew-ben/{by_station['ST-B']}", json.dumps({"note": "on my way"}))
    rig.start()
    acked = wait_for_alerts(rig, 2, lambda found: all(alert["state"] == "acknowledged" for alert in found.values()))
    assert {acked[by_station[station]]["acked_by"] for station in ("ST-A", "ST-B")} == {"crew-anna", "crew-ben"}
    rig.stop()
    with Store(rig.config.parent / "alerts.db") as store:
        notes = {alert.acked_by: alert.ack_note for alert in store.load()[1]}
    assert notes == {"crew-anna": None, "crew-ben": "on my way"}


def test_time_to_repair_ends_at_the_crews_fixed_note_from_the_stations_own_event(rig: Rig) -> None:
    rig.start()
    rig.publish("ST-A", "status", online("Altstadt Nord"))
    rig.publish("ST-A", "fault/card_terminal", fault(True, since="2026-12-07T09:00:00.000Z"))
    wait_for(lambda: rig.watched("ST-A", "fault/card_terminal"), WAIT_S, "the fault watched")
    rig.clock.advance(120)
    (alert_id,) = wait_for_alerts(rig, 1)
    note = {"id": "e-1", "series": "s", "seq": 7, "boot": 1, "ts": "2026-12-07T09:03:00.000Z", "kind": "repair",
            "data": {"component": "card_terminal", "code": "unreachable", "fault_raised_at": "2026-12-07T09:00:00.000Z",
                     "fault_active": True, "note": "new cable", "by": "crew-anna"}}
    rig.publish("ST-A", "event/repair", json.dumps(note), retain=False)
    rig.publish("ST-A", "fault/card_terminal", fault(False, since="2026-12-07T09:10:00.000Z"))
    wait_for(lambda: rig.watched("ST-A", "fault/card_terminal", active=False), WAIT_S, "the clear seen")
    rig.clock.advance(120)
    mails_to(rig, 4, "the resolved mails")
    rig.stop()
    with Store(rig.config.parent / "alerts.db") as store:
        closed = store.alert(alert_id)
    assert closed is not None and closed.repaired is not None
    assert (closed.repaired - closed.since).total_seconds() == 180, "the note at 09:03, not the clear at 09:10"
