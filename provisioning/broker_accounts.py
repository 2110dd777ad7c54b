"""Mosquitto accounts for stations, agents, operators, crews and the alert bridge: ACL, passwords (docs/broker.md)."""
from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "CREW_PAGE_DIR", "CREW_PORT", "PORT", "PREFIX", "RESERVED_NAMES", "ROLES", "STAFF_PORT", "Account", "Outcome", "Role",
    "UsageError", "accounts_from", "acl_text", "generate", "hash_password", "main", "mosquitto_conf", "passwd_text",
    "read_stations_file", "rules", "summary",
]

PREFIX = "paystation/v1"
STATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # also the CN of a station's client certificate
STATION_ID_RULE = "a letter or digit, then letters, digits, '_', '.', '-' (1-64)"
STAFF_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
STAFF_NAME_RULE = "letters, digits, '_', '.', '-' (1-64)"


class Role(StrEnum):
    """What an account is for; each role has its own access rules (docs/broker.md "Access rules")."""

    STATION = "station"
    AGENT = "agent"
    OPERATOR = "operator"
    CREW = "crew"
    BRIDGE = "bridge"


ROLES = tuple(Role)

# Under the station's own prefix: what it publishes, and what it may subscribe to.
STATION_WRITES = ("status", "fault/+", "event/+", "help/state", "help/request", "help/from-parker",
                  "cfg/reported", "telemetry", "reply/#")
STATION_READS = ("cmd/#", "cfg/desired", "help/to-parker")
STAFF_READS = (f"{PREFIX}/#",)
# A crew's phone may get lost: it reads the stations' retained state, the alerts and its own replies only.
CREW_READS = (f"{PREFIX}/+/status", f"{PREFIX}/+/fault/+", f"{PREFIX}/+/telemetry", f"{PREFIX}/_alerts/+")
CREW_REPLIES = "reply/crew-{name}"  # under a station's prefix: where the crew page asks for its replies
STAFF_WRITES = {
    Role.AGENT: (f"{PREFIX}/+/help/to-parker", f"{PREFIX}/+/cmd/#"),
    Role.OPERATOR: (f"{PREFIX}/+/cmd/#", f"{PREFIX}/+/cfg/desired"),
    Role.CREW: (f"{PREFIX}/+/cmd/restart", f"{PREFIX}/+/cmd/terminal/status"),
    Role.BRIDGE: (f"{PREFIX}/_alerts/#",),
}
SIGNED = ("service", "fixed")  # a crew sends these to {PREFIX}/{station}/cmd/{command}/{its own name} (docs/mqtt.md)
ACKNOWLEDGING = (Role.AGENT, Role.CREW)  # may write their own acknowledgements, {PREFIX}/_ack/{name}/+
BRIDGE_TREES = ("_alerts", "_ack")  # {PREFIX}/_alerts/{alert_id}, {PREFIX}/_ack/{user}/{alert_id} (docs/mqtt.md)
# The level after `+` in the staff's wildcard writes (`+/cmd/#`, `+/help/to-parker`, `+/cfg/desired`). Such a
# wildcard also matches {PREFIX}/_ack/cmd/..., an acknowledgement in the name of a user "cmd", and {PREFIX}/_alerts/cmd
# (an alert "cmd"): these are denied to every staff account (a deny wins over every grant in mosquitto, for reading
# too), no account may be called so, and the bridge never uses them as alert ids.
WILDCARD_WORDS = ("cmd", "help", "cfg")
# No staff account may be called like the first level of a station topic: an acknowledgement's topic,
# {PREFIX}/_ack/{name}/{id}, would match the readers' {PREFIX}/+/{level}/... subscriptions (a user "fault" would
# plant a station "_ack" with a fault in every console). Nor may a name start with "." (".", "..").
RESERVED_NAMES = frozenset(topic.split("/")[0] for topic in STATION_WRITES + STATION_READS)

# What mosquitto_passwd 2.0 writes: $7$ = PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt, 64-byte hash.
HASH_ID = 7
ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64

INSTALL_DIR = "/etc/mosquitto/paystation"
CREW_PAGE_DIR = "/usr/share/kiosk/crew"  # the crew page's static files (docs/crew.md), served by mosquitto itself
PORT = 8883
STAFF_PORT = 8884
CREW_PORT = 8885
USAGE_ERROR = 2


class UsageError(Exception):
    """Bad names, duplicates or options: reported on stderr with exit code 2."""


@dataclass(frozen=True)
class Account:
    """One broker user: its name (the MQTT username) and its role."""

    name: str
    role: Role


def rules(account: Account) -> list[tuple[str, str]]:
    """The (access, topic filter) pairs an account gets, in ACL order (mosquitto: a matching deny always wins)."""
    if account.role is Role.STATION:
        own = f"{PREFIX}/{account.name}"
        return [("write", f"{own}/{topic}") for topic in STATION_WRITES] + \
               [("read", f"{own}/{topic}") for topic in STATION_READS]
    denied = [f"{PREFIX}/{tree}/{word}/#" for tree in BRIDGE_TREES for word in WILDCARD_WORDS]
    acknowledgements = [f"{PREFIX}/_ack/{account.name}/+"] if account.role in ACKNOWLEDGING else []
    reads: Sequence[str] = STAFF_READS
    signed: list[str] = []
    if account.role is Role.CREW:
        reads = (*CREW_READS, f"{PREFIX}/+/{CREW_REPLIES.format(name=account.name)}/#")
        signed = [f"{PREFIX}/+/cmd/{command}/{account.name}" for command in SIGNED]
    return [("deny", topic) for topic in denied] + [("read", topic) for topic in reads] + \
           [("write", topic) for topic in (*STAFF_WRITES[account.role], *signed, *acknowledgements)]


def acl_text(accounts: Iterable[Account]) -> str:
    """The mosquitto acl_file: nothing for anonymous clients, one explicit block per user (no patterns)."""
    lines = ["# Generated by provisioning/broker_accounts.py; edit the account lists, not this file.",
             "# No topic lines before the first user: anonymous clients get nothing."]
    for account in accounts:
        lines += ["", f"# {account.role}", f"user {account.name}"]
        lines += [f"topic {access} {topic}" for access, topic in rules(account)]
    return "\n".join(lines) + "\n"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The password in mosquitto's `$7$` form (a fresh random salt unless one is given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, ITERATIONS, HASH_BYTES)
    return f"${HASH_ID}${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def passwd_text(passwords: dict[str, str]) -> str:
    """The mosquitto password_file: one `user:$7$...` line per account."""
    return "".join(f"{name}:{hash_password(password)}\n" for name, password in passwords.items())


def read_stations_file(path: Path) -> list[str]:
    """Station ids from a file: one per line, blank lines and `#` comments ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read stations file {path}: {error.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def accounts_from(stations: Sequence[str], agents: Sequence[str], operators: Sequence[str],
                  crews: Sequence[str] = (), bridges: Sequence[str] = ()) -> list[Account]:
    """Validated accounts in role order; a bad name or a name used twice (in any roles) is a UsageError."""
    accounts = [Account(name, role) for role, names in zip(ROLES, (stations, agents, operators, crews, bridges))
                for name in names]
    problems = []
    for account in accounts:
        pattern, expected = ((STATION_ID, STATION_ID_RULE)
                             if account.role is Role.STATION else (STAFF_NAME, STAFF_NAME_RULE))
        if not pattern.fullmatch(account.name):
            problems.append(f"{account.role} name {account.name!r} is not valid: expected {expected}")
        elif account.role is not Role.STATION and (account.name in RESERVED_NAMES or account.name.startswith(".")):
            problems.append(f"{account.role} name {account.name!r} is reserved (a level of the station topics, "
                            f"or a name starting with '.'); choose another")
    roles_of: dict[str, list[str]] = {}
    for account in accounts:
        roles_of.setdefault(account.name, []).append(account.role)
    problems += [f"name {name!r} is given more than once (as {' and '.join(roles)}); every account needs its own name"
                 for name, roles in roles_of.items() if len(roles) > 1]
    crew_names = {account.name for account in accounts if account.role is Role.CREW}
    problems += [f"{account.role} name {account.name!r} would read the replies of crew {account.name[5:]!r} "
                 f"({CREW_REPLIES.format(name=account.name[5:])}); choose another"
                 for account in accounts
                 if account.role is not Role.CREW and account.name.startswith("crew-") and account.name[5:] in crew_names]
    if not accounts:
        problems.append("no accounts: give --station, --stations-file, --agent, --operator, --crew or --bridge")
    if problems:
        raise UsageError("\n".join(problems))
    return accounts


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` atomically with `text`, readable by the owner only (mode 0600) unless another mode is given."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(descriptor, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_secret(path: Path) -> str | None:
    """A stored password (surrounding whitespace removed), or None when there is no file."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Outcome:
    """What a run wrote: secrets created, kept and rotated, and secret files no account uses."""

    created: list[str]
    kept: list[str]
    rotated: list[str]
    unused: list[str]


def generate(out: Path, accounts: Sequence[Account], certificates: bool = False,
             rotate: Sequence[str] = ()) -> Outcome:
    """Write out/acl, out/passwd and out/secrets/NAME.password; existing secrets are kept unless rotated.

    With ``certificates`` stations get ACL entries only (the broker takes the username from
    their client certificate's CN); agents and operators keep password accounts.
    """
    with_password = [a.name for a in accounts if not (certificates and a.role is Role.STATION)]
    for name in rotate:
        if name not in with_password:
            known = name in {account.name for account in accounts}
            reason = "authenticates by certificate" if known else "is not an account of this run"
            raise UsageError(f"cannot rotate {name!r}: it {reason}")
    folder = out / "secrets"
    existing = {name: read_secret(folder / f"{name}.password") for name in with_password}
    empty = [name for name, secret in existing.items() if secret == "" and name not in rotate]
    if empty:
        raise UsageError("\n".join(f"{folder / f'{name}.password'} is empty: delete it or give --rotate {name}"
                                   for name in empty))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    passwords: dict[str, str] = {}
    created: list[str] = []
    kept: list[str] = []
    rotated: list[str] = []
    for name, secret in existing.items():
        if secret and name not in rotate:
            passwords[name] = secret
            kept.append(name)
            continue
        passwords[name] = secrets.token_urlsafe(24)
        write_private(folder / f"{name}.password", passwords[name])
        (created if secret is None else rotated).append(name)
    (out / "acl").write_text(acl_text(accounts), encoding="utf-8")
    write_private(out / "passwd", passwd_text(passwords))
    unused = sorted(p.name.removesuffix(".password") for p in folder.glob("*.password")
                    if p.name.removesuffix(".password") not in passwords)
    return Outcome(created, kept, rotated, unused)


def mosquitto_conf(certificates: bool, folder: str = INSTALL_DIR, port: int = PORT,
                   staff_port: int = STAFF_PORT, crew_port: int | None = CREW_PORT, crew_page: str = CREW_PAGE_DIR) -> str:
    """The mosquitto.conf part; ``folder`` holds acl, passwd, ca.crt, broker.crt, broker.key, crew.crt, crew.key.

    Every listener uses TLS and takes the client id from the username, so no account can
    take over another's session. With ``certificates`` stations connect to ``port`` with a
    client certificate and agents and operators to ``staff_port`` with their password;
    otherwise everybody uses ``port`` with a password. Crews' phones use ``crew_port``: MQTT
    over WebSockets, which also serves the crew page from ``crew_page`` (the same origin), with a
    certificate of its own (crew.crt: one the phones trust, not the fleet CA the stations trust).
    Without a ``crew_port`` (no crew accounts) there is no crews' listener: mosquitto refuses to
    start with an ``http_dir`` that does not exist, so the crew page must be installed first.
    """
    lines = [
        "# paystation accounts (generated by provisioning/broker_accounts.py)",
        "per_listener_settings false",
        "allow_anonymous false",
        "persistence true",
        f"acl_file {folder}/acl",
        f"password_file {folder}/passwd",
        "",
        "# stations: client certificate, CN = station id = username" if certificates
        else "# stations, agents and operators: username and password",
        f"listener {port}",
        f"cafile {folder}/ca.crt",
        f"certfile {folder}/broker.crt",
        f"keyfile {folder}/broker.key",
        "use_username_as_clientid true",
    ]
    if certificates:
        lines += ["require_certificate true", "use_identity_as_username true",
                  "",
                  "# agents and operators: username and password",
                  f"listener {staff_port}",
                  f"certfile {folder}/broker.crt",
                  f"keyfile {folder}/broker.key",
                  "use_username_as_clientid true"]
    if crew_port is None:
        return "\n".join(lines) + "\n"
    lines += ["",
              "# crews' phones: MQTT over WebSockets (username and password), and the crew page from http_dir",
              f"listener {crew_port}",
              "protocol websockets",
              f"http_dir {crew_page}",
              f"certfile {folder}/crew.crt",
              f"keyfile {folder}/crew.key",
              "use_username_as_clientid true"]
    return "\n".join(lines) + "\n"


def summary(out: Path, accounts: Sequence[Account], certificates: bool, outcome: Outcome) -> str:
    """What the operator reads after a run: counts, secrets, how to install, the configuration."""
    counts = ", ".join(f"{n} {role}{'' if n == 1 else 's'}"
                       for role in ROLES for n in [sum(a.role == role for a in accounts)])
    with_password = len(outcome.created) + len(outcome.kept) + len(outcome.rotated)
    crews = any(account.role is Role.CREW for account in accounts)
    lines = [f"wrote {out / 'acl'} ({counts})",
             f"wrote {out / 'passwd'} ({with_password} password account{'' if with_password == 1 else 's'}"
             + ("; stations use client certificates)" if certificates else ")")]
    for label, names in (("new", outcome.created), ("kept", outcome.kept), ("rotated", outcome.rotated)):
        if names:
            lines.append(f"secrets {label}: {', '.join(names)}")
    if outcome.unused:
        lines.append("secret files of no password account (no longer accepted by the broker): "
                     + ", ".join(outcome.unused))
    lines += [f"station secrets: {out / 'secrets'}/STATION.password -> the station's mqtt.password_file"
              if not certificates else "stations: client certificate with CN = station id",
              "",
              "install on the broker host:",
              f"  install -d -m 0750 -g mosquitto {INSTALL_DIR}",
              f"  install -m 0640 -g mosquitto {out / 'acl'} {out / 'passwd'} {INSTALL_DIR}/",
              "  systemctl reload mosquitto   # SIGHUP: mosquitto rereads acl and passwd",
              "",
              ""]
    if crews:
        lines += ["install the crew page first: mosquitto refuses to start without the crews' listener's http_dir:",
                  f"  python3 provisioning/crew_web.py --install {CREW_PAGE_DIR}   # see docs/crew.md", ""]
    lines += ["mosquitto.conf (once; e.g. /etc/mosquitto/conf.d/paystation.conf; see docs/broker.md):",
              "",
              mosquitto_conf(certificates, crew_port=CREW_PORT if crews else None)]
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see docs/broker.md)."""
    parser = argparse.ArgumentParser(
        prog="broker_accounts.py",
        description="Generate mosquitto ACL, password file and per-account secrets for pay stations, "
                    "help-desk agents, operators, maintenance crews and the alert bridge (docs/broker.md).")
    parser.add_argument("--station", action="append", default=[], metavar="ID", help="a station id (repeatable)")
    parser.add_argument("--stations-file", type=Path, metavar="FILE",
                        help="station ids, one per line, '#' starts a comment")
    parser.add_argument("--agent", action="append", default=[], metavar="NAME", help="a help-desk agent (repeatable)")
    parser.add_argument("--operator", action="append", default=[], metavar="NAME",
                        help="a back-office / maintenance operator (repeatable)")
    parser.add_argument("--crew", action="append", default=[], metavar="NAME",
                        help="a maintenance crew member, on the crew page (repeatable)")
    parser.add_argument("--bridge", action="append", default=[], metavar="NAME",
                        help="the alert bridge's account (kiosk alerts)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="writes DIR/acl, DIR/passwd, DIR/secrets/NAME.password (existing secrets are kept)")
    parser.add_argument("--rotate", action="append", default=[], metavar="NAME",
                        help="give this account a new password (repeatable)")
    parser.add_argument("--certificates", action="store_true",
                        help="stations authenticate by client certificate (CN = station id): no station passwords")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; 0 on success, 2 on bad input, 1 when a file cannot be read or written (message on stderr)."""
    arguments = parse_arguments(argv)
    try:
        stations = list(arguments.station)
        if arguments.stations_file is not None:
            stations += read_stations_file(arguments.stations_file)
        accounts = accounts_from(stations, arguments.agent, arguments.operator, arguments.crew, arguments.bridge)
        out = arguments.out.resolve()
        outcome = generate(out, accounts, arguments.certificates, arguments.rotate)
    except UsageError as error:
        sys.stderr.write(f"broker_accounts.py: error: {error}\n")
        return USAGE_ERROR
    except OSError as error:
        sys.stderr.write(f"broker_accounts.py: error: {error.filename}: {error.strerror}\n")
        return 1
    sys.stdout.write(summary(out, accounts, arguments.certificates, outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
