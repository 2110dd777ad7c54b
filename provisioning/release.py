"""The operator's release tool: the Ed25519 signing key, a signed release bundle of the station software, its check.

    release.py keygen --out DIR [--name NAME]
    release.py build --source DIR --key KEY --out DIR [--extra pi] [--find-links DIR]... [--no-index]
    release.py verify BUNDLE --key PUB [--key PUB]... [--sha256 HEX]

Run it with the project's venv from a checkout (``.venv/bin/python provisioning/release.py ...``), on a machine of
the stations' platform and Python (docs/updates.md, "Building and signing a release"). Exit codes: 0 done, 1 refused
or failed, 2 usage (also a key or output that is missing, or there already).
"""
from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's kiosk package, beside provisioning/
from kiosk.releases.bundle import (
    VERSION,
    BundleFile,
    BundleRefused,
    Manifest,
    SigningFailed,
    sha256_of,
    sign,
    verify,
    write_bundle,
)

__all__ = [
    "KEY_NAME", "STATION_KEYS", "Failed", "Usage", "build", "keygen", "main", "parse_arguments", "project_version", "run",
    "run_command", "source_files", "summary", "write_new",
]

KEY_NAME = "release-signing"
STATION_KEYS = Path("/etc/kiosk/release-keys")  # where stations look for the public keys they trust
KEY_NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SKIPPED_FOLDERS = (".git", ".venv", "__pycache__", "build", "var", ".pytest_cache", ".hypothesis", ".mypy_cache",
                   ".ruff_cache", "*.egg-info")  # what builds, tests and a running station leave in a copy
SKIPPED_FILES = ("*.mo", "*.db", "*.db-*", ".lgd-nfy*")


class Usage(Exception):
    """A command the tool does not carry out as given: a key or output missing or there already (exit code 2)."""


class Failed(Exception):
    """A step of the build failed: openssl, git, the translations or pip (exit code 1)."""


def run(command: Sequence[str], what: str, cwd: Path | None = None, stdin: str | None = None,
        env: dict[str, str] | None = None) -> str:
    """The standard output of ``command``; Failed naming ``what`` with the command's last error lines."""
    try:
        result = subprocess.run(command, cwd=cwd, input=stdin, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise Failed(f"{what}: {command[0]} not found") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()[-5:] or ["(no message)"]
        raise Failed(f"{what} failed (exit {result.returncode}):\n  " + "\n  ".join(lines))
    return result.stdout


def write_new(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` with ``mode``; Usage when the file exists (a key is never overwritten)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise Usage(f"{path} exists already: a key is never overwritten (move it away or give another --name)") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text)
    path.chmod(mode)


def keygen(out: Path, name: str) -> tuple[Path, Path]:
    """A new Ed25519 key pair: ``out/NAME.key`` (private, 0600) and ``out/NAME.pem`` (public, 0644)."""
    if not KEY_NAME_RULE.fullmatch(name):
        raise Usage(f"--name {name!r}: use letters, digits, '_', '.', '-' (1 to 64, a letter or digit first)")
    key, public = out / f"{name}.key", out / f"{name}.pem"
    for path in (key, public):
        if path.exists():
            raise Usage(f"{path} exists already: a key is never overwritten (move it away or give another --name)")
    private = run(["openssl", "genpkey", "-algorithm", "ed25519"], "openssl genpkey")
    pem = run(["openssl", "pkey", "-pubout"], "openssl pkey", stdin=private)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_new(key, private, 0o600)
    write_new(public, pem, 0o644)
    return key, public


def source_files(source: Path) -> list[str]:
    """The files of the source: those git tracks in a checkout, else all but what builds and tests leave behind."""
    if (source / ".git").exists():
        listed = run(["git", "-c", "safe.directory=*", "-C", str(source), "ls-files", "-z"], "git ls-files")
        return sorted(name for name in listed.split("\0") if name and (source / name).is_file())
    found: list[str] = []
    for folder, folders, names in os.walk(source):
        folders[:] = [f for f in folders if not any(fnmatch.fnmatch(f, pattern) for pattern in SKIPPED_FOLDERS)]
        found += [(Path(folder) / n).relative_to(source).as_posix() for n in names
                  if not any(fnmatch.fnmatch(n, pattern) for pattern in SKIPPED_FILES)]
    return sorted(found)


def project_version(source: Path) -> str:
    """``[project] version`` of the source's pyproject.toml; Usage when it is missing or not a bundle's version."""
    try:
        version = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        raise Usage(f"--source {source}: no [project] version in pyproject.toml ({error})") from None
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise Usage(f"--source {source}: version {version!r} is not a digit then up to 39 of [0-9A-Za-z.+-]")
    return version


def build(source: Path, key: Path, out: Path, extra: str | None = None, find_links: Sequence[Path] = (),
          no_index: bool = False) -> tuple[Path, Manifest]:
    """Build, sign and check ``out/kiosk-<version>.tar`` from ``source`` for this interpreter and platform."""
    if not key.is_file():
        raise Usage(f"--key {key}: no such file")
    try:  # the public key, to check the finished bundle with; and proof that the key is readable
        public = run(["openssl", "pkey", "-in", str(key), "-pubout"], "openssl pkey")
    except Failed as error:
        raise Usage(f"--key {key}: not a private key openssl can read: {error}") from None
    version = project_version(source)
    target = out / f"kiosk-{version}.tar"
    if target.exists():
        raise Usage(f"{target} exists already: a bundle is never overwritten (move it away first)")
    with tempfile.TemporaryDirectory(prefix="kiosk-release-") as temp:
        tree, wheels = Path(temp, "source"), Path(temp, "wheels")
        for name in source_files(source):
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, tree / name)
        run([sys.executable, "-m", "babel.messages.frontend", "compile", "--domain", "kiosk", "--directory",
             "screens/locale"], "compiling the translations", cwd=tree)
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels)]
        pip += [f"--find-links={folder.resolve()}" for folder in find_links] + (["--no-index"] if no_index else [])
        # PYPI=1: lgpio, where PyPI has no wheel for this Python (3.13), is built with its C library inside, as
        # provisioning/setup.sh builds it (Debian has no liblgpio-dev)
        run([*pip, f"{tree}[{extra}]" if extra else str(tree)], "building the wheels (pip wheel)",
            env={**os.environ, "PYPI": "1"})
        # Every wheel stays, setuptools too: colorzero (gpiozero's) requires it, so pip on the station needs it.
        built = sorted(wheels.glob("*.whl"))
        if not any(wheel.name.startswith(f"kiosk-{version}-") for wheel in built):
            raise Failed(f"pip built no kiosk-{version}-*.whl: write the version in pyproject.toml in its "
                         f"normal form ({', '.join(wheel.name for wheel in built)})")
        manifest = Manifest(version, datetime.datetime.now(datetime.UTC).replace(microsecond=0),
                            f"{sys.version_info.major}.{sys.version_info.minor}", sysconfig.get_platform(),
                            f"kiosk[{extra}]=={version}" if extra else f"kiosk=={version}",
                            tuple(BundleFile(f"wheels/{wheel.name}", sha256_of(wheel), wheel.stat().st_size)
                                  for wheel in built))
        data = manifest.to_json()
        Manifest.from_json(data)  # what a station would refuse is not signed
        out.mkdir(parents=True, exist_ok=True)
        write_bundle(target, manifest, sign(data, key), built)
        Path(temp, "release.pem").write_text(public, encoding="ascii")
        try:
            verify(target, [Path(temp, "release.pem")])
        except BundleRefused:
            target.unlink()
            raise
    return target, manifest


def summary(manifest: Manifest) -> str:
    """What a bundle holds, as the tool prints it."""
    total = sum(file.size for file in manifest.files)
    lines = [f"kiosk {manifest.version}, created {manifest.created.isoformat()}, for Python {manifest.python} on "
             f"{manifest.platform}", f"installs {manifest.requirement} from {len(manifest.files)} wheels "
             f"({total / 1e6:.1f} MB):"]
    lines += [f"  {file.path}  {file.size} bytes  sha256 {file.sha256}" for file in manifest.files]
    return "\n".join(lines) + "\n"


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (docs/updates.md)."""
    parser = argparse.ArgumentParser(prog="release.py", description="Release bundles of the station software: "
                                     "the signing key, building and signing, checking (docs/updates.md).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser("keygen", help="make the Ed25519 signing key pair")
    sub.add_argument("--out", type=Path, required=True, metavar="DIR", help="writes NAME.key (0600) and NAME.pem")
    sub.add_argument("--name", default=KEY_NAME, help=f"the key's name (default {KEY_NAME})")
    sub = commands.add_parser("build", help="build and sign OUT/kiosk-VERSION.tar for this Python and platform")
    sub.add_argument("--source", type=Path, required=True, metavar="DIR", help="the checkout to release")
    sub.add_argument("--key", type=Path, required=True, help="the private signing key")
    sub.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder for the bundle")
    sub.add_argument("--extra", choices=("pi",), help="install kiosk[EXTRA] (pi: lgpio, for a Raspberry Pi)")
    sub.add_argument("--find-links", type=Path, action="append", default=[], metavar="DIR",
                     help="a folder of wheels for pip (repeatable)")
    sub.add_argument("--no-index", action="store_true", help="pip uses no package index")
    sub = commands.add_parser("verify", help="check a bundle's signature, members and wheels")
    sub.add_argument("bundle", type=Path, help="the bundle")
    sub.add_argument("--key", type=Path, action="append", required=True, help="a trusted public key (repeatable)")
    sub.add_argument("--sha256", help="the sha256 the whole file must have")
    return parser.parse_args(argv)


def run_command(arguments: argparse.Namespace) -> str:
    """Carry out one command; what it reports on standard output."""
    if arguments.command == "keygen":
        key, public = keygen(arguments.out, arguments.name)
        return (f"wrote {key} (private, mode 0600): keep it offline, never in the repository\n"
                f"wrote {public} (public)\n"
                f"install the public key on every station as {STATION_KEYS / public.name}\n")
    if arguments.command == "build":
        started = time.monotonic()
        target, manifest = build(arguments.source.resolve(), arguments.key, arguments.out, arguments.extra,
                                 arguments.find_links, arguments.no_index)
        digest = sha256_of(target)
        payload = json.dumps({"url": f"https://<your server>/{target.name}", "sha256": digest})
        return (f"built {target} in {time.monotonic() - started:.1f} s, signed and verified\n{summary(manifest)}"
                f"size: {target.stat().st_size} bytes ({target.stat().st_size / 1e6:.1f} MB)\nsha256: {digest}\n"
                f"staff's cmd/update payload, once the file is on your server:\n  {payload}\n")
    for key in arguments.key:
        if not key.is_file():
            raise Usage(f"--key {key}: no such file")
    if not arguments.bundle.is_file():
        raise Usage(f"{arguments.bundle}: no such file")
    manifest = verify(arguments.bundle, arguments.key, arguments.sha256)
    return f"{summary(manifest)}signature verified; sha256: {sha256_of(arguments.bundle)}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 done, 1 refused or failed, 2 usage (the message on standard error)."""
    logging.basicConfig(level=logging.WARNING, format="release.py: %(message)s")
    arguments = parse_arguments(argv)
    try:
        report = run_command(arguments)
    except Usage as error:
        sys.stderr.write(f"release.py: {error}\n")
        return 2
    except BundleRefused as error:
        sys.stderr.write(f"release.py: refused: {error}\n")
        return 1
    except (Failed, SigningFailed) as error:
        sys.stderr.write(f"release.py: failed: {error}\n")
        return 1
    except OSError as error:
        sys.stderr.write(f"release.py: error: {error.filename}: {error.strerror}\n")
        return 1
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
