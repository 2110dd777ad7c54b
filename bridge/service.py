"""The alert bridge put together: broker link, engine, database and senders, on one thread of its own."""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bridge.link import Link, NotConnected
from bridge.messages import AckSeen, AlertSeen, Malformed, parse
from bridge.model import Alert
from bridge.problems import AckIgnored, Case, CaseKey, Engine, Outcome
from bridge.rules import Rules
from bridge.senders import Dispatcher, read_secret
from bridge.store import Store

__all__ = ["BATCH", "Service", "Snapshot", "utc_now"]

log = logging.getLogger(__name__)

BATCH = 1000  # messages taken per step at most, saved in one transaction


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Snapshot:
    """The problems the bridge watches (by station and subject) and its open alerts (by id)."""

    cases: dict[CaseKey, Case]
    alerts: dict[str, Alert]


@dataclass(frozen=True)
class _Received:
    topic: str
    payload: bytes
    retained: bool


class _Connected:
    """The link (re)connected: every open alert is published again."""


class Service:
    """The running bridge. ``clock`` and ``tick_s`` (how often time is looked at) are for tests to set."""

    def __init__(self, rules: Rules, *, clock: Callable[[], datetime] = utc_now, tick_s: float = 1.0) -> None:
        self.rules = rules
        self._clock = clock
        self._tick_s = tick_s
        self._inbox: queue.SimpleQueue[_Received | _Connected | None] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-bridge", daemon=True)
        self.failure: BaseException | None = None
        self._store = Store(rules.bridge.database)
        cases, alerts, stations = self._store.load()
        self.engine = Engine(rules, cases=cases, alerts=alerts, stations=stations)
        password = read_secret(rules.broker.password_file) if rules.broker.password_file else None
        self.link = Link(rules.broker, password=password, on_connected=lambda: self._inbox.put(_Connected()),
                         on_message=lambda topic, payload, retained: self._inbox.put(_Received(topic, payload, retained)))
        self.dispatcher = Dispatcher(rules, clock, poll_s=tick_s)
        self._lock = threading.Lock()  # held while a step changes the engine: snapshot() sees whole steps
        log.info("alert bridge: %d open alerts, %d problems watched", len(alerts), len(cases))

    def start(self) -> None:
        """Start sending, judging and connecting (in that order)."""
        self.dispatcher.start()
        self._thread.start()
        self.link.start()

    def snapshot(self) -> Snapshot:
        """A copy of what the bridge watches now (for monitoring and tests), between two steps."""
        with self._lock:
            return Snapshot({key: replace(case, raises=list(case.raises)) for key, case in self.engine.cases.items()},
                            {alert.id: replace(alert, stations=list(alert.stations), zones=dict(alert.zones),
                                               notified=list(alert.notified)) for alert in self.engine.alerts.values()})

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the service stopped by itself (a failure); True if it did."""
        return self._stopped.wait(timeout)

    def interrupt(self) -> None:
        """Ask the service to end after the step under way (from any thread, a signal's too); wait() then returns."""
        self._inbox.put(None)

    def stop(self) -> None:
        """Stop cleanly: the link, the engine's thread (after the step under way), the senders, the database."""
        self.link.stop()
        self._inbox.put(None)
        self._thread.join(timeout=30)
        self.dispatcher.stop()
        self._store.close()

    def _run(self) -> None:
        try:
            running = True
            while running:
                items = self._take()
                running = None not in items
                self._step([item for item in items if item is not None])
                if self.dispatcher.failure is not None:
                    raise RuntimeError("the sending thread failed") from self.dispatcher.failure
        except Exception as exc:  # the database failed: stop, and let systemd start the bridge again
            log.exception("the alert bridge failed")
            self.failure = exc
        finally:
            self._stopped.set()

    def _take(self) -> list[_Received | _Connected | None]:
        try:
            items = [self._inbox.get(timeout=self._tick_s)]
        except queue.Empty:
            return []
        while len(items) < BATCH:
            try:
                items.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return items

    def _step(self, items: list[_Received | _Connected]) -> None:
        """Judge what arrived, let time pass, save it all in one transaction, then publish and send."""
        with self._lock:
            now = self._clock()
            outcome, stale, republish = Outcome(), set[str](), False
            for item in items:
                if isinstance(item, _Connected):
                    republish = True
                else:
                    outcome.merge(self._message(item, now, stale))
            outcome.merge(self.engine.tick(now))
            self._store.apply(outcome, now)
        if outcome.deliveries:
            self.dispatcher.wake()
        states = {alert.id: b"" if alert.closed else alert.encoded() for alert in outcome.alerts.values()}
        if republish:
            states.update({alert.id: alert.encoded() for alert in self.engine.alerts.values()})
        states.update({alert_id: b"" for alert_id in stale - set(states)})
        for alert_id, payload in states.items():
            try:
                self.link.publish_alert(alert_id, payload)
            except NotConnected as exc:
                log.info("alert %s not published now (again on reconnection): %s", alert_id, exc)

    def _message(self, item: _Received, now: datetime, stale: set[str]) -> Outcome:
        try:
            seen = parse(item.topic, item.payload, item.retained)
        except Malformed as exc:
            log.warning("%s: dropped: %s", item.topic[:200], exc)
            return Outcome()
        if seen is None:
            return Outcome()
        try:
            if isinstance(seen, AlertSeen):
                if not self.engine.knows(seen.alert_id):
                    log.info("retained alert %s is not open here: removed", seen.alert_id)
                    stale.add(seen.alert_id)
                return Outcome()
            if isinstance(seen, AckSeen):
                return self.engine.acknowledge(seen, now)
            return self.engine.observe(seen, now)
        except AckIgnored as exc:
            log.info("%s", exc)
        except Exception:  # a bug with one message must not stop the alerts of all the others
            log.exception("%s: cannot be judged", item.topic[:200])
        return Outcome()
