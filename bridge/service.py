"""The alert bridge put together: broker link, engine, database and senders, on one thread of its own."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum

from bridge.link import Link, NotConnected
from bridge.messages import AckSeen, AlertSeen, Malformed, parse
from bridge.model import Alert
from bridge.problems import AckIgnored, Case, CaseKey, Engine, Outcome
from bridge.rules import Rules, read_secret
from bridge.senders import Dispatcher, broker_back_notice, broker_down_notice
from bridge.store import Store, StoreUnusable
from kiosk.cli.sd_notify import SystemdNotifier

__all__ = ["BATCH", "LinkEvent", "Received", "Service", "Snapshot", "utc_now"]

log = logging.getLogger(__name__)

BATCH = 1000  # messages taken per step at most, saved in one transaction
ALIVE_EVERY_S = 1.0  # the systemd watchdog is fed at most this often (WatchdogSec is far longer)


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Snapshot:
    """The problems the bridge watches (by station and subject) and its open alerts (by id)."""

    cases: dict[CaseKey, Case]
    alerts: dict[str, Alert]


@dataclass(frozen=True)
class Received:
    """A message from the broker."""

    topic: str
    payload: bytes
    retained: bool


class LinkEvent(Enum):
    """What the link or the owner tells the step loop, beside messages."""

    CONNECTED = "connected"  # every open alert is published again; the state is not fresh until SUBSCRIBED settles
    SUBSCRIBED = "subscribed"  # the broker took the subscriptions: its retained state follows
    DISCONNECTED = "disconnected"  # no judging until the next connection settled
    STOP = "stop"  # the last item: the link stopped, everything before it is handled


class Service:
    """The running bridge. ``clock`` and ``tick_s`` (how often time is looked at) are for tests to set.

    Time is judged (grace times, escalations, closes) only while the bridge's picture of the stations
    is fresh: connected, subscribed, and ``settle_s`` after the last retained message of the
    subscription. Messages are taken at any time; the deadlines that passed meanwhile fire once the
    picture is fresh again, so a fault that cleared while the bridge was away is never alerted.
    """

    def __init__(self, rules: Rules, *, clock: Callable[[], datetime] = utc_now, tick_s: float = 1.0,
                 notifier: SystemdNotifier | None = None) -> None:
        self.rules = rules
        self._clock = clock
        self._tick_s = tick_s
        self._notifier = notifier
        self._inbox: queue.SimpleQueue[Received | LinkEvent] = queue.SimpleQueue()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-bridge", daemon=True)
        self.failure: BaseException | None = None
        self.steps = 0  # steps taken so far (for monitoring and tests)
        self._store = Store(rules.bridge.database)
        cases, alerts, stations = self._store.load()
        self.engine = Engine(rules, cases=cases, alerts=alerts, stations=stations,
                             station_cap=rules.bridge.station_cap)
        password = read_secret(rules.broker.password_file) if rules.broker.password_file else None
        self.link = Link(rules.broker, password=password, on_connected=lambda: self._inbox.put(LinkEvent.CONNECTED),
                         on_subscribed=lambda: self._inbox.put(LinkEvent.SUBSCRIBED),
                         on_disconnected=lambda: self._inbox.put(LinkEvent.DISCONNECTED),
                         on_message=lambda topic, payload, retained: self._inbox.put(Received(topic, payload, retained)))
        self.dispatcher = Dispatcher(rules, clock, poll_s=tick_s)
        self._lock = threading.Lock()  # held while a step changes the engine: snapshot() sees whole steps
        self._fresh_at: float | None = None  # monotonic time from which the picture is fresh; None: not connected
        self._down_since: datetime | None = clock()  # since when the bridge has no connection; None: it has one
        self._down_told = False
        self._alive_at = 0.0
        log.info("alert bridge: %d open alerts, %d problems watched", len(alerts), len(cases))

    @property
    def judging(self) -> bool:
        """Whether time is judged now: the picture of the stations is fresh."""
        return self._fresh_at is not None and time.monotonic() >= self._fresh_at

    def start(self) -> None:
        """Tell systemd it is ready, and start sending, judging and connecting (in that order)."""
        if self._notifier is not None:
            self._notifier.ready("connecting to the broker")
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
        """Wait until interrupt() was called or the service failed; True if either happened."""
        return self._done.wait(timeout)

    def interrupt(self) -> None:
        """Ask the owner to stop() (from any thread, a signal's too): wait() returns. The bridge keeps working."""
        self._done.set()

    def stop(self) -> None:
        """Stop cleanly: the link first (what arrived is still judged and saved), then the loop, senders, database."""
        if self._notifier is not None:
            self._notifier.stopping()
        self.link.stop()
        if self._thread.ident is not None:
            self._inbox.put(LinkEvent.STOP)
            self._thread.join(timeout=30)
        self.dispatcher.stop()
        self._store.close()

    def _run(self) -> None:
        try:
            running = True
            while running:
                items = self._take()
                running = LinkEvent.STOP not in items
                self.step([item for item in items if item is not LinkEvent.STOP])
                if self.dispatcher.failure is not None:
                    raise RuntimeError("a sending thread failed") from self.dispatcher.failure
        except Exception as exc:  # the database failed: stop, and let systemd start the bridge again
            log.exception("the alert bridge failed")
            self.failure = exc
            self._done.set()

    def _take(self) -> list[Received | LinkEvent]:
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

    def step(self, items: list[Received | LinkEvent]) -> None:
        """Judge what arrived, let time pass (when fresh), save it all in one transaction, then publish and send.

        The loop's thread calls it; a test or a tool may call it instead of start() (one caller at a time).
        """
        with self._lock:
            now = self._clock()
            parts: list[tuple[str, Outcome]] = []
            stale, republish = set[str](), False
            for item in items:
                if isinstance(item, LinkEvent):
                    republish = self._linked(item, now) or republish
                else:
                    if item.retained and self._fresh_at is not None and not self.judging:
                        self._fresh_at = time.monotonic() + self.rules.bridge.settle_s
                    parts.append((item.topic[:200], self._message(item, now, stale)))
            if self.judging:
                parts.append(("the passing of time", self.engine.tick(now)))
            outcome = self._save(parts, now)
            self._watch_broker(now)
            self.steps += 1
        self._alive()
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

    def _linked(self, event: LinkEvent, now: datetime) -> bool:
        """Follow the link's state; True when the open alerts are to be published again."""
        return LINK_EVENTS[event](self, now)

    def _connected(self, _now: datetime) -> bool:
        self._fresh_at, self._down_since = None, None
        return True

    def _subscribed(self, _now: datetime) -> bool:
        self._fresh_at = time.monotonic() + self.rules.bridge.settle_s
        return False

    def _disconnected(self, now: datetime) -> bool:
        self._fresh_at = None
        self._down_since = self._down_since or now
        return False

    def _save(self, parts: list[tuple[str, Outcome]], now: datetime) -> Outcome:
        """Save a step in one transaction; if a bug in one part's data fails it, each part alone (the bad dropped)."""
        merged = Outcome()
        for _, outcome in parts:
            merged.merge(outcome)
        try:
            self._store.apply(merged, now)
            return merged
        except StoreUnusable:
            raise
        except Exception as exc:  # a value SQLite refuses, or a bug: keep what can be kept
            log.error("a step cannot be saved (%s): saving its messages one by one", type(exc).__name__)
        kept = Outcome()
        for what, outcome in parts:
            try:
                self._store.apply(outcome, now)
            except StoreUnusable:
                raise
            except Exception as exc:  # this part only: dropped
                log.error("%s: dropped, its changes cannot be saved: %s: %s", what, type(exc).__name__, str(exc)[:200])
                continue
            kept.merge(outcome)
        return kept

    def _watch_broker(self, now: datetime) -> None:
        """Tell the fallback group when the broker is out of reach for broker_down_alert_s, and when it is back."""
        targets = self.rules.targets(self.rules.routes[-1].group)
        if self._down_since is None:
            if self._down_told:
                self._down_told = False
                log.warning("the connection to the broker is back: telling %s", self.rules.routes[-1].group)
                self.dispatcher.notify(broker_back_notice(self.link.url, now, self.rules), targets)
            return
        if not self._down_told and now - self._down_since >= timedelta(seconds=self.rules.bridge.broker_down_alert_s):
            self._down_told = True
            log.error("no connection to the broker %s since %s: telling %s", self.link.url,
                      self._down_since.isoformat(), self.rules.routes[-1].group)
            self.dispatcher.notify(broker_down_notice(self.link.url, self._down_since, self.rules), targets)

    def _alive(self) -> None:
        if self._notifier is None or time.monotonic() - self._alive_at < ALIVE_EVERY_S:
            return
        self._alive_at = time.monotonic()
        self._notifier.alive()
        self._notifier.status(f"{len(self.engine.alerts)} open alerts; "
                              f"{'judging' if self.judging else 'waiting for the broker state'}")

    def _message(self, item: Received, now: datetime, stale: set[str]) -> Outcome:
        try:
            seen = parse(item.topic, item.payload, item.retained)
            if seen is None:
                return Outcome()
            if isinstance(seen, AlertSeen):
                if not self.engine.knows(seen.alert_id):
                    log.info("retained alert %s is not open here: removed", seen.alert_id)
                    stale.add(seen.alert_id)
                return Outcome()
            if isinstance(seen, AckSeen):
                return self.engine.acknowledge(seen, now)
            return self.engine.observe(seen, now)
        except Malformed as exc:
            log.warning("%s: dropped: %s", item.topic[:200], exc)
        except AckIgnored as exc:
            log.info("%s", exc)
        except Exception as exc:  # a bug with one message must not stop the alerts of all the others
            log.error("%s: dropped, it cannot be judged: %s: %s", item.topic[:200], type(exc).__name__, str(exc)[:200])
            log.debug("the failure in full", exc_info=True)
        return Outcome()


LINK_EVENTS: dict[LinkEvent, Callable[[Service, datetime], bool]] = {
    LinkEvent.CONNECTED: Service._connected, LinkEvent.SUBSCRIBED: Service._subscribed,
    LinkEvent.DISCONNECTED: Service._disconnected}
