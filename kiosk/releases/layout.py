"""Releases side by side under one root, each with its own venv, and the links that pick the running and the proven one.

::

    ROOT/releases/<version>/.venv/       the release's Python environment (bin/kiosk)
    ROOT/releases/<version>/release.json written last: a release without it is incomplete and never run
    ROOT/releases/<version> -> /opt/...  a release provisioning installed (root's), linked in by ``provided``
    ROOT/current -> releases/<version>   what systemd starts (ExecStart)
    ROOT/stable  -> releases/<version>   the last release that proved healthy; its code guards a trial
    ROOT/update.json                     the update record (kiosk.releases.record)
    ROOT/downloads/                      bundles being fetched or waiting to be installed
    ROOT/inbox/                          a technician's requests (kiosk update FILE) and the station's answers

Links change by renaming a new link over the old one, so a power cut leaves the old or the
new target, never none; ``heal`` points a link that lost its target at a complete release.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from kiosk.releases.bundle import Manifest, extract_wheels
from kiosk.releases.record import UpdateRecord, load_record, save_record, sync_folder, write_atomically

__all__ = ["CURRENT", "MARKER", "STABLE", "InstallFailed", "Releases"]

log = logging.getLogger(__name__)

CURRENT = "current"
STABLE = "stable"
MARKER = "release.json"
PIP_TIMEOUT_S = 900  # a Pi 3 unpacking pygame and babel from wheels takes well under a minute; a hung pip does not


class InstallFailed(Exception):
    """A release could not be installed (pip failed, the disk is full); str() says why."""


class Releases:
    """The releases under ``root`` and the links between them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / "releases"
        self.downloads = root / "downloads"
        self.record_file = root / "update.json"

    def release(self, version: str) -> Path:
        """The folder of release ``version`` (complete or not)."""
        return self.folder / version

    def complete(self, version: str) -> bool:
        """Release ``version`` was installed to the end (its marker is written last)."""
        return (self.release(version) / MARKER).is_file()

    def installed(self) -> list[str]:
        """The complete releases, oldest install first."""
        if not self.folder.is_dir():
            return []
        found = [p.name for p in self.folder.iterdir() if p.is_dir() and (p / MARKER).is_file()]
        return sorted(found, key=lambda name: (self.release(name) / MARKER).stat().st_mtime_ns)

    def target(self, link: str) -> str | None:
        """The release a link (CURRENT or STABLE) names, if it names a complete one."""
        try:
            name = Path(os.readlink(self.root / link)).name
        except OSError:
            return None
        return name if self.complete(name) else None

    def point(self, link: str, version: str) -> None:
        """Point ``link`` at complete release ``version``, atomically and durably."""
        if not self.complete(version):
            raise InstallFailed(f"release {version} is not complete; {link} not changed")
        fresh = self.root / f".{link}.new"
        fresh.unlink(missing_ok=True)
        os.symlink(Path("releases") / version, fresh)
        os.replace(fresh, self.root / link)
        sync_folder(self.root)

    def heal(self) -> list[str]:
        """Point CURRENT and STABLE at complete releases if they lost theirs; what was done, for the log."""
        done = []
        installed = self.installed()
        for link in (STABLE, CURRENT):
            if self.target(link) is not None or not installed:
                continue
            other = self.target(STABLE if link == CURRENT else CURRENT)
            choice = other or installed[-1]
            self.point(link, choice)
            done.append(f"{link} named no complete release: now {choice}")
        return done

    def record(self) -> UpdateRecord:
        """The update record (empty when there is none)."""
        return load_record(self.record_file)

    def save(self, record: UpdateRecord) -> None:
        """Write the update record durably."""
        save_record(self.record_file, record)

    def provided(self, version: str, folder: Path) -> None:
        """Link release ``version`` that provisioning installed in ``folder`` (complete) in as ``releases/<version>``."""
        if not (folder / MARKER).is_file():
            raise InstallFailed(f"{folder} is not a complete release")
        entry = self.release(version)
        if (entry.is_symlink() and Path(os.readlink(entry)) == folder) or \
                (entry.exists() and entry.resolve() == folder.resolve()):
            return  # linked in already, or installed here
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove(entry)
        fresh = self.folder / f".{version}.new"
        fresh.unlink(missing_ok=True)
        os.symlink(folder, fresh)
        os.replace(fresh, entry)
        sync_folder(self.folder)

    def manifest_of(self, version: str) -> dict[str, object] | None:
        """The manifest a complete release was installed from (None for one provisioning installed, or none)."""
        try:
            marker = json.loads((self.release(version) / MARKER).read_text())
        except (OSError, ValueError):
            return None
        found = marker.get("manifest") if isinstance(marker, dict) else None
        return found if isinstance(found, dict) else None

    def install(self, bundle: Path, manifest: Manifest, now: datetime) -> None:
        """Install a verified bundle as release ``manifest.version``: a venv, the wheels offline, the marker last.

        A folder of that name left incomplete (a power cut) is removed first, and so is a complete one
        installed from other content (unless it runs or is stable: InstallFailed, since a release's
        version must change with its content).
        """
        version = manifest.version
        wanted = json.loads(manifest.to_json())
        if self.complete(version):
            if self.manifest_of(version) == wanted:
                return
            if version in (self.target(CURRENT), self.target(STABLE)):
                raise InstallFailed(f"release {version} is installed here with other content and runs; a new build "
                                    "must carry a new version")
        folder = self.release(version)
        self._remove(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
        wheels = folder / "wheels"
        try:
            extract_wheels(bundle, manifest, wheels)
            base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
            _run([str(base), "-m", "venv", str(folder / ".venv")])
            _run([str(folder / ".venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
                  "--no-cache-dir", "--disable-pip-version-check", "--find-links", str(wheels), manifest.requirement])
            _run([str(folder / ".venv" / "bin" / "python"), "-m", "compileall", "-q",
                  str(folder / ".venv" / "lib")])
        except (OSError, InstallFailed) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise InstallFailed(f"release {version} not installed: {exc}") from exc
        shutil.rmtree(wheels)
        os.sync()  # every file of the venv on disk before the marker says it is whole
        marker = {"version": version, "installed": now.isoformat(), "manifest": wanted}
        write_atomically(folder / MARKER, (json.dumps(marker, indent=2, sort_keys=True) + "\n").encode())

    def prune(self, keep: set[str]) -> list[str]:
        """Remove incomplete releases and complete ones not in ``keep``; the names removed."""
        removed = []
        for path in self.folder.iterdir() if self.folder.is_dir() else ():
            if path.name.startswith(".") or path.name in keep or not (path.is_dir() or path.is_symlink()):
                continue
            try:
                self._remove(path)
            except OSError as exc:
                log.warning("release %s not removed: %s", path.name, exc)
                continue
            removed.append(path.name)
        return removed

    @staticmethod
    def _remove(path: Path) -> None:
        """Remove a release folder, or only the link to one provisioning installed (never what it names)."""
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)


def _run(command: list[str]) -> None:
    """Run one installation step; InstallFailed with its last output lines when it fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InstallFailed(f"{Path(command[0]).name} {command[1]} {command[2]} took over {PIP_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise InstallFailed(f"{' '.join(command[1:3])} failed ({done.returncode}): {tail}")
