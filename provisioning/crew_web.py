"""The crew web page: npm's mqtt browser bundle fetched pinned and checked, and the page installed (docs/crew.md)."""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import logging
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUNDLE", "PAGE_FILES", "PIN", "REGISTRY", "BundleRefused", "FetchFailed", "Pin", "bundle_ok", "check_integrity",
           "fetch_bundle", "install_page", "main", "pin_for", "tarball_url", "unpack"]

log = logging.getLogger("crew_web")

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "crew"
VENDOR = PAGE / "vendor"
PAGE_FILES = ("index.html", "crew.css", "crew.js", "crew-link.js", "crew-model.js", "crew-texts.js")
REGISTRY = "https://registry.npmjs.org"
PACKAGE = "mqtt"
BUNDLE = "mqtt.min.js"
LICENSE = "mqtt.LICENSE.md"
MEMBERS = {f"package/dist/{BUNDLE}": BUNDLE, "package/LICENSE.md": LICENSE}
MAX_DOWNLOAD = 16 * 1024 * 1024  # the 5.x tarballs are under 1 MiB
TIMEOUT_S = 60.0
FAILED = 1


@dataclass(frozen=True)
class Pin:
    """One version of the package: the registry's SRI string of its tarball, and the sha256 of the bundle in it."""

    version: str
    integrity: str
    bundle_sha256: str


# To move to another version: `python3 provisioning/crew_web.py --pin VERSION` prints this line (docs/crew.md).
PIN = Pin("5.16.0", "sha512-G0VsEtuJz5sJUgZJaaADMVfW7SIFPzkIuHR+d6rk+tBeSwdCfd9BaIRycRfd2AbyFDEmLlFM+SDQeti/+IbOnw==",
          "f3cbeae580d3010048938ee370f2db0c15d16e6f7fc147cb32ae5510e571b387")


class BundleRefused(Exception):
    """The download is not the pinned package (tampered, truncated, or another version): nothing is written."""


class FetchFailed(Exception):
    """The registry could not be reached or answered with an error."""


def tarball_url(version: str, registry: str = REGISTRY) -> str:
    """Where the registry keeps the package's tarball of ``version``."""
    return f"{registry.rstrip('/')}/{PACKAGE}/-/{PACKAGE}-{version}.tgz"


def download(url: str, timeout: float = TIMEOUT_S) -> bytes:
    """The body of ``url`` (at most MAX_DOWNLOAD bytes)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read(MAX_DOWNLOAD + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise FetchFailed(f"cannot download {url}: {error}") from error
    if len(data) > MAX_DOWNLOAD:
        raise BundleRefused(f"{url} is larger than {MAX_DOWNLOAD} bytes")
    return data


def check_integrity(data: bytes, integrity: str) -> None:
    """Refuse ``data`` unless its sha512 is the one of the SRI string ``integrity`` (``sha512-BASE64``)."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512" or not expected:
        raise BundleRefused(f"integrity {integrity!r}: only sha512-… is accepted")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    if not hmac.compare_digest(actual.encode("ascii"), expected.encode("utf-8", "replace")):
        raise BundleRefused(f"the tarball's sha512 is sha512-{actual}, the pin says {integrity}: refused")


def unpack(data: bytes) -> dict[str, bytes]:
    """The bundle and its licence from a checked tarball, keyed by the file names they are installed as."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                if member.name in MEMBERS and member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        found[MEMBERS[member.name]] = extracted.read()
    except (tarfile.TarError, zlib.error, OSError, EOFError, ValueError) as error:  # a corrupt archive, anywhere in it
        raise BundleRefused(f"the tarball cannot be read: {error}") from error
    if BUNDLE not in found:
        raise BundleRefused(f"the tarball has no package/dist/{BUNDLE}")
    return found


def bundle_ok(path: Path, pin: Pin = PIN) -> bool:
    """Whether ``path`` is the pinned bundle, byte for byte."""
    try:
        return hmac.compare_digest(hashlib.sha256(path.read_bytes()).hexdigest(), pin.bundle_sha256)
    except OSError:
        return False


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (readable by all: a web page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def fetch_bundle(target: Path, pin: Pin = PIN, registry: str = REGISTRY) -> Path:
    """Put the pinned bundle into ``target`` (nothing is downloaded when it is already there) and return its path."""
    bundle = target / BUNDLE
    if bundle_ok(bundle, pin):
        log.info("%s is already mqtt %s", bundle, pin.version)
        return bundle
    data = download(tarball_url(pin.version, registry))
    check_integrity(data, pin.integrity)
    files = unpack(data)
    actual = hashlib.sha256(files[BUNDLE]).hexdigest()
    if not hmac.compare_digest(actual, pin.bundle_sha256):
        raise BundleRefused(f"dist/{BUNDLE} has sha256 {actual}, the pin says {pin.bundle_sha256}: refused")
    for name, content in files.items():
        write_atomically(target / name, content)
    log.info("fetched mqtt %s into %s", pin.version, target)
    return bundle


def install_page(destination: Path, vendor: Path = VENDOR, page: Path = PAGE, pin: Pin = PIN) -> list[Path]:
    """Copy the page and the checked bundle into ``destination`` (mosquitto's ``http_dir``); return the files written."""
    if not bundle_ok(vendor / BUNDLE, pin):
        raise BundleRefused(f"{vendor / BUNDLE} is missing or not mqtt {pin.version}: fetch it first")
    written = []
    for name in PAGE_FILES:
        write_atomically(destination / name, (page / name).read_bytes())
        written.append(destination / name)
    for name in (BUNDLE, LICENSE):
        if (vendor / name).exists():
            write_atomically(destination / "vendor" / name, (vendor / name).read_bytes())
            written.append(destination / "vendor" / name)
    return written


def pin_for(version: str, registry: str = REGISTRY) -> Pin:
    """The pin of ``version``: the registry's integrity, checked against the tarball, and the sha256 of its bundle."""
    try:
        meta = json.loads(download(f"{registry.rstrip('/')}/{PACKAGE}/{version}"))
        integrity = str(meta["dist"]["integrity"])
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise FetchFailed(f"the registry has no usable metadata for {PACKAGE} {version}: {error}") from error
    data = download(tarball_url(version, registry))
    check_integrity(data, integrity)
    return Pin(version, integrity, hashlib.sha256(unpack(data)[BUNDLE]).hexdigest())


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", type=Path, default=VENDOR, help="where the bundle goes (default: crew/vendor)")
    parser.add_argument("--install", type=Path, metavar="DIR", help="also install the page there (mosquitto's http_dir)")
    parser.add_argument("--registry", default=REGISTRY, help="the npm registry or a mirror of it")
    parser.add_argument("--pin", metavar="VERSION", help="print the pin of VERSION for this script, and change nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the bundle (and install the page); exit 1 when the download fails or is refused."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arguments = parse_arguments(argv)
    try:
        if arguments.pin:
            pin = pin_for(arguments.pin, arguments.registry)
            sys.stdout.write(f'PIN = Pin("{pin.version}", "{pin.integrity}",\n          "{pin.bundle_sha256}")\n')
            return 0
        fetch_bundle(arguments.target, registry=arguments.registry)
        if arguments.install:
            written = install_page(arguments.install, arguments.target)
            log.info("installed the crew page into %s (%d files)", arguments.install, len(written))
    except (BundleRefused, FetchFailed) as error:
        log.error("%s", error)
        return FAILED
    except OSError as error:
        log.error("cannot write: %s", error)
        return FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
