"""`kiosk update`: a technician's update from a file (a USB stick), the update status, and a rollback by hand."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from kiosk import config
from kiosk.cli.doctor import DEFAULT_CONFIG, socket_path, station_answers
from kiosk.releases import bundle, guard, inbox
from kiosk.releases.layout import CURRENT, STABLE, Releases
from kiosk.releases.record import UpdateRecord

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_update_command", "station_runs", "status_lines"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FOLLOW_POLL_S = 1.0


def add_update_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``kiosk update`` to the command line."""
    update = commands.add_parser("update", help="install a release bundle from a file, show the update status, or "
                                                "roll back (docs/updates.md)")
    update.add_argument("bundle", type=Path, nargs="?", help="the release bundle (kiosk-VERSION.tar)")
    update.add_argument("--config", type=Path, help=f"the station's configuration (default: {DEFAULT_CONFIG})")
    update.add_argument("--sha256", help="the bundle's SHA-256, if you have it (the signature is checked either way)")
    update.add_argument("--retry", action="store_true", help="install a release that failed here before")
    update.add_argument("--no-wait", action="store_true", help="hand the bundle over and return at once")
    update.add_argument("--wait", type=float, default=900.0, help="follow the update for at most this long (s)")
    action = update.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="the releases, the update under way and the last outcome")
    action.add_argument("--rollback", action="store_true", help="go back to the previous release (station stopped)")
    update.add_argument("--json", action="store_true", help="--status as JSON")
    update.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Run ``kiosk update`` as parsed."""
    config_file = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    try:
        settings = config.load(config_file) if config_file is not None else config.Settings()
    except config.ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return EXIT_USAGE
    releases = Releases(Path(settings.updates.root))
    owner = releases.root.stat().st_uid if releases.root.is_dir() else 0
    if os.geteuid() == 0 and owner != 0:  # root never runs or writes what the station's user can change
        print("run it as the station's user: sudo kiosk update ... does that (/usr/local/bin/kiosk)")
        return EXIT_USAGE
    running = station_runs(settings)
    if args.status:
        record = releases.record()
        if args.json:
            print(json.dumps(_status(releases, record, running), sort_keys=True))
        else:
            print("\n".join(status_lines(releases, record, running)))
        return EXIT_OK
    if args.rollback:
        return _rollback(releases, settings, running)
    if args.bundle is None:
        print("name a bundle file, or --status or --rollback")
        return EXIT_USAGE
    return _install(args, releases, settings, running)


def _install(args: argparse.Namespace, releases: Releases, settings: config.Settings, running: bool) -> int:
    """Check the bundle here (the technician hears at once), hand it to the station through its inbox, follow it."""
    source: Path = args.bundle
    try:
        digest = bundle.sha256_of(source)
        manifest = bundle.verify(source, bundle.trusted_keys(Path(settings.updates.keys)), args.sha256)
        bundle.check_platform(manifest)
    except OSError as exc:
        print(f"{source}: {exc.strerror or exc}")
        return EXIT_FAILED
    except bundle.BundleRefused as exc:
        print(f"{source}: refused ({type(exc).__name__}): {exc}")
        return EXIT_FAILED
    print(f"{source}: release {manifest.version}, signature verified")
    if not releases.root.is_dir():
        print(f"{releases.root} does not exist: this station was not installed by provisioning/install.sh")
        return EXIT_FAILED
    releases.downloads.mkdir(exist_ok=True)
    copy = releases.downloads / f"{digest}.tar"
    part = copy.with_name(copy.name + ".part")
    shutil.copyfile(source, part)  # the stick may be pulled out once this is done
    os.replace(part, copy)
    request = inbox.leave(releases.root, copy, digest, args.retry)
    if not running:
        print("the station is not running: it takes the update when it starts (sudo systemctl start kiosk)")
        return EXIT_OK
    print("handed to the station: it installs the release side by side, switches when no parker is served, and "
          "restarts into it")
    if args.no_wait:
        return EXIT_OK
    return _follow(releases, request, args.wait)


def _follow(releases: Releases, request: str, wait_s: float) -> int:
    """Print the station's answer, then each step of the job of that id until its outcome or ``wait_s`` passes."""
    deadline = time.monotonic() + wait_s
    shown = ""
    answered = False
    while time.monotonic() < deadline:
        if not answered:
            answer = inbox.answer_of(releases.root, request)
            if answer is not None:
                answered = True
                print(f"  {answer.get('detail')}")
                if not answer.get("ok"):
                    return EXIT_FAILED
        record = releases.record()
        job, trial, last = record.job, record.trial, record.last
        if last is not None and last.job == request:
            print(f"{last.status}: {last.reason}")
            return EXIT_OK if last.status == "Installed" else EXIT_FAILED
        now_shown = ""
        if job is not None and job.id == request:
            now_shown = job.phase + (f", release {job.version}" if job.version else "")
            if trial is not None and trial.job == request:
                now_shown += f" (on trial, start {trial.starts})"
        if now_shown and now_shown != shown:
            print(f"  {now_shown}")
            shown = now_shown
        time.sleep(FOLLOW_POLL_S)
    print(f"still under way after {wait_s:.0f} s: see kiosk update --status")
    return EXIT_FAILED


def station_runs(settings: config.Settings) -> bool:
    """The station runs, or is starting: its socket answers, systemd says so, or a process holds its database open."""
    if station_answers(socket_path(settings)):
        return True
    try:
        state = subprocess.run(["systemctl", "is-active", "kiosk.service"], capture_output=True, text=True,
                               timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        state = ""
    if state in ("active", "activating", "deactivating", "reloading", "refreshing"):
        return True
    database = Path(settings.storage.database).resolve()
    for link in Path("/proc").glob("[0-9]*/fd/*"):  # the processes this user may look into
        if link.parent.parent.name == str(os.getpid()):
            continue
        try:
            if Path(os.readlink(link)) == database:
                return True
        except OSError:
            continue
    return False


def _rollback(releases: Releases, settings: config.Settings, running: bool) -> int:
    """Go back to the previous release with the station stopped (its database is then safe to restore)."""
    if running:
        print("the station runs (or is starting, or holds its database open): stop it first (sudo systemctl stop kiosk), "
              "roll back, then start it (sudo systemctl start kiosk)")
        return EXIT_FAILED
    try:
        outcome = guard.roll_back_by_hand(releases, releases.record(), Path(settings.storage.database),
                                          datetime.now(UTC))
    except (RuntimeError, OSError) as exc:
        print(f"not rolled back: {exc}")
        return EXIT_FAILED
    print(f"{outcome.version} rolled back: {outcome.reason}")
    print("start the station: sudo systemctl start kiosk")
    return EXIT_OK


def _status(releases: Releases, record: UpdateRecord, running: bool) -> dict[str, object]:
    return {
        "station_running": running, "current": releases.target(CURRENT), "stable": releases.target(STABLE),
        "installed": releases.installed(), **{k: v for k, v in asdict(record).items() if k != "unreported"},
        "unpublished": len(record.unreported),
    }


def status_lines(releases: Releases, record: UpdateRecord, running: bool) -> list[str]:
    """The update status for a technician, one fact per line."""
    current, stable = releases.target(CURRENT), releases.target(STABLE)
    lines = [f"station: {'running' if running else 'not running'}",
             f"current release: {current or 'none'}" + ("" if current == stable else f" (on trial; stable: {stable})"),
             f"installed: {', '.join(releases.installed()) or 'none'}"]
    if record.job is not None:
        job = record.job
        lines.append(f"update under way: {job.id} ({job.phase}{', release ' + job.version if job.version else ''}) "
                     f"from {job.source}")
    if record.trial is not None:
        lines.append(f"on trial: {record.trial.version} (start {record.trial.starts}), previous {record.trial.previous}")
    if record.last is not None:
        last = record.last
        lines.append(f"last update: {last.status} {last.version} at {last.at}: {last.reason}")
    for version, failure in sorted(record.failed.items()):
        lines.append(f"failed here before: {version} ({failure.reason}); installed again only with --retry")
    return lines
