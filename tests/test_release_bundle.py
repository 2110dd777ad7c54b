"""Release bundles (kiosk/releases/bundle.py, provisioning/release.py): a real bundle built, signed, checked and refused."""
from __future__ import annotations

import copy
import dataclasses
import datetime
import gettext
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from release_kit import Kit

from kiosk.releases.bundle import (
    BadBundle,
    BundleFile,
    BundleRefused,
    ChecksumMismatch,
    InvalidSignature,
    Manifest,
    SigningFailed,
    WrongPlatform,
    check_platform,
    extract_wheels,
    sha256_of,
    sign,
    trusted_keys,
    verify,
    write_bundle,
)

SCRIPT = ROOT / "provisioning" / "release.py"
VERSION = "0.2.0"
CREATED = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.UTC)
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
MO = "screens/locale/de/LC_MESSAGES/kiosk.mo"

Member = tuple[tarfile.TarInfo, bytes]


def release(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """provisioning/release.py as the operator runs it."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False,
                          timeout=300)


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The openssl command line (it must succeed)."""
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result


@dataclasses.dataclass(frozen=True)
class Keys:
    """Two release key pairs made by `release.py keygen`, and an EC key that is not a release key."""

    key: Path
    pem: Path
    other: Path
    other_pem: Path
    ec: Path
    ec_pem: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    for name in ("release-signing", "other"):
        result = release("keygen", "--out", folder, *(["--name", name] if name == "other" else []))
        assert result.returncode == 0, result.stderr
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", folder / "ec.key")
    openssl("pkey", "-in", folder / "ec.key", "-pubout", "-out", folder / "ec.pem")
    return Keys(folder / "release-signing.key", folder / "release-signing.pem", folder / "other.key",
                folder / "other.pem", folder / "ec.key", folder / "ec.pem")


@dataclasses.dataclass(frozen=True)
class Built:
    """The bundle `release.py build` made of a copy of this checkout at version 0.2.0, and what it printed."""

    bundle: Path
    stdout: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, keys: Keys, kit: Kit) -> Built:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("out")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{VERSION}"', text, count=1), encoding="utf-8")
    result = release("build", "--source", source, "--key", keys.key, "--out", out, "--find-links", kit.wheelhouse,
                     "--no-index")  # the kit's wheels: the same as from the index, without asking it
    assert result.returncode == 0, result.stderr
    return Built(out / f"kiosk-{VERSION}.tar", result.stdout)


@dataclasses.dataclass(frozen=True)
class Small:
    """A small bundle of two made-up wheels, signed with the test key (no pip): for manifest rules and fuzzing."""

    bundle: Path
    manifest: Manifest
    wheels: tuple[Path, ...]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Small:
    folder = tmp_path_factory.mktemp("small")
    wheels = (folder / f"kiosk-{VERSION}-py3-none-any.whl", folder / "dep-1.0-py3-none-any.whl")
    wheels[0].write_bytes(b"the kiosk wheel\n" * 40)
    wheels[1].write_bytes(b"a dependency\n" * 30)
    manifest = Manifest(VERSION, CREATED, HERE, sysconfig.get_platform(), f"kiosk=={VERSION}",
                        tuple(BundleFile(f"wheels/{w.name}", sha256_of(w), w.stat().st_size) for w in wheels))
    write_bundle(folder / "small.tar", manifest, sign(manifest.to_json(), keys.key), wheels)
    return Small(folder / "small.tar", manifest, wheels)


def members(bundle: Path) -> list[Member]:
    """Every member of a tar with its bytes."""
    with tarfile.open(bundle) as tar:
        found = []
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            found.append((info, handle.read() if handle else b""))
        return found


def write_tar(path: Path, entries: list[Member]) -> Path:
    """A tar of ``entries`` (the bytes of regular files as given)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            info = copy.copy(info)
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def regular(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def retarred(bundle: Path, target: Path, change: Callable[[list[Member]], list[Member]]) -> Path:
    """A copy of ``bundle`` with its members changed by ``change``."""
    return write_tar(target, change(members(bundle)))


def replaced(name: str, change: Callable[[bytes], bytes]) -> Callable[[list[Member]], list[Member]]:
    """A change that gives member ``name`` other bytes."""
    return lambda entries: [(info, change(data) if info.name == name else data) for info, data in entries]


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def refused(kind: type[BundleRefused], bundle: Path, keys: list[Path], sha256: str | None = None) -> str:
    """The reason ``verify`` gives, which must be of ``kind``."""
    with pytest.raises(BundleRefused) as caught:
        verify(bundle, keys, sha256)
    assert type(caught.value) is kind, caught.value
    return str(caught.value)


# ---- the real bundle ----

@pytest.mark.slow
def test_the_built_bundle_verifies_and_holds_the_release(built: Built, keys: Keys, tmp_path: Path) -> None:
    manifest = verify(built.bundle, [keys.pem])
    assert (manifest.version, manifest.python, manifest.platform) == (VERSION, HERE, sysconfig.get_platform())
    assert manifest.requirement == f"kiosk=={VERSION}"
    names = [Path(file.path).name for file in manifest.files]
    assert f"kiosk-{VERSION}-py3-none-any.whl" in names
    assert {name.split("-")[0] for name in names} >= {"kiosk", "pygame_ce", "paho_mqtt", "peewee", "setuptools"}
    entries = members(built.bundle)
    assert [info.name for info, _ in entries] == ["manifest.json", "manifest.sig", *(f.path for f in manifest.files)]
    timestamp = int(manifest.created.timestamp())
    assert {(info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime, info.type) for info, _ in entries} == {
        (0o644, 0, 0, "", "", timestamp, tarfile.REGTYPE)}
    assert entries[0][1] == manifest.to_json() and len(entries[1][1]) == 64
    # the signature checks out with openssl as docs/updates.md says
    (tmp_path / "manifest.json").write_bytes(entries[0][1])
    (tmp_path / "manifest.sig").write_bytes(entries[1][1])
    assert "Signature Verified Successfully" in openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", keys.pem, "-rawin", "-in", tmp_path / "manifest.json",
        "-sigfile", tmp_path / "manifest.sig").stdout
    # the kiosk wheel carries the compiled translations
    wheel = dict(entries)[next(info for info, _ in entries if info.name.startswith("wheels/kiosk-"))]
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        german = gettext.GNUTranslations(io.BytesIO(archive.read(MO)))
    assert german.gettext("Your card has expired.") == "Ihre Karte ist abgelaufen."
    # what the tool printed: the hash of the file and staff's payload
    digest = sha256_of(built.bundle)
    assert f"sha256: {digest}\n" in built.stdout and f"size: {built.bundle.stat().st_size} bytes" in built.stdout
    payload = json.loads(built.stdout.splitlines()[-1])
    assert payload == {"url": f"https://<your server>/kiosk-{VERSION}.tar", "sha256": digest}


@pytest.mark.slow
def test_only_a_trusted_ed25519_key_verifies(built: Built, keys: Keys) -> None:
    assert "not a signature by a trusted key (other.pem)" in refused(InvalidSignature, built.bundle, [keys.other_pem])
    assert "no trusted release key" in refused(InvalidSignature, built.bundle, [])
    assert "no trusted release key" in refused(InvalidSignature, built.bundle, [keys.ec_pem, keys.key])
    assert verify(built.bundle, [keys.ec_pem, keys.other_pem, keys.pem]).version == VERSION  # keys in rotation


@pytest.mark.slow
def test_a_changed_signature_or_manifest_is_refused(built: Built, keys: Keys, tmp_path: Path) -> None:
    signature = retarred(built.bundle, tmp_path / "sig.tar", replaced("manifest.sig", lambda data: flip(data, 10)))
    assert "not a signature by a trusted key" in refused(InvalidSignature, signature, [keys.pem])
    # the same JSON with a tab for two spaces: still a valid manifest, but not the bytes that were signed
    spaced = retarred(built.bundle, tmp_path / "space.tar",
                      replaced("manifest.json", lambda data: data.replace(b'\n  "created"', b'\n\t"created"', 1)))
    assert Manifest.from_json(members(spaced)[0][1]) == verify(built.bundle, [keys.pem])
    refused(InvalidSignature, spaced, [keys.pem])
    hashed = retarred(built.bundle, tmp_path / "hash.tar",
                      replaced("manifest.json", lambda data: re.sub(rb'"sha256": "(.)', lambda m: b'"sha256": "' + (
                          b"1" if m[1] == b"0" else b"0"), data, count=1)))
    refused(InvalidSignature, hashed, [keys.pem])
    unsigned = retarred(built.bundle, tmp_path / "unsigned.tar",
                        lambda entries: [entry for entry in entries if entry[0].name != "manifest.sig"])
    assert "not signed" in refused(InvalidSignature, unsigned, [keys.pem])


@pytest.mark.slow
def test_the_checksum_staff_give(built: Built, keys: Keys, tmp_path: Path) -> None:
    digest = sha256_of(built.bundle)
    assert digest == hashlib.sha256(built.bundle.read_bytes()).hexdigest()
    assert verify(built.bundle, [keys.pem], digest.upper()).version == VERSION
    assert f"the file's sha256 is {digest}" in refused(ChecksumMismatch, built.bundle, [keys.pem], "0" * 64)
    size = built.bundle.stat().st_size
    for cut in (100, 1500, size // 2, size - 20_000):
        truncated = tmp_path / f"cut-{cut}.tar"
        with built.bundle.open("rb") as whole:
            truncated.write_bytes(whole.read(cut))
        refused(ChecksumMismatch, truncated, [keys.pem], digest)
        refused(BadBundle, truncated, [keys.pem])


@pytest.mark.slow
@pytest.mark.parametrize("how", ["another wheel", "one byte"])
def test_a_replaced_wheel_is_refused(built: Built, keys: Keys, tmp_path: Path, how: str) -> None:
    entries = members(built.bundle)
    kiosk = next(info.name for info, _ in entries if info.name.startswith("wheels/kiosk-"))
    other = next(data for info, data in entries if info.name.startswith("wheels/colorzero-"))
    change = (lambda data: other) if how == "another wheel" else (lambda data: flip(data, len(data) // 2))
    reason = refused(BadBundle, write_tar(tmp_path / "b.tar", replaced(kiosk, change)(entries)), [keys.pem])
    assert reason.startswith(kiosk) and ("bytes, not" if how == "another wheel" else "has sha256") in reason


def symlink(name: str, target: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, b""


def folder(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, b""


@pytest.mark.slow
@pytest.mark.parametrize("change, kind, reason", [
    (lambda e: e + [regular("notes.txt", b"hello")], BadBundle, "'notes.txt' is not listed"),
    (lambda e: e + [regular("wheels/extra-1.0-py3-none-any.whl", b"x")], BadBundle, "extra-1.0-py3-none-any.whl' is not"),
    (lambda e: e + [symlink("wheels/link.whl", "/etc/passwd")], BadBundle, "'wheels/link.whl' is not a regular file"),
    (lambda e: e + [folder("wheels")], BadBundle, "'wheels' is not a regular file"),
    (lambda e: e + [regular("../x", b"x")], BadBundle, "'../x' points outside the bundle"),
    (lambda e: e + [regular("wheels/../../x", b"x")], BadBundle, "points outside the bundle"),
    (lambda e: e + [regular("/etc/cron.d/x", b"x")], BadBundle, "'/etc/cron.d/x' points outside the bundle"),
    (lambda e: e + [e[0]], BadBundle, "'manifest.json' is there twice"),
    (lambda e: e[:-1], BadBundle, "is listed in manifest.json but not in the bundle"),
    (lambda e: [e[1], e[0], *e[2:]], BadBundle, "the first member is not manifest.json"),
    (lambda e: [e[0], e[1], *reversed(e[2:])], BadBundle, "not in the order"),
    (lambda e: [e[0], e[2], e[1], *e[3:]], BadBundle, "not in the order"),
])
def test_members_other_than_the_listed_files_are_refused(built: Built, keys: Keys, tmp_path: Path,
                                                         change: Callable[[list[Member]], list[Member]],
                                                         kind: type[BundleRefused], reason: str) -> None:
    assert reason in refused(kind, retarred(built.bundle, tmp_path / "b.tar", change), [keys.pem])


@pytest.mark.slow
def test_a_bundle_for_another_python_or_platform_is_refused(built: Built, keys: Keys) -> None:
    manifest = verify(built.bundle, [keys.pem])
    check_platform(manifest)
    with pytest.raises(WrongPlatform) as caught:
        check_platform(dataclasses.replace(manifest, python="3.13", platform="linux-aarch64"))
    assert str(caught.value) == (f"built for Python 3.13 on linux-aarch64; this station runs Python {HERE} on "
                                 f"{sysconfig.get_platform()}")
    with pytest.raises(WrongPlatform):
        check_platform(dataclasses.replace(manifest, platform="linux-armv7l"))


@pytest.mark.slow
def test_extract_writes_exactly_the_listed_wheels(built: Built, keys: Keys, tmp_path: Path) -> None:
    manifest = verify(built.bundle, [keys.pem])
    written = extract_wheels(built.bundle, manifest, tmp_path / "wheels")
    assert written == [tmp_path / "wheels" / Path(file.path).name for file in manifest.files]
    assert sorted((tmp_path / "wheels").iterdir()) == sorted(written)
    assert [(sha256_of(path), path.stat().st_size) for path in written] == [(f.sha256, f.size) for f in manifest.files]
    # the file changed after its check: one byte of the kiosk wheel, in place
    changed = tmp_path / "changed.tar"
    shutil.copyfile(built.bundle, changed)
    with tarfile.open(changed) as tar:
        kiosk = next(info for info in tar.getmembers() if info.name.startswith("wheels/kiosk-"))
    with changed.open("r+b") as handle:
        handle.seek(kiosk.offset_data + 100)
        byte = handle.read(1)
        handle.seek(kiosk.offset_data + 100)
        handle.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(BadBundle, match=f"^{kiosk.name} has sha256 [0-9a-f]{{64}}, not "):
        extract_wheels(changed, manifest, tmp_path / "again")
    assert not (tmp_path / "again" / Path(kiosk.name).name).exists()


@pytest.mark.slow
def test_the_same_manifest_signature_and_wheels_give_the_same_bytes(built: Built, keys: Keys, tmp_path: Path) -> None:
    manifest = verify(built.bundle, [keys.pem])
    wheels = extract_wheels(built.bundle, manifest, tmp_path / "wheels")
    signature = members(built.bundle)[1][1]
    write_bundle(tmp_path / "a.tar", manifest, signature, list(reversed(wheels)))
    write_bundle(tmp_path / "b.tar", manifest, signature, wheels)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes() == built.bundle.read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.tar", "b.tar", "wheels"]  # no .part left


@pytest.mark.slow
def test_the_verify_command(built: Built, keys: Keys) -> None:
    digest = sha256_of(built.bundle)
    result = release("verify", built.bundle, "--key", keys.other_pem, "--key", keys.pem, "--sha256", digest)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"kiosk {VERSION}, created ")
    assert result.stdout.endswith(f"signature verified; sha256: {digest}\n")
    result = release("verify", built.bundle, "--key", keys.other_pem)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "release.py: refused: manifest.sig is not a signature by a trusted key (other.pem)\n"
    result = release("verify", built.bundle, "--key", keys.pem, "--sha256", "0" * 64)
    assert result.returncode == 1 and result.stderr.startswith("release.py: refused: the file's sha256 is ")
    result = release("verify", built.bundle, "--key", keys.pem.with_name("missing.pem"))
    assert result.returncode == 2 and "no such file" in result.stderr


# ---- the commands' refusals (no pip) ----

def test_keygen_makes_an_ed25519_pair_and_never_overwrites(keys: Keys, tmp_path: Path) -> None:
    assert (keys.key.stat().st_mode & 0o777, keys.pem.stat().st_mode & 0o777) == (0o600, 0o644)
    assert "ED25519 Public-Key" in openssl("pkey", "-pubin", "-in", keys.pem, "-noout", "-text").stdout
    assert len(sign(b"x", keys.key)) == 64
    before = (keys.key.read_bytes(), keys.pem.read_bytes())
    result = release("keygen", "--out", keys.key.parent)
    assert result.returncode == 2 and "exists already: a key is never overwritten" in result.stderr
    assert (keys.key.read_bytes(), keys.pem.read_bytes()) == before
    result = release("keygen", "--out", tmp_path, "--name", "x")
    assert result.returncode == 0 and "/etc/kiosk/release-keys/x.pem" in result.stdout
    (tmp_path / "y.pem").write_text("someone's", encoding="ascii")
    result = release("keygen", "--out", tmp_path, "--name", "y")
    assert result.returncode == 2 and not (tmp_path / "y.key").exists()
    assert release("keygen", "--out", tmp_path, "--name", "../z").returncode == 2


def test_build_refuses_a_missing_key_and_an_existing_output(keys: Keys, tmp_path: Path) -> None:
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    (source / "pyproject.toml").write_text(f'[project]\nname = "kiosk"\nversion = "{VERSION}"\n', encoding="utf-8")
    (out / f"kiosk-{VERSION}.tar").write_bytes(b"an earlier build")
    for key, message in [(tmp_path / "missing.key", "no such file"), (keys.pem, "not a private key openssl can read"),
                         (keys.key, "exists already: a bundle is never overwritten")]:
        result = release("build", "--source", source, "--key", key, "--out", out)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert message in result.stderr
    assert (out / f"kiosk-{VERSION}.tar").read_bytes() == b"an earlier build"
    (source / "pyproject.toml").write_text('[project]\nname = "kiosk"\nversion = "../1"\n', encoding="utf-8")
    result = release("build", "--source", source, "--key", keys.key, "--out", out)
    assert result.returncode == 2 and "version '../1' is not" in result.stderr


def test_signing_needs_an_ed25519_key(keys: Keys) -> None:
    with pytest.raises(SigningFailed, match="is not an Ed25519 private key"):
        sign(b"{}", keys.ec)
    with pytest.raises(SigningFailed, match="openssl could not sign"):
        sign(b"{}", keys.pem)


def test_the_bundle_module_needs_only_the_standard_library() -> None:
    """A bare interpreter (no site packages, as Debian's python3 outside the venv) imports it, and nothing else."""
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import kiosk.releases.bundle; "
              "print(*sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names))")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(ROOT)], capture_output=True, text=True,
                            check=False)
    assert result.stdout.split() == ["__main__", "kiosk", "kiosk.releases", "kiosk.releases.bundle"], result.stderr


def test_trusted_keys_are_the_pem_files_of_the_folder(tmp_path: Path) -> None:
    assert trusted_keys(tmp_path / "missing") == []
    for name in ("b.pem", "a.pem", "notes.txt"):
        (tmp_path / name).write_text("x", encoding="ascii")
    (tmp_path / "c.pem").mkdir()
    assert trusted_keys(tmp_path) == [tmp_path / "a.pem", tmp_path / "b.pem"]


# ---- the manifest's rules ----

def test_the_manifest_bytes(small: Small) -> None:
    kiosk, dep = small.manifest.files
    assert small.manifest.to_json() == f"""\
{{
  "created": "2026-12-06T10:00:00+00:00",
  "files": [
    {{
      "path": "wheels/kiosk-0.2.0-py3-none-any.whl",
      "sha256": "{kiosk.sha256}",
      "size": 640
    }},
    {{
      "path": "wheels/dep-1.0-py3-none-any.whl",
      "sha256": "{dep.sha256}",
      "size": 390
    }}
  ],
  "format": 1,
  "name": "kiosk",
  "platform": "{sysconfig.get_platform()}",
  "python": "{HERE}",
  "requirement": "kiosk==0.2.0",
  "version": "0.2.0"
}}
""".encode()
    assert Manifest.from_json(small.manifest.to_json()) == small.manifest


def edited(small: Small, keys: Keys, target: Path, edit: Callable[[dict[str, object]], object]) -> Path:
    """The small bundle with its manifest edited and signed again with the trusted key."""
    document = json.loads(small.manifest.to_json())
    edit(document)
    data = (json.dumps(document, sort_keys=True, indent=2) + "\n").encode()
    entries = members(small.bundle)
    return write_tar(target, [regular("manifest.json", data), regular("manifest.sig", sign(data, keys.key)), *entries[2:]])


def files_edit(change: Callable[[list[dict[str, object]]], object]) -> Callable[[dict[str, object]], object]:
    return lambda document: change(document["files"])  # type: ignore[arg-type]


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d.update(version="../1"), "version: '../1' is not a digit, then up to 39"),
    (lambda d: d.update(version="0.2.0\n"), "version: '0.2.0\\n' is not"),
    (lambda d: d.update(version="1" * 41), "version: "),
    (lambda d: d.update(created="2026-12-06T10:00:00"), "created: '2026-12-06T10:00:00' has no UTC offset"),
    (lambda d: d.update(created="yesterday"), "created: 'yesterday' is not an ISO 8601 time"),
    (lambda d: d.update(requirement="kiosk==0.3.0"), "requirement: 'kiosk==0.3.0' is not kiosk==0.2.0 or"),
    (lambda d: d.update(requirement="other==0.2.0"), "requirement: "),
    (lambda d: d.update(requirement="kiosk[pi]==0.2.0 --index-url=http://x"), "requirement: "),
    (lambda d: d.update(format=2), "format: 2 is not supported"),
    (lambda d: d.update(format=True), "format: True is not supported"),
    (lambda d: d.update(name="other"), "name: 'other' is not 'kiosk'"),
    (lambda d: d.update(python="3"), "python: '3' is not a Python major.minor"),
    (lambda d: d.update(platform="linux x86_64"), "platform: 'linux x86_64' is not"),
    (lambda d: d.update(notes="hi"), "manifest.json has unknown fields: 'notes'"),
    (lambda d: d.pop("created"), "manifest.json has no created"),
    (lambda d: d.update(files=[]), "files: not a list of one or more wheels"),
    (files_edit(lambda f: f.pop(0)), "files: no kiosk wheel of version 0.2.0"),
    (files_edit(lambda f: f.append(dict(f[1]))), "files: a wheel is listed twice"),
    (files_edit(lambda f: f[1].update(path="wheels/../dep.whl")), "path: 'wheels/../dep.whl' is not wheels/<file>.whl"),
    (files_edit(lambda f: f[1].update(path="dep.whl")), "path: 'dep.whl' is not"),
    (files_edit(lambda f: f[1].update(size=-1)), "size -1 is not a number of bytes"),
    (files_edit(lambda f: f[1].update(size="390")), "size '390' is not a number of bytes"),
    (files_edit(lambda f: f[1].update(sha256=str(f[1]["sha256"]).upper())), "sha256: "),
    (files_edit(lambda f: f[1].pop("size")), "files: entry 2 has no size"),
])
def test_a_manifest_field_that_breaks_a_rule_is_refused(small: Small, keys: Keys, tmp_path: Path,
                                                        edit: Callable[[dict[str, object]], object], reason: str) -> None:
    assert reason in refused(BadBundle, edited(small, keys, tmp_path / "b.tar", edit), [keys.pem])


def test_a_manifest_that_is_not_json_is_refused(small: Small, keys: Keys, tmp_path: Path) -> None:
    for data, reason in [(b"\xff{}", "is not UTF-8 JSON"), (b"[1]", "is not a JSON object"), (b"[" * 100_000, "JSON")]:
        entries = members(small.bundle)
        bundle = write_tar(tmp_path / "b.tar", [regular("manifest.json", data), *entries[1:]])
        assert reason in refused(BadBundle, bundle, [keys.pem])
    (tmp_path / "text.tar").write_text("not a tar at all\n" * 100, encoding="ascii")
    assert "not an uncompressed tar file" in refused(BadBundle, tmp_path / "text.tar", [keys.pem])
    (tmp_path / "empty.tar").write_bytes(b"")
    refused(BadBundle, tmp_path / "empty.tar", [keys.pem])


# ---- fuzz: whatever the bytes, a refusal or the bundle as signed ----

@st.composite
def damaged(draw: st.DrawFn, original: bytes, end: int) -> bytes:
    """Random bytes, or the small bundle with bytes flipped, cut, inserted or removed (mostly where it holds data)."""
    data = bytearray(original)
    kind = draw(st.sampled_from(["random", "flip", "cut", "insert", "remove"]))
    if kind == "random":
        return draw(st.binary(max_size=4096))
    if kind == "flip":
        for at in draw(st.lists(st.integers(0, end - 1), min_size=1, max_size=4)):
            data[at] ^= draw(st.integers(1, 255))
    elif kind == "cut":
        del data[draw(st.integers(0, end)):]
    elif kind == "insert":
        at = draw(st.integers(0, end))
        data[at:at] = draw(st.binary(min_size=1, max_size=600))
    else:
        at = draw(st.integers(0, end - 1))
        del data[at:at + draw(st.integers(1, 600))]
    return bytes(data)


def test_any_damage_is_a_refusal_or_changes_nothing(small: Small, keys: Keys,
                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    original = small.bundle.read_bytes()
    with tarfile.open(small.bundle) as tar:
        last = tar.getmembers()[-1]
    target = tmp_path_factory.mktemp("fuzz") / "b.tar"

    @settings(max_examples=200, deadline=None)
    @given(damaged(original, last.offset_data + last.size))
    def check(data: bytes) -> None:
        target.write_bytes(data)
        try:
            assert verify(target, [keys.pem]) == small.manifest
        except BundleRefused:
            pass

    check()
