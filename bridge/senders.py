"""What the bridge sends and how: the texts of an alert, e-mail through SMTP, webhooks (ntfy or JSON), with retries."""
from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from bridge.model import Alert, Channel, Delivery, SendKind, Severity, ack_link, format_time
from bridge.rules import Rules, SmtpSettings, Webhook, WebhookFormat
from bridge.store import PendingSend, Store

__all__ = ["MAX_RETRY_S", "Dispatcher", "SendFailed", "Text", "compose", "delivery_id", "email_message",
           "read_secret"]

log = logging.getLogger(__name__)

MAX_RETRY_S = 3600.0  # a failing send is tried again after retry_s, doubling up to an hour; never dropped
NTFY_PRIORITY = {Severity.CRITICAL: "5", Severity.WARNING: "4", Severity.INFO: "3"}
NTFY_TAGS = {Severity.CRITICAL: "rotating_light", Severity.WARNING: "warning", Severity.INFO: "information_source"}
RESOLVED_PRIORITY, RESOLVED_TAGS = "2", "white_check_mark"


class SendFailed(Exception):
    """A message was not delivered (it is tried again later); the text says why."""


@dataclass(frozen=True)
class Text:
    """One message's words: a one-line ``title``, a plain-text ``body`` and the crew page's ``link``."""

    title: str
    body: str
    link: str


def delivery_id(delivery: Delivery) -> str:
    """A stable name of one message (the same on a retry): receivers may drop duplicates by it."""
    return f"{delivery.alert_id}.{delivery.level}.{delivery.kind.value}"


def read_secret(path: Path) -> str:
    """A password or token file's content without its final newline."""
    return path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")


def compose(alert: Alert, kind: SendKind, rules: Rules) -> Text:
    """The words of an alert, its escalation or its end."""
    zone = rules.bridge.timezone
    local: Callable[[datetime], str] = lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    link = ack_link(rules.bridge.crew_page_url, alert.stations[0], alert.id)
    places = ", ".join(f"{station} ({alert.zones[station]})" if alert.zones.get(station) else station
                       for station in alert.stations)
    if kind is SendKind.RESOLVED:
        ended = alert.closed or alert.opened
        taken = f"Acknowledged by {alert.acked_by} at {local(alert.acked_at)}." if alert.acked_by and alert.acked_at \
            else "Nobody acknowledged it."
        body = (f"Resolved: {alert.title}\n\nThe problem ended; the alert closed at {local(ended)}, "
                f"{_minutes(ended - alert.since)} after it began ({local(alert.since)}).\n{taken}\n"
                f"Stations: {places}\nAlert: {alert.id}\n")
        return Text(_one_line(f"Resolved: {alert.title}"), body, link)
    lines = [alert.title, "", alert.message, "", f"Stations: {places}"]
    if alert.component:
        lines.append(f"Component: {alert.component}, code {alert.code}")
    lines += [f"Severity: {alert.severity.value}"]
    if alert.parker_impact:
        lines.append(f"Parker impact: {alert.parker_impact}")
    lines += [f"Since: {local(alert.since)}", f"Alert: {alert.id}, opened {local(alert.opened)}"]
    if alert.changes > 1:
        lines.append(f"Raised {alert.changes} times (flapping: one alert, not one per change)")
    title = f"[{alert.severity.value}] {alert.title}"
    if kind is SendKind.ESCALATION:
        title = f"[{alert.severity.value}] Escalated: {alert.title}"
        lines += ["", f"Nobody acknowledged it within {_minutes(timedelta(seconds=rules.bridge.escalate_after_s))}; "
                      f"it now goes to {alert.group} (escalation level {alert.level})."]
    lines += ["", f"Acknowledge it (and see the station): {link}", ""]
    return Text(_one_line(title), "\n".join(lines), link)


def _one_line(text: str) -> str:
    """A title as one line of printable characters (a mail subject, an HTTP header)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:200]


def _minutes(span: timedelta) -> str:
    minutes = max(0, round(span.total_seconds() / 60))
    return f"{minutes} minute{'' if minutes == 1 else 's'}" if minutes < 120 else f"{minutes / 60:.1f} hours"


def email_message(smtp: SmtpSettings, to: str, text: Text, delivery: Delivery) -> EmailMessage:
    """The e-mail of one message to one address."""
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = text.title
    domain = parseaddr(smtp.sender)[1].partition("@")[2] or "kiosk-alerts.invalid"
    digest = hashlib.sha256(to.encode("utf-8")).hexdigest()[:12]
    message["Message-ID"] = f"<{delivery_id(delivery)}.{digest}@{domain}>"
    message.set_content(text.body)
    return message


def _header(value: str) -> str:
    """An HTTP header value: as it is when ASCII, else an RFC 2047 encoded word (ntfy decodes those)."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def _webhook_request(hook: Webhook, alert: Alert, kind: SendKind, text: Text, delivery: Delivery) -> urllib.request.Request:
    headers: dict[str, str] = {}
    if hook.token_file is not None:
        headers["Authorization"] = f"Bearer {read_secret(hook.token_file)}"
    if hook.format is WebhookFormat.NTFY:
        resolved = kind is SendKind.RESOLVED
        headers.update({"Title": _header(text.title), "Click": text.link,
                        "Priority": RESOLVED_PRIORITY if resolved else NTFY_PRIORITY[alert.severity],
                        "Tags": RESOLVED_TAGS if resolved else NTFY_TAGS[alert.severity],
                        "Content-Type": "text/plain; charset=utf-8"})
        body = text.body.encode("utf-8")
    else:
        headers["Content-Type"] = "application/json"
        document: dict[str, Any] = {"event": kind.value, "delivery": delivery_id(delivery), "title": text.title,
                                    "text": text.body, "link": text.link, "alert": alert.payload()}
        if alert.closed is not None:
            document["closed"] = format_time(alert.closed)
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return urllib.request.Request(hook.url, data=body, headers=headers, method="POST")


class Dispatcher:
    """Delivers the queued sends in their own thread, with its own database connection.

    A send is marked done only after the server took it: a crash in between sends it again after the
    restart (at least once), never not at all. Receivers can drop such a duplicate by its Message-ID
    (e-mail) or ``delivery`` (JSON).
    """

    def __init__(self, rules: Rules, clock: Callable[[], datetime], poll_s: float = 5.0) -> None:
        self.rules = rules
        self._clock = clock
        self._poll_s = poll_s
        self._wake = threading.Condition()
        self._woken = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-sends", daemon=True)
        self._senders: dict[Channel, Callable[[Delivery, Alert, Text], None]] = {
            Channel.EMAIL: self._email, Channel.WEBHOOK: self._webhook}
        self.failure: BaseException | None = None

    def start(self) -> None:
        """Start the sending thread."""
        self._thread.start()

    def wake(self) -> None:
        """New sends were queued: look now."""
        with self._wake:
            self._woken = True
            self._wake.notify()

    def stop(self) -> None:
        """Stop after the send under way (it finishes or times out)."""
        self._stop.set()
        self.wake()
        self._thread.join(timeout=self.rules.bridge.send_timeout_s + 5)

    def _run(self) -> None:
        try:
            with Store(self.rules.bridge.database) as store:
                while not self._stop.is_set():
                    for pending in store.due_sends(self._clock()):
                        if self._stop.is_set():
                            break
                        self._deliver(store, pending)
                    with self._wake:
                        if not self._woken:
                            self._wake.wait(self._poll_s)
                        self._woken = False
        except Exception as exc:  # the service sees it and stops: systemd starts it again
            log.exception("the sending thread failed")
            self.failure = exc

    def _deliver(self, store: Store, pending: PendingSend) -> None:
        delivery = pending.delivery
        alert = store.alert(delivery.alert_id)
        if alert is None:
            log.error("send %d names alert %s, which the database lacks: dropped", pending.id, delivery.alert_id)
            store.sent(pending.id, self._clock())
            return
        try:
            self._senders[delivery.target.channel](delivery, alert, compose(alert, delivery.kind, self.rules))
        except Exception as exc:  # SendFailed, or a bug with this one message: never the end of all sending
            if not isinstance(exc, SendFailed):
                log.exception("%s of %s to %s: cannot be sent", delivery.kind.value, delivery.alert_id,
                              delivery.target.address)
            delay = min(MAX_RETRY_S, self.rules.bridge.retry_s * 2 ** min(pending.attempts, 20))
            log.warning("%s of %s to %s %s failed (attempt %d), again in %g s: %s", delivery.kind.value,
                        delivery.alert_id, delivery.target.channel.value, delivery.target.address,
                        pending.attempts + 1, delay, exc)
            store.failed(pending.id, str(exc), self._clock() + timedelta(seconds=delay))
            return
        store.sent(pending.id, self._clock())
        log.info("%s of %s sent to %s %s", delivery.kind.value, delivery.alert_id, delivery.target.channel.value,
                 delivery.target.address)

    def _email(self, delivery: Delivery, alert: Alert, text: Text) -> None:
        smtp = self.rules.smtp
        if smtp is None:
            raise SendFailed("no [smtp] section")
        message = email_message(smtp, delivery.target.address, text, delivery)
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=self.rules.bridge.send_timeout_s) as server:
                if smtp.starttls:
                    server.starttls()
                if smtp.username and smtp.password_file:
                    server.login(smtp.username, read_secret(smtp.password_file))
                server.send_message(message)
        except (OSError, smtplib.SMTPException, UnicodeError) as exc:
            raise SendFailed(f"SMTP {smtp.host}:{smtp.port}: {exc}") from exc

    def _webhook(self, delivery: Delivery, alert: Alert, text: Text) -> None:
        hook = self.rules.webhooks.get(delivery.target.address)
        if hook is None:
            raise SendFailed(f"no webhook is named {delivery.target.address!r} any more")
        try:
            request = _webhook_request(hook, alert, delivery.kind, text, delivery)
            with urllib.request.urlopen(request, timeout=self.rules.bridge.send_timeout_s) as response:
                response.read(65_536)
        except urllib.error.HTTPError as exc:
            raise SendFailed(f"{hook.url}: HTTP {exc.code} {exc.reason}") from exc
        except (OSError, ValueError, UnicodeError) as exc:
            raise SendFailed(f"{hook.url}: {exc}") from exc
