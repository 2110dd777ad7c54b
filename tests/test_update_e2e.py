"""Remote updates end to end with real parts: real bundles of this project, HTTPS, mosquitto, and systemd's contract.

The bundles are built from copies of this checkout with other versions by provisioning/release.py,
signed with a key made in the test, served over HTTPS with a test CA, and installed by the
station into releases under a temporary root; tests/supervisor.py plays systemd (the guard
around every start and stop, READY=1, Restart=always).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from broker import Mosquitto
from bundle_server import BundleServer
from conftest import wait_for
from mqtt_client import Received, Staff
from release_kit import FOREIGN, NEVER_READY, NEW, OLD, Kit
from station_process import PREFIX, command, station_config
from supervisor import Supervisor

from kiosk.releases import bundle, guard
from kiosk.releases.layout import CURRENT, STABLE, Releases

pytestmark = pytest.mark.slow

HEALTHY_S = 3


@dataclass
class Site:
    """A station installed with release OLD under a temporary root, its broker, its bundle server and staff."""

    kit: Kit
    releases: Releases
    supervisor: Supervisor
    server: BundleServer
    staff: Staff


@pytest.fixture(scope="module")
def provisioned(kit: Kit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Release OLD as provisioning/install.sh leaves it in /opt/kiosk/releases: read-only to the station, so shared."""
    releases = Releases(tmp_path_factory.mktemp("opt"))
    manifest = bundle.verify(kit.bundles[OLD], bundle.trusted_keys(kit.keys))
    releases.install(kit.bundles[OLD], manifest, datetime.now(UTC))
    return releases.release(OLD)


@pytest.fixture
def site(tmp_path: Path, kit: Kit, provisioned: Path, broker: Mosquitto) -> Iterator[Site]:
    releases = Releases(tmp_path / "updates")  # the station's own
    guard.adopt(releases, OLD, provisioned)
    config = station_config(tmp_path / "station", broker.port)
    config.write_text(config.read_text() + f'[updates]\nroot = "{releases.root}"\nkeys = "{kit.keys}"\n'
                      f'healthy_s = {HEALTHY_S}\nca_file = "{kit.pki.ca.cert}"\n')
    www = tmp_path / "www"
    www.mkdir()
    for path in kit.bundles.values():
        (www / path.name).symlink_to(path)
    staff = Staff(broker.port)
    staff.subscribe(PREFIX + "status", PREFIX + "event/update", PREFIX + "reply/#")
    supervisor = Supervisor(releases.root, config, tmp_path / "station" / "station.log", start_timeout=8, stop_timeout=2)
    with BundleServer(www, kit.pki) as server:
        supervisor.start()
        try:
            staff.wait_for(lambda m: firmware_online(m, OLD), 60, f"the birth of {OLD}")
            yield Site(kit, releases, supervisor, server, staff)
        finally:
            supervisor.stop()
            staff.close()


def firmware_online(messages: list[Received], version: str) -> dict | None:
    """The newest online birth, if it is of ``version``."""
    births = [m.json() for m in messages if m.topic == PREFIX + "status" and m.payload and m.json()["state"] == "online"]
    return births[-1] if births and births[-1]["firmware"] == version else None


def statuses(messages: list[Received]) -> list[tuple[str, str | None, str]]:
    """(status, version, running) of every event/update so far."""
    found = []
    for m in messages:
        if m.topic == PREFIX + "event/update" and m.payload:
            data = m.json()["data"]
            found.append((data["status"], data["version"], data["running"]))
    return found


def ask_update(site: Site, version: str, **extra: object) -> dict:
    path = site.kit.bundles[version]
    payload = {"url": site.server.url(path.name), "sha256": bundle.sha256_of(path), **extra}
    return command(site.staff, "update", json.dumps(payload))


def reason_of(messages: list[Received], status: str) -> str:
    return next(m.json()["data"]["reason"] for m in messages
                if m.topic == PREFIX + "event/update" and m.payload and m.json()["data"]["status"] == status)


def test_an_update_over_mqtt_downloads_resumes_switches_proves_and_reports(site: Site) -> None:
    site.server.behaviour.cuts, site.server.behaviour.cut_at = 1, 5 * 1024 * 1024  # the first download is cut
    reply = ask_update(site, NEW)
    assert reply["ok"] and reply["job"]
    birth = site.staff.wait_for(lambda m: firmware_online(m, NEW), 180, f"the birth of {NEW}")
    site.staff.wait_for(lambda m: ("Installed", NEW, NEW) in statuses(m), 60, "Installed")
    assert statuses(site.staff.messages) == [
        ("Downloading", None, OLD), ("Downloaded", None, OLD), ("SignatureVerified", NEW, OLD),
        ("InstallScheduled", NEW, OLD), ("Installing", NEW, OLD), ("Installed", NEW, NEW)]
    assert site.server.behaviour.requests == ["", "bytes=5242880-"]  # resumed where the cut left it
    assert birth["update"]["running"] == NEW
    assert site.releases.target(CURRENT) == site.releases.target(STABLE) == NEW
    assert sorted(site.releases.installed()) == [OLD, NEW]  # the previous release is kept
    assert [(r.release, r.ready, r.result) for r in site.supervisor.runs[:2]] == [(OLD, True, "success"),
                                                                                 (NEW, True, "")]
    def proven(messages: list[Received]) -> dict | None:  # republished by the commit itself, no rebirth asked
        birth = firmware_online(messages, NEW)
        return birth if birth and (birth["update"]["last"] or {}).get("status") == "Installed" else None
    birth = site.staff.wait_for(proven, 20, "the birth that says Installed")
    assert birth["update"]["rolled_back"] is False and birth["update"]["trial"] is None


def test_refused_bundles_change_nothing_and_a_release_never_ready_is_rolled_back_with_its_reason(site: Site) -> None:
    # a foreign signature and a wrong checksum: refused, nothing installed or kept, the station untouched
    assert ask_update(site, FOREIGN)["ok"]
    site.staff.wait_for(lambda m: ("InvalidSignature", None, OLD) in statuses(m), 60, "InvalidSignature")
    path = site.server.folder / f"kiosk-{NEW}.tar"
    reply = command(site.staff, "update", json.dumps({"url": site.server.url(path.name), "sha256": "0" * 64}))
    assert reply["ok"]
    site.staff.wait_for(lambda m: ("InstallVerificationFailed", None, OLD) in statuses(m), 60, "the checksum refusal")
    assert "sha256" in reason_of(site.staff.messages, "InstallVerificationFailed").lower()
    assert site.releases.installed() == [OLD] and site.releases.target(CURRENT) == OLD
    assert list(site.releases.downloads.iterdir()) == []  # nothing refused is kept
    assert [r.release for r in site.supervisor.runs] == [OLD]
    # a release that hangs before it is ready: the start timeout, the guard, the previous release back
    assert ask_update(site, NEVER_READY)["ok"]
    site.staff.wait_for(lambda m: ("RolledBack", NEVER_READY, OLD) in statuses(m), 240, "RolledBack")
    reason = reason_of(site.staff.messages, "RolledBack")
    assert reason.startswith("it did not report ready in time") and f"back to {OLD}" in reason
    birth = site.staff.wait_for(lambda m: firmware_online(m, OLD), 30, f"the birth of {OLD} again")
    assert birth["update"]["rolled_back"] is True and birth["update"]["last"]["version"] == NEVER_READY
    runs = site.supervisor.runs
    wait_for(lambda: len(runs) >= 3 and runs[2].ready, 30, f"{OLD} to report ready again")  # its events may come first
    assert [(r.release, r.ready, r.result) for r in runs[:3]] == [
        (OLD, True, "success"), (NEVER_READY, False, "timeout"), (OLD, True, "")]
    assert site.releases.target(CURRENT) == site.releases.target(STABLE) == OLD
    refused = ask_update(site, NEVER_READY)  # not tried again unless staff say so
    assert (refused["ok"], refused["code"]) == (False, "failed_before")
    assert ask_update(site, NEVER_READY, retry=True)["ok"]
