"""Release bundles of the station software (format 1): writing, signing and checking them (standard library only).

An uncompressed POSIX tar ``kiosk-<version>.tar`` of regular files: manifest.json (the release, every wheel's sha256
and size), manifest.sig (the raw Ed25519 signature of manifest.json's exact bytes, by the openssl command line), then
wheels/<file>.whl in the manifest's order. docs/updates.md, "The bundle format", has every rule.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

__all__ = [
    "CHUNK", "FORMAT", "MANIFEST", "SIGNATURE", "VERSION", "BadBundle", "BundleFile", "BundleRefused",
    "ChecksumMismatch", "InvalidSignature", "Manifest", "SigningFailed", "WrongPlatform", "check_platform",
    "extract_wheels", "sha256_of", "sign", "trusted_keys", "verify", "write_bundle",
]

log = logging.getLogger(__name__)

FORMAT = 1
NAME = "kiosk"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CHUNK = 1 << 20  # read and hashed 1 MiB at a time
MAX_MANIFEST = 1 << 20
SIGNATURE_BYTES = 64  # Ed25519
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")  # the DER of an Ed25519 public key, before its 32 bytes
OPENSSL_TIMEOUT_S = 60
VERSION = re.compile(r"\A[0-9][0-9A-Za-z.+-]{0,39}\Z")  # it names a folder on the station
PYTHON = re.compile(r"\A[0-9]+\.[0-9]+\Z")
PLATFORM = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")
WHEEL = re.compile(r"\Awheels/[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}\.whl\Z")
SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
FIELDS = frozenset({"format", "name", "version", "created", "python", "platform", "requirement", "files"})
FILE_FIELDS = frozenset({"path", "sha256", "size"})


class BundleRefused(Exception):
    """Base: a bundle that must not be installed; str() is the reason for staff."""


class ChecksumMismatch(BundleRefused):
    """The whole file's sha256 is not the one staff gave (a damaged or different download)."""


class InvalidSignature(BundleRefused):
    """No trusted key verifies manifest.sig (also: no key installed, no signature, openssl missing)."""


class BadBundle(BundleRefused):
    """Not a tar, a malformed manifest, an unlisted or missing member, a wheel whose hash or size differs."""


class WrongPlatform(BundleRefused):
    """Built for another Python major.minor or another platform than this station's."""


class SigningFailed(Exception):
    """openssl could not sign: no openssl, an unreadable key, or a key that is not Ed25519."""


@dataclass(frozen=True)
class BundleFile:
    """One wheel of the bundle: its member path (``wheels/<file>.whl``), sha256 (lowercase hex) and size in bytes."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """What manifest.json says: the release, the interpreter and platform it was built for, its wheels."""

    version: str
    created: datetime
    python: str
    platform: str
    requirement: str
    files: tuple[BundleFile, ...]

    def to_json(self) -> bytes:
        """manifest.json's bytes: UTF-8 JSON with format and name, sorted keys, indent 2, a trailing newline."""
        document = {"format": FORMAT, "name": NAME, "version": self.version, "created": self.created.isoformat(),
                    "python": self.python, "platform": self.platform, "requirement": self.requirement,
                    "files": [asdict(file) for file in self.files]}
        return (json.dumps(document, sort_keys=True, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """The manifest in ``data``; BadBundle naming the field that breaks a rule of format 1."""
        try:
            document = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as error:
            raise BadBundle(f"{MANIFEST} is not UTF-8 JSON: {error}") from None
        if not isinstance(document, dict):
            raise BadBundle(f"{MANIFEST} is not a JSON object")
        _exact(document, FIELDS, MANIFEST)
        if type(document["format"]) is not int or document["format"] != FORMAT:
            raise BadBundle(f"format: {_shown(document['format'])} is not supported (this station reads format {FORMAT})")
        if document["name"] != NAME:
            raise BadBundle(f"name: {_shown(document['name'])} is not {NAME!r}")
        version = _string(document, "version", VERSION, "a digit, then up to 39 letters, digits, '.', '+' or '-'")
        created = _created(document["created"])
        requirement = re.compile(rf"\A{NAME}(\[[a-z0-9_-]+(,[a-z0-9_-]+)*\])?=={re.escape(version)}\Z")
        return cls(version, created, _string(document, "python", PYTHON, "a Python major.minor"),
                   _string(document, "platform", PLATFORM, "a platform name such as linux-aarch64"),
                   _string(document, "requirement", requirement, f"{NAME}=={version} or {NAME}[EXTRAS]=={version}"),
                   _files(document["files"], version))


def _shown(value: object) -> str:
    """``value`` as a message shows it: its repr, cut to 80 characters."""
    written = repr(value)
    return written if len(written) <= 80 else written[:77] + "..."


def _exact(document: dict[str, Any], fields: frozenset[str], what: str) -> None:
    """BadBundle unless ``document`` has exactly ``fields``."""
    missing, unknown = sorted(fields - set(document)), sorted(set(document) - fields)
    if missing:
        raise BadBundle(f"{what} has no {', '.join(missing)}")
    if unknown:
        raise BadBundle(f"{what} has unknown fields: {_shown(', '.join(unknown))}")


def _string(document: dict[str, Any], field: str, rule: re.Pattern[str], meaning: str) -> str:
    """The string in ``field``; BadBundle naming the field unless it matches ``rule``."""
    value = document[field]
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise BadBundle(f"{field}: {_shown(value)} is not {meaning}")
    return value


def _created(value: object) -> datetime:
    """The manifest's ``created``: an ISO 8601 time with its UTC offset."""
    try:
        created = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        created = None
    if created is None:
        raise BadBundle(f"created: {_shown(value)} is not an ISO 8601 time")
    if created.utcoffset() is None:
        raise BadBundle(f"created: {_shown(value)} has no UTC offset")
    return created


def _files(listed: object, version: str) -> tuple[BundleFile, ...]:
    """The manifest's ``files``: one or more distinct wheels, the kiosk wheel of ``version`` among them."""
    if not isinstance(listed, list) or not listed:
        raise BadBundle("files: not a list of one or more wheels")
    found: list[BundleFile] = []
    for number, entry in enumerate(listed, 1):
        if not isinstance(entry, dict):
            raise BadBundle(f"files: entry {number} is not an object")
        _exact(entry, FILE_FIELDS, f"files: entry {number}")
        path = _string(entry, "path", WHEEL, "wheels/<file>.whl")
        size = entry["size"]
        if type(size) is not int or size < 0:
            raise BadBundle(f"files: {path}: size {_shown(size)} is not a number of bytes")
        found.append(BundleFile(path, _string(entry, "sha256", SHA256, "64 lowercase hex digits"), size))
    paths = [file.path for file in found]
    if len(set(paths)) != len(paths):
        raise BadBundle("files: a wheel is listed twice")
    if not any(path.startswith(f"wheels/{NAME}-{version}-") for path in paths):
        raise BadBundle(f"files: no {NAME} wheel of version {version}")
    return tuple(found)


def sha256_of(path: Path) -> str:
    """The sha256 of the file at ``path`` (lowercase hex), read 1 MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def trusted_keys(folder: Path) -> list[Path]:
    """The public keys (``*.pem``) in ``folder``, sorted; none when the folder is missing."""
    return sorted(path for path in folder.glob("*.pem") if path.is_file()) if folder.is_dir() else []


def _openssl(args: Sequence[str], failure: type[Exception], timeout: float | None) -> subprocess.CompletedProcess[str]:
    """Run the openssl command line; ``failure`` when it cannot be run or does not finish within ``timeout`` s."""
    try:
        return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False, timeout=timeout)
    except FileNotFoundError:
        raise failure("openssl not found: install the openssl package") from None
    except subprocess.TimeoutExpired:
        raise failure(f"openssl did not finish within {timeout} s") from None


def _ed25519_key(path: Path) -> bool:
    """Whether ``path`` holds a PEM Ed25519 public key (openssl would check other kinds of signature with others)."""
    try:
        pem = re.search(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", path.read_text("ascii"), re.S)
        der = base64.b64decode("".join(pem[1].split()), validate=True) if pem else b""
    except (OSError, ValueError) as error:  # ValueError: not ASCII, not base64
        log.warning("release key %s is not readable: %s", path, error)
        return False
    if len(der) == len(ED25519_SPKI) + 32 and der.startswith(ED25519_SPKI):
        return True
    log.warning("release key %s is not an Ed25519 public key in PEM: ignored", path)
    return False


def _check_signature(manifest: bytes, signature: bytes, keys: Sequence[Path]) -> None:
    """InvalidSignature unless one of ``keys`` verifies ``signature`` over the bytes ``manifest``."""
    usable = [key for key in keys if _ed25519_key(key)]
    if not usable:
        raise InvalidSignature("no trusted release key (an Ed25519 public key) to check the signature with")
    with tempfile.TemporaryDirectory(prefix="kiosk-bundle-") as folder:
        data, sig = Path(folder, MANIFEST), Path(folder, SIGNATURE)
        data.write_bytes(manifest)
        sig.write_bytes(signature)
        for key in usable:
            result = _openssl(["pkeyutl", "-verify", "-pubin", "-inkey", str(key), "-rawin", "-in", str(data),
                              "-sigfile", str(sig)], InvalidSignature, OPENSSL_TIMEOUT_S)
            if result.returncode == 0 and "Signature Verified Successfully" in result.stdout:
                log.info("manifest signature verified with %s", key)
                return
    raise InvalidSignature(f"{SIGNATURE} is not a signature by a trusted key ({', '.join(key.name for key in usable)})")


def _members(raw: IO[bytes]) -> dict[str, tarfile.TarInfo]:
    """The tar's members by name, in order; BadBundle for anything but distinct regular files inside the bundle."""
    try:
        with tarfile.open(fileobj=raw, mode="r:") as tar:
            listing = tar.getmembers()
    except (tarfile.TarError, EOFError) as error:
        raise BadBundle(f"not an uncompressed tar file: {error}") from None
    found: dict[str, tarfile.TarInfo] = {}
    for member in listing:
        if member.name.startswith("/") or ".." in member.name.split("/"):
            raise BadBundle(f"member {_shown(member.name)} points outside the bundle")
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise BadBundle(f"member {_shown(member.name)} is not a regular file")
        if member.name in found:
            raise BadBundle(f"member {_shown(member.name)} is there twice")
        found[member.name] = member
    return found


def _pieces(raw: IO[bytes], member: tarfile.TarInfo) -> Iterator[bytes]:
    """A member's bytes, 1 MiB at a time; BadBundle when the file ends before them."""
    raw.seek(member.offset_data)
    left = member.size
    while left:
        piece = raw.read(min(CHUNK, left))
        if not piece:
            raise BadBundle(f"{member.name} is cut short: the bundle is truncated")
        left -= len(piece)
        yield piece


def _check_wheel(raw: IO[bytes], member: tarfile.TarInfo, file: BundleFile, out: IO[bytes] | None = None) -> None:
    """BadBundle unless ``member`` has the size and sha256 ``file`` lists (its bytes also written to ``out``)."""
    if member.size != file.size:
        raise BadBundle(f"{file.path} is {member.size} bytes, not {file.size} as listed")
    digest = hashlib.sha256()
    for piece in _pieces(raw, member):
        digest.update(piece)
        if out is not None:
            out.write(piece)
    if digest.hexdigest() != file.sha256:
        raise BadBundle(f"{file.path} has sha256 {digest.hexdigest()}, not {file.sha256} as listed")


def verify(bundle: Path, keys: Sequence[Path], sha256: str | None = None) -> Manifest:
    """The manifest of ``bundle`` once its checksum (if given), members, manifest, signature and wheels are right."""
    if sha256 is not None and (actual := sha256_of(bundle)) != sha256.strip().lower():
        raise ChecksumMismatch(f"the file's sha256 is {actual}, not {_shown(sha256)} as given: "
                               "a damaged or different download")
    with bundle.open("rb") as raw:
        found = _members(raw)
        names = list(found)
        if not names or names[0] != MANIFEST:
            raise BadBundle(f"the first member is not {MANIFEST}")
        if found[MANIFEST].size > MAX_MANIFEST:
            raise BadBundle(f"{MANIFEST} is {found[MANIFEST].size} bytes, more than {MAX_MANIFEST}")
        data = b"".join(_pieces(raw, found[MANIFEST]))
        manifest = Manifest.from_json(data)
        listed = [MANIFEST, SIGNATURE, *(file.path for file in manifest.files)]
        unlisted, missing = [n for n in names if n not in listed], [n for n in listed[2:] if n not in found]
        if unlisted:
            raise BadBundle(f"member {_shown(unlisted[0])} is not listed in {MANIFEST}")
        if missing:
            raise BadBundle(f"{missing[0]} is listed in {MANIFEST} but not in the bundle")
        if SIGNATURE not in found:
            raise InvalidSignature(f"the bundle is not signed: it has no {SIGNATURE}")
        if names != listed:
            raise BadBundle(f"the members are not in the order {MANIFEST}, {SIGNATURE}, the wheels as listed")
        if found[SIGNATURE].size != SIGNATURE_BYTES:
            raise InvalidSignature(f"{SIGNATURE} is {found[SIGNATURE].size} bytes, not an Ed25519 signature's 64")
        _check_signature(data, b"".join(_pieces(raw, found[SIGNATURE])), keys)
        for file in manifest.files:
            _check_wheel(raw, found[file.path], file)
    return manifest


def check_platform(manifest: Manifest) -> None:
    """WrongPlatform unless the bundle was built for this interpreter's Python major.minor and platform."""
    python, platform = f"{sys.version_info.major}.{sys.version_info.minor}", sysconfig.get_platform()
    if (manifest.python, manifest.platform) != (python, platform):
        raise WrongPlatform(f"built for Python {manifest.python} on {manifest.platform}; "
                            f"this station runs Python {python} on {platform}")


def extract_wheels(bundle: Path, manifest: Manifest, dest: Path) -> list[Path]:
    """Write each listed wheel to ``dest``, hashed while written and synced; BadBundle if one differs from its listing."""
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with bundle.open("rb") as raw:
        found = _members(raw)
        for file in manifest.files:
            if file.path not in found:
                raise BadBundle(f"{file.path} is no longer in the bundle")
            written.append(dest / PurePosixPath(file.path).name)
            try:
                with written[-1].open("wb") as out:
                    _check_wheel(raw, found[file.path], file, out)
                    out.flush()
                    os.fsync(out.fileno())
            except BadBundle:
                written[-1].unlink()
                raise
    folder = os.open(dest, os.O_RDONLY)  # the new names, too, survive a power cut
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return written


def sign(manifest_bytes: bytes, key: Path) -> bytes:
    """The Ed25519 signature (64 bytes) of ``manifest_bytes`` with the private key ``key``, made by openssl."""
    with tempfile.TemporaryDirectory(prefix="kiosk-sign-") as folder:
        data, sig = Path(folder, MANIFEST), Path(folder, SIGNATURE)
        data.write_bytes(manifest_bytes)
        result = _openssl(["pkeyutl", "-sign", "-rawin", "-inkey", str(key), "-in", str(data), "-out", str(sig)],
                         SigningFailed, None)  # no time limit: openssl may ask for the key's passphrase
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["(no message)"]
            raise SigningFailed(f"openssl could not sign with {key}: {lines[-1]}")
        signature = sig.read_bytes()
    if len(signature) != SIGNATURE_BYTES:
        raise SigningFailed(f"{key} is not an Ed25519 private key (its signature is {len(signature)} bytes, not 64)")
    return signature


def write_bundle(out: Path, manifest: Manifest, signature: bytes, wheels: Sequence[Path]) -> None:
    """Write the bundle to ``out`` (through ``out.part``): the same manifest, signature and wheels give the same bytes."""
    by_name = {wheel.name: wheel for wheel in wheels}
    if sorted(by_name) != sorted(PurePosixPath(file.path).name for file in manifest.files):
        raise ValueError("the wheels given are not the ones the manifest lists")
    mtime = int(manifest.created.timestamp())

    def add(tar: tarfile.TarFile, name: str, content: IO[bytes], size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.type = size, mtime, 0o644, tarfile.REGTYPE
        info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
        tar.addfile(info, content)

    part = out.with_name(out.name + ".part")
    try:
        with part.open("wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                data = manifest.to_json()
                add(tar, MANIFEST, io.BytesIO(data), len(data))
                add(tar, SIGNATURE, io.BytesIO(signature), len(signature))
                for file in manifest.files:
                    with by_name[PurePosixPath(file.path).name].open("rb") as wheel:
                        add(tar, file.path, wheel, os.fstat(wheel.fileno()).st_size)
            raw.flush()
            os.fsync(raw.fileno())
        part.replace(out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
