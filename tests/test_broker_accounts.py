"""Broker accounts: the generator's files, and a real mosquitto enforcing the access rules of docs/broker.md with them."""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker import Mosquitto
from broker_access import (
    ACCOUNTS,
    CREW_PAGE,
    GRANTED_QOS_1,
    NOT_AUTHORIZED,
    SCRIPT,
    SUCCESS,
    TIMEOUT_S,
    WILL,
    ConfiguredMosquitto,
    P,
    Peer,
    assert_denied,
    configured_broker,
    generate,
    run,
    secret,
    unique,
)
from certs import Pki, make_pki
from conftest import ROOT, wait_for

from kiosk.domain import staff

PASSWD_LINE = re.compile(r"(?P<user>[^:]+):\$7\$(?P<iterations>101)\$(?P<salt>[A-Za-z0-9+/]{16})"
                         r"\$(?P<hash>[A-Za-z0-9+/]{86}==)")

STATION_RULES = {  # docs/broker.md "Access rules", written out for station S1
    "topic write paystation/v1/S1/status", "topic write paystation/v1/S1/fault/+",
    "topic write paystation/v1/S1/event/+", "topic write paystation/v1/S1/help/state",
    "topic write paystation/v1/S1/help/request", "topic write paystation/v1/S1/help/from-parker",
    "topic write paystation/v1/S1/cfg/reported", "topic write paystation/v1/S1/telemetry",
    "topic write paystation/v1/S1/reply/#",
    "topic read paystation/v1/S1/cmd/#", "topic read paystation/v1/S1/cfg/desired",
    "topic read paystation/v1/S1/help/to-parker",
}
DENIED = {f"topic deny paystation/v1/{tree}/{word}/#" for tree in ("_alerts", "_ack") for word in ("cmd", "help", "cfg")}
AGENT_RULES = {"topic read paystation/v1/#", "topic write paystation/v1/+/help/to-parker",
               "topic write paystation/v1/+/cmd/#", "topic write paystation/v1/_ack/a1/+", *DENIED}
OPERATOR_RULES = {"topic read paystation/v1/#", "topic write paystation/v1/+/cmd/#",
                  "topic write paystation/v1/+/cfg/desired", *DENIED}
CREW_RULES = {"topic read paystation/v1/+/status", "topic read paystation/v1/+/fault/+",
              "topic read paystation/v1/+/telemetry", "topic read paystation/v1/_alerts/+",
              "topic read paystation/v1/+/reply/crew-crew-anna/#",
              "topic write paystation/v1/+/cmd/restart", "topic write paystation/v1/+/cmd/terminal/status",
              "topic write paystation/v1/+/cmd/service/crew-anna", "topic write paystation/v1/+/cmd/fixed/crew-anna",
              "topic write paystation/v1/_ack/crew-anna/+", *DENIED}
BRIDGE_RULES = {"topic read paystation/v1/#", "topic write paystation/v1/_alerts/#", *DENIED}
STAFF = {"a1", "op1", "crew-anna", "alerts"}


def acl_blocks(out: Path) -> dict[str | None, list[str]]:
    """The acl file as {user: its lines}; None holds lines before the first user (anonymous clients)."""
    blocks: dict[str | None, list[str]] = {None: []}
    user: str | None = None
    for line in (out / "acl").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("user "):
            user = line.removeprefix("user ")
            assert user not in blocks, f"two blocks for {user}"
            blocks[user] = []
        else:
            blocks[user].append(line)
    return blocks


def verifies(line: str, password: str) -> bool:
    """Whether a password_file line holds ``password`` (PBKDF2-HMAC-SHA512, as mosquitto checks it)."""
    match = PASSWD_LINE.fullmatch(line)
    assert match, f"not a mosquitto $7$ line: {line!r}"
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(match["salt"]),
                                 int(match["iterations"]), 64)
    return base64.b64encode(digest).decode() == match["hash"]


def passwd_lines(out: Path) -> dict[str, str]:
    """The password_file as {user: line}."""
    return {line.split(":", 1)[0]: line for line in (out / "passwd").read_text(encoding="utf-8").splitlines()}


# ---------------------------------------------------------------- the generator's files


def test_station_block_holds_exactly_its_rules_and_anonymous_gets_nothing(tmp_path: Path) -> None:
    generate(tmp_path, *ACCOUNTS)
    blocks = acl_blocks(tmp_path)
    assert set(blocks) == {None, "S1", "S2", *STAFF}
    assert blocks[None] == []
    assert sorted(blocks["S1"]) == sorted(STATION_RULES)
    assert sorted(blocks["S2"]) == sorted(rule.replace("/S1/", "/S2/") for rule in STATION_RULES)
    assert sorted(blocks["a1"]) == sorted(AGENT_RULES)
    assert sorted(blocks["op1"]) == sorted(OPERATOR_RULES)
    assert sorted(blocks["crew-anna"]) == sorted(CREW_RULES)
    assert sorted(blocks["alerts"]) == sorted(BRIDGE_RULES)
    for name in STAFF:  # mosquitto: a matching deny wins anyway; first, so that a reader sees it first too
        assert all(line.startswith("topic deny") for line in blocks[name][:len(DENIED)])
    assert "pattern" not in (tmp_path / "acl").read_text(encoding="utf-8")


def test_password_lines_verify_against_the_secrets(tmp_path: Path) -> None:
    result = generate(tmp_path, *ACCOUNTS)
    lines = passwd_lines(tmp_path)
    assert set(lines) == {"S1", "S2", *STAFF}
    for name, line in lines.items():
        assert verifies(line, secret(tmp_path, name))
        assert not verifies(line, secret(tmp_path, name) + "x")
        assert (tmp_path / "secrets" / f"{name}.password").stat().st_mode & 0o777 == 0o600
    assert len(secret(tmp_path, "S1")) == 32  # token_urlsafe(24)
    assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o600
    assert "allow_anonymous false" in result.stdout and "acl_file /etc/mosquitto/paystation/acl" in result.stdout


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_mosquitto_passwd_writes_the_same_format(tmp_path: Path) -> None:
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "passwd"), "someone", "pa55word"], check=True,
                   capture_output=True)
    assert verifies((tmp_path / "passwd").read_text(encoding="utf-8").strip(), "pa55word")


def test_rerun_keeps_passwords_and_rotate_changes_only_the_named_one(tmp_path: Path) -> None:
    generate(tmp_path, "--station", "S1", "--station", "S2", "--agent", "a1")
    before = {name: secret(tmp_path, name) for name in ("S1", "S2", "a1")}
    result = generate(tmp_path, "--station", "S1", "--station", "S2", "--station", "S3", "--agent", "a1")
    assert {name: secret(tmp_path, name) for name in before} == before
    assert "secrets new: S3" in result.stdout and "secrets kept: S1, S2, a1" in result.stdout
    assert all(verifies(line, secret(tmp_path, name)) for name, line in passwd_lines(tmp_path).items())

    result = generate(tmp_path, "--station", "S1", "--station", "S2", "--station", "S3", "--agent", "a1",
                      "--rotate", "S2")
    assert secret(tmp_path, "S2") != before["S2"]
    assert (secret(tmp_path, "S1"), secret(tmp_path, "a1")) == (before["S1"], before["a1"])
    assert verifies(passwd_lines(tmp_path)["S2"], secret(tmp_path, "S2"))
    assert "secrets rotated: S2" in result.stdout

    result = generate(tmp_path, "--station", "S1", "--agent", "a1")
    assert set(passwd_lines(tmp_path)) == {"S1", "a1"}
    assert "no longer accepted by the broker): S2, S3" in result.stdout


def test_stations_file_with_comments(tmp_path: Path) -> None:
    stations = tmp_path / "stations.txt"
    stations.write_text("# Marktplatz\nDE-BER-0042\n\nDE-BER-0043  # by the church\n", encoding="utf-8")
    generate(tmp_path / "out", "--stations-file", str(stations), "--station", "S1", "--operator", "op1")
    assert set(acl_blocks(tmp_path / "out")) == {None, "S1", "DE-BER-0042", "DE-BER-0043", "op1"}


@pytest.mark.parametrize("args, message", [
    (["--station", "S/1"], "station name 'S/1' is not valid"),
    (["--station", "S1+"], "station name 'S1+' is not valid"),
    (["--station=-S1"], "station name '-S1' is not valid"),
    (["--station", "_S1"], "station name '_S1' is not valid"),
    (["--station", "S" * 65], "is not valid"),
    (["--agent", "help desk"], "agent name 'help desk' is not valid"),
    (["--operator", ""], "operator name '' is not valid"),
    (["--agent", "#"], "agent name '#' is not valid"),
    (["--crew", "crew anna"], "crew name 'crew anna' is not valid"),
    (["--bridge", "al/erts"], "bridge name 'al/erts' is not valid"),
    *[(["--crew" if n % 2 else "--agent", name], f"{'crew' if n % 2 else 'agent'} name {name!r} is reserved")
      for n, name in enumerate(("cmd", "help", "cfg", "status", "fault", "event", "telemetry", "reply", ".", "..",
                                ".anna"))],
    (["--operator", "fault"], "operator name 'fault' is reserved"),
    (["--bridge", "event"], "bridge name 'event' is reserved"),
    (["--crew", "ben", "--agent", "crew-ben"], "agent name 'crew-ben' would read the replies of crew 'ben'"),
    (["--crew", "x", "--bridge", "x"], "name 'x' is given more than once (as crew and bridge)"),
    (["--station", "S1", "--agent", "S1"], "name 'S1' is given more than once (as station and agent)"),
    (["--agent", "x", "--operator", "x"], "name 'x' is given more than once (as agent and operator)"),
    (["--station", "S1", "--station", "S1"], "name 'S1' is given more than once (as station and station)"),
    (["--station", "S1", "--rotate", "S9"], "cannot rotate 'S9': it is not an account of this run"),
    (["--station", "S1", "--certificates", "--rotate", "S1"], "cannot rotate 'S1': it authenticates by certificate"),
    (["--stations-file", "/nonexistent/stations"], "cannot read stations file"),
    ([], "no accounts: give --station, --stations-file, --agent, --operator, --crew or --bridge"),
])
def test_bad_input_is_refused_with_exit_code_2_and_nothing_written(tmp_path: Path, args: list[str],
                                                                   message: str) -> None:
    result = run("--out", tmp_path / "out", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_certificate_mode_has_the_same_acl_and_no_station_passwords(tmp_path: Path) -> None:
    generate(tmp_path / "passwords", *ACCOUNTS)
    result = generate(tmp_path / "certificates", *ACCOUNTS, "--certificates")
    acl = (tmp_path / "certificates" / "acl").read_text(encoding="utf-8")
    assert acl == (tmp_path / "passwords" / "acl").read_text(encoding="utf-8")
    assert set(passwd_lines(tmp_path / "certificates")) == STAFF
    assert sorted(p.name for p in (tmp_path / "certificates" / "secrets").iterdir()) == sorted(
        f"{name}.password" for name in STAFF)
    assert "use_identity_as_username true" in result.stdout and "require_certificate true" in result.stdout


def test_without_crews_no_websockets_listener_is_printed_and_with_them_the_page_comes_first(tmp_path: Path) -> None:
    without = generate(tmp_path / "without", "--station", "S1", "--operator", "op1").stdout
    assert "websockets" not in without and "http_dir" not in without and "crew_web.py" not in without
    assert without.endswith("use_username_as_clientid true\n")
    with_crew = generate(tmp_path / "with", "--station", "S1", "--crew", "ben").stdout
    install = with_crew.index("  python3 provisioning/crew_web.py --install /usr/share/kiosk/crew   # see docs/crew.md")
    assert install < with_crew.index("http_dir /usr/share/kiosk/crew")


def test_the_station_takes_as_signers_exactly_the_names_the_generator_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("broker_accounts", SCRIPT)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "broker_accounts", generator)  # its dataclasses look themselves up there
    spec.loader.exec_module(generator)
    assert generator.RESERVED_NAMES == staff.RESERVED_NAMES
    assert generator.STAFF_NAME.pattern == staff.ACCOUNT_NAME
    assert [staff.account_name(name) for name in ("crew-anna", "a.b_c", "fault", ".anna", "", "a/b")] == [
        True, True, False, False, False, False]


def test_docs_show_the_printed_configurations(tmp_path: Path) -> None:
    documented = re.findall(r"```\n(per_listener_settings false\n.*?)```",
                            (ROOT / "docs" / "broker.md").read_text(encoding="utf-8"), re.DOTALL)
    outputs = [generate(tmp_path / mode, *ACCOUNTS, *extra).stdout
               for mode, extra in (("passwords", ()), ("certificates", ("--certificates",)))]
    printed = [output.split("# paystation accounts", 1)[1].split("\n", 1)[1] for output in outputs]
    assert documented == printed


# ---------------------------------------------------------------- a real mosquitto with the generated files


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stations S1 and S2, agent a1, operator op1, crew crew-anna, bridge alerts, generated once for the module's broker."""
    out = tmp_path_factory.mktemp("accounts")
    generate(out, *ACCOUNTS)
    return out


@pytest.fixture(scope="module")
def acl_broker(accounts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One mosquitto with the generated password and ACL files (plain TCP) for the access tests."""
    mosquitto = Mosquitto(tmp_path_factory.mktemp("broker"), password_file=accounts / "passwd",
                          acl_file=accounts / "acl").start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture
def login(peers: Callable[..., Peer], acl_broker: Mosquitto, accounts: Path) -> Callable[..., Peer]:
    """Connect as one of the generated accounts with its password (the connection must be accepted)."""
    def connect(name: str, *subscriptions: str, will_topic: str | None = None) -> Peer:
        peer = peers(acl_broker.port, name, secret(accounts, name), will_topic=will_topic)
        assert peer.connect() == SUCCESS
        for topic in subscriptions:
            assert peer.subscribe(topic) == [GRANTED_QOS_1]
        return peer
    return connect


def test_anonymous_client_is_refused(acl_broker: Mosquitto, peers: Callable[..., Peer]) -> None:
    assert peers(acl_broker.port).connect() == NOT_AUTHORIZED


@pytest.mark.parametrize("username, password", [("S1", "wrong"), ("nobody", "x"), ("S1", "")])
def test_wrong_password_or_unknown_user_is_refused(acl_broker: Mosquitto, peers: Callable[..., Peer],
                                                   username: str, password: str) -> None:
    assert peers(acl_broker.port, username, password).connect() == NOT_AUTHORIZED


def test_station_publishes_its_own_topics_and_its_will(login: Callable[..., Peer]) -> None:
    operator = login("op1", f"{P}/#")
    station = login("S1", will_topic=f"{P}/S1/status")
    for topic in (f"{P}/S1/event/payment", f"{P}/S1/reply/abc", f"{P}/S1/fault/printer", f"{P}/S1/telemetry",
                  f"{P}/S1/help/request", f"{P}/S1/cfg/reported"):
        payload = unique()
        assert station.publish(topic, payload) == SUCCESS
        operator.wait_message(topic, payload)
    station.client.loop_stop()
    station.client.socket().close()  # the station dies without DISCONNECT: the broker publishes its will
    operator.wait_message(f"{P}/S1/status", WILL)


@pytest.mark.parametrize("topic", [f"{P}/S2/event/payment", f"{P}/S2/status", f"{P}/S1/cmd/x", f"{P}/S1/cfg/desired",
                                   f"{P}/S1/help/to-parker", f"{P}/S1/event/a/b", f"{P}/S1/other"])
def test_station_cannot_publish_outside_its_own_station_topics(login: Callable[..., Peer], topic: str) -> None:
    operator = login("op1", f"{P}/#")
    station = login("S1", f"{P}/S1/cmd/#")
    assert_denied(station, topic, operator, f"{P}/S1/event/marker")
    assert station.messages == []


def test_station_subscribing_to_another_station_is_granted_but_receives_nothing(login: Callable[..., Peer]) -> None:
    station = login("S1", f"{P}/S1/cmd/#", f"{P}/S2/cmd/#", f"{P}/#")  # mosquitto 2.0 grants every SUBSCRIBE
    operator = login("op1")
    forbidden = [(f"{P}/S2/cmd/x", unique()), (f"{P}/S2/cfg/desired", unique())]
    for topic, payload in forbidden:
        assert operator.publish(topic, payload) == SUCCESS
    marker = unique("marker")
    assert operator.publish(f"{P}/S1/cmd/x", marker) == SUCCESS
    station.wait_message(f"{P}/S1/cmd/x", marker)
    assert [m for m in station.messages if m in forbidden] == []


def test_station_gets_no_retained_message_of_another_station(login: Callable[..., Peer]) -> None:
    operator = login("op1")
    theirs, ours = unique(), unique("marker")
    assert operator.publish(f"{P}/S2/cfg/desired", theirs, retain=True) < 0x80  # 0x10: nobody subscribed yet
    assert operator.publish(f"{P}/S1/cfg/desired", ours, retain=True) < 0x80
    try:
        station = login("S1", f"{P}/S2/cfg/desired", f"{P}/S1/cfg/desired")  # retained ones follow each SUBACK
        station.wait_message(f"{P}/S1/cfg/desired", ours)
        assert (f"{P}/S2/cfg/desired", theirs) not in station.messages
    finally:
        for station_id in ("S1", "S2"):
            operator.publish(f"{P}/{station_id}/cfg/desired", b"", retain=True)  # clears the retained message


def test_station_receives_its_commands_desired_config_and_agent_messages(login: Callable[..., Peer]) -> None:
    station = login("S1", f"{P}/S1/cmd/#", f"{P}/S1/cfg/desired", f"{P}/S1/help/to-parker")
    operator, agent = login("op1"), login("a1")
    for peer, topic in ((operator, f"{P}/S1/cmd/x"), (operator, f"{P}/S1/cmd/terminal/end-of-day"),
                        (operator, f"{P}/S1/cfg/desired"), (agent, f"{P}/S1/cmd/courtesy"),
                        (agent, f"{P}/S1/help/to-parker")):
        payload = unique()
        assert peer.publish(topic, payload) == SUCCESS
        station.wait_message(topic, payload)


def test_agent_cannot_write_desired_config_or_station_topics(login: Callable[..., Peer]) -> None:
    operator = login("op1", f"{P}/#")
    agent = login("a1")
    for topic in (f"{P}/S1/cfg/desired", f"{P}/S1/status", f"{P}/S1/event/payment", f"{P}/a1/event/payment"):
        assert_denied(agent, topic, operator, f"{P}/S1/cmd/marker")


def test_operator_cannot_write_help_or_station_topics(login: Callable[..., Peer]) -> None:
    agent = login("a1", f"{P}/#")
    operator = login("op1")
    for topic in (f"{P}/S1/help/to-parker", f"{P}/S1/status", f"{P}/S1/cfg/reported", f"{P}/op1/event/payment"):
        assert_denied(operator, topic, agent, f"{P}/S1/cmd/marker")


def test_agent_writes_help_to_parker_of_any_station(login: Callable[..., Peer]) -> None:
    agent = login("a1")
    for station_id in ("S1", "S2"):
        station = login(station_id, f"{P}/{station_id}/help/to-parker")
        payload = unique()
        assert agent.publish(f"{P}/{station_id}/help/to-parker", payload) == SUCCESS
        station.wait_message(f"{P}/{station_id}/help/to-parker", payload)


def test_agents_receive_help_requests_through_the_shared_subscription(login: Callable[..., Peer]) -> None:
    agent = login("a1", f"$share/agents/{P}/+/help/request")
    for station_id in ("S1", "S2"):
        station = login(station_id)
        payload = unique()
        assert station.publish(f"{P}/{station_id}/help/request", payload) == SUCCESS
        agent.wait_message(f"{P}/{station_id}/help/request", payload)


CREW_MAY = [f"{P}/S1/cmd/service/crew-anna", f"{P}/S2/cmd/restart", f"{P}/S1/cmd/terminal/status",
            f"{P}/S1/cmd/fixed/crew-anna", f"{P}/_ack/crew-anna/a-7f3c"]
CREW_MAY_NOT = [f"{P}/S1/cmd/mode", f"{P}/S1/cmd/fixed", f"{P}/S1/cmd/fixed/crew-ben", f"{P}/S1/cmd/service/a1",
                f"{P}/S1/cmd/service", f"{P}/S1/cmd/fixed/crew-anna/x", f"{P}/S1/cmd/courtesy", f"{P}/S1/cmd/update",
                f"{P}/S1/cmd/terminal/end-of-day", f"{P}/S1/cmd/notice", f"{P}/S1/cmd/journey/cancel",
                f"{P}/S1/help/to-parker", f"{P}/S1/cfg/desired",
                f"{P}/S1/status", f"{P}/S1/event/repair", f"{P}/_ack/a1/a-7f3c", f"{P}/_ack/crew-anna/a-7f3c/x",
                f"{P}/_ack/cmd/mode", f"{P}/_alerts/a-7f3c", f"{P}/_alerts/cmd/mode"]


def test_crew_publishes_exactly_its_commands_and_its_own_acknowledgements(login: Callable[..., Peer]) -> None:
    observer = login("op1", f"{P}/#")
    crew = login("crew-anna")
    for topic in CREW_MAY:
        payload = unique()
        assert crew.publish(topic, payload) == SUCCESS, topic
        observer.wait_message(topic, payload)
    for topic in CREW_MAY_NOT:
        assert_denied(crew, topic, observer, f"{P}/S1/cmd/fixed/crew-anna")


def test_a_crew_reads_only_the_stations_state_the_alerts_and_its_own_replies(login: Callable[..., Peer]) -> None:
    """A lost phone tells nothing of payments, help conversations, commands or other crews' replies."""
    crew = login("crew-anna", f"{P}/#")  # granted: the broker checks every message against the read rules
    station, agent, operator, bridge = login("S1"), login("a1"), login("op1"), login("alerts")
    hidden = [(station, f"{P}/S1/event/payment"), (station, f"{P}/S1/event/repair"), (station, f"{P}/S1/help/request"),
              (station, f"{P}/S1/help/from-parker"), (station, f"{P}/S1/cfg/reported"),
              (station, f"{P}/S1/help/state"),
              (station, f"{P}/S1/reply/crew-ben/0a1b2c3d"), (station, f"{P}/S1/reply/crew-crew-anna2/x"),
              (station, f"{P}/S1/reply/a1"), (agent, f"{P}/S1/help/to-parker"), (agent, f"{P}/_ack/a1/a-7f3c"),
              (operator, f"{P}/S1/cmd/mode"), (operator, f"{P}/S1/cfg/desired"), (bridge, f"{P}/_alerts/a-1/x")]
    shown = [(station, f"{P}/S1/status"), (station, f"{P}/S1/fault/door"), (station, f"{P}/S1/telemetry"),
             (station, f"{P}/S1/reply/crew-crew-anna/0a1b2c3d"),
             (bridge, f"{P}/_alerts/a-1")]
    payloads = [unique("hidden") for _ in hidden]
    for (peer, topic), payload in zip(hidden, payloads, strict=True):  # each PUBACK comes once mosquitto routed it
        assert peer.publish(topic, payload) == SUCCESS, topic
    for peer, topic in shown:  # what arrives after the hidden ones were routed (mosquitto routes in one thread)
        payload = unique("shown")
        assert peer.publish(topic, payload) == SUCCESS, topic
        crew.wait_message(topic, payload)
    assert [message for message in crew.messages if message[1] in payloads] == []


def test_crew_reads_the_alerts_the_bridge_writes_and_nothing_else_is_written_by_the_bridge(
        login: Callable[..., Peer]) -> None:
    bridge = login("alerts")
    alert = f"{P}/_alerts/a-7f3c"
    assert bridge.publish(alert, b'{"id":"a-7f3c"}', retain=True) < 0x80
    try:
        crew = login("crew-anna", f"{P}/_alerts/+")  # the retained alert follows the SUBACK
        crew.wait_message(alert, b'{"id":"a-7f3c"}')
        observer = login("op1", f"{P}/#")
        for topic in (f"{P}/S1/cmd/mode", f"{P}/S1/cmd/fixed", f"{P}/_ack/alerts/a-7f3c", f"{P}/S1/status",
                      f"{P}/S1/cfg/desired", f"{P}/S1/help/to-parker", f"{P}/_alerts/cmd/x"):
            assert_denied(bridge, topic, observer, f"{P}/_alerts/a-marker")
    finally:
        for topic in (alert, f"{P}/_alerts/a-marker"):
            assert bridge.publish(topic, b"", retain=True) < 0x80  # the alert closed: nothing retained stays


def test_agents_acknowledge_only_in_their_own_name(login: Callable[..., Peer]) -> None:
    observer = login("op1", f"{P}/#")
    agent = login("a1")
    payload = unique()
    assert agent.publish(f"{P}/_ack/a1/a-7f3c", payload) == SUCCESS
    observer.wait_message(f"{P}/_ack/a1/a-7f3c", payload)
    for topic in (f"{P}/_ack/crew-anna/a-7f3c", f"{P}/_ack/cmd/a-7f3c", f"{P}/_ack/help/to-parker",
                  f"{P}/_alerts/cmd", f"{P}/_alerts/a-7f3c"):  # `+/cmd/#` would match the first levels but these
        assert_denied(agent, topic, observer, f"{P}/S1/cmd/marker")
    operator = login("op1")
    for topic in (f"{P}/_ack/op1/a-7f3c", f"{P}/_ack/cfg/desired", f"{P}/_alerts/cfg/desired"):
        assert_denied(operator, topic, observer, f"{P}/S1/cmd/marker")


def test_reload_after_rerun_adds_removes_and_rotates_and_keeps_the_others_connected(
        tmp_path: Path, peers: Callable[..., Peer]) -> None:
    out = tmp_path / "accounts"
    generate(out, "--station", "S1", "--station", "S2", "--operator", "op1")
    mosquitto = Mosquitto(tmp_path / "broker", password_file=out / "passwd", acl_file=out / "acl").start()
    try:
        operator = peers(mosquitto.port, "op1", secret(out, "op1"))
        assert operator.connect() == SUCCESS and operator.subscribe(f"{P}/#") == [GRANTED_QOS_1]
        kept, removed = peers(mosquitto.port, "S1", secret(out, "S1")), peers(mosquitto.port, "S2", secret(out, "S2"))
        assert kept.connect() == SUCCESS and removed.connect() == SUCCESS
        assert peers(mosquitto.port, "S3", "guess").connect() == NOT_AUTHORIZED

        generate(out, "--station", "S1", "--station", "S3", "--operator", "op1")
        assert mosquitto.process is not None
        mosquitto.process.send_signal(signal.SIGHUP)  # systemctl reload mosquitto
        wait_for(lambda: removed.closed, TIMEOUT_S, "the removed station disconnected by the reload")
        added = peers(mosquitto.port, "S3", secret(out, "S3"))
        assert added.connect() == SUCCESS
        assert peers(mosquitto.port, "S2", secret(out, "S2")).connect() == NOT_AUTHORIZED
        payload = unique()
        assert kept.publish(f"{P}/S1/event/payment", payload) == SUCCESS
        operator.wait_message(f"{P}/S1/event/payment", payload)

        old = secret(out, "S3")
        generate(out, "--station", "S1", "--station", "S3", "--operator", "op1", "--rotate", "S3")
        mosquitto.process.send_signal(signal.SIGHUP)
        wait_for(lambda: added.closed, TIMEOUT_S, "the rotated station disconnected by the reload")
        assert peers(mosquitto.port, "S3", old).connect() == NOT_AUTHORIZED
        assert peers(mosquitto.port, "S3", secret(out, "S3")).connect() == SUCCESS
        payload = unique()
        assert kept.publish(f"{P}/S1/event/payment", payload) == SUCCESS
        operator.wait_message(f"{P}/S1/event/payment", payload)
    finally:
        mosquitto.stop()


# ---------------------------------------------------------------- the printed mosquitto.conf, over TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, the broker's certificate and client certificates for stations S1, S2 and S3 (S3 has no account)."""
    return make_pki(tmp_path_factory.mktemp("pki"), ("S1", "S2", "S3"))


def test_printed_configuration_with_passwords_over_tls(tmp_path: Path, pki: Pki, peers: Callable[..., Peer]) -> None:
    mosquitto = configured_broker(tmp_path, pki, certificates=False)
    try:
        assert peers(mosquitto.port, pki=pki).connect() == NOT_AUTHORIZED
        operator = peers(mosquitto.port, "op1", secret(tmp_path, "op1"), pki=pki)
        assert operator.connect() == SUCCESS and operator.subscribe(f"{P}/#") == [GRANTED_QOS_1]
        station = peers(mosquitto.port, "S1", secret(tmp_path, "S1"), client_id="S1", pki=pki)
        assert station.connect() == SUCCESS
        # S2 asking for S1's client id gets its own (the username): S1 stays connected.
        assert peers(mosquitto.port, "S2", secret(tmp_path, "S2"), client_id="S1", pki=pki).connect() == SUCCESS
        payload = unique()
        assert station.publish(f"{P}/S1/event/payment", payload) == SUCCESS
        operator.wait_message(f"{P}/S1/event/payment", payload)
        assert_denied(station, f"{P}/S2/event/payment", operator, f"{P}/S1/event/marker")
        crew_over_websockets(mosquitto, tmp_path, pki, operator, peers)
    finally:
        mosquitto.stop()


def crew_over_websockets(mosquitto: ConfiguredMosquitto, folder: Path, pki: Pki, observer: Peer,
                         peers: Callable[..., Peer]) -> None:
    """The crews' listener: the crew page over HTTPS (without a Content-Type) and MQTT over secure WebSockets."""
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    with urllib.request.urlopen(f"https://127.0.0.1:{mosquitto.crew_port}/index.html", context=context,
                                timeout=TIMEOUT_S) as response:
        assert (response.status, response.read()) == (200, CREW_PAGE)
        assert response.headers.get("Content-Type") is None  # mosquitto 2.0.11: see docs/broker.md
    assert peers(mosquitto.crew_port, "crew-anna", "wrong", pki=pki, websockets=True).connect() == NOT_AUTHORIZED
    crew = peers(mosquitto.crew_port, "crew-anna", secret(folder, "crew-anna"), pki=pki, websockets=True)
    assert crew.connect() == SUCCESS and crew.subscribe(f"{P}/S1/cmd/#") == [GRANTED_QOS_1]
    payload = unique()
    assert crew.publish(f"{P}/S1/cmd/fixed/crew-anna", payload) == SUCCESS
    observer.wait_message(f"{P}/S1/cmd/fixed/crew-anna", payload)
    assert_denied(crew, f"{P}/S1/cmd/courtesy", observer, f"{P}/_ack/crew-anna/a-1")
    assert [message for message in crew.messages if message[1] == payload] == []  # crews read no commands


def test_printed_configuration_with_station_certificates(tmp_path: Path, pki: Pki,
                                                         peers: Callable[..., Peer]) -> None:
    mosquitto = configured_broker(tmp_path, pki, certificates=True)
    try:
        assert peers(mosquitto.port, pki=pki).connect() is None  # no client certificate: TLS refused
        operator = peers(mosquitto.staff_port, "op1", secret(tmp_path, "op1"), pki=pki)
        assert operator.connect() == SUCCESS and operator.subscribe(f"{P}/#") == [GRANTED_QOS_1]
        station = peers(mosquitto.port, client_id="S1", pki=pki, cert=pki.clients["S1"])
        assert station.connect() == SUCCESS
        # The certificate's CN is the username: S2 claiming S1's name and client id still acts as S2.
        other = peers(mosquitto.port, "S1", client_id="S1", pki=pki, cert=pki.clients["S2"])
        assert other.connect() == SUCCESS
        assert_denied(other, f"{P}/S1/event/payment", operator, f"{P}/S2/event/marker")
        payload = unique()
        assert station.publish(f"{P}/S1/event/payment", payload) == SUCCESS
        operator.wait_message(f"{P}/S1/event/payment", payload)
        assert_denied(station, f"{P}/S2/event/payment", operator, f"{P}/S1/event/marker")
        # A valid certificate without an account connects but may do nothing.
        stranger = peers(mosquitto.port, client_id="S3", pki=pki, cert=pki.clients["S3"])
        assert stranger.connect() == SUCCESS
        assert stranger.publish(f"{P}/S3/event/payment", unique()) == NOT_AUTHORIZED
        crew_over_websockets(mosquitto, tmp_path, pki, operator, peers)
    finally:
        mosquitto.stop()
