"""Real release bundles of this checkout for tests: four versions built and signed by provisioning/release.py."""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from certs import Pki, make_pki

from kiosk.releases import bundle

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW, NEVER_READY = "0.90.0", "0.91.0", "0.91.1"
FOREIGN = "foreign"  # NEW signed by a key that no station trusts


def source_copy(folder: Path, version: str) -> Path:
    """The checkout's files (what git tracks, and new files it does not ignore) with another version."""
    listing = ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    pyproject = folder / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', f'version = "{version}"', 1))
    return folder


def release_tool(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "provisioning" / "release.py"), *args], check=True, capture_output=True,
                   timeout=600)


@dataclass(frozen=True)
class Kit:
    """The signed bundles by version, the key folder stations trust, and the test PKI for HTTPS."""

    bundles: dict[str, Path]
    keys: Path
    pki: Pki
    wheelhouse: Path  # the wheels of the first bundle: further builds need no package index


def build_kit(base: Path) -> Kit:
    """Keys, the bundles and a PKI in ``base`` (three real builds; the second and third without an index)."""
    release_tool("keygen", "--out", str(base / "signing"))
    release_tool("keygen", "--out", str(base / "stranger"))
    keys = base / "trusted"
    keys.mkdir()
    shutil.copy(base / "signing" / "release-signing.pem", keys)
    bundles: dict[str, Path] = {}
    wheelhouse = base / "wheelhouse"  # after the first build, the others take its dependencies' wheels (no index)
    for version in (NEW, OLD, NEVER_READY):
        source = source_copy(base / f"src-{version}", version)
        if version == NEVER_READY:  # it hangs before it is ready (and ignores SIGTERM meanwhile)
            loop = source / "kiosk" / "app" / "loop.py"
            text = loop.read_text()
            assert "        self.settle()\n        log.info(\"ready: waiting for parkers\")" in text
            loop.write_text(text.replace('        log.info("ready: waiting for parkers")',
                                         '        __import__("time").sleep(3600)', 1))
        offline = ["--find-links", str(wheelhouse), "--no-index"] if bundles else []
        release_tool("build", "--source", str(source), "--key", str(base / "signing" / "release-signing.key"),
                     "--out", str(base / "bundles"), *offline)
        bundles[version] = base / "bundles" / f"kiosk-{version}.tar"
        if not wheelhouse.exists():
            first = bundle.verify(bundles[version], bundle.trusted_keys(keys))
            bundle.extract_wheels(bundles[version], first, wheelhouse)
    # NEW's wheels and manifest, signed by a key no station trusts (as a build would, only faster)
    manifest = bundle.verify(bundles[NEW], bundle.trusted_keys(keys))
    wheels = [wheelhouse / Path(f.path).name for f in manifest.files]
    bundles[FOREIGN] = base / "bundles" / "kiosk-foreign.tar"
    signature = bundle.sign(manifest.to_json(), base / "stranger" / "release-signing.key")
    bundle.write_bundle(bundles[FOREIGN], manifest, signature, wheels)
    return Kit(bundles, keys, make_pki(base / "pki"), wheelhouse)
