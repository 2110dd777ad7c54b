"""The station's side of the MQTT contract, run on the loop thread: birth, retained state, commands, config, telemetry."""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from kiosk import config, remote_config
from kiosk.domain import journey
from kiosk.domain.doctor import Finding, Health, Part, Report
from kiosk.domain.events import Event, LinkAcked, LinkDown, LinkState, LinkUp, MessageIn, MethodReport, SettingsChanged
from kiosk.domain.records import FaultRecord
from kiosk.domain.staff import TERMINAL_REQUESTS
from kiosk.mqtt import commands
from kiosk.mqtt.commands import Refusal, Request, reply
from kiosk.mqtt.contract import (
    CFG_DESIRED,
    CFG_REPORTED,
    COMMAND_PREFIX,
    FAULT_PREFIX,
    HELP_STATE,
    HELP_TO_PARKER,
    STATUS,
    TELEMETRY,
    fault_state,
    fault_topic,
    help_idle,
    json_text,
    station_prefix,
    time_text,
)
from kiosk.mqtt.direct_help import DirectHelp, Message
from kiosk.mqtt.publisher import OutboxPublisher
from kiosk.ports import FaultBoard, Host, PaymentMethod, StaffOperations, StorageError, Store

log = logging.getLogger(__name__)

SUBSCRIPTIONS = (COMMAND_PREFIX + "#", CFG_DESIRED, HELP_TO_PARKER)
HOUSEKEEPING_S = 60
WATCHDOG_MARGIN_S = 30
FLUSH_S = 0.01  # the longest the loop waits for the network thread to write what it published
TERMINAL_ANSWER_S = 600  # an end of day may take minutes; a terminal silent for longer will not answer
DOCTOR_ANSWER_S = 120  # the doctor's worker checks the database and runs a few commands; longer is a hung disk


class Client(Protocol):
    """What the uplink needs from the MQTT client (kiosk.mqtt.client.MqttClient)."""

    @property
    def connected(self) -> bool: ...

    @property
    def state(self) -> LinkState: ...

    @property
    def since(self) -> datetime: ...

    @property
    def reconnects(self) -> int: ...

    @property
    def address(self) -> str: ...

    @property
    def tls(self) -> bool: ...

    @property
    def refused(self) -> tuple[int, str]: ...

    def publish(self, topic: str, payload: str, qos: int, retain: bool, row_id: int | None = None,
                expiry_s: int | None = None) -> bool: ...

    def reply(self, response_topic: str, correlation: bytes | None, payload: str) -> bool: ...

    def flush(self, timeout: float) -> bool: ...

    def offer_boot(self, boot: int) -> None: ...

    def heartbeat_age(self) -> float: ...

    def restart(self) -> None: ...

    def stop(self, offline_payload: str, timeout: float = 3.0) -> None: ...


class Station(Protocol):
    """What the uplink needs from the loop (kiosk.app.loop.Loop)."""

    state: journey.State
    fault_board: FaultBoard
    operations: StaffOperations
    payment: PaymentMethod
    host: Host

    def post(self, event: Event) -> None: ...

    def examine(self, answer: Callable[[Report, datetime], None]) -> None: ...

    def update_summary(self) -> dict[str, Any] | None: ...


@dataclass
class _Waiting:
    """A command whose reply waits for the card terminal or the doctor; duplicates that arrive meanwhile wait too."""

    key: str | None
    since: datetime
    requests: list[Request] = field(default_factory=list)
    doctor: bool = False  # the doctor's examination, not the card terminal


class Uplink:
    """Everything MQTT that needs the station's state.

    With no broker configured ``link`` is an OfflineClient, and everything for staff waits in the outbox.
    """

    def __init__(self, settings: config.Settings, file_settings: config.Settings, link: Client,
                 publisher: OutboxPublisher | None, firmware: str, boot: int, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._file_settings = file_settings
        self._link = link
        self._publisher = publisher
        self._firmware = firmware
        self._boot = boot
        self._offered = boot
        self._prefix = station_prefix(settings.station.id)
        self._started = time.monotonic()
        self._station: Station | None = None
        self._next_telemetry: datetime | None = None
        self._next_housekeeping: datetime | None = None
        self._resync = False
        self._unstored: dict[str, str] = {}  # retained topic -> payload the store could not keep (faults, help/state)
        self._direct_help = DirectHelp(settings.station.id)
        self._answers: dict[str, tuple[str, str]] = {}  # dedupe key -> (command, reply), when there is no database
        self._waiting: dict[str, _Waiting] = {}  # terminal request id -> command waiting for it
        self._last_down = ""  # why the link last went down (for the doctor)

    def attach(self, station: Station, now: datetime) -> None:
        """Start serving ``station`` (called by the loop) and schedule the timers."""
        self._station = station
        self._next_telemetry = now + timedelta(seconds=self._settings.mqtt.telemetry_interval_s)
        self._next_housekeeping = now

    # ---- the loop's hooks ----

    def handle(self, event: Event, now: datetime) -> None:
        """An MQTT or terminal-report event from the loop's queue; nothing from the network can stop the loop."""
        try:
            if isinstance(event, LinkUp):
                self._connected(event.boot, now)
            elif isinstance(event, LinkDown):
                log.warning("MQTT link down: %s", event.reason)
                self._last_down = event.reason
                if event.used:  # the connection that ended used its number up; a refused attempt did not
                    self._offer_boot(now)
                if self._publisher is not None:
                    self._publisher.disconnected()
            elif isinstance(event, LinkAcked):
                if self._publisher is not None:
                    self._publisher.acked(now)
            elif isinstance(event, MessageIn):
                self._message(event, now)
            elif isinstance(event, MethodReport):
                self._method_report(event, now)
        except StorageError as exc:
            self._control.fault_board.raise_fault("storage", exc.reason, now, str(exc))
        except Exception:  # a bug must not turn one bad message into a crash loop (cfg/desired is retained)
            log.exception("%s not handled", type(event).__name__)

    def fault_changed(self, fault: FaultRecord, active: bool, stored: bool, now: datetime) -> None:
        """A fault was raised or cleared. One the store could not keep is published at once, without the outbox.

        Not durable (there is no database to keep it in), but staff learn that a station's storage
        is broken; it is published again at every connection until the store records that component.
        """
        topic = fault_topic(fault.component)
        if stored:
            self._unstored.pop(topic, None)
            return
        self._publish_directly([(topic, fault_state(fault, active, now), True, None)])

    def open_help_directly(self, context: dict[str, Any], now: datetime) -> str | None:
        """A help call the database could not open, published straight away; its id, or None while offline.

        Without a connection nobody can be reached (the parker is told so); with one, agents
        get the same help/request and help/state as for a stored ticket, without events.
        """
        if not self._link.connected:
            return None
        ticket, messages = self._direct_help.open(context, now)
        if not self._publish_directly(messages):
            log.error("help ticket %s could not be published: nobody can be reached", ticket)
            return None
        log.warning("help ticket %s opened without the database: published directly, not durable", ticket)
        return ticket

    def holds_directly(self, ticket_id: str) -> bool:
        """The call ``ticket_id`` was opened by open_help_directly: its steps go the same way."""
        return self._direct_help.holds(ticket_id)

    def help_step_directly(self, ticket_id: str, action: str, now: datetime, **details: str) -> None:
        """One step of a call opened by open_help_directly; ValueError for any other ticket."""
        self._publish_directly(self._direct_help.step(ticket_id, action, now, **details))

    def help_stored(self) -> None:
        """A ticket was stored again: its help/state comes from the outbox, not from a call held in memory."""
        self._unstored.pop(HELP_STATE, None)

    def persist_unstored(self, store: Store, now: datetime) -> None:
        """Write what was kept in memory while the database failed: the boot number in force and command replies.

        So that later boots go on above every number a connection used, and a duplicate
        command is still answered, not run again.
        """
        used = max(self._offered, self._boot)
        if used > 0:
            store.adopt_boot(used)
        for key, (name, answer) in list(self._answers.items()):
            if store.begin_command(key, name, now) is None:
                store.finish_command(key, answer, now)
            del self._answers[key]

    def storage_healed(self, now: datetime) -> None:
        """The database works again and holds every fault: their in-memory copies are no longer republished.

        Rows whose PUBACK could not be recorded meanwhile are published again (from the first
        unsent row, duplicates allowed), then the retained view, as after a reconnection.
        """
        for topic in [t for t in self._unstored if t.startswith(FAULT_PREFIX)]:
            del self._unstored[topic]
        if self._publisher is not None and self._link.connected:
            self._publisher.connected()
            self._resync = True
        log.info("storage usable again at %s: the outbox is sent again from its first unsent row", time_text(now))

    def _publish_directly(self, messages: list[Message]) -> bool:
        """Publish now, without the outbox (retained ones are kept for the next connection); True if all went out."""
        sent = True
        for topic, payload, retain, expiry_s in messages:
            if retain:
                self._unstored[topic] = payload
            sent = self._link.connected and self._link.publish(topic, payload, 1, retain, expiry_s=expiry_s) and sent
        return sent

    def pump(self, now: datetime) -> None:
        """Publish what the outbox gained (cheap when nothing changed); resync retained state once drained.

        What was published is written to the socket before the loop goes on to draw, so that a
        help request does not wait for a frame (at most FLUSH_S, so a stalled socket cannot hold the loop).
        """
        if self._publisher is None:  # no broker, or no database to send from
            return
        try:
            if self._publisher.pump():
                self._link.flush(FLUSH_S)
            if self._resync and self._publisher.drained:
                self._resync = False
                self._publish_retained()
        except StorageError as exc:
            self._control.fault_board.raise_fault("storage", exc.reason, now, str(exc))

    def deadline(self) -> datetime | None:
        """When the uplink next wants on_due (telemetry, housekeeping)."""
        due = [t for t in (self._next_telemetry, self._next_housekeeping) if t is not None]
        return min(due) if due else None

    def on_due(self, now: datetime) -> None:
        """Run the timers that are due."""
        try:
            if self._next_telemetry is not None and now >= self._next_telemetry:
                self._next_telemetry = now + timedelta(seconds=self._settings.mqtt.telemetry_interval_s)
                self._publish_telemetry(now)
            if self._next_housekeeping is not None and now >= self._next_housekeeping:
                self._next_housekeeping = now + timedelta(seconds=HOUSEKEEPING_S)
                self._housekeeping(now)
        except StorageError as exc:
            self._control.fault_board.raise_fault("storage", exc.reason, now, str(exc))

    def stop(self, now: datetime) -> None:
        """Say `offline` (retained) and disconnect cleanly, so that no will is sent."""
        self._link.stop(json_text({"state": "offline", "boot": self._boot, "ts": time_text(now)}))

    # ---- connection ----

    @property
    def _control(self) -> Station:
        assert self._station is not None, "attach() first"
        return self._station

    def _connected(self, boot: int, now: datetime) -> None:
        self._boot = boot
        log.info("MQTT link up (boot %d): birth, then the outbox", boot)
        self._publish_birth(now)
        self._idle_until_first_ticket(now)
        if self._publisher is not None:
            # What the store could not keep goes now, and again after the drain: a failing store may never drain.
            self._publish_directly([(topic, payload, True, None) for topic, payload in self._unstored.items()])
            self._publisher.connected()
            self._resync = True
        else:
            self._publish_retained()

    def _idle_until_first_ticket(self, now: datetime) -> None:
        """A station that never reported a help/state says ``idle``, so that a late subscriber always finds a state.

        Kept with what the store could not keep, and so republished at every connection until
        the first ticket's help/state (stored, or held directly) takes its place.
        """
        store = self._store
        if HELP_STATE in self._unstored or not store.usable:
            return
        try:
            if any(topic == HELP_STATE for topic, _ in store.retained_messages()):
                return
        except StorageError as exc:
            log.error("help/state idle not published: %s", exc)
            return
        self._unstored[HELP_STATE] = help_idle(now)

    def _offer_boot(self, now: datetime) -> None:
        """Give the link a fresh boot number for its next connection (durable when the database works)."""
        store = self._store
        fresh = max(self._offered, self._boot) + 1
        if store.usable:
            try:
                fresh = store.next_boot(now)
            except StorageError as exc:
                self._control.fault_board.raise_fault("storage", exc.reason, now, str(exc))
        self._offered = fresh
        self._link.offer_boot(fresh)

    def _publish_birth(self, now: datetime) -> None:
        store = self._store
        birth = {"state": "online", "boot": self._boot, "series": store.series if store.usable else None,
                 "firmware": self._firmware, "config_version": self._settings.version, "zone": self._settings.zone.name,
                 "ts": time_text(now)}
        update = self._control.update_summary()
        if update is not None:
            birth["update"] = update
        self._link.publish(STATUS, json_text(birth), 1, True)

    def _publish_retained(self) -> int:
        """Republish the station's whole retained view (fault/*, help/state, cfg/reported), unstored faults last."""
        store = self._store
        messages: list[tuple[str, str]] = []
        if store.usable:
            try:
                messages = store.retained_messages()
            except StorageError as exc:  # what the store could not give, the unstored faults below explain
                log.error("retained view not republished: %s", exc)
        messages += self._unstored.items()
        for topic, payload in messages:
            self._link.publish(topic, payload, 1, True)
        return len(messages)

    # ---- inbound ----

    def _message(self, event: MessageIn, now: datetime) -> None:
        if event.topic.startswith(COMMAND_PREFIX):
            request = Request(event.topic[len(COMMAND_PREFIX):], event.payload, event.response_topic, event.correlation,
                              event.retained)
            self._command(request, now)
        elif event.topic == CFG_DESIRED:
            self._desired(event.payload, now)
        elif event.topic == HELP_TO_PARKER:
            self._to_parker(event, now)
        else:
            log.warning("MQTT message on %s ignored: not subscribed to it", event.topic)

    def _to_parker(self, event: MessageIn, now: datetime) -> None:
        """An agent's accept, message or resolve; the loop's help desk decides and the store confirms it."""
        try:
            if event.retained:
                raise ValueError("retained: an agent's words are for now, not for replay; clear the retained message")
            said = commands.parse_to_parker(event.payload)
        except ValueError as exc:
            log.warning("help/to-parker refused: %s", exc)
            ticket, agent, kind = commands.to_parker_sender(event.payload)
            if self._store.usable:  # the agent learns why from event/help (a store error reaches handle())
                self._store.record_help(ticket, "refused", now, agent=agent, text=str(exc), outcome=kind)
            return
        self._control.post(said)

    def _command(self, request: Request, now: datetime) -> None:
        if not commands.can_answer(request, self._prefix):
            log.warning("command %r not run: its response topic %r is not under %s%s", request.name,
                        request.response_topic, self._prefix, commands.REPLY_SUBTREE)
            return
        key = commands.dedupe_key(request)
        if key is not None and self._answer_again(key, request, now):
            return
        try:
            args = commands.parse(request)
            self._execute(request, key, args, now)
        except Refusal as refusal:
            log.warning("command %s refused: %s", request.name, refusal)
            self._finish(key, [request], reply(False, refusal.code, refusal.detail), now)
        except ValueError as exc:
            self._finish(key, [request], reply(False, "bad_arguments", str(exc)), now)
        except StorageError as exc:
            self._finish(key, [request], reply(False, "storage", f"not done: {exc}"), now)
            raise
        except Exception as exc:
            log.exception("command %s failed", request.name)
            self._finish(key, [request], reply(False, "failed", f"not done: {type(exc).__name__}"), now)

    def _answer_again(self, key: str, request: Request, now: datetime) -> bool:
        """A duplicate is answered from the record and not run again; True if ``key`` was known."""
        waiting = next((w for w in self._waiting.values() if w.key == key), None)  # at most a few
        if waiting is not None:
            waiting.requests.append(request)
            return True
        store = self._store
        if not store.usable:
            kept = self._answers.get(key)
            if kept is not None:
                self._send(request, kept[1])
            return kept is not None
        record = store.begin_command(key, request.name, now)
        if record is None:
            return False
        if record.state == "done" and record.reply is not None:
            log.info("command %s: duplicate correlation id, answered again without running it", request.name)
            self._send(request, record.reply)
        else:
            detail = "the station restarted while running it; it was not run again"
            self._finish(key, [request], reply(False, "interrupted", detail), now)
        return True

    def _execute(self, request: Request, key: str | None, args: Any, now: datetime) -> None:
        name = request.command
        operations = self._control.operations
        if name == "rebirth":
            self._publish_birth(now)
            if self._publisher is None or self._publisher.drained:
                detail = f"status and {self._publish_retained()} retained topics republished"
            else:  # older rows for the same topics still wait: republishing now would replay old after new
                self._resync = True
                detail = "status republished; the retained topics follow once the outbox backlog is sent"
            self._finish(key, [request], reply(True, "ok", detail), now)
        elif name == "doctor":
            request_id = str(uuid.uuid4())
            self._waiting[request_id] = _Waiting(key, now, [request], doctor=True)
            self._control.examine(lambda report, at: self._doctor_report(request_id, report, at))
        elif name in TERMINAL_REQUESTS:
            request_id = str(uuid.uuid4())
            operations.ask_payment_method(TERMINAL_REQUESTS[name], request_id)
            self._waiting[request_id] = _Waiting(key, now, [request])
        else:
            done = operations.execute(name, args, now)
            self._finish(key, [request], reply(True, "ok", done.detail, **done.data), now)

    def _doctor_report(self, request_id: str, report: Report, now: datetime) -> None:
        waiting = self._waiting.pop(request_id, None)
        if waiting is None:  # answered already: it took longer than DOCTOR_ANSWER_S
            log.warning("doctor's report came after its command was answered; not sent")
            return
        failed = [f"{f.part} ({f.detail})" for f in report.findings if f.health is Health.FAIL]
        detail = "every part is healthy" if not failed else "not healthy: " + "; ".join(failed)
        self._finish(waiting.key, waiting.requests, reply(True, "ok", detail, **report.as_json()), now)

    def _method_report(self, event: MethodReport, now: datetime) -> None:
        waiting = self._waiting.pop(event.request_id, None)
        if waiting is None:  # its command was answered already (the terminal took too long): keep what it says
            log.warning("terminal %s report for no waiting command%s", event.kind,
                        self._control.operations.keep_report(event, now))
            return
        what = f"terminal {event.kind.replace('_', ' ')}"
        done = f"{what} done" + self._control.operations.keep_report(event, now)
        if event.ok:
            answer = reply(True, "ok", done, **event.data)
        else:
            answer = reply(False, "terminal_failed", f"{what} failed", **event.data)
        self._finish(waiting.key, waiting.requests, answer, now)

    def _finish(self, key: str | None, requests: list[Request], answer: str, now: datetime) -> None:
        """Remember the reply (so duplicates get it again), then send it to every asker."""
        self.pump(now)  # what the command committed goes out first, not after this bookkeeping commit
        if key is not None:
            store = self._store
            if not store.usable:
                self._answers[key] = (requests[0].name, answer)
            else:
                try:
                    store.finish_command(key, answer, now)
                except StorageError as exc:
                    self._control.fault_board.raise_fault("storage", exc.reason, now, str(exc))
        for request in requests:
            self._send(request, answer)

    def _send(self, request: Request, answer: str) -> None:
        if request.response_topic is None or not self._link.reply(
                request.response_topic, request.correlation, answer):
            log.warning("reply to command %s not sent (link down); the caller may ask again", request.name)

    def status_changed(self, now: datetime) -> None:
        """What the birth says changed (an update's state): published again while connected."""
        if self._link.connected:
            self._publish_birth(now)

    @property
    def connected(self) -> bool:
        """The broker accepted the connection and it is up now."""
        return self._link.connected

    def link_summary(self) -> str:
        """The link in a few words: ``connected to host:port with TLS``, ``down (host:port)``, ``no broker configured``."""
        link = self._link
        if not link.address:
            return "no broker configured"
        if link.connected:
            return f"connected to {link.address} {'with' if link.tls else 'without'} TLS"
        return f"{link.state} ({link.address})"

    def examine(self) -> Finding:
        """The doctor's finding on the broker: the link, what the broker refused (its ACL), what waits to be sent."""
        try:
            unsent = self._store.outbox_depth() if self._store.usable else None
        except StorageError:
            unsent = None
        waiting = f"{'unknown' if unsent is None else unsent} message(s) wait"
        link = self._link
        summary = self.link_summary()
        if not link.address:
            return Finding(Part.BROKER, Health.WARN, f"{summary} (mqtt.host): {waiting}")
        since = time_text(link.since)
        if not link.connected:
            why = f": {self._last_down}" if self._last_down else ""
            return Finding(Part.BROKER, Health.FAIL, f"{summary} since {since}{why}; {waiting}")
        refused, topic = link.refused
        if refused:
            return Finding(Part.BROKER, Health.FAIL, f"{summary}, but the broker refused {refused} publish(es), "
                                                     f"the last on {topic}: check its ACL")
        return Finding(Part.BROKER, Health.OK, f"{summary} since {since}, no publish refused; {waiting}")

    # ---- remote configuration ----

    def _desired(self, payload: bytes, now: datetime) -> None:
        if not payload:
            log.info("cfg/desired cleared on the broker; the applied configuration stays")
            return
        applied = self._settings.version
        decision = remote_config.decide(self._file_settings, applied, payload)
        if decision.action == "same":
            return
        store = self._store
        if decision.action == "reject":
            log.error("cfg/desired version %s rejected: %s", decision.version, "; ".join(decision.problems))
            self._report_config(remote_config.reported(decision, applied, time_text(now)), None, store, now)
            return
        assert decision.settings is not None
        report = remote_config.reported(decision, decision.settings.version, time_text(now))
        self._report_config(report, decision.desired, store, now)
        self._settings = decision.settings
        self._control.fault_board.clear_fault("config", now)
        log.info("cfg/desired version %d applied (for the next parker)", decision.settings.version)
        self._control.post(SettingsChanged(decision.settings))

    def _report_config(self, report: dict[str, Any], desired: dict[str, Any] | None, store: Store,
                       now: datetime) -> None:
        if not store.usable:
            self._link.publish(CFG_REPORTED, json_text(report), 1, True)
        elif desired is None:
            store.report_config(report, now)
        else:
            store.save_remote_config(desired, report, now)

    # ---- timers ----

    def _publish_telemetry(self, now: datetime) -> None:
        if not self._link.connected:
            return
        station = self._control
        store = self._store
        terminal = next((f.code for f in station.state.faults if f.component == station.payment.name), "ready")
        figures = {
            "ts": time_text(now), "boot": self._boot, "uptime_s": int(time.monotonic() - self._started),
            "outbox_depth": store.outbox_depth() if store.usable else None,
            "outbox_in_flight": self._publisher.in_flight if self._publisher is not None else 0,
            "link": {"state": self._link.state, "since": time_text(self._link.since),
                     "reconnects": self._link.reconnects},
            "terminal": terminal, "screen": str(station.state.screen), "config_version": self._settings.version,
            "cpu_temp_c": station.host.cpu_temperature_c(),
            "disk_free_bytes": station.host.disk_free_bytes(Path(self._settings.storage.database)),
        }
        self._link.publish(TELEMETRY, json_text(figures), 0, False)

    def _housekeeping(self, now: datetime) -> None:
        station = self._control
        for request_id, waiting in list(self._waiting.items()):
            if waiting.doctor and now - waiting.since > timedelta(seconds=DOCTOR_ANSWER_S):
                del self._waiting[request_id]
                self._finish(waiting.key, waiting.requests, reply(
                    False, "failed", f"the doctor did not finish within {DOCTOR_ANSWER_S} s"), now)
            elif not waiting.doctor and now - waiting.since > timedelta(seconds=TERMINAL_ANSWER_S):
                self._method_report(MethodReport(request_id, "request", False, {
                    "error": f"the card terminal did not answer within {TERMINAL_ANSWER_S} s"}), now)
        if self._publisher is not None:
            try:
                if self._publisher.housekeeping(now):
                    station.fault_board.raise_fault("outbox", "backlog", now,
                                                    f"more than {self._settings.mqtt.outbox_warn_rows} unsent")
                else:
                    station.fault_board.clear_fault("outbox", now)
                if self._store.usable:
                    self._store.prune_commands(now - timedelta(days=self._settings.mqtt.outbox_keep_days))
            except StorageError as exc:
                station.fault_board.raise_fault("storage", exc.reason, now, str(exc))
        link = self._link
        limit = self._settings.mqtt.keepalive_s + WATCHDOG_MARGIN_S
        if link.state != LinkState.STOPPED and link.heartbeat_age() > limit:
            log.error("MQTT network thread silent for %.0f s: restarting the link", link.heartbeat_age())
            link.restart()
