"""The alert bridge's sending (bridge/senders.py) against a real SMTP server and real HTTP receivers, no broker."""
from __future__ import annotations

import dataclasses
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alerts_kit import START, HookSink, MailSink, ManualClock, rules
from certs import make_pki
from conftest import wait_for

from bridge import senders
from bridge.model import Alert, Channel, Delivery, Problem, SendKind, Severity, Target
from bridge.problems import Outcome
from bridge.rules import Rules, SmtpSettings
from bridge.senders import NTFY_MAX_BODY, Dispatcher, compose
from bridge.store import Store

ANNA = Target(Channel.EMAIL, "anna@example.org")
PHONES = Target(Channel.WEBHOOK, "phones")
DESK = Target(Channel.WEBHOOK, "desk")
WAIT_S = 10.0


def alert(**changes: object) -> Alert:
    """ST-A's card terminal, critical, in German words (non-ASCII), opened at START."""
    return dataclasses.replace(Alert(
        id="a-1", problem=Problem.FAULT, title="ST-A: card_terminal unreachable – Störung", stations=["ST-A"],
        zones={"ST-A": "Altstadt Nord"}, component="card_terminal", code="unreachable", severity=Severity.CRITICAL,
        message="Das Kartenterminal antwortet nicht.", parker_impact="no_card_payment", since=START, opened=START,
        group="crew-nord", escalate_at=None), **changes)


def queue(database: Path, queued: Alert, *deliveries: tuple[SendKind, Target], now: datetime = START) -> None:
    """Queue messages of an alert as the service does: the alert and its sends in one transaction."""
    with Store(database) as store:
        store.apply(Outcome(alerts={queued.id: queued},
                            deliveries=[Delivery(queued.id, queued.level, kind, target) for kind, target in deliveries]),
                    now)


def sends(database: Path) -> list[tuple[str, str, str | None, str | None]]:
    """Every send as (kind, target, sent_at, error), in the order queued."""
    with sqlite3.connect(database) as db:
        return db.execute("SELECT kind, target, sent_at, error FROM sends ORDER BY id").fetchall()


class SlowServer:
    """A TCP server that takes a request and answers one byte every 0.2 s, for a minute: no single read times out."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        self.connected.set()
        with connection:
            try:
                connection.recv(65_536)
                for _ in range(300):
                    connection.sendall(b"H")
                    if self._stop.wait(0.2):  # the slow server's pace, not a test's synchronisation
                        return
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()


def running(config: Rules, clock: ManualClock) -> Dispatcher:
    dispatcher = Dispatcher(config, clock, poll_s=0.02)
    dispatcher.start()
    return dispatcher


def test_a_slow_webhook_holds_up_no_mail_and_is_cut_off_at_its_total_deadline(tmp_path: Path, mail: MailSink) -> None:
    slow = SlowServer()
    database = tmp_path / "alerts.db"
    config = rules(database, smtp_port=mail.port, hook_url=slow.url, send_timeout_s=1)
    queue(database, alert(), (SendKind.ALERT, PHONES), (SendKind.ALERT, ANNA))
    dispatcher = running(config, ManualClock())
    try:
        assert slow.connected.wait(WAIT_S)
        started = time.monotonic()
        got = mail.wait_for(lambda items: items, WAIT_S, "the mail, while the webhook hangs")
        assert got[0].to == ("anna@example.org",)
        wait_for(lambda: sends(database)[0][3] is not None, WAIT_S, "the slow webhook cut off")
        assert time.monotonic() - started < 3  # one second's deadline, though every read got a byte in time
        assert sends(database)[0] == ("alert", "phones", None, f"webhook phones ({slow.url}): cut off: no answer "
                                                               "within 1 s")
    finally:
        stopping = time.monotonic()
        dispatcher.stop()
        slow.stop()
    assert time.monotonic() - stopping < 2


def test_stop_cuts_a_send_off_only_after_its_time_to_finish(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(senders, "STOP_FINISH_S", 0.5)
    slow = SlowServer()
    database = tmp_path / "alerts.db"
    queue(database, alert(), (SendKind.ALERT, PHONES))
    dispatcher = running(rules(database, hook_url=slow.url, send_timeout_s=120), ManualClock())
    assert slow.connected.wait(WAIT_S)
    stopping = time.monotonic()
    dispatcher.stop()
    slow.stop()
    assert 0.5 <= time.monotonic() - stopping < 2.5
    assert sends(database)[0][2:] == (None, f"webhook phones ({slow.url}): cut off: the bridge "
                                            "stopped")


def test_a_send_under_way_at_stop_finishes_and_is_recorded_never_sent_twice(tmp_path: Path) -> None:
    """Cutting it off at once made the next run send a message the server had already taken (a duplicate)."""
    hooks = HookSink().start()
    gate = threading.Event()
    hooks.before_answer = gate.wait  # the receiver holds its answer until the stop has begun
    database = tmp_path / "alerts.db"
    queue(database, alert(), (SendKind.ALERT, PHONES))
    dispatcher = running(rules(database, hook_url=hooks.url, send_timeout_s=30), ManualClock())
    try:
        assert hooks.arrived.wait(WAIT_S), "the post received"
        stopper = threading.Thread(target=dispatcher.stop)
        stopper.start()
        wait_for(lambda: dispatcher.stopping, WAIT_S, "the stop begun")
        gate.set()
        stopper.join(WAIT_S)
        assert not stopper.is_alive()
        (kept,) = sends(database)
        assert kept[2] is not None and kept[3] is None, kept
    finally:
        gate.set()
        hooks.stop()


def test_ntfy_and_mail_texts_headers_and_caps(tmp_path: Path, mail: MailSink) -> None:
    hooks = HookSink().start()
    database = tmp_path / "alerts.db"
    token = tmp_path / "token"
    token.write_text("s3cret\n\n", encoding="utf-8")
    config = rules(database, smtp_port=mail.port, hook_url=hooks.url)
    config = dataclasses.replace(config, webhooks={name: dataclasses.replace(hook, token_file=token)
                                                   for name, hook in config.webhooks.items()})
    many = [f"ST-{n:03}" for n in range(300)]
    zone = "Altstadt Nord " + "x" * 100  # 50 stations named with such zones: over ntfy's 4096 bytes
    queue(database, alert(stations=many, zones=dict.fromkeys(many, zone), problem=Problem.FLEET_FAULT),
          (SendKind.ALERT, PHONES), (SendKind.ALERT, ANNA))
    clock = ManualClock(START + timedelta(seconds=5))
    dispatcher = running(config, clock)
    try:
        post = hooks.wait_for(lambda items: items, WAIT_S, "the ntfy post")[0]
        message = mail.wait_for(lambda items: items, WAIT_S, "the mail")[0].message
    finally:
        dispatcher.stop()
        hooks.stop()
    title = post.headers["Title"]
    assert "\n" not in title and title.startswith("=?utf-8?") and title.endswith("?=") and " " not in title
    assert decode_header(title)[0][0].decode("utf-8") == "[critical] ST-A: card_terminal unreachable – Störung"
    assert post.headers["Authorization"] == "Bearer s3cret"
    assert len(post.body) == NTFY_MAX_BODY and post.body.endswith("\n[…]".encode())
    assert (message["Date"], message["Auto-Submitted"]) == ("Mon, 07 Dec 2026 09:00:05 +0000", "auto-generated")
    assert f"ST-049 ({zone}) and 250 more" in str(message.get_body(("plain",)).get_content())


def test_a_redirect_fails_and_no_error_or_log_names_the_path_or_query(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    hooks = HookSink(failures=1, status=301).start()
    database = tmp_path / "alerts.db"
    config = rules(database, hook_url=hooks.url + "/topic-secret?auth=key-secret")
    queue(database, alert(), (SendKind.ALERT, DESK))
    dispatcher = running(config, ManualClock())
    try:
        wait_for(lambda: sends(database)[0][3] is not None, WAIT_S, "the redirect refused")
    finally:
        dispatcher.stop()
        hooks.stop()
    assert [post.path for post in hooks.items] == ["FAILED /topic-secret?auth=key-secret/desk"]
    assert sends(database)[0][2:] == (None, f"webhook desk ({hooks.url}): HTTP 301 Moved "
                                            "Permanently (redirects are not followed: configure the final address)")
    assert "secret" not in caplog.text and "desk" in caplog.text


def test_nothing_is_sent_for_a_closed_alert_a_removed_webhook_or_after_giving_up(tmp_path: Path,
                                                                                 mail: MailSink) -> None:
    database = tmp_path / "alerts.db"
    config = rules(database, smtp_port=mail.port, give_up_s=3600)
    closed = alert(closed=START + timedelta(minutes=5))
    queue(database, alert(), (SendKind.ALERT, ANNA), (SendKind.ALERT, Target(Channel.WEBHOOK, "gone")))
    queue(database, closed, (SendKind.RESOLVED, ANNA), now=closed.closed or START)
    queue(database, alert(id="a-2"), (SendKind.ALERT, Target(Channel.EMAIL, "ben@example.org")),
          now=START - timedelta(hours=2))
    dispatcher = running(config, ManualClock(START + timedelta(minutes=6)))
    try:
        wait_for(lambda: all(row[2] is not None for row in sends(database)), WAIT_S, "every send settled")
    finally:
        dispatcher.stop()
    assert [row[:2] + (row[3],) for row in sends(database)] == [
        ("alert", "anna@example.org", "skipped: the alert closed before it was sent"),
        ("alert", "gone", "skipped: no webhook of that name is configured any more"),
        ("resolved", "anna@example.org", "skipped: the alert never reached this target"),
        ("alert", "ben@example.org", "skipped: gave up after 0 attempts")]
    assert mail.items == []


def test_starttls_checks_the_server_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    mail = MailSink(tls=context).start()
    database = tmp_path / "alerts.db"
    base = rules(database, smtp_port=mail.port)
    assert base.smtp is not None
    smtp = dataclasses.replace(base.smtp, host="localhost", starttls=True)
    queue(database, alert(), (SendKind.ALERT, ANNA))
    untrusting = running(dataclasses.replace(base, smtp=smtp), ManualClock())
    try:
        wait_for(lambda: sends(database)[0][3] is not None, WAIT_S, "the unknown certificate refused")
    finally:
        untrusting.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in (sends(database)[0][3] or "") and mail.items == []
    trusting = running(dataclasses.replace(base, smtp=SmtpSettings(**{**vars(smtp), "ca": pki.ca.cert})),
                       ManualClock(START + timedelta(hours=1)))
    try:
        assert mail.wait_for(lambda items: items, WAIT_S, "the mail over STARTTLS")[0].to == ("anna@example.org",)
    finally:
        trusting.stop()
        mail.stop()


def test_texts_never_overflow_on_far_off_times() -> None:
    config = rules(Path("/nonexistent/alerts.db"))
    west = dataclasses.replace(config, bridge=dataclasses.replace(config.bridge, timezone=ZoneInfo("America/New_York")))
    far = alert(since=datetime(1, 1, 1, tzinfo=UTC), opened=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
                closed=datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    assert "Since: 0001-01-01 00:00 UTC\n" in compose(far, SendKind.ALERT, west).body
    assert "the alert closed at 9999-12-31 18:59 EST, 87649416.0 hours after it began (0001-01-01 00:00 UTC)" in \
        compose(far, SendKind.RESOLVED, west).body
