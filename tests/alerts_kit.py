"""Real parts for the alert bridge's tests: a configuration, a manual clock, an SMTP server, a webhook receiver."""
from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from broker import free_port

from bridge.rules import Rules, parse

PREFIX = "paystation/v1"
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin: day, weekday


class ManualClock:
    """A clock that moves only when the test says so (thread-safe)."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move on by ``seconds``; return the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


def config_text(database: Path, broker_port: int, smtp_port: int, hook_url: str, **bridge: Any) -> str:
    """A whole configuration: crew-nord (Altstadt zones) escalating to leads, night (critical at night), a fallback.

    People: anna (mail + ntfy webhook ``phones``), ben (mail), clara (lead, mail), nightdesk (JSON webhook ``desk``).
    """
    settings = {"grace_s": 120, "lost_grace_s": 300, "flap_window_s": 900, "flap_threshold": 3,
                "fleet_threshold": 10, "fleet_window_s": 600, "escalate_after_s": 900, "retry_s": 30,
                "send_timeout_s": 30, "settle_s": 0.05, **bridge}  # 30 s: a loaded CI machine is slow, never this slow
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    return f"""
[broker]
url = "mqtt://127.0.0.1:{broker_port}"

[bridge]
database = "{database}"
crew_page_url = "https://crew.example.org:8885/"
night = "22:00-06:00"
timezone = "Europe/Berlin"
{lines}

[smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "Pay stations <alerts@example.org>"
starttls = false

[[webhooks]]
name = "phones"
url = "{hook_url}/ntfy/crew-nord"
format = "ntfy"

[[webhooks]]
name = "desk"
url = "{hook_url}/desk"
format = "json"

[[people]]
name = "crew-anna"
email = "anna@example.org"
webhook = "phones"

[[people]]
name = "crew-ben"
email = "ben@example.org"

[[people]]
name = "lead-clara"
email = "clara@example.org"

[[people]]
name = "nightdesk"
webhook = "desk"

[[groups]]
name = "crew-nord"
members = ["crew-anna", "crew-ben"]
escalate_to = "leads"

[[groups]]
name = "leads"
members = ["lead-clara"]

[[groups]]
name = "night"
members = ["nightdesk"]

[[routes]]
severities = ["critical"]
when = "night"
group = "night"

[[routes]]
zones = ["Altstadt *"]
group = "crew-nord"

[[routes]]
group = "leads"
"""


def rules(database: Path, broker_port: int = 1883, smtp_port: int = 25, hook_url: str = "http://127.0.0.1:9",
          **bridge: Any) -> Rules:
    """The configuration of config_text, parsed."""
    import tomllib

    return parse(tomllib.loads(config_text(database, broker_port, smtp_port, hook_url, **bridge)))


class _Collector:
    """Things received on another thread, with a wait for a condition over them."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    def add(self, item: Any) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[Any]], Any], timeout: float, what: str) -> Any:
        """Wait until ``condition(items)`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition(list(self.items))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; have {self.items!r}")
                self._changed.wait(left)


@dataclass(frozen=True)
class Mail:
    """One e-mail the SMTP server took."""

    to: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        """Its subject."""
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        """Its plain text."""
        part = self.message.get_body(("plain",))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""


class MailSink(_Collector):
    """A real SMTP server (aiosmtpd) on a free port that keeps every message; with ``tls`` it requires STARTTLS."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.port = free_port()
        options: dict[str, Any] = {"tls_context": tls, "require_starttls": True} if tls is not None else {}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook: one message arrived."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.add(Mail(tuple(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> MailSink:
        """Start listening."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()


@dataclass(frozen=True)
class Post:
    """One HTTP POST the receiver took."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class HookSink(_Collector):
    """A local HTTP receiver on a free port; the first ``failures`` requests are answered ``status`` (and kept too).

    ``arrived`` is set when a request has been read; ``before_answer`` runs then, before the answer (a test may hold it).
    """

    def __init__(self, failures: int = 0, status: int = 500) -> None:
        super().__init__()
        self.failures = failures
        self.arrived = threading.Event()
        self.before_answer: Callable[[], object] = lambda: None
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.arrived.set()
                sink.before_answer()
                with sink._changed:
                    failing = sink.failures > 0
                    sink.failures -= failing
                self.send_response(status if failing else 200)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                sink.add(Post(self.path, dict(self.headers.items()), body) if not failing else
                         Post(f"FAILED {self.path}", dict(self.headers.items()), body))

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> HookSink:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def fault(active: bool, code: str = "unreachable", severity: str = "critical", since: str = "2026-12-07T08:59:00.000Z",
          message: str = "The card terminal does not answer.", impact: str = "no_card_payment") -> str:
    """A retained ``fault/{component}`` payload as stations write it."""
    return json.dumps({"active": active, "code": code, "severity": severity, "since": since, "message": message,
                       "parker_impact": impact})


def online(zone: str, boot: int = 1_795_338_000) -> str:
    """A station's birth."""
    return json.dumps({"state": "online", "boot": boot, "series": None, "firmware": "0.4.0", "config_version": 1,
                       "zone": zone, "ts": "2026-12-07T08:00:00.000Z"})


def lost(boot: int = 1_795_338_000) -> str:
    """A station's will."""
    return json.dumps({"state": "lost", "boot": boot})
