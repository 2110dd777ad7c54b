"""The crew page in headless Chromium against mosquitto (websockets + http_dir), and its checked mqtt.js bundle."""
from __future__ import annotations

import base64
import hashlib
import http.server
import importlib.util
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from alerts_kit import MailSink, ManualClock, config_text
from broker_access import secret
from conftest import ROOT
from crew_site import BRIDGE, CREW, CrewBroker, Fleet, chromium, crew_broker, wait
from hypothesis import given, settings
from hypothesis import strategies as st
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from bridge.rules import load
from bridge.service import Service

CHROMIUM_MISSING = shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists()
DOC_IMAGES = ROOT / "docs" / "images"
SCRIPT = ROOT / "provisioning" / "crew_web.py"
P = "paystation/v1"


# The bundle: fetched pinned and checked (a local registry serves the tarballs; never the network)

def tarball(files: dict[str, bytes]) -> bytes:
    """An npm-style .tgz holding ``files`` (paths inside the archive)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


GOOD_TARBALL = tarball({"package/dist/mqtt.min.js": b"var mqtt = {};", "package/LICENSE.md": b"MIT"})


def sri(data: bytes) -> str:
    """The registry's integrity string of ``data``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local registry: serves ``files[path]`` (set by the test) on a free port; yields (address, files)."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def crew_web(*args: str) -> subprocess.CompletedProcess[str]:
    """provisioning/crew_web.py as the operator runs it."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


def pinned() -> tuple[str, str, str]:
    """The script's pin: version, integrity, sha256 of the bundle."""
    match = re.search(r'PIN = Pin\("([^"]+)", "([^"]+)",\s*"([0-9a-f]{64})"\)', SCRIPT.read_text(encoding="utf-8"))
    assert match, "no PIN line in provisioning/crew_web.py"
    return match.group(1), match.group(2), match.group(3)


def load_crew_web() -> Any:
    """provisioning/crew_web.py as a module (provisioning/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("crew_web", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


CREW_WEB = load_crew_web()


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(
    st.binary(max_size=300),
    st.builds(lambda cut, tail: GOOD_TARBALL[:cut] + tail, st.integers(0, 400), st.binary(max_size=40)),
    st.builds(lambda at, byte: GOOD_TARBALL[:at] + bytes([byte]) + GOOD_TARBALL[at + 1:],  # corrupt inside: zlib errors
              st.integers(0, len(GOOD_TARBALL) - 1), st.integers(0, 255))))
def test_any_download_is_either_the_bundle_or_refused(data: bytes) -> None:
    try:
        CREW_WEB.check_integrity(data, sri(GOOD_TARBALL))
        assert data == GOOD_TARBALL
    except CREW_WEB.BundleRefused:
        pass
    try:  # a cut archive may still unpack (padded): that is why the sha512 is checked first
        assert isinstance(CREW_WEB.unpack(data)["mqtt.min.js"], bytes)
    except CREW_WEB.BundleRefused:
        pass


def test_an_archive_corrupt_in_its_middle_is_refused_never_a_zlib_error() -> None:
    """A bundle large enough that its data is inflated after the headers were read: a flipped byte there is a zlib.error
    in the middle of reading the member, which must come out as BundleRefused too."""
    letters = random.Random(2)
    bundle = "".join(letters.choice("abcdefghijklmnopqrstuvwxyz ;(){}=") for _ in range(20_000)).encode()
    archive = tarball({"package/dist/mqtt.min.js": bundle, "package/LICENSE.md": b"MIT"})
    outcomes: dict[str, int] = {"bundle": 0, "refused": 0}
    for at in range(10, len(archive), 37):  # past the gzip header, through the deflate stream
        try:
            CREW_WEB.unpack(archive[:at] + bytes([archive[at] ^ 0xFF]) + archive[at + 1:])
            outcomes["bundle"] += 1  # a flip the deflate stream does not notice: the sha512 catches those
        except CREW_WEB.BundleRefused as refused:
            assert str(refused).startswith(("the tarball cannot be read", "the tarball has no")), refused
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == len(range(10, len(archive), 37))


def test_a_tampered_or_unpinned_download_is_refused_and_nothing_is_written(tmp_path: Path,
                                                                          registry: tuple[str, dict[str, bytes]]) -> None:
    address, files = registry
    version, integrity, _ = pinned()
    path = f"/mqtt/-/mqtt-{version}.tgz"
    target = tmp_path / "vendor"
    # Not the pinned tarball: its sha512 is not the pin's.
    files[path] = tarball({"package/dist/mqtt.min.js": b"alert('not mqtt')", "package/LICENSE.md": b"MIT"})
    refused = crew_web("--target", str(target), "--registry", address)
    assert refused.returncode == 1
    assert f"the pin says {integrity}: refused" in refused.stderr
    assert not target.exists()
    # Nothing there at all, and a registry that cannot be reached.
    files.clear()
    assert "cannot download" in crew_web("--target", str(target), "--registry", address).stderr
    installed = crew_web("--target", str(target), "--install", str(tmp_path / "site"), "--registry", address)
    assert installed.returncode == 1 and not (tmp_path / "site").exists()


def test_the_pinned_bundle_is_checked_twice_and_installed_with_the_page(tmp_path: Path,
                                                                       registry: tuple[str, dict[str, bytes]]) -> None:
    address, files = registry
    bundle = b"var mqtt = {};"
    data = tarball({"package/dist/mqtt.min.js": bundle, "package/LICENSE.md": b"MIT licence", "package/README.md": b"x"})
    files["/mqtt/-/mqtt-9.9.9.tgz"] = data
    files["/mqtt/9.9.9"] = json.dumps({"dist": {"integrity": sri(data)}}).encode()
    # --pin prints the line to paste into the script, from the registry's metadata and the tarball itself.
    shown = crew_web("--pin", "9.9.9", "--registry", address)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (f'PIN = Pin("9.9.9", "{sri(data)}",\n          "{hashlib.sha256(bundle).hexdigest()}")\n')
    # A metadata integrity that the tarball does not match is refused.
    files["/mqtt/9.9.9"] = json.dumps({"dist": {"integrity": sri(b"other")}}).encode()
    assert crew_web("--pin", "9.9.9", "--registry", address).returncode == 1
    # A broken mirror: an error line each time, never a traceback.
    for metadata, error in (({"dist": {"integrity": "sha512-ünïcode"}}, "the pin says sha512-ünïcode: refused"),
                            ({"dist": ["integrity"]}, "the registry has no usable metadata for mqtt 9.9.9"),
                            ("[" * 100_000, "the registry has no usable metadata for mqtt 9.9.9"),
                            (b"\xff\xfe", "the registry has no usable metadata for mqtt 9.9.9")):
        files["/mqtt/9.9.9"] = metadata if isinstance(metadata, bytes) else (
            metadata if isinstance(metadata, str) else json.dumps(metadata)).encode()
        broken = crew_web("--pin", "9.9.9", "--registry", address)
        assert (broken.returncode, broken.stdout) == (1, ""), broken.stderr
        assert error in broken.stderr and "Traceback" not in broken.stderr, broken.stderr
    # The real script's pin against a copy of the published bundle in crew/vendor (setup.sh --test fetched it).
    vendor = ROOT / "crew" / "vendor"
    site = tmp_path / "site"
    installed = crew_web("--install", str(site), "--registry", address)
    assert installed.returncode == 0, installed.stderr
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == [
        "crew-link.js", "crew-model.js", "crew-texts.js", "crew.css", "crew.js", "index.html",
        "vendor/mqtt.LICENSE.md", "vendor/mqtt.min.js"]
    assert (site / "vendor" / "mqtt.min.js").read_bytes() == (vendor / "mqtt.min.js").read_bytes()
    assert hashlib.sha256((site / "vendor" / "mqtt.min.js").read_bytes()).hexdigest() == pinned()[2]
    assert (site / "index.html").read_bytes() == (ROOT / "crew" / "index.html").read_bytes()


# The page in headless Chromium

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime.now(UTC).replace(microsecond=0)
MONTHS = {"en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(),
          "de": "Jan. Feb. März Apr. Mai Juni Juli Aug. Sep. Okt. Nov. Dez.".split()}


def iso(moment: datetime) -> str:
    """A time as stations write it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def shown(moment: datetime, lang: str = "en") -> str:
    """How the page shows a time in the browser's zone: HH:MM today, with the day and month otherwise."""
    local = moment.astimezone(BERLIN)
    if local.date() == datetime.now(BERLIN).date():
        return local.strftime("%H:%M")
    day = f"{local.day}." if lang == "de" else str(local.day)
    return f"{day} {MONTHS[lang][local.month - 1]} {local.strftime('%H:%M')}"


def fault(code: str, severity: str, impact: str, message: str, since: datetime, active: bool = True) -> dict[str, Any]:
    """A retained fault/{component} payload."""
    return {"active": active, "code": code, "severity": severity, "since": iso(since), "message": message,
            "parker_impact": impact}


def online(zone: str) -> dict[str, Any]:
    """A station's birth."""
    return {"state": "online", "boot": 1795338000, "series": "s", "firmware": "0.4.0", "config_version": 2, "zone": zone,
            "ts": iso(NOW - timedelta(hours=3))}


SINCE_A, SINCE_B = NOW - timedelta(minutes=50), NOW - timedelta(minutes=20)
TELEMETRY_AT = NOW - timedelta(minutes=2)
FLEET: dict[str, dict[str, Any] | None] = {
    "DE-BER-0001/status": online("Altstadt Nord"),
    "DE-BER-0002/status": online("Altstadt Nord"),
    "DE-BER-0002/fault/card_terminal": fault("payment_timeout", "warning", "notice", "payments time out", SINCE_A),
    "DE-BER-0003/status": {"state": "offline", "boot": 7, "ts": iso(SINCE_A)},
    "DE-BER-0004/status": online("Hafen"),
    "DE-BER-0004/fault/operator": fault("service", "info", "out_of_service", "crew at work", SINCE_A),
    "DE-BER-0005/status": online("Hafen"),
    "DE-BER-0005/fault/card_terminal": fault("unreachable", "critical", "no_card_payment",
                                             "The card terminal does not answer. <b>no answer</b> after 3 tries", SINCE_B),
    "DE-BER-0005/fault/door": fault("open", "warning", "none", "door was open", SINCE_A, active=False),
    "DE-BER-0006/status": {"state": "lost", "boot": 1795338000},
    "DE-BER-0008/status": online("Hafen"),
    "DE-BER-0008/fault/storage": fault("full", "critical", "out_of_service", "the disk is full", SINCE_A),
}
ORDER = [("DE-BER-0006", "Lost"), ("DE-BER-0008", "Critical"), ("DE-BER-0005", "Critical"),
         ("DE-BER-0004", "Out of service"), ("DE-BER-0003", "Offline"), ("DE-BER-0002", "Warning"),
         ("DE-BER-0001", "Healthy")]
HOSTILE = '<img src=x onerror="window.hostile=1">'  # shown as text, never made an element
TELEMETRY = {"ts": iso(TELEMETRY_AT), "boot": 1795338000, "uptime_s": 86400, "outbox_depth": 3, "outbox_in_flight": 0,
             "link": {"state": "connected", "since": iso(SINCE_A), "reconnects": 3}, "terminal": "unreachable",
             "screen": "welcome", "config_version": 2, "cpu_temp_c": 48.25, "disk_free_bytes": 12345678901}


def alert(alert_id: str, title: str, stations: list[str], **changes: Any) -> dict[str, Any]:
    """A retained P/_alerts/{id} payload as the bridge writes it."""
    return {"id": alert_id, "problem": "fault", "state": "open", "title": title, "stations": stations, "zone": "Hafen",
            "component": "card_terminal", "code": "unreachable", "severity": "critical", "message": "no card payments",
            "parker_impact": "no_card_payment", "since": iso(SINCE_B), "opened": iso(SINCE_B + timedelta(minutes=2)),
            "level": 0, "group": "crew-hafen", "acked_by": None, "acked_at": None, "changes": 1, **changes}


class Bench(NamedTuple):
    """What the browser tests share: the broker serving the page, the simulated fleet, one browser."""

    crew: CrewBroker
    fleet: Fleet
    driver: WebDriver


browser_test = pytest.mark.skipif(CHROMIUM_MISSING, reason="chromium is not installed (provisioning/setup.sh --test)")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """The broker serving the page, the simulated fleet (its retained state published) and one browser."""
    folder = tmp_path_factory.mktemp("crew")
    crew = crew_broker(folder)
    fleet = Fleet(crew.broker.port, crew.fleet_password)
    driver = chromium(folder / "profile")
    try:
        for topic, payload in FLEET.items():
            fleet.retain(topic, payload)
        yield Bench(crew, fleet, driver)
    finally:
        driver.quit()
        fleet.close()
        crew.stop()


def sign_in(driver: WebDriver, crew: CrewBroker, address: str = "", password: str | None = None, user: str = CREW) -> None:
    """A fresh tab state (no saved sign-in, no language choice), then the sign-in form as a crew member fills it."""
    driver.get(crew.url)
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    driver.get(crew.url + address)
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(crew.password if password is None else password)
    driver.find_element(By.ID, "sign-in").click()


def texts(driver: WebDriver, css: str) -> list[str]:
    """The text of every element ``css`` selects, read in one go in the page."""
    return list(driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim())", css))


def lines(driver: WebDriver, css: str) -> list[str]:
    """The lines of text of the first element ``css`` selects (none when there is no such element)."""
    found = texts(driver, css)
    return [line for line in found[0].split("\n") if line.strip()] if found else []


def cards(driver: WebDriver) -> list[tuple[str, str]]:
    """The station list as (station, urgency badge), top to bottom, read in one go in the page."""
    return [tuple(pair) for pair in driver.execute_script(
        "return Array.from(document.querySelectorAll('#station-list > li'),"
        " e => [e.dataset.station, e.querySelector('.badge').innerText])")]


def minutes(earliest: datetime) -> set[str]:
    """Every HH:MM from ``earliest`` to now, in the browser's zone (a time the page took itself)."""
    now, moment, found = datetime.now(BERLIN), earliest.astimezone(BERLIN), set()
    while moment <= now + timedelta(minutes=1):
        found.add(f"{moment:%H:%M}")
        moment += timedelta(minutes=1)
    return found


def no_markup_ran(driver: WebDriver) -> bool:
    """No element was made from a message's text (the hostile <img onerror> never became an element, never ran)."""
    return bool(driver.execute_script("return document.querySelectorAll('img').length === 0"
                                      " && window.hostile === undefined"))


def screenshot(driver: WebDriver, name: str) -> None:
    """KIOSK_WRITE_DOC_IMAGES=1: the page at 360 x 780 for docs/crew.md."""
    if os.environ.get("KIOSK_WRITE_DOC_IMAGES") == "1":
        driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
        DOC_IMAGES.mkdir(exist_ok=True)
        driver.save_screenshot(str(DOC_IMAGES / f"crew-{name}.png"))


@browser_test
def test_stations_sorted_by_urgency_with_fault_impact_and_telemetry(bench: Bench) -> None:
    crew, fleet, driver = bench
    signed_in = datetime.now(BERLIN)
    sign_in(driver, crew)
    wait(driver, lambda d: len(cards(d)) == len(ORDER), "every station on the page")
    assert cards(driver) == ORDER
    # A lost station (its will has no time: since the page learnt it) and an offline one (its status's ts): since when,
    # and no "No active faults." for them.
    assert lines(driver, "[data-station='DE-BER-0006']")[:3] in [
        ["DE-BER-0006", "Lost", f"Lost since {minute}"] for minute in minutes(signed_in)]
    assert lines(driver, "[data-station='DE-BER-0003']") == ["DE-BER-0003", "Offline", f"Offline since {shown(SINCE_A)}",
                                                              "No telemetry yet."]
    assert texts(driver, "[data-station='DE-BER-0006'] .faults") == []
    assert driver.find_element(By.ID, "conn").text == "Connected"
    fleet.send("DE-BER-0005/telemetry", TELEMETRY)
    telemetry = f"Terminal unreachable · link connected · outbox 3 · CPU 48.3 °C (at {shown(TELEMETRY_AT)})"
    wait(driver, lambda d: telemetry in texts(d, "[data-station='DE-BER-0005'] .telemetry"), "the telemetry")
    card = ["DE-BER-0005", "Critical", "Zone Hafen", f"card_terminal: unreachable since {shown(SINCE_B)}",
            "The card terminal does not answer. <b>no answer</b> after 3 tries", "Parkers: no card payment", telemetry]
    wait(driver, lambda d: lines(d, "[data-station='DE-BER-0005']") == card, "the station's card")
    assert texts(driver, "[data-station='DE-BER-0004'] .impact") == ["Parkers: out of service"]
    assert texts(driver, "[data-station='DE-BER-0001'] .faults") == ["No active faults."]
    screenshot(driver, "stations")
    # A fault clears, a lost station comes back: the order follows.
    fleet.retain("DE-BER-0008/fault/storage", fault("full", "critical", "out_of_service", "the disk is full", SINCE_A,
                                                     active=False))
    fleet.retain("DE-BER-0006/status", online("Hafen"))
    wait(driver, lambda d: cards(d) == [ORDER[2], ORDER[3], ORDER[4], ORDER[5], ("DE-BER-0001", "Healthy"),
                                        ("DE-BER-0006", "Healthy"), ("DE-BER-0008", "Healthy")], "the new order")
    fleet.retain("DE-BER-0008/fault/storage", FLEET["DE-BER-0008/fault/storage"])
    fleet.retain("DE-BER-0006/status", FLEET["DE-BER-0006/status"])
    wait(driver, lambda d: cards(d) == ORDER, "the first order again")


def confirm(driver: WebDriver, question: str, note: str = "") -> None:
    """The confirm dialog asks ``question``; type ``note`` (acknowledgements) and confirm."""
    wait(driver, lambda d: (d.find_element(By.ID, "confirm-text").text == question
                            and d.find_element(By.ID, "confirm-ok").is_enabled()), f"the question {question!r}")
    if note:
        driver.find_element(By.ID, "confirm-note").send_keys(note)
    driver.find_element(By.ID, "confirm-ok").click()


def result_is(driver: WebDriver, expected: str) -> None:
    """Wait until the station's answer shown is ``expected``."""
    wait(driver, lambda d: d.find_element(By.ID, "result").text == expected, f"the result {expected!r}")


@browser_test
def test_service_mode_terminal_status_and_a_fixed_note_reach_the_station_and_its_replies_come_back(
        bench: Bench) -> None:
    crew, fleet, driver = bench
    fleet.answers.update({
        "service/anna": {"ok": True, "code": "ok", "detail": "service mode on", "mode": "service"},
        "terminal/status": {"ok": False, "code": "busy", "detail": f"a parker is paying {HOSTILE}"},
        "fixed/anna": {"ok": True, "code": "ok", "detail": None, "fault_active": True, "recorded_at": iso(NOW)}})
    before = len(fleet.commands)
    sign_in(driver, crew, "?station=DE-BER-0005")  # the station's QR code
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#detail-info h2").text == "DE-BER-0005", "the station's page")
    assert texts(driver, "#detail-info .fault .component") == ["card_terminal: unreachable", "door: open"]
    assert texts(driver, "#detail-info .fault.cleared .since") == [f"cleared {shown(SINCE_A)}"]

    driver.find_element(By.CSS_SELECTOR, "[data-command='service_start']").click()
    confirm(driver, "Start service mode at DE-BER-0005?")
    sent = fleet.wait_until(lambda: fleet.commands[before:], "cmd/service/anna")[0]
    assert sent.topic == f"{P}/DE-BER-0005/cmd/service/anna"
    assert sent.payload == b'{"on":true}'
    assert re.fullmatch(rf"{P}/DE-BER-0005/reply/crew-anna/[0-9a-f]{{8}}", sent.response_topic)
    assert re.fullmatch(rb"[0-9a-f]{32}", sent.correlation)
    result_is(driver, "Start service mode: done · service mode on · Service mode is on.")

    fleet.answers["service/anna"] = {"ok": True, "code": "ok", "detail": "back to normal", "mode": "normal"}
    driver.find_element(By.CSS_SELECTOR, "[data-command='service_end']").click()
    confirm(driver, "End service mode at DE-BER-0005?")
    result_is(driver, "End service mode: done · back to normal · Service mode is off.")
    screenshot(driver, "station")

    driver.find_element(By.CSS_SELECTOR, "[data-command='restart']").click()  # asked, then cancelled: nothing is sent
    wait(driver, lambda d: d.find_element(By.ID, "confirm").is_displayed(), "the confirm dialog")
    driver.find_element(By.ID, "confirm-cancel").click()
    driver.find_element(By.CSS_SELECTOR, "[data-command='terminal_status']").click()
    confirm(driver, "Terminal status at DE-BER-0005?")
    result_is(driver, f"Terminal status: refused: a parker is using the station · a parker is paying {HOSTILE}")
    assert no_markup_ran(driver)
    fleet.answers["terminal/status"] = {"ok": True, "code": "ok", "detail": None, "status": "00", "ready": True,
                                        "version": "ZVT 1.2"}
    driver.find_element(By.CSS_SELECTOR, "[data-command='terminal_status']").click()
    confirm(driver, "Terminal status at DE-BER-0005?")
    result_is(driver, "Terminal status: done · The terminal is ready. · Terminal status 00 · version ZVT 1.2")

    driver.find_element(By.ID, "fixed-send").click()
    assert driver.find_element(By.ID, "fixed-error").text == "Write a note of 1 to 200 characters."
    note = driver.find_element(By.ID, "fixed-note")
    assert note.tag_name == "input"  # one line: the station's Text200 refuses line breaks
    driver.execute_script("arguments[0].value = 'two\\nlines'", note)
    assert note.get_attribute("value") == "twolines"  # a single-line input drops them itself
    sent_so_far = len(fleet.commands)
    for refused in ("tab\there", "bidi \u202e override", "bell \x07", "nel \x85", "isolate \u2066x\u2069", "del \x7f"):
        driver.execute_script("arguments[0].value = arguments[1]", note, refused)
        driver.find_element(By.ID, "fixed-send").click()
        assert driver.find_element(By.ID, "fixed-error").text == \
            "A note is one line of text: no line breaks, tabs or control characters.", refused
    note.clear()
    note.send_keys("  Replaced the terminal's cable  ")
    driver.find_element(By.ID, "fixed-send").click()
    result_is(driver, f"Fixed note: done · Note recorded at {shown(NOW)}. · The fault is still active.")
    assert driver.find_element(By.ID, "fixed-error").text == ""
    assert len(fleet.commands) == sent_so_far + 1
    assert driver.find_element(By.ID, "fixed-note").get_attribute("value") == ""
    commands = fleet.commands[before:]
    assert [(c.topic.removeprefix(f"{P}/DE-BER-0005/cmd/"), json.loads(c.payload)) for c in commands] == [
        ("service/anna", {"on": True}), ("service/anna", {"on": False}), ("terminal/status", {}), ("terminal/status", {}),
        ("fixed/anna", {"component": "card_terminal", "note": "Replaced the terminal's cable"})]
    assert len({c.correlation for c in commands}) == 5 and {c.response_topic for c in commands} == {sent.response_topic}


@browser_test
def test_an_alert_is_acknowledged_with_and_without_a_note(bench: Bench) -> None:
    crew, fleet, driver = bench
    try:
        fleet.retain("_alerts/a-ack-1", alert("a-ack-1", "Card terminal DE-BER-0005 unreachable", ["DE-BER-0005"]))
        fleet.retain("_alerts/a-ack-2", alert("a-ack-2", "Station DE-BER-0003 offline", ["DE-BER-0003"], severity="warning"))
        sign_in(driver, crew)
        wait(driver, lambda d: texts(d, "#alert-list .title") == ["Card terminal DE-BER-0005 unreachable",
                                                                "Station DE-BER-0003 offline"], "the open alerts")
        meta = f"critical · since {shown(SINCE_B)} · with crew-hafen"
        assert texts(driver, "[data-alert='a-ack-1'] .meta") == [meta]
        screenshot(driver, "alerts")
        before = len(fleet.acks)
        assert [b.accessible_name for b in driver.find_elements(By.CSS_SELECTOR, "#alert-list button.ack")] == [
            "Acknowledge the alert “Card terminal DE-BER-0005 unreachable”",
            "Acknowledge the alert “Station DE-BER-0003 offline”"]
        driver.find_element(By.CSS_SELECTOR, "[data-alert='a-ack-1'] button.ack").click()
        confirm(driver, "Acknowledge the alert “Card terminal DE-BER-0005 unreachable”?")
        driver.find_element(By.CSS_SELECTOR, "[data-alert='a-ack-2'] button.ack").click()
        confirm(driver, "Acknowledge the alert “Station DE-BER-0003 offline”?", note="on my way\u202e, 20 min")
        assert driver.find_element(By.ID, "confirm-error").text == \
            "A note is one line of text: no line breaks, tabs or control characters."
        assert len(fleet.acks) == before + 1
        driver.find_element(By.ID, "confirm-note").clear()
        confirm(driver, "Acknowledge the alert “Station DE-BER-0003 offline”?", note="on my way, 20 min")
        fleet.wait_until(lambda: len(fleet.acks) == before + 2, "two acknowledgements")
        assert fleet.acks[before:] == [(f"{P}/_ack/anna/a-ack-1", b"{}", False),
                                       (f"{P}/_ack/anna/a-ack-2", b'{"note":"on my way, 20 min"}', False)]
        wait(driver, lambda d: d.find_element(By.ID, "notice").text ==
             "Acknowledgement of “Station DE-BER-0003 offline” sent.", "the notice")
        # The bridge's answer is the alert's retained state.
        acked_at = NOW - timedelta(minutes=1)
        fleet.retain("_alerts/a-ack-1", alert("a-ack-1", "Card terminal DE-BER-0005 unreachable", ["DE-BER-0005"],
                                              state="acknowledged", acked_by="anna", acked_at=iso(acked_at)))
        wait(driver, lambda d: texts(d, "[data-alert='a-ack-1'] .acked") == [f"Acknowledged by anna at {shown(acked_at)}"],
             "the acknowledged alert")
        assert texts(driver, "#alert-list .title")[-1] == "Card terminal DE-BER-0005 unreachable"  # below the open one
    finally:
        fleet.retain("_alerts/a-ack-1", None)
        fleet.retain("_alerts/a-ack-2", None)
    wait(driver, lambda d: d.find_element(By.ID, "alerts-none").is_displayed(), "no open alerts")


@browser_test
def test_the_link_of_an_alert_asks_to_acknowledge_it_after_sign_in(bench: Bench) -> None:
    crew, fleet, driver = bench
    fleet.retain("_alerts/a-lost-6", alert("a-lost-6", "Station DE-BER-0006 lost", ["DE-BER-0006"], problem="lost"))
    before = len(fleet.acks)
    try:
        sign_in(driver, crew, "?station=DE-BER-0006#ack=a-lost-6")
        wait(driver, lambda d: d.find_element(By.ID, "confirm-text").text ==
             "Acknowledge the alert “Station DE-BER-0006 lost”?", "the question")
        # Not Confirm: the Enter that signed in, pressed once more, must acknowledge nothing.
        assert driver.execute_script("return document.activeElement.id") == "confirm-note"
        confirm(driver, "Acknowledge the alert “Station DE-BER-0006 lost”?")
        fleet.wait_until(lambda: len(fleet.acks) == before + 1, "the acknowledgement")
        assert fleet.acks[before:] == [(f"{P}/_ack/anna/a-lost-6", b"{}", False)]
        assert driver.execute_script("return location.search + location.hash") == "?station=DE-BER-0006"
        assert texts(driver, "#alert-list .title") == ["Station DE-BER-0006 lost"]  # the station's own alerts only
        # A link to an alert that is closed (or never was), opened in the page already open: said, nothing to confirm.
        driver.execute_script("location.hash = '#ack=a-closed-9'")
        wait(driver, lambda d: d.find_element(By.ID, "confirm-text").text == "The alert a-closed-9 is not among the open "
             "alerts: it is closed, or not known (yet). There is nothing to acknowledge.", "the unknown alert")
        assert not driver.find_element(By.ID, "confirm-ok").is_enabled()
        driver.find_element(By.ID, "confirm-cancel").click()
        assert len(fleet.acks) == before + 1
    finally:
        fleet.retain("_alerts/a-lost-6", None)


@browser_test
def test_german_from_the_browser_switchable_and_a_refused_sign_in(bench: Bench) -> None:
    crew, driver = bench.crew, bench.driver
    agent = driver.execute_script("return navigator.userAgent")
    driver.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "de-AT,en"})
    try:
        sign_in(driver, crew, password="wrong")
        german = "Der Broker hat die Anmeldung abgelehnt: Benutzername oder Passwort falsch."
        wait(driver, lambda d: d.find_element(By.ID, "login-error").text == german, "the refusal")
        assert driver.find_element(By.ID, "login-heading").text == "Anmelden"
        assert driver.find_element(By.CSS_SELECTOR, ".languages").accessible_name == "Sprache"
        assert driver.execute_script("return sessionStorage.length") == 0
        driver.find_element(By.CSS_SELECTOR, "[data-lang='en']").click()
        assert driver.find_element(By.ID, "login-error").text == \
            "The broker refused the sign-in: wrong username or password."
        driver.find_element(By.CSS_SELECTOR, "[data-lang='de']").click()
        assert driver.find_element(By.ID, "login-error").text == german
    finally:
        driver.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "en-US"})
    driver.find_element(By.ID, "password").send_keys(crew.password)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver, lambda d: len(cards(d)) == len(ORDER), "every station")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de"
    assert driver.find_element(By.ID, "stations-heading").text == "Meine Stationen"
    assert cards(driver) == [(station, german) for (station, _), german in zip(
        ORDER, ["Verloren", "Kritisch", "Kritisch", "Außer Betrieb", "Abgeschaltet", "Warnung", "In Ordnung"])]
    assert texts(driver, "[data-station='DE-BER-0005'] .fault .since") == [f"seit {shown(SINCE_B, 'de')}"]
    assert texts(driver, "[data-station='DE-BER-0005'] .impact") == ["Parkende: keine Kartenzahlung"]
    assert driver.find_element(By.ID, "conn").text == "Verbunden"
    screenshot(driver, "de")


@browser_test
def test_malformed_messages_are_ignored_and_shown_safely(bench: Bench) -> None:
    """Every value is checked before use: a bad payload is ignored or shown as text, never stops the page (not at this
    sign-in, not at the next), and station ids that are names of Object's methods are stations like any other."""
    crew, fleet, driver = bench
    trap = {"toString": 0}  # String(trap) and new Date(trap) throw
    bad: dict[str, Any] = {
        "DE-BER-0099/status": b"not json", "DE-BER-0099/fault/a": b"[1,2]", "DE-BER-0099/fault/b": b'"text"',
        "DE-BER-0099/fault/c": {"active": True, "code": 7, "severity": {"x": 1}, "since": "yesterday", "message": 42,
                                "parker_impact": HOSTILE},
        "DE-BER-0099/fault/d": {"active": True, "code": "x", "severity": "warning", "since": trap, "message": HOSTILE,
                                "parker_impact": trap},
        "DE-BER-0099/telemetry": {"link": "up", "cpu_temp_c": "hot", "outbox_depth": None, "ts": "5 o'clock",
                                  "terminal": trap},
        "DE-BER-0098/status": {"state": "online", "boot": trap, "zone": HOSTILE, "ts": trap},
        "_alerts/Bad_ID": {"title": "never shown"}, "_alerts/a-odd": {"stations": "DE-BER-0099", "severity": 3},
        "_alerts/a-text": b'"just text"', "_x/status": {"state": "lost"},
        "_alerts/a-hostile": {"title": HOSTILE, "message": HOSTILE, "state": "acknowledged", "since": trap, "group": trap,
                              "severity": trap, "acked_by": trap, "acked_at": trap, "opened": trap,
                              "stations": [trap, "DE-BER-0099", "_bad"]},
        "constructor/status": online("Prototyp"),
        "constructor/fault/constructor": fault("open", "warning", "none", "the door", SINCE_A),
        "valueOf/fault/card_terminal": fault("unreachable", "critical", "no_card_payment", "no answer", SINCE_B),
        "toString/status": {"state": "lost", "boot": 5},
        "hasOwnProperty/status": {"state": "offline", "boot": 5, "ts": iso(SINCE_B)}}
    try:
        for topic, payload in bad.items():
            fleet.publish_raw(topic, payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        signed_in = datetime.now(BERLIN)
        sign_in(driver, crew)
        wait(driver, lambda d: len(cards(d)) == len(ORDER) + 6, "every station, the odd ones too")
        odd = ["DE-BER-0099", "Warning", "c: since an unknown time", "d: x since an unknown time", HOSTILE]
        telemetry = {f"Terminal ? · link ? · outbox ? · CPU – (at {minute})" for minute in minutes(signed_in)}
        assert lines(driver, "[data-station='DE-BER-0099']")[:5] == odd
        assert lines(driver, "[data-station='DE-BER-0099']")[5] in telemetry
        assert lines(driver, "[data-station='DE-BER-0098']") == ["DE-BER-0098", "Healthy", f"Zone {HOSTILE}",
                                                                  "No active faults.", "No telemetry yet."]
        shown_cards = dict(cards(driver))
        assert {name: shown_cards[name] for name in ("constructor", "valueOf", "toString", "hasOwnProperty")} == {
            "constructor": "Warning", "valueOf": "Critical", "toString": "Lost", "hasOwnProperty": "Offline"}
        assert texts(driver, "[data-station='constructor'] .fault .component") == ["constructor: open"]
        wait(driver, lambda d: texts(d, "#alert-list .title") == ["a-odd", HOSTILE], "the odd alerts")
        assert texts(driver, "[data-alert='a-odd'] .meta") == [""]
        assert lines(driver, "[data-alert='a-hostile']") == [HOSTILE, HOSTILE, "DE-BER-0099",
                                                             "Acknowledged by at an unknown time"]
        assert no_markup_ran(driver)
        # The page still takes messages: a good fault after the bad ones.
        fleet.retain("DE-BER-0099/fault/c", fault("jammed", "critical", "out_of_service", "paper jam", SINCE_A))
        wait(driver, lambda d: lines(d, "[data-station='DE-BER-0099']")[:3] == [
            "DE-BER-0099", "Critical", f"c: jammed since {shown(SINCE_A)}"], "the good fault after the bad ones")
        # An empty retained message removes what it clears; a station with nothing left goes.
        fleet.publish_raw("valueOf/fault/card_terminal", b"")
        fleet.publish_raw("hasOwnProperty/status", b"")
        wait(driver, lambda d: "valueOf" not in dict(cards(d)) and "hasOwnProperty" not in dict(cards(d)),
             "the stations whose retained state was removed")
        fleet.publish_raw("constructor/fault/constructor", b"")
        wait(driver, lambda d: lines(d, "[data-station='constructor']")[:4] == [
            "constructor", "Healthy", "Zone Prototyp", "No active faults."], "the removed fault")
    finally:
        for topic in bad:
            fleet.publish_raw(topic, b"")
    wait(driver, lambda d: len(cards(d)) == len(ORDER), "the odd stations gone")


@browser_test
def test_long_ids_zones_and_words_fit_a_360_px_screen(bench: Bench) -> None:
    crew, fleet, driver = bench
    long_id = "DE-BER-" + "9" * 57  # 64 characters, the longest station id
    word = "E" * 150  # an unbroken token
    retained = {f"{long_id}/status": online("Zone-" + "Z" * 100),
                f"{long_id}/fault/card_terminal": fault("unreachable", "critical", "no_card_payment", word, SINCE_B),
                "_alerts/a-long": alert("a-long", "T" * 120, [long_id], group="G" * 80)}
    try:
        for topic, payload in retained.items():
            fleet.retain(topic, payload)
        sign_in(driver, crew)
        wait(driver, lambda d: long_id in dict(cards(d)), "the long station")
        width = "return [document.documentElement.scrollWidth, Math.max(...Array.from(" \
                "document.querySelectorAll('.badge, button'), e => e.getBoundingClientRect().right))]"
        assert driver.execute_script(width)[0] <= 360 and driver.execute_script(width)[1] <= 360
        driver.get(crew.url + f"?station={long_id}")
        wait(driver, lambda d: texts(d, "#detail-info .message") == [word], "the long station's page")
        assert driver.execute_script(width)[0] <= 360 and driver.execute_script(width)[1] <= 360
    finally:
        for topic in retained:
            fleet.retain(topic, None)


@browser_test
def test_what_the_broker_refuses_is_told_not_shown_as_sent(bench: Bench) -> None:
    """The bridge's account may read everything but write neither acknowledgements nor commands: PUBACK 0x87."""
    crew, fleet, driver = bench
    before_acks, before_commands = len(fleet.acks), len(fleet.commands)
    fleet.retain("_alerts/a-deny-1", alert("a-deny-1", "Card terminal DE-BER-0005 unreachable", ["DE-BER-0005"]))
    try:
        sign_in(driver, crew, "?station=DE-BER-0005", password=secret(crew.accounts, BRIDGE), user=BRIDGE)
        wait(driver, lambda d: texts(d, "#alert-list .title") == ["Card terminal DE-BER-0005 unreachable"], "the alert")
        driver.find_element(By.CSS_SELECTOR, "[data-alert='a-deny-1'] button.ack").click()
        confirm(driver, "Acknowledge the alert “Card terminal DE-BER-0005 unreachable”?")
        wait(driver, lambda d: d.find_element(By.ID, "notice").text ==
             "Acknowledging “Card terminal DE-BER-0005 unreachable” is not allowed for your account.", "the refusal")
        driver.find_element(By.CSS_SELECTOR, "[data-command='restart']").click()
        confirm(driver, "Restart at DE-BER-0005?")
        result_is(driver, "Restart: not allowed for your account.")
        assert (len(fleet.acks), len(fleet.commands)) == (before_acks, before_commands)
    finally:
        fleet.retain("_alerts/a-deny-1", None)


@browser_test
def test_the_page_refuses_to_run_in_a_frame(bench: Bench) -> None:
    crew, driver = bench.crew, bench.driver
    driver.get(crew.url)
    driver.execute_script("sessionStorage.setItem('crew.login', JSON.stringify({user: arguments[0],"
                          " password: arguments[1]}))", CREW, crew.password)  # even signed in already in this tab
    framer = crew.site / "framer.html"  # another page that frames the crew page (here from the same folder)
    framer.write_text('<!DOCTYPE html><title>framer</title><iframe src="/" width="360" height="500"></iframe>\n',
                      encoding="utf-8")
    driver.get(crew.url + framer.name)
    driver.switch_to.frame(driver.find_element(By.TAG_NAME, "iframe"))
    try:
        wait(driver, lambda d: d.find_element(By.ID, "framed").text == "This page works only when opened directly, not "
             "inside another page. Open it directly in the browser.", "the refusal")
        assert driver.execute_script("return document.body.children.length") == 1
        assert driver.find_elements(By.ID, "login-form") == [] and driver.find_elements(By.ID, "main") == []
    finally:
        driver.switch_to.default_content()
        framer.unlink()


@browser_test
def test_every_reply_code_has_a_text_in_english_and_german(bench: Bench) -> None:
    table = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8").split("| code | meaning |\n|---|---|\n", 1)[1]
    documented = re.findall(r"^\| `(\w+)` \|", table.split("\n\n", 1)[0], flags=re.MULTILINE)
    bench.driver.get(bench.crew.url)
    known, missing = bench.driver.execute_script(
        "return [CrewModel.REPLY_CODES, CrewModel.REPLY_CODES.filter(c => !CREW_TEXTS.en['code.' + c] ||"
        " !CREW_TEXTS.de['code.' + c])]")
    assert (known, missing) == (documented, [])
    assert len(documented) == 15


@browser_test
def test_the_stale_marker_while_the_broker_is_away_and_the_state_rebuilt_after(bench: Bench) -> None:
    crew, fleet, driver = bench
    signed_in = datetime.now(BERLIN)
    sign_in(driver, crew)
    wait(driver, lambda d: len(cards(d)) == len(ORDER), "every station")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/mqtt"]})  # the page stays away until unblocked
    changed = {"DE-BER-0001/status": None, "DE-BER-0002/fault/card_terminal": None,
               "DE-BER-0007/status": online("Neustadt")}
    crew.stop()
    try:
        marker = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#conn.stale .stale-since").text, "the stale marker")
        assert marker in {f"Stale since {minute}" for minute in minutes(signed_in)}  # the last message's time
        assert driver.find_element(By.ID, "conn").text == \
            f"{marker} No connection to the broker: what you see may be out of date."
        assert cards(driver) == ORDER  # the last known state stays, marked stale
        screenshot(driver, "stale")
    finally:
        crew.start()
    try:
        fleet.wait_connected()
        for topic, payload in changed.items():  # while the page is away
            fleet.retain(topic, payload)
        assert driver.find_element(By.ID, "conn").get_attribute("class") == "stale"
    finally:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        driver.execute_cdp_cmd("Network.disable", {})
    try:
        wait(driver, lambda d: d.find_element(By.ID, "conn").text == "Connected", "the connection back", timeout=15)
        # Rebuilt from what the broker holds now: DE-BER-0001 gone, DE-BER-0002 healthy, DE-BER-0007 new.
        wait(driver, lambda d: cards(d) == [*ORDER[:5], ("DE-BER-0002", "Healthy"), ("DE-BER-0007", "Healthy")],
             "the stations as the broker has them now")
    finally:
        fleet.wait_connected()
        for topic in changed:
            fleet.retain(topic, FLEET.get(topic))
    wait(driver, lambda d: cards(d) == ORDER, "the first stations again")


@browser_test
def test_an_acknowledgement_from_the_page_reaches_the_real_bridge_and_comes_back(bench: Bench, tmp_path: Path) -> None:
    """The whole way: the stations' retained faults, the alert bridge (kiosk alerts, on its own broker account and a
    manual clock), its retained alert on the page, the crew member's tap, the bridge's acknowledged state."""
    crew, fleet, driver = bench
    mail = MailSink().start()
    config = tmp_path / "alerts.toml"
    text = config_text(tmp_path / "alerts.db", crew.broker.port, mail.port, "http://127.0.0.1:9")
    config.write_text(text.replace("[broker]\n", f"[broker]\nusername = \"{BRIDGE}\"\n"
                                   f"password_file = \"{crew.accounts / 'secrets' / f'{BRIDGE}.password'}\"\n", 1),
                      encoding="utf-8")
    clock = ManualClock(NOW)
    bridge = Service(load(config), clock=clock, tick_s=0.02)
    bridge.start()
    opened: list[str] = []
    try:
        wait(driver, lambda d: ("DE-BER-0005", "fault/card_terminal") in bridge.snapshot().cases, "the bridge's watch")
        clock.advance(121)  # past the grace time, counted from when the bridge first saw the fault
        terminal = wait(driver, lambda d: next((a for a in bridge.snapshot().alerts.values()
                                                if a.stations == ["DE-BER-0005"] and a.component == "card_terminal"),
                                               None), "the bridge's alert")
        opened = list(bridge.snapshot().alerts)
        sign_in(driver, crew)
        card = f"[data-alert='{terminal.id}']"
        wait(driver, lambda d: texts(d, f"{card} .title") == [terminal.title], "the bridge's alert on the page")
        driver.find_element(By.CSS_SELECTOR, f"{card} button.ack").click()
        confirm(driver, f"Acknowledge the alert “{terminal.title}”?")
        taken = wait(driver, lambda d: bridge.snapshot().alerts[terminal.id].acked_by, "the bridge's acknowledgement")
        assert taken == CREW and bridge.snapshot().alerts[terminal.id].state.value == "acknowledged"
        wait(driver, lambda d: texts(d, f"{card} .acked") and texts(d, f"{card} .acked")[0].startswith(
            f"Acknowledged by {CREW} at "), "the acknowledged state back on the page")
    finally:
        bridge.stop()
        mail.stop()
        for alert_id in opened:
            fleet.retain(f"_alerts/{alert_id}", None)
