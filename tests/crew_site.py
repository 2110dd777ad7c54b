"""The crew page's test bench: mosquitto serving the page on its websockets listener, simulated stations, Chromium."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from broker import Mosquitto, free_port
from broker_access import generate, secret
from conftest import ROOT
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

P = "paystation/v1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTH, HEIGHT = 360, 780
TIMEOUT_S = 10.0
TIME_ZONE = "Europe/Berlin"  # the browser's; the page shows local times
CREW, FLEET, BRIDGE = "anna", "fleet", "alerts"
# The crew account gets the generator's crew role; the simulated fleet (every station, and the bridge's alerts) is
# the test's own stand-in, so its operator account gets every topic on top.
FLEET_RULES = f"""
# the test's simulated fleet and alert bridge
user {FLEET}
topic readwrite {P}/#
"""


def install_page(folder: Path) -> None:
    """Install the page and its checked bundle as an operator would (never from the network: a mirror nobody serves)."""
    result = subprocess.run([sys.executable, str(ROOT / "provisioning" / "crew_web.py"), "--install", str(folder),
                             "--registry", f"http://127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, (f"the crew page could not be installed: {result.stderr}\n"
                                    "fetch the bundle first: python3 provisioning/crew_web.py (setup.sh --test does)")


@dataclass
class CrewBroker:
    """mosquitto with password accounts, plain MQTT for the fleet and websockets + http_dir for the page."""

    broker: Mosquitto
    ws_port: int
    password: str
    fleet_password: str
    accounts: Path  # the generated accounts (secrets/NAME.password), the alert bridge's among them
    site: Path  # the websockets listener's http_dir: the installed page

    @property
    def url(self) -> str:
        """The page's address."""
        return f"http://127.0.0.1:{self.ws_port}/"

    def start(self) -> None:
        """Start (or start again, on the same ports) and wait for both listeners."""
        self.broker.start()
        self.broker.wait_listening(self.ws_port)

    def stop(self) -> None:
        """Stop the broker."""
        self.broker.stop()


def crew_broker(folder: Path) -> CrewBroker:
    """Accounts, the installed page and the broker, started."""
    accounts, site = folder / "accounts", folder / "site"
    generate(accounts, "--crew", CREW, "--operator", FLEET, "--bridge", BRIDGE)
    acl = folder / "acl"
    acl.write_text((accounts / "acl").read_text(encoding="utf-8") + FLEET_RULES, encoding="utf-8")
    install_page(site)
    ws_port = free_port()
    broker = Mosquitto(folder / "broker", password_file=accounts / "passwd", acl_file=acl,
                       extra=f"listener {ws_port} 127.0.0.1\nprotocol websockets\nhttp_dir {site}\n"
                             "use_username_as_clientid true\n")  # as in production (docs/crew.md)
    crew = CrewBroker(broker, ws_port, secret(accounts, CREW), secret(accounts, FLEET), accounts, site)
    crew.start()
    return crew


@dataclass(frozen=True)
class Command:
    """A command the fleet received."""

    topic: str
    payload: bytes
    response_topic: str
    correlation: bytes


class Fleet:
    """Simulated stations on one paho client: retained state, answers to commands, and what the page published."""

    def __init__(self, port: int, password: str) -> None:
        self.commands: list[Command] = []
        self.acks: list[tuple[str, bytes, bool]] = []
        self.answers: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fleet-{uuid.uuid4().hex[:8]}",
                                   protocol=mqtt.MQTTv5)
        self._client.username_pw_set(FLEET, password)
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda *args: self._notify()
        self._client.on_subscribe = lambda *args: self._mark_subscribed()
        self._client.connect("127.0.0.1", port, keepalive=30)
        self._client.loop_start()
        self.wait_until(lambda: self._subscribed, "the fleet's subscriptions")

    _subscribed = False

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe([(f"{P}/+/cmd/#", 1), (f"{P}/_ack/#", 1)])
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_connected(self) -> None:
        """Wait until paho has connected again (after the broker was restarted)."""
        self.wait_until(self._client.is_connected, "the fleet's connection", timeout=15)

    def _mark_subscribed(self) -> None:
        with self._changed:
            self._subscribed = True
            self._changed.notify_all()

    def retain(self, topic: str, payload: dict[str, Any] | None) -> None:
        """Publish ``payload`` retained under ``P/`` (None clears it) and wait for the PUBACK."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        self._client.publish(f"{P}/{topic}", body, qos=1, retain=True).wait_for_publish(TIMEOUT_S)

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Publish ``payload`` as it is, retained, under ``P/`` (an empty one clears the topic)."""
        self._client.publish(f"{P}/{topic}", payload, qos=1, retain=True).wait_for_publish(TIMEOUT_S)

    def send(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish a live message (telemetry) under ``P/``."""
        self._client.publish(f"{P}/{topic}", json.dumps(payload, separators=(",", ":")), qos=1).wait_for_publish(TIMEOUT_S)

    def wait_until(self, condition: Callable[[], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
        """Wait until ``condition()`` is truthy (checked at every message) and return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := condition()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                self._changed.wait(remaining)
            return value

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        levels = message.topic.split("/")
        with self._changed:
            if levels[2] == "_ack":
                self.acks.append((message.topic, bytes(message.payload), bool(message.retain)))
            else:
                command = Command(message.topic, bytes(message.payload), getattr(message.properties, "ResponseTopic", ""),
                                  getattr(message.properties, "CorrelationData", b""))
                self.commands.append(command)
                self._answer(command, "/".join(levels[4:]))
            self._changed.notify_all()

    def _answer(self, command: Command, name: str) -> None:
        """Reply as a station does: on the response topic, with the correlation data (from paho's thread: no waiting)."""
        if name not in self.answers:
            return
        properties = Properties(PacketTypes.PUBLISH)
        properties.CorrelationData = command.correlation
        self._client.publish(command.response_topic, json.dumps(self.answers[name], separators=(",", ":")), qos=1,
                             properties=properties)


def chromium(profile: Path) -> WebDriver:
    """Headless Chromium through Debian's chromedriver, with a fresh profile and a 360 x 780 phone viewport."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--lang=en-US", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER, env={**os.environ, "TZ": TIME_ZONE}))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": True})
    return driver


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
    """WebDriverWait with a message that says what was awaited (a list redrawn while it is read is read again)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.02, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition, f"timed out waiting for {what}")
