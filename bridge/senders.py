"""What the bridge sends and how: the texts of an alert, e-mail through SMTP, webhooks (ntfy or JSON), with retries."""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from bridge.model import Alert, Channel, Delivery, SendKind, Severity, Target, ack_link, format_time
from bridge.rules import Rules, SecretUnusable, SmtpSettings, Webhook, WebhookFormat, read_secret
from bridge.store import PendingSend, Store

__all__ = ["MAX_LISTED", "MAX_RETRY_S", "NTFY_MAX_BODY", "Deadline", "Dispatcher", "Notice", "SendFailed", "Text",
           "broker_back_notice", "broker_down_notice", "compose", "delivery_id", "email_message", "webhook_place"]

log = logging.getLogger(__name__)

MAX_RETRY_S = 3600.0  # a failing send is tried again after retry_s, doubling up to an hour, until give_up_s
MAX_LISTED = 50  # stations named in a text; a fleet alert names the rest by their number
NTFY_MAX_BODY = 4096  # bytes: ntfy turns a longer body into an attachment
NTFY_PRIORITY = {Severity.CRITICAL: "5", Severity.WARNING: "4", Severity.INFO: "3"}
NTFY_TAGS = {Severity.CRITICAL: "rotating_light", Severity.WARNING: "warning", Severity.INFO: "information_source"}
RESOLVED_PRIORITY, RESOLVED_TAGS = "2", "white_check_mark"
STOP_FINISH_S = 10.0  # at stop(), a send under way may finish this long (cutting it off could send it twice)
STOP_JOIN_S = 5.0  # then a lane's thread ends this soon after its send was cut off


class SendFailed(Exception):
    """A message was not delivered (it is tried again later); the text says why, never with a secret."""


@dataclass(frozen=True)
class Text:
    """One message's words: a one-line ``title``, a plain-text ``body`` and the crew page's ``link``."""

    title: str
    body: str
    link: str


@dataclass(frozen=True)
class Notice:
    """A message about the bridge itself, not about an alert; ``key`` names it (Message-ID, JSON ``delivery``)."""

    key: str
    severity: Severity
    title: str
    body: str


def delivery_id(delivery: Delivery) -> str:
    """A stable name of one message (the same on a retry): receivers may drop duplicates by it."""
    return f"{delivery.alert_id}.{delivery.level}.{delivery.kind.value}"


def webhook_place(hook: Webhook) -> str:
    """A webhook as logs and errors name it: its name and server, never its path or query (they may be secret)."""
    parts = urlsplit(hook.url)
    return f"webhook {hook.name} ({parts.scheme}://{parts.netloc.rpartition('@')[2]})"


def _local(moment: datetime, rules: Rules) -> str:
    """A time in the bridge's time zone; in UTC when that zone cannot show it (a year near 1 or 9999)."""
    try:
        return moment.astimezone(rules.bridge.timezone).strftime("%Y-%m-%d %H:%M %Z")
    except (OverflowError, ValueError):
        utc = moment.astimezone(UTC)
        return f"{utc.year:04}-{utc:%m-%d %H:%M} UTC"


def compose(alert: Alert, kind: SendKind, rules: Rules) -> Text:
    """The words of an alert, its escalation or its end."""
    link = ack_link(rules.bridge.crew_page_url, alert.stations[0], alert.id)
    places = ", ".join(f"{station} ({alert.zones[station]})" if alert.zones.get(station) else station
                       for station in alert.stations[:MAX_LISTED])
    if len(alert.stations) > MAX_LISTED:
        places += f" and {len(alert.stations) - MAX_LISTED} more"
    if kind is SendKind.RESOLVED:
        ended = alert.closed or alert.opened
        taken = f"Acknowledged by {alert.acked_by} at {_local(alert.acked_at, rules)}." \
            if alert.acked_by and alert.acked_at else "Nobody acknowledged it."
        body = (f"Resolved: {alert.title}\n\nThe problem ended; the alert closed at {_local(ended, rules)}, "
                f"{_minutes(ended - alert.since)} after it began ({_local(alert.since, rules)}).\n{taken}\n"
                f"Stations: {places}\nAlert: {alert.id}\n")
        return Text(_one_line(f"Resolved: {alert.title}"), body, link)
    lines = [alert.title, "", alert.message, "", f"Stations: {places}"]
    if alert.component:
        lines.append(f"Component: {alert.component}, code {alert.code}")
    lines += [f"Severity: {alert.severity.value}"]
    if alert.parker_impact:
        lines.append(f"Parker impact: {alert.parker_impact}")
    lines += [f"Since: {_local(alert.since, rules)}", f"Alert: {alert.id}, opened {_local(alert.opened, rules)}"]
    if alert.changes > 1 and len(alert.stations) > 1:
        lines.append(f"Raised up to {alert.changes} times at one station (flapping: one alert, not one per change)")
    elif alert.changes > 1:
        lines.append(f"Raised {alert.changes} times (flapping: one alert, not one per change)")
    title = f"[{alert.severity.value}] {alert.title}"
    if kind is SendKind.ESCALATION:
        title = f"[{alert.severity.value}] Escalated: {alert.title}"
        lines += ["", f"Nobody acknowledged it within {_minutes(timedelta(seconds=rules.bridge.escalate_after_s))}; "
                      f"it now goes to {alert.group} (escalation level {alert.level})."]
    lines += ["", f"Acknowledge it (and see the station): {link}", ""]
    return Text(_one_line(title), "\n".join(lines), link)


def broker_down_notice(url: str, since: datetime, rules: Rules) -> Notice:
    """The notice that the bridge has had no connection to the broker since ``since``."""
    return Notice(f"bridge-down.{since.strftime('%Y%m%dT%H%M%S')}", Severity.CRITICAL,
                  "Alert bridge: no connection to the broker",
                  f"The alert bridge has no connection to the broker {url} since {_local(since, rules)}.\n\n"
                  "Until it is back, the bridge sees no station and sends no alert: watch the stations another way.\n"
                  "Another message follows when the connection is back.\n")


def broker_back_notice(url: str, now: datetime, rules: Rules) -> Notice:
    """The notice that the connection to the broker is back (at ``now``)."""
    return Notice(f"bridge-back.{now.strftime('%Y%m%dT%H%M%S')}", Severity.INFO,
                  "Alert bridge: connection to the broker back",
                  f"The alert bridge is connected to the broker {url} again since {_local(now, rules)}.\n\n"
                  "It judges the stations' state as the broker holds it now; what happened meanwhile is alerted "
                  "if it still lasts.\n")


def _one_line(text: str) -> str:
    """A title as one line of printable characters (a mail subject, an HTTP header)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:200]


def _minutes(span: timedelta) -> str:
    minutes = max(0, round(span.total_seconds() / 60))
    return f"{minutes} minute{'' if minutes == 1 else 's'}" if minutes < 120 else f"{minutes / 60:.1f} hours"


def _capped(text: str, limit: int) -> bytes:
    """``text`` as UTF-8 of at most ``limit`` bytes, cut at a character and marked when it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return data
    mark = "\n[…]".encode()
    return data[:limit - len(mark)].decode("utf-8", "ignore").encode("utf-8") + mark


def email_message(smtp: SmtpSettings, to: str, text: Text, name: str, now: datetime) -> EmailMessage:
    """The e-mail of one message (named ``name``, e.g. delivery_id()) to one address, dated ``now``."""
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = text.title
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office answers to the bridge
    domain = parseaddr(smtp.sender)[1].partition("@")[2] or "kiosk-alerts.invalid"
    digest = hashlib.sha256(to.encode("utf-8")).hexdigest()[:12]
    message["Message-ID"] = f"<{name}.{digest}@{domain}>"
    message.set_content(text.body)
    return message


def _header(value: str) -> str:
    """An HTTP header value: as it is when ASCII, else one RFC 2047 encoded word on one line (ntfy decodes those)."""
    return value if value.isascii() else Header(value, "utf-8").encode(maxlinelen=0)


@dataclass(frozen=True)
class _Post:
    """One webhook request: its headers and body."""

    headers: dict[str, str]
    body: bytes


def _ntfy(text: Text, priority: str, tags: str) -> _Post:
    return _Post({"Title": _header(text.title), "Click": text.link, "Priority": priority, "Tags": tags,
                  "Content-Type": "text/plain; charset=utf-8"}, _capped(text.body, NTFY_MAX_BODY))


def _json(document: dict[str, Any]) -> _Post:
    return _Post({"Content-Type": "application/json"}, json.dumps(document, ensure_ascii=False).encode("utf-8"))


def _alert_post(hook: Webhook, alert: Alert, kind: SendKind, text: Text, delivery: Delivery) -> _Post:
    if hook.format is WebhookFormat.NTFY:
        resolved = kind is SendKind.RESOLVED
        return _ntfy(text, RESOLVED_PRIORITY if resolved else NTFY_PRIORITY[alert.severity],
                     RESOLVED_TAGS if resolved else NTFY_TAGS[alert.severity])
    document: dict[str, Any] = {"event": kind.value, "delivery": delivery_id(delivery), "title": text.title,
                                "text": text.body, "link": text.link, "alert": alert.payload()}
    if alert.closed is not None:
        document["closed"] = format_time(alert.closed)
    return _json(document)


def _notice_post(hook: Webhook, notice: Notice, text: Text) -> _Post:
    if hook.format is WebhookFormat.NTFY:
        return _ntfy(text, NTFY_PRIORITY[notice.severity], NTFY_TAGS[notice.severity])
    return _json({"event": "bridge", "delivery": notice.key, "title": text.title, "text": text.body,
                  "link": text.link})


def _why(exc: Exception, deadline: Deadline) -> str:
    """Why a webhook's request failed, in words that hold no secret (a ValueError may quote a header)."""
    if deadline.fired:
        return f"cut off: {deadline.reason}"
    if isinstance(exc, SecretUnusable):
        return str(exc)
    if isinstance(exc, ValueError):
        return "the request cannot be encoded (a header or the address)"
    return f"{type(exc).__name__}: {exc}"


class Deadline:
    """A send's total time limit: when it passes (or on abort()), the watched socket is shut down.

    Shutting a socket down wakes a thread blocked in it, so no server can hold a send longer
    than the limit (plus the connect, which the socket timeout bounds by the same limit).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self.reason = ""
        self._lock = threading.Lock()
        self._socket_of: Callable[[], socket.socket | None] | None = None
        self._timer = threading.Timer(seconds, self.abort, args=(f"no answer within {seconds:g} s",))
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._timer.cancel()

    def watch(self, socket_of: Callable[[], socket.socket | None]) -> None:
        """Watch the socket ``socket_of()`` gives at the deadline (it may change, as STARTTLS wraps it)."""
        with self._lock:
            self._socket_of = socket_of
            if self.fired:
                self._cut()

    def abort(self, reason: str = "the bridge stopped") -> None:
        """Cut the send off now; ``reason`` is what its error says."""
        with self._lock:
            if not self.fired:
                self.fired, self.reason = True, reason
            self._cut()

    def _cut(self) -> None:
        sock = self._socket_of() if self._socket_of is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already: the send is over


@dataclass
class _NoticeSend:
    """A notice to one target, kept in memory until it is delivered or given up."""

    notice: Notice
    target: Target
    queued: datetime
    next_at: datetime
    attempts: int = 0


class _Lane:
    """One sending thread: all e-mail, or one webhook. A slow server holds up only its own lane."""

    def __init__(self, channel: Channel, address: str | None) -> None:
        self.channel, self.address = channel, address
        self.name = "e-mail" if address is None else f"webhook {address}"
        self.woken = False
        self.notices: list[_NoticeSend] = []
        self.deadline: Deadline | None = None
        self.thread: threading.Thread | None = None


class Dispatcher:
    """Delivers the queued sends in threads of its own (one per lane), each with its own database connection.

    A send is marked done only after the server took it: a crash in between sends it again after the
    restart (at least once), never not at all. Receivers can drop such a duplicate by its Message-ID
    (e-mail) or ``delivery`` (JSON). Each attempt has a total limit of ``send_timeout_s``; a send that
    keeps failing for ``give_up_s`` is given up (logged as an error).
    """

    def __init__(self, rules: Rules, clock: Callable[[], datetime], poll_s: float = 5.0) -> None:
        self.rules = rules
        self._clock = clock
        self._poll_s = poll_s
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._lanes = [_Lane(Channel.EMAIL, None), *(_Lane(Channel.WEBHOOK, name) for name in rules.webhooks)]
        self.failure: BaseException | None = None

    @property
    def stopping(self) -> bool:
        """stop() was called: no new send starts."""
        return self._stop.is_set()

    def start(self) -> None:
        """Start the sending threads."""
        for lane in self._lanes:
            lane.thread = threading.Thread(target=self._run, args=(lane,), name=f"alert-sends {lane.name}", daemon=True)
            lane.thread.start()

    def wake(self) -> None:
        """New sends were queued: look now."""
        with self._wake:
            for lane in self._lanes:
                lane.woken = True
            self._wake.notify_all()

    def notify(self, notice: Notice, targets: list[Target]) -> None:
        """Send a notice about the bridge to ``targets`` (kept in memory only: a restart forgets it)."""
        now = self._clock()
        with self._wake:
            for target in targets:
                lane = self._lane(target)
                if lane is not None:
                    lane.notices.append(_NoticeSend(notice, target, now, now))
        self.wake()

    def stop(self) -> None:
        """Stop: no new send starts; one under way may finish for STOP_FINISH_S, then it is cut off.

        A send cut off is sent again on the next run, and may then arrive twice: a server may have
        taken it before the cut. So it is cut off only when it takes that long.
        """
        with self._wake:
            self._stop.set()
        self.wake()
        finish_by = time.monotonic() + STOP_FINISH_S
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout=max(0.0, finish_by - time.monotonic()))
        with self._wake:
            for lane in self._lanes:
                if lane.deadline is not None:
                    lane.deadline.abort()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout=STOP_JOIN_S)

    def _lane(self, target: Target) -> _Lane | None:
        address = None if target.channel is Channel.EMAIL else target.address
        return next((lane for lane in self._lanes if (lane.channel, lane.address) == (target.channel, address)), None)

    def _run(self, lane: _Lane) -> None:
        try:
            with Store(self.rules.bridge.database) as store:
                while not self._stop.is_set():
                    if lane is self._lanes[0]:
                        self._drop_unknown_webhooks(store)
                    for pending in store.due_sends(self._clock(), lane.channel, lane.address):
                        if self._stop.is_set():
                            break
                        self._deliver(store, lane, pending)
                    self._send_notices(lane)
                    with self._wake:
                        if not lane.woken and not self._stop.is_set():
                            self._wake.wait(self._poll_s)
                        lane.woken = False
        except Exception as exc:  # the service sees it and stops: systemd starts it again
            log.exception("the sending thread %s failed", lane.name)
            self.failure = exc

    def _drop_unknown_webhooks(self, store: Store) -> None:
        for name in sorted(store.unsent_webhooks() - set(self.rules.webhooks)):
            count = store.skip_webhook(name, "no webhook of that name is configured any more", self._clock())
            log.warning("%d queued messages to webhook %s dropped: it is not configured any more", count, name)

    def _deliver(self, store: Store, lane: _Lane, pending: PendingSend) -> None:
        delivery, now = pending.delivery, self._clock()
        what = f"{delivery.kind.value} of {delivery.alert_id} to {delivery.target.channel.value} {delivery.target.address}"
        current = store.alert(delivery.alert_id)
        alert = pending.snapshot or current
        if current is None or alert is None:
            log.error("%s: the database lacks the alert: dropped", what)
            store.skip(pending.id, "the alert is not in the database", now)
            return
        if delivery.kind is not SendKind.RESOLVED and current.closed is not None:
            log.info("%s: not sent, the alert closed before it could be", what)
            store.skip(pending.id, "the alert closed before it was sent", now)
            return
        if delivery.kind is SendKind.RESOLVED and not store.reached(delivery.alert_id, delivery.target):
            log.info("%s: not sent, the alert itself never reached it", what)
            store.skip(pending.id, "the alert never reached this target", now)
            return
        if self._given_up(pending.queued, now, what, pending.attempts):
            store.skip(pending.id, f"gave up after {pending.attempts} attempts", now)
            return
        text = compose(alert, delivery.kind, self.rules)
        try:
            if delivery.target.channel is Channel.EMAIL:
                self._email(lane, delivery.target.address, text, delivery_id(delivery))
            else:
                hook = self.rules.webhooks[delivery.target.address]
                self._webhook(lane, hook, _alert_post(hook, alert, delivery.kind, text, delivery))
        except Exception as exc:  # SendFailed, or a bug with this one message: never the end of all sending
            delay = self._failed(exc, what, pending.attempts)
            store.failed(pending.id, str(exc), self._clock() + timedelta(seconds=delay))
            return
        store.sent(pending.id, self._clock())
        log.info("%s sent", what)

    def _send_notices(self, lane: _Lane) -> None:
        with self._wake:
            due = [item for item in lane.notices if item.next_at <= self._clock()]
        for item in due:
            if self._stop.is_set():
                return
            what = f"notice {item.notice.key} to {item.target.channel.value} {item.target.address}"
            done = self._given_up(item.queued, self._clock(), what, item.attempts)
            if not done:
                text = Text(item.notice.title, item.notice.body, self.rules.bridge.crew_page_url)
                try:
                    if item.target.channel is Channel.EMAIL:
                        self._email(lane, item.target.address, text, item.notice.key)
                    else:
                        hook = self.rules.webhooks[item.target.address]
                        self._webhook(lane, hook, _notice_post(hook, item.notice, text))
                    done = True
                    log.info("%s sent", what)
                except Exception as exc:  # as with alerts: tried again later
                    delay = self._failed(exc, what, item.attempts)
                    item.attempts, item.next_at = item.attempts + 1, self._clock() + timedelta(seconds=delay)
            if done:
                with self._wake:
                    lane.notices.remove(item)

    def _given_up(self, queued: datetime, now: datetime, what: str, attempts: int) -> bool:
        if now - queued < timedelta(seconds=self.rules.bridge.give_up_s):
            return False
        log.error("%s: given up after %d attempts in %g s", what, attempts, self.rules.bridge.give_up_s)
        return True

    def _failed(self, exc: Exception, what: str, attempts: int) -> float:
        if not isinstance(exc, SendFailed):
            log.error("%s: cannot be sent: %s", what, type(exc).__name__)
        delay = min(MAX_RETRY_S, self.rules.bridge.retry_s * 2 ** min(attempts, 20))
        log.warning("%s failed (attempt %d), again in %g s: %s", what, attempts + 1, delay, exc)
        return delay

    def _attempt(self, lane: _Lane) -> Deadline:
        deadline = Deadline(self.rules.bridge.send_timeout_s)
        with self._wake:
            lane.deadline = deadline
            if self._stop.is_set():
                deadline.abort()
        return deadline

    def _email(self, lane: _Lane, to: str, text: Text, name: str) -> None:
        smtp = self.rules.smtp
        if smtp is None:
            raise SendFailed("no [smtp] section")
        message = email_message(smtp, to, text, name, self._clock())
        with self._attempt(lane) as deadline:
            try:
                with smtplib.SMTP(smtp.host.strip("[]"), smtp.port, timeout=deadline.seconds) as server:
                    deadline.watch(lambda: server.sock)
                    if smtp.starttls:
                        server.starttls(context=ssl.create_default_context(
                            cafile=str(smtp.ca) if smtp.ca is not None else None))
                    if smtp.username and smtp.password_file:
                        server.login(smtp.username, read_secret(smtp.password_file))
                    server.send_message(message)
            except (OSError, smtplib.SMTPException, UnicodeError, SecretUnusable) as exc:
                cut = f"cut off: {deadline.reason}" if deadline.fired else str(exc)
                raise SendFailed(f"SMTP {smtp.host}:{smtp.port}: {cut}") from exc
            finally:
                lane.deadline = None

    def _webhook(self, lane: _Lane, hook: Webhook, post: _Post) -> None:
        parts = urlsplit(hook.url)
        headers = dict(post.headers)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        with self._attempt(lane) as deadline:
            try:
                if hook.token_file is not None:
                    headers["Authorization"] = f"Bearer {read_secret(hook.token_file)}"
                connection = http.client.HTTPSConnection(host, parts.port, timeout=deadline.seconds,
                                                         context=ssl.create_default_context()) \
                    if parts.scheme == "https" else http.client.HTTPConnection(host, parts.port, timeout=deadline.seconds)
                try:
                    connection.connect()
                    deadline.watch(lambda: connection.sock)
                    connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                                       body=post.body, headers=headers)
                    response = connection.getresponse()
                    response.read(65_536)
                finally:
                    connection.close()
            except (OSError, http.client.HTTPException, ValueError, SecretUnusable) as exc:
                raise SendFailed(f"{webhook_place(hook)}: {_why(exc, deadline)}") from exc
            finally:
                lane.deadline = None
        if not 200 <= response.status < 300:
            hint = " (redirects are not followed: configure the final address)" if 300 <= response.status < 400 else ""
            raise SendFailed(f"{webhook_place(hook)}: HTTP {response.status} {response.reason[:80]}{hint}")
