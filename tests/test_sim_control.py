"""Two live simulated stations on one broker, driven with `kiosk sim` and its socket: help, faults, bad input, fuzz."""
from __future__ import annotations

import contextlib
import json
import re
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from broker import Mosquitto
from conftest import run_kiosk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_client import Received, Staff
from station_process import Station, sim_config

from kiosk.cli import main as cli
from kiosk.cli.scenario import ScenarioError, parse
from kiosk.cli.sim_control import LOOP_S
from kiosk.cli.sim_protocol import (
    MAX_LINE,
    Answer,
    BadRequest,
    Code,
    Command,
    Request,
    SimFault,
    parse_request,
    request_from_words,
)
from kiosk.cli.sim_socket import ask, control_path

pytestmark = pytest.mark.slow

ONE, TWO = "SIM-A", "SIM-B"
START_S = 60
FAULT_S = 10  # the terminal is polled every second (terminal.status_interval_s = 1)
READ_S = 5.0
IDLE = {"screen": "welcome", "help": None, "button": "up", "door": "closed", "faults": [], "simulated": []}


def topic(station: str, name: str) -> str:
    return f"paystation/v1/{station}/{name}"


def newest(station: str, name: str, **fields: object) -> Callable[[list[Received]], Received | None]:
    """The newest message on a station's topic, once its payload has these fields."""
    def found(messages: list[Received]) -> Received | None:
        on = [m for m in messages if m.topic == topic(station, name) and m.payload]
        return on[-1] if on and all(on[-1].json().get(k) == v for k, v in fields.items()) else None
    return found


def retained(port: int, station: str, name: str) -> dict:
    """What a subscriber that comes now finds retained on a station's topic."""
    late = Staff(port)
    try:
        late.subscribe(topic(station, name))
        message = late.wait_for(lambda m: m[0] if m else None, 10, f"the retained {name} of {station}")
        assert message.retain
        return message.json()
    finally:
        late.close()


@dataclass
class Fleet:
    """The two stations, their broker and a subscriber to everything they publish."""

    broker: Mosquitto
    staff: Staff
    one: Station
    two: Station
    one_socket: Path
    two_socket: Path
    folder: Path

    def sim(self, *words: str) -> tuple[int, str, str]:
        """`kiosk sim WORDS` as a trainer types it, in a process of its own: exit code, stdout, stderr."""
        result = run_kiosk("sim", *words)
        return result.returncode, result.stdout, result.stderr


def sim(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    """`kiosk sim WORDS` in this process (quicker): exit code, stdout, stderr."""
    capsys.readouterr()
    code = cli.main(["sim", *words])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, runtime_dir: Path) -> Iterator[Fleet]:
    """SIM-A on its default socket (in XDG_RUNTIME_DIR), SIM-B on --control, over a stale socket left by a dead run."""
    folder = tmp_path_factory.mktemp("fleet")
    broker = Mosquitto(folder / "broker").start()
    staff = Staff(broker.port)
    staff.subscribe("paystation/v1/+/#")
    two_socket = folder / "two.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(two_socket))  # bound, never listened, closed: the file stays, nobody answers
    one = Station(sim_config(folder / "one", ONE, broker.port)).start()
    two = Station(sim_config(folder / "two", TWO, broker.port), args=("--control", str(two_socket))).start()
    try:
        for station, process in ((ONE, one), (TWO, two)):
            try:
                staff.wait_for(newest(station, "status", state="online"), START_S, f"{station}'s birth")
            except AssertionError:
                raise AssertionError(process.log()) from None
        yield Fleet(broker, staff, one, two, runtime_dir / "kiosk" / f"{ONE}.sock", two_socket, folder)
    finally:
        for process in (one, two):
            process.stop()
        staff.close()
        broker.stop()


def test_a_help_press_at_station_one_reaches_the_broker(fleet: Fleet) -> None:
    code, out, err = fleet.sim("--station", ONE, "--json", "help")
    assert (code, err) == (0, ""), err
    assert json.loads(out) == {"ok": True, "code": "done", "detail": "help button pressed and released",
                               "state": {"station": ONE, **IDLE, "help": "waiting"}}

    request = fleet.staff.wait_for(newest(ONE, "help/request"), 10, "SIM-A's help/request").json()
    assert request["station"] == ONE and request["context"]["screen"] == "welcome"
    state = fleet.staff.wait_for(newest(ONE, "help/state", state="waiting"), 10, "SIM-A's help/state").json()
    assert state["ticket"] == request["ticket"] and state["context"]["station"] == ONE
    assert retained(fleet.broker.port, ONE, "help/state")["ticket"] == request["ticket"]
    assert fleet.staff.on(topic(TWO, "help/request")) == []

    # The parker cancels on the screen: a scenario step, run live.
    answer = ask(fleet.one_socket, Request(Command.STEP, step="tap help:cancel"))
    assert answer == Answer(True, Code.DONE, "step done: tap help:cancel", {"station": ONE, **IDLE})
    closed = fleet.staff.wait_for(newest(ONE, "help/state", state="closed"), 10, "the ticket closed").json()
    assert (closed["ticket"], closed["outcome"]) == (request["ticket"], "cancelled_by_parker")


def test_press_and_release_are_the_pin_held_and_let_go(fleet: Fleet) -> None:
    pressed = ask(fleet.one_socket, Request(Command.PRESS))
    assert (pressed.detail, pressed.state) == ("help button pressed (held down)",
                                               {"station": ONE, **IDLE, "help": "waiting", "button": "down"})
    again = ask(fleet.one_socket, Request(Command.STEP, step="help press"))
    assert again.detail == "the help button was already down"
    refused = ask(fleet.one_socket, Request(Command.HELP))
    assert (refused.ok, refused.code, refused.detail) == (False, Code.REFUSED,
                                                          "the help button is held down (press): release it")
    released = ask(fleet.one_socket, Request(Command.RELEASE))
    assert (released.detail, released.state) == ("help button released", {"station": ONE, **IDLE, "help": "waiting"})
    ask(fleet.one_socket, Request(Command.STEP, step="tap help:cancel"))


def test_a_fault_raised_at_station_two_is_retained_and_clears(fleet: Fleet) -> None:
    opened = ask(fleet.two_socket, Request(Command.RAISE, fault=SimFault.DOOR))
    assert opened == Answer(True, Code.DONE, "cabinet door opened: door/open is raised outside service mode",
                            {"station": TWO, **IDLE, "door": "open", "faults": ["door/open"], "simulated": ["door"]})
    door = fleet.staff.wait_for(newest(TWO, "fault/door", active=True), 10, "SIM-B's fault/door").json()
    assert (door["code"], door["severity"], door["parker_impact"]) == ("open", "critical", "none")
    assert retained(fleet.broker.port, TWO, "fault/door")["active"] is True
    shut = ask(fleet.two_socket, Request(Command.CLEAR, fault=SimFault.DOOR))
    assert shut == Answer(True, Code.DONE, "cabinet door closed", {"station": TWO, **IDLE})
    fleet.staff.wait_for(newest(TWO, "fault/door", active=False), 10, "SIM-B's fault/door cleared")
    assert retained(fleet.broker.port, TWO, "fault/door")["active"] is False

    broken = ask(fleet.two_socket, Request(Command.RAISE, fault=SimFault.TERMINAL_OUT_OF_ORDER))
    assert broken.ok and broken.state is not None and broken.state["simulated"] == ["terminal-out-of-order"]
    fault = fleet.staff.wait_for(newest(TWO, "fault/card_terminal", active=True), FAULT_S, "out_of_order").json()
    assert (fault["code"], fault["parker_impact"]) == ("out_of_order", "no_card_payment")
    assert fault["message"].endswith("terminal status DF (version SIM 1.0)")
    assert ask(fleet.two_socket, Request(Command.STATE)).state == {
        "station": TWO, **IDLE, "screen": "out_of_service", "faults": ["card_terminal/out_of_order"],
        "simulated": ["terminal-out-of-order"]}
    ask(fleet.two_socket, Request(Command.CLEAR, fault=SimFault.TERMINAL_OUT_OF_ORDER))
    fleet.staff.wait_for(newest(TWO, "fault/card_terminal", active=False), FAULT_S, "out_of_order cleared")
    assert [m for m in fleet.staff.messages if m.topic.startswith(topic(ONE, "fault/"))] == []


def test_each_socket_is_the_owners_only_and_a_stale_one_was_replaced(fleet: Fleet) -> None:
    for path in (fleet.one_socket, fleet.two_socket):
        mode = path.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)
    assert stat.S_IMODE(fleet.one_socket.parent.stat().st_mode) == 0o700
    assert f"the stale socket {fleet.two_socket} of a run that ended is replaced" in fleet.two.log()


def test_a_second_station_on_a_live_socket_does_not_start(fleet: Fleet, caplog: pytest.LogCaptureFixture) -> None:
    """Asked for by --control: the station does not start. (On the default path it starts without live control.)"""
    twin = run_kiosk("run", "--simulate", "--headless", "--config", str(fleet.one.config), "--control",
                     str(fleet.one_socket))
    assert (twin.returncode, twin.stdout, twin.stderr) == (2, "", (
        f"CRITICAL kiosk: live control: another simulated station listens on {fleet.one_socket}: give each station "
        "its own id ([station] id in its --config) or its own --control PATH\n"))  # before the database was opened

    scenario = fleet.folder / "empty.scenario"
    scenario.write_text("# nothing\n", encoding="utf-8")
    assert cli.main(["run", "--scenario", str(scenario), "--control", str(fleet.folder / "x.sock")]) == 2
    assert caplog.messages[-1] == ("live control: --control needs --simulate without --scenario: only a live "
                                   "simulated station is driven")


def test_bad_commands_get_clear_errors(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = sim(capsys, "--station", ONE, "jump")
    assert (code, out, err) == (2, "", "kiosk sim: unknown command 'jump'; expected press | release | help | step "
                                       "SCENARIO-STEP.. | raise FAULT | clear FAULT | state (FAULT: door, "
                                       "terminal-unreachable, terminal-out-of-order)\n")
    code, out, err = sim(capsys, "--control", str(fleet.two_socket), "step", "tap", "nowhere")
    assert (code, out) == (1, "")
    assert err.startswith("kiosk sim: refused: kiosk sim:1: tap nowhere\n  no target 'nowhere' on screen welcome\n")
    nobody = fleet.folder / "nobody.sock"
    assert sim(capsys, "--control", str(nobody), "state") == (
        3, "", f"kiosk sim: no simulated station listens on {nobody} (start one with `kiosk run --simulate`)\n")

    refusals = {
        "advance 5m": (Code.REFUSED, "kiosk sim:1: advance 5m\n  advance needs a replay's manual clock; a live "
                                     "station runs on real time\n"),
        "start 2026-05-04T09:00:00+02:00": (Code.BAD_REQUEST, "start sets a replay's clock; a live station runs "
                                                              "on real time"),
        "tap a\ntap b": (Code.BAD_REQUEST, "one scenario step per request, got 2"),
        "help wave": (Code.BAD_REQUEST, "kiosk sim: expected 'help press' or 'help release', got 'help wave'"),
        "fly away": (Code.BAD_REQUEST, "kiosk sim:1: fly away: unknown step 'fly'; steps: start, advance, duration, "
                                       "expect, help, screenshot, tap, terminal, type"),
        "terminal decline zz": (Code.REFUSED, "kiosk sim:1: terminal decline zz\n  bad step: decline needs a hex "
                                              "result code like 05 or 64, got 'zz'\n"),
    }
    for step, (code_wanted, detail) in refusals.items():
        answer = ask(fleet.two_socket, Request(Command.STEP, step=step))
        assert (answer.ok, answer.code) == (False, code_wanted), (step, answer)
        assert answer.detail.startswith(detail), (step, answer.detail)

    lines = {
        b"nonsense": "a request is one JSON object per line, e.g. {\"command\":\"help\"}: Expecting value: line 1 "
                     "column 1 (char 0)",
        b"[1]": "a request is a JSON object, e.g. {\"command\":\"help\"}; got list",
        b'{"command":"raise","fault":"fire"}': "unknown fault \"fire\"; faults: door, terminal-unreachable, "
                                               "terminal-out-of-order",
        b'{"command":"press","x":1}': "press takes no field \"x\"",
        b'{"command":"step"}': "step needs the field 'step'",
        b'{"command":["help"]}': "unknown command (an array); commands: press, release, help, step, raise, clear, state",
        b"\xff": "a request is UTF-8 JSON; byte 0 is not UTF-8",
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:  # one connection, many lines, answered in order
        conn.settimeout(READ_S)
        conn.connect(str(fleet.two_socket))
        conn.sendall(b"\n".join(lines) + b"\n" + b'{"command":"state"}\r\n')
        answers = [json.loads(line) for line in read_lines(conn, len(lines) + 1)]
    assert answers[:-1] == [{"ok": False, "code": "bad_request", "detail": detail} for detail in lines.values()]
    assert answers[-1]["ok"] is True


def test_too_long_a_line_closes_the_connection_and_an_idle_client_blocks_nobody(fleet: Fleet) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.connect(str(fleet.one_socket))
        idle.sendall(b'{"command":')  # half a line, then nothing: the station waits for the rest
        assert ask(fleet.one_socket, Request(Command.STATE), timeout=READ_S).ok
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(READ_S)
            conn.connect(str(fleet.one_socket))
            conn.sendall(b"x" * (MAX_LINE + 10))
            assert json.loads(read_lines(conn, 1)[0]) == {
                "ok": False, "code": "too_long",
                "detail": f"a request is one line of at most {MAX_LINE - 1} bytes; the connection is closed"}
            with contextlib.suppress(ConnectionResetError):  # a reset: the station dropped the line's rest unread
                assert conn.recv(100) == b"", "the connection is closed"


def read_lines(conn: socket.socket, count: int) -> list[bytes]:
    """``count`` lines from the station (each within READ_S: it must never hang)."""
    received = b""
    while received.count(b"\n") < count:
        chunk = conn.recv(65536)
        assert chunk, f"the station closed the connection after {received!r}"
        received += chunk
    return received.split(b"\n")[:count]


def harmless(line: bytes) -> bool:
    """The line changes nothing at the station: not a request, a `state`, or a step that is not one."""
    try:
        request = parse_request(line)
    except BadRequest:
        return True
    if request.command is not Command.STEP:
        return request.command is Command.STATE
    try:
        start, steps = parse(request.step, "fuzz")
    except ScenarioError:
        return True
    return start is not None or len(steps) != 1


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
REQUESTS = st.fixed_dictionaries(
    {"command": st.sampled_from([*Command, "", "HELP", "exit"]) | st.text(max_size=10)},
    optional={"step": JSON | st.text(max_size=40), "fault": st.sampled_from([*SimFault, "fire"]) | JSON, "x": JSON})
LINES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    JSON.map(lambda value: json.dumps(value).encode()),
    REQUESTS.map(lambda value: json.dumps(value).encode()),
    st.binary(min_size=MAX_LINE - 2, max_size=MAX_LINE + 2),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
)
ENDINGS = ("line", "line in pieces", "half then end", "half then gone", "line then gone")
ANSWERS = {Code.BAD_REQUEST, Code.TOO_LONG, Code.BUSY}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(line=LINES, ending=st.sampled_from(ENDINGS))
def test_garbage_never_crashes_or_hangs_the_station(fleet: Fleet, line: bytes, ending: str) -> None:
    line = line.replace(b"\n", b" ")
    if not harmless(line):
        line = b'{"command":"state"}'
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(READ_S)
        conn.connect(str(fleet.two_socket))
        try:
            if ending == "line in pieces":
                for start in range(0, len(line) + 1, 7):
                    conn.sendall((line + b"\n")[start:start + 7])
            elif ending.startswith("line"):
                conn.sendall(line + b"\n")
            else:
                conn.sendall(line)
        except (BrokenPipeError, ConnectionResetError):  # the station answered too_long and closed meanwhile
            assert len(line) >= MAX_LINE, "the station closed a connection whose line was within the limit"
            return
        if ending.endswith("gone"):
            return  # the client goes mid-way; the next example finds the station still answering
        if ending == "half then end":
            conn.shutdown(socket.SHUT_WR)
            rest = conn.recv(65536)
            assert rest == b"" or json.loads(rest)["code"] == Code.TOO_LONG, rest
            return
        answer = json.loads(read_lines(conn, 1)[0])
    assert answer["ok"] is (answer["code"] == Code.DONE), answer
    assert answer["code"] in ANSWERS | {Code.DONE} and answer["detail"], answer


def test_the_station_still_answers_after_the_fuzz(fleet: Fleet) -> None:
    answer = ask(fleet.two_socket, Request(Command.STATE), timeout=LOOP_S)
    assert answer.state == {"station": TWO, **IDLE}
    assert fleet.two.process is not None and fleet.two.process.poll() is None
    assert "Traceback" not in fleet.two.log()


def test_a_station_that_stops_removes_its_socket(fleet: Fleet) -> None:
    """Last: it stops SIM-B."""
    assert fleet.two.stop() == 0
    assert not fleet.two_socket.exists()
    assert fleet.one_socket.exists()


def test_the_words_of_kiosk_sim_make_requests() -> None:
    assert request_from_words(["step", "terminal", "decline", "05", "Insufficient funds"]).line() == (
        b'{"command":"step","step":"terminal decline 05 \'Insufficient funds\'"}\n')
    assert request_from_words(["raise", "door"]) == Request(Command.RAISE, fault=SimFault.DOOR)
    assert parse_request(request_from_words(["clear", "terminal-unreachable"]).line()[:-1]) == Request(
        Command.CLEAR, fault=SimFault.TERMINAL_UNREACHABLE)
    for words, detail in {("raise",): "raise needs one fault: door, terminal-unreachable, terminal-out-of-order",
                          ("help", "now"): "help takes no arguments; got 'now'",
                          ("step",): "step needs a scenario step, e.g. `step tap pay` or `step terminal decline 05`"
                          }.items():
        with pytest.raises(BadRequest, match="^" + re.escape(detail) + "$"):
            request_from_words(list(words))


def test_the_socket_is_in_the_runtime_folder_else_beside_the_database() -> None:
    database = Path("/var/lib/train/one/kiosk.db")
    assert control_path("T-1", database, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path("/run/user/1000/kiosk/T-1.sock")
    assert control_path("T-1", database, {}) == Path("/var/lib/train/one/T-1.control.sock")
    assert control_path("T-1", database, {"XDG_RUNTIME_DIR": "relative"}) == Path("/var/lib/train/one/T-1.control.sock")


@given(st.binary(max_size=300) | LINES)
def test_a_line_is_a_request_or_a_bad_request(line: bytes) -> None:
    try:
        request = parse_request(line)
    except BadRequest as exc:
        assert exc.code in (Code.BAD_REQUEST, Code.TOO_LONG) and str(exc)
        return
    assert parse_request(request.line()[:-1]) == request


def test_a_station_whose_default_socket_is_taken_runs_without_live_control(fleet: Fleet, tmp_path: Path) -> None:
    """Tests and trainers may run two stations with one id (and their own databases): the second one still runs."""
    twin = Station(sim_config(tmp_path / "twin", ONE, fleet.broker.port)).start()
    try:
        fleet.staff.wait_for(lambda ms: sum(1 for m in ms if m.topic == topic(ONE, "status")
                                            and m.json()["state"] == "online") >= 2, START_S, "the twin's birth")
        assert "live control off, the station runs without it: another simulated station listens on " \
               f"{fleet.one_socket}" in twin.log()
        assert ask(fleet.one_socket, Request(Command.STATE)).state["station"] == ONE  # the first one still answers
    finally:
        twin.stop()
