"""The fleet CA: client certificates for pay stations (CN = station id), the broker's certificate, revocation."""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess, run

from broker_accounts import STATION_ID, STATION_ID_RULE, write_private

__all__ = [
    "CA_DAYS", "CERT_DAYS", "CRL_DAYS", "REASONS", "Ca", "Failed", "Issued", "Refused", "broker", "check_days",
    "check_request", "checked", "crl", "init", "issued", "listing", "main", "new_key", "now", "open_ca", "openssl",
    "parse_arguments", "parse_date", "revoke", "run_command", "sign", "station",
]

CA_DAYS = 3650
CERT_DAYS = 825
CRL_DAYS = 365
CURVES = ("prime256v1", "secp384r1")  # the EC keys accepted in a request: P-256 and P-384 (new keys are P-256)
MIN_RSA_BITS = 2048
REASONS = ("unspecified", "keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged")
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = re.compile(rf"(?=.{{1,253}}\Z){LABEL}(\.{LABEL})*")
REFUSED = 2

# The openssl configuration, written into the CA folder before every openssl call that needs it (paths are relative
# to the CA folder, where openssl runs). copy_extensions = none: nothing a request asks for reaches a certificate.
LEAF = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid"""  # in every certificate the CA issues; the profiles add the extended key usage
CONFIG = f"""\
# Written by provisioning/fleet_ca.py before every use: change the tool, not this file.
[ca]
default_ca = fleet

[fleet]
dir = .
database = index.txt
new_certs_dir = issued
certificate = ca.crt
private_key = ca.key
serial = serial
crlnumber = crlnumber
crl_extensions = crl_ext
default_md = sha256
policy = policy_cn
unique_subject = no
copy_extensions = none
email_in_dn = no

[policy_cn]
commonName = supplied

[req]
distinguished_name = req_dn
x509_extensions = ca_ext
string_mask = utf8only

[req_dn]

[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[station]
extendedKeyUsage = clientAuth
{LEAF}

[broker]
extendedKeyUsage = serverAuth
subjectAltName = {{names}}
{LEAF}

[crl_ext]
authorityKeyIdentifier = keyid
"""


class Refused(Exception):
    """Input the CA does not act on (a bad request, a duplicate, an existing CA): exit code 2."""


class Failed(Exception):
    """An operational failure (openssl missing or failing on the CA's own files): exit code 1."""


def openssl(*args: str, cwd: Path | None = None, stdin: str | None = None) -> CompletedProcess[str]:
    """Run the openssl command line; every file it creates is private to the user (umask 077)."""
    try:
        return run(["openssl", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False,
                   umask=0o077, timeout=120)
    except FileNotFoundError as error:
        if error.filename == "openssl":
            raise Failed("openssl not found: install the openssl package") from None
        raise


def checked(*args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    """openssl's standard output; a Failed with openssl's last error line when it exits with an error."""
    result = openssl(*args, cwd=cwd, stdin=stdin)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no message)"]
        raise Failed(f"openssl {args[0]} failed: {lines[-1]}")
    return result.stdout


@dataclass(frozen=True)
class Ca:
    """The CA folder: ca.key (0600), ca.crt, the database index.txt and every issued certificate in issued/."""

    folder: Path

    @property
    def key(self) -> Path:
        """The CA's private key."""
        return self.folder / "ca.key"

    @property
    def cert(self) -> Path:
        """The CA certificate (what the broker's cafile and the stations' ca_file hold)."""
        return self.folder / "ca.crt"

    @property
    def index(self) -> Path:
        """openssl's database of issued certificates."""
        return self.folder / "index.txt"

    def command(self, *args: str, names: str = "") -> str:
        """Run openssl in the folder with the tool's configuration (``names``: the broker's subjectAltName)."""
        (self.folder / "openssl.cnf").write_text(CONFIG.replace("{names}", names or "DNS:unused"), encoding="utf-8")
        return checked(args[0], "-config", "openssl.cnf", *args[1:], cwd=self.folder)

    def expires(self) -> datetime.datetime:
        """When the CA certificate expires."""
        return parse_date(checked("x509", "-in", str(self.cert), "-noout", "-enddate").strip().removeprefix("notAfter="))


def parse_date(text: str) -> datetime.datetime:
    """A date as openssl prints it (`Mar 10 06:51:25 2029 GMT`) or stores it in index.txt (`290310065125Z`)."""
    for form in ("%b %d %H:%M:%S %Y %Z", "%y%m%d%H%M%SZ", "%Y%m%d%H%M%SZ"):
        try:
            return datetime.datetime.strptime(text, form).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    raise Failed(f"unexpected date from openssl: {text!r}")


def now() -> datetime.datetime:
    """The current time (UTC)."""
    return datetime.datetime.now(datetime.UTC)


def check_days(days: int) -> None:
    """Refused unless ``days`` is a validity of at least one day."""
    if days < 1:
        raise Refused(f"--days {days}: give 1 or more")


def new_key(path: Path) -> None:
    """Generate an EC P-256 private key into ``path`` (mode 0600); an existing file is refused, never replaced."""
    if path.exists():
        raise Refused(f"{path} exists already: a key is never overwritten (move it away or choose another folder)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, checked("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"))


def init(folder: Path, name: str = "Fleet CA", days: int = CA_DAYS) -> Ca:
    """Create the CA in ``folder`` (0700): key, self-signed certificate, empty database. An existing CA is refused."""
    if not name or len(name) > 64 or not name.isprintable():
        raise Refused(f"CA name {name!r} is not valid: 1 to 64 printable characters")
    check_days(days)
    ca = Ca(folder)
    found = [path.name for path in (ca.key, ca.cert, ca.index) if path.exists()]
    if found:
        raise Refused(f"{folder} holds a CA already ({', '.join(found)}): a CA key is never overwritten")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    new_key(ca.key)
    try:
        subject = "/CN=" + re.sub(r"([\\/+=])", r"\\\1", name)  # escaped: the name stays one CN
        ca.command("req", "-new", "-x509", "-key", ca.key.name, "-utf8", "-subj", subject, "-days", str(days),
                   "-sha256", "-out", ca.cert.name)
    except Failed:
        ca.key.unlink()  # it never signed anything
        raise
    (folder / "issued").mkdir(mode=0o700, exist_ok=True)
    (folder / "crlnumber").write_text("01\n", encoding="utf-8")
    ca.index.write_text("", encoding="utf-8")
    return ca


def open_ca(folder: Path) -> Ca:
    """The CA in ``folder``; Refused when there is none."""
    ca = Ca(folder)
    if not (ca.key.is_file() and ca.cert.is_file() and ca.index.is_file()):
        raise Refused(f"no fleet CA in {folder}: run `fleet_ca.py init --dir {folder}` first")
    return ca


@dataclass(frozen=True)
class Issued:
    """One certificate in the CA's database."""

    cn: str
    serial: str
    expires: datetime.datetime
    revoked: datetime.datetime | None

    def status(self, at: datetime.datetime) -> str:
        """`valid`, `revoked` or `expired` at ``at``."""
        return "revoked" if self.revoked else "expired" if self.expires <= at else "valid"


def issued(ca: Ca) -> list[Issued]:
    """Every certificate the CA has issued, oldest first (from index.txt)."""
    entries = []
    for line in ca.index.read_text(encoding="utf-8").splitlines():
        status, expires, revoked, serial, _, subject = line.split("\t")
        entries.append(Issued(subject.removeprefix("/CN="), serial, parse_date(expires),
                              parse_date(revoked.split(",")[0]) if status == "R" else None))
    return entries


def _valid(ca: Ca, cn: str) -> list[Issued]:
    """The certificates of ``cn`` that are neither revoked nor expired."""
    at = now()
    return [entry for entry in issued(ca) if entry.cn == cn and entry.status(at) == "valid"]


def _preflight(ca: Ca, cn: str, days: int, renew: bool) -> None:
    """Refused when a certificate for ``cn`` would outlive the CA, or ``cn`` has a valid one and not ``renew``."""
    check_days(days)
    if now() + datetime.timedelta(days=days) > ca.expires():
        raise Refused(f"a certificate for {days} days would outlive the CA (until {ca.expires():%Y-%m-%d}): "
                      "give fewer --days")
    current = _valid(ca, cn)
    if current and not renew:
        raise Refused(f"{cn} has a valid certificate already (serial {current[-1].serial}, until "
                      f"{current[-1].expires:%Y-%m-%d}): give --renew to issue another, or revoke it first")


def _issue(ca: Ca, request: Path, cn: str, profile: str, days: int, renew: bool, names: str = "") -> str:
    """Sign ``request`` as /CN=``cn`` with the extensions of ``profile`` only; the certificate's PEM."""
    _preflight(ca, cn, days, renew)
    pem = ca.command("ca", "-batch", "-in", str(request.resolve()), "-subj", f"/CN={cn}", "-extensions", profile,
                     "-days", str(days), "-notext", "-rand_serial", names=names)
    if "-----BEGIN CERTIFICATE-----" not in pem:  # openssl 3.0 exits with 0 when it refuses a request
        raise Failed(f"openssl ca issued no certificate for {cn}")
    return pem


def _subject_cn(request: Path, shown: Path) -> str:
    """The station id in the request's subject; Refused unless the subject is exactly CN=<a valid station id>."""
    subject = checked("req", "-in", str(request), "-noout", "-subject", "-nameopt", "RFC2253").strip()
    subject = subject.removeprefix("subject=")
    fields = re.split(r"(?<!\\)[,+]", subject)
    cns = [field.removeprefix("CN=") for field in fields if field.startswith("CN=")]
    if not cns:
        raise Refused(f"{shown}: the subject {subject!r} has no CN: expected only CN=<station id>")
    if len(fields) > 1:
        raise Refused(f"{shown}: the subject {subject!r} has more than a CN: expected only CN=<station id>")
    if not STATION_ID.fullmatch(cns[0]):
        raise Refused(f"{shown}: CN {cns[0]!r} is not a valid station id: expected {STATION_ID_RULE}")
    return cns[0]


def _check_key(request: Path, shown: Path) -> None:
    """Refused unless the request's key is EC P-256 or P-384, or RSA with at least MIN_RSA_BITS bits."""
    public = checked("req", "-in", str(request), "-noout", "-pubkey")
    # The algorithm identifier only: the key's own bits are a BIT STRING that asn1parse does not open.
    objects = re.findall(r"prim: OBJECT\s+:(\S+)", checked("asn1parse", stdin=public))
    algorithm = objects[0] if objects else "unknown"
    if algorithm == "id-ecPublicKey" and objects[1:2] and objects[1] in CURVES:
        return
    if algorithm == "rsaEncryption":
        bits = re.match(r"Public-Key: \((\d+) bit\)", checked("pkey", "-pubin", "-noout", "-text_pub", stdin=public))
        if bits and int(bits[1]) >= MIN_RSA_BITS:
            return
        algorithm = f"RSA of {bits[1] if bits else 'unknown'} bits"
    elif algorithm == "id-ecPublicKey":
        algorithm = f"EC {objects[1] if objects[1:2] else 'with explicit parameters'}"
    raise Refused(f"{shown}: key type {algorithm} is not accepted: use EC P-256 or P-384, "
                  f"or RSA of {MIN_RSA_BITS} bits or more")


def check_request(request: Path, shown: Path | None = None) -> str:
    """The station id of a valid certificate request; Refused for a bad signature, subject or key type.

    Messages name ``shown`` (the file the operator gave) when ``request`` is a copy of it.
    """
    shown = shown or request
    if openssl("req", "-in", str(request), "-noout").returncode != 0:
        raise Refused(f"{shown}: not a PEM certificate request")
    result = openssl("req", "-in", str(request), "-noout", "-verify")
    # openssl 3.0 exits with 0 when the signature does not verify and says "verify OK" on stderr; 3.5 exits with 1
    # and says it on stdout
    if result.returncode != 0 or "verify OK" not in result.stdout + result.stderr:
        raise Refused(f"{shown}: the request's signature does not verify")
    cn = _subject_cn(request, shown)
    _check_key(request, shown)
    return cn


def sign(folder: Path, csr: Path, out: Path, days: int = CERT_DAYS, renew: bool = False) -> str:
    """Check a station's request and write its client certificate to ``out``; the station id."""
    ca = open_ca(folder)
    try:
        text = csr.read_text(encoding="ascii")
    except OSError as error:
        raise Refused(f"cannot read {csr}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise Refused(f"{csr}: not a PEM certificate request") from None
    if out.resolve() == csr.resolve():
        raise Refused(f"--out {out} is the request itself: give another file")
    out.parent.mkdir(parents=True, exist_ok=True)  # before a certificate is recorded as issued
    request = folder / "request.csr"  # a private copy: what is checked is what is signed
    write_private(request, text)
    try:
        cn = check_request(request, csr)
        write_private(out, _issue(ca, request, cn, "station", days, renew), mode=0o644)
    finally:
        request.unlink()
    return cn


def _key_and_certificate(folder: Path, out: Path, name: str, cn: str, days: int, renew: bool,
                         names: str = "") -> tuple[Path, Path]:
    """A new key ``out/NAME.key`` made here, its certificate ``out/NAME.crt`` and ``out/ca.crt``; their paths."""
    ca = open_ca(folder)
    profile = "broker" if names else "station"
    _preflight(ca, cn, days, renew)  # before a key is made
    key, cert, request = out / f"{name}.key", out / f"{name}.crt", folder / "request.csr"
    new_key(key)
    try:
        write_private(request, checked("req", "-new", "-key", str(key), "-subj", f"/CN={cn}"))
        pem = _issue(ca, request, cn, profile, days, renew, names)
    except BaseException:
        key.unlink()
        raise
    finally:
        request.unlink(missing_ok=True)
    write_private(cert, pem, mode=0o644)
    write_private(out / "ca.crt", ca.cert.read_text(encoding="ascii"), mode=0o644)
    return key, cert


def broker(folder: Path, hosts: Sequence[str], ips: Sequence[str], out: Path, days: int = CERT_DAYS,
           renew: bool = False) -> tuple[Path, Path]:
    """The broker's key and certificate (serverAuth, CN = first host, SAN = every host and address) in ``out``."""
    bad = [host for host in hosts if not HOST.fullmatch(host)]
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            bad.append(ip)
    if bad:
        raise Refused(f"not a host name or IP address: {', '.join(map(repr, bad))}")
    if not hosts:
        raise Refused("give the broker's host name with --host")
    names = ", ".join([f"DNS:{host}" for host in hosts] + [f"IP:{ipaddress.ip_address(ip)}" for ip in ips])
    return _key_and_certificate(folder, out, "broker", hosts[0], days, renew, names)


def station(folder: Path, station_id: str, out: Path, days: int = CERT_DAYS, renew: bool = False) -> tuple[Path, Path]:
    """Bench use: a station's key made on the CA machine, its client certificate and ca.crt in ``out``."""
    if not STATION_ID.fullmatch(station_id):
        raise Refused(f"station id {station_id!r} is not valid: expected {STATION_ID_RULE}")
    return _key_and_certificate(folder, out, "station", station_id, days, renew)


def revoke(folder: Path, station_id: str | None = None, serial: str | None = None,
           reason: str = "unspecified") -> list[Issued]:
    """Revoke every valid certificate of ``station_id``, or the one with ``serial``; what was revoked."""
    ca = open_ca(folder)
    if serial is not None:
        targets = [entry for entry in issued(ca) if entry.serial == serial.upper().replace(":", "")]
        if not targets:
            raise Refused(f"no certificate with serial {serial}")
        if targets[0].revoked:
            raise Refused(f"serial {targets[0].serial} ({targets[0].cn}) is revoked already")
    elif station_id is not None:
        targets = _valid(ca, station_id)
        if not targets:
            raise Refused(f"{station_id} has no valid certificate to revoke")
    else:
        raise Refused("give the station id or the serial to revoke")
    for entry in targets:
        ca.command("ca", "-revoke", f"issued/{entry.serial}.pem", "-crl_reason", reason)
    return targets


def crl(folder: Path, days: int = CRL_DAYS) -> tuple[str, datetime.datetime]:
    """A new CRL of every revoked certificate, valid for ``days``; (PEM, its nextUpdate)."""
    check_days(days)
    pem = open_ca(folder).command("ca", "-gencrl", "-crldays", str(days))
    return pem, parse_date(checked("crl", "-noout", "-nextupdate", stdin=pem).strip().removeprefix("nextUpdate="))


def listing(ca: Ca) -> str:
    """The `list` table: CN, serial, expiry and status of every issued certificate."""
    at = now()
    rows = [("CN", "serial", "expires", "status")]
    rows += [(entry.cn, entry.serial, f"{entry.expires:%Y-%m-%d}",
              f"revoked {entry.revoked:%Y-%m-%d}" if entry.revoked else entry.status(at)) for entry in issued(ca)]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + f"  {row[3]}\n" for row in rows)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see docs/broker.md, "The fleet CA")."""
    parser = argparse.ArgumentParser(prog="fleet_ca.py", description="The fleet CA of the pay stations: run it on "
                                     "the offline machine that holds the CA key (docs/broker.md, 'The fleet CA').")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, days: int | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--dir", type=Path, required=True, help="the CA folder")
        if days is not None:
            sub.add_argument("--days", type=int, default=days, help=f"validity in days (default {days})")
        return sub

    sub = command("init", "create the CA: key (0600), self-signed certificate, database", CA_DAYS)
    sub.add_argument("--name", default="Fleet CA", help="the CA's CN (default 'Fleet CA')")
    sub = command("broker", "issue the broker's key and certificate", CERT_DAYS)
    sub.add_argument("--host", action="append", default=[], metavar="NAME", help="a DNS name (repeatable; first = CN)")
    sub.add_argument("--ip", action="append", default=[], metavar="ADDR", help="an IP address (repeatable)")
    sub.add_argument("--out", type=Path, required=True, metavar="DIR", help="writes broker.key, broker.crt, ca.crt")
    sub.add_argument("--renew", action="store_true", help="issue although a valid certificate exists")
    sub = command("sign", "sign a station's certificate request (CN = station id)", CERT_DAYS)
    sub.add_argument("--csr", type=Path, required=True, metavar="FILE", help="the request made on the station")
    sub.add_argument("--out", type=Path, required=True, metavar="FILE", help="the station's certificate")
    sub.add_argument("--renew", action="store_true", help="issue although the station has a valid certificate")
    sub = command("station", "bench use: make a station's key here and issue its certificate", CERT_DAYS)
    sub.add_argument("--id", required=True, help="the station id")
    sub.add_argument("--out", type=Path, required=True, metavar="DIR", help="writes station.key, station.crt, ca.crt")
    sub.add_argument("--renew", action="store_true", help="issue although the station has a valid certificate")
    sub = command("revoke", "revoke a station's certificates (or one serial); then run crl")
    which = sub.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="revoke every valid certificate of this station")
    which.add_argument("--serial", help="revoke the certificate with this serial (hex, as `list` shows it)")
    sub.add_argument("--reason", choices=REASONS, default="unspecified", help="the reason in the CRL")
    sub = command("crl", "write the CRL (mosquitto's crlfile)", CRL_DAYS)
    sub.add_argument("--out", type=Path, required=True, metavar="FILE", help="the CRL file")
    command("list", "list the issued certificates")
    return parser.parse_args(argv)


def run_command(arguments: argparse.Namespace) -> str:
    """Carry out one command; what it reports on standard output."""
    folder = arguments.dir.resolve()
    if arguments.command == "init":
        ca = init(folder, arguments.name, arguments.days)
        return (f"created the CA in {folder} (key {ca.key}, mode 0600; certificate {ca.cert}, "
                f"until {ca.expires():%Y-%m-%d})\nkeep this folder offline; copy only ca.crt\n")
    if arguments.command == "broker":
        key, cert = broker(folder, arguments.host, arguments.ip, arguments.out, arguments.days, arguments.renew)
        return f"wrote {key} (0600), {cert} and {arguments.out / 'ca.crt'}: install them on the broker host\n"
    if arguments.command == "sign":
        cn = sign(folder, arguments.csr, arguments.out, arguments.days, arguments.renew)
        return f"signed {cn}: wrote {arguments.out}\n"
    if arguments.command == "station":
        key, cert = station(folder, arguments.id, arguments.out, arguments.days, arguments.renew)
        return f"wrote {key} (0600), {cert} and {arguments.out / 'ca.crt'} for {arguments.id}\n"
    if arguments.command == "revoke":
        revoked = revoke(folder, arguments.id, arguments.serial, arguments.reason)
        return "".join(f"revoked {entry.cn} serial {entry.serial}\n" for entry in revoked) + \
            "now run `crl`, install the CRL on the broker and reload mosquitto\n"
    if arguments.command == "crl":
        pem, next_update = crl(folder, arguments.days)
        write_private(arguments.out, pem, mode=0o644)
        count = sum(entry.revoked is not None for entry in issued(open_ca(folder)))
        return (f"wrote {arguments.out} ({count} revoked); it expires {next_update:%Y-%m-%d %H:%M} UTC: "
                "install a new one before then, or the broker refuses every station\n")
    return listing(open_ca(folder))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 for refused input, 1 for an operational failure (message on stderr)."""
    arguments = parse_arguments(argv)
    try:
        report = run_command(arguments)
    except Refused as error:
        sys.stderr.write(f"fleet_ca.py: refused: {error}\n")
        return REFUSED
    except Failed as error:
        sys.stderr.write(f"fleet_ca.py: error: {error}\n")
        return 1
    except OSError as error:
        sys.stderr.write(f"fleet_ca.py: error: {error.filename}: {error.strerror}\n")
        return 1
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
