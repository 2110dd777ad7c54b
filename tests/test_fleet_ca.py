"""The fleet CA (provisioning/fleet_ca.py): its commands and refusals, and its certificates on a real mosquitto."""
from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from broker import Mosquitto
from broker_access import (
    CAFILE_LINE,
    CRLFILE_LINE,
    GRANTED_QOS_1,
    SUCCESS,
    TIMEOUT_S,
    P,
    Peer,
    assert_denied,
    configured_broker,
    secret,
    unique,
)
from certs import CertFiles, Pki
from conftest import ROOT, wait_for

SCRIPT = ROOT / "provisioning" / "fleet_ca.py"
EC_P256 = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
EC_P384 = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")
EC_P521 = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521")
RSA_1024 = ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")
RSA_2048 = ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
ED25519 = ("-algorithm", "ED25519",)


def fleet(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """fleet_ca.py as the operator runs it."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60,
                          check=False, env=env)


def ok(*args: str | Path) -> str:
    """Run a command that must succeed; its standard output."""
    result = fleet(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(message: str, *args: str | Path) -> None:
    """Run a command that must be refused: exit code 2, one line on stderr holding ``message``, no traceback."""
    result = fleet(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("fleet_ca.py: refused: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def openssl(*args: str | Path, cwd: Path | None = None) -> str:
    """The openssl command line's standard output (it must succeed)."""
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def request(folder: Path, subject: str, *extra: str, key: tuple[str, ...] = EC_P256, name: str = "station") -> Path:
    """A key and a certificate request made as a station makes them; the request's path."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl("genpkey", *key, "-out", folder / f"{name}.key")
    openssl("req", "-new", "-key", folder / f"{name}.key", "-subj", subject, *extra, "-out", folder / f"{name}.csr")
    return folder / f"{name}.csr"


def text(cert: Path) -> str:
    """A certificate as openssl prints it, names as RFC 2253 writes them (CN=x: the same in openssl 3.0 and 3.5)."""
    return openssl("x509", "-in", cert, "-noout", "-text", "-nameopt", "RFC2253")


def verify(ca: Path, cert: Path, *options: str | Path) -> subprocess.CompletedProcess[str]:
    """`openssl verify` of ``cert`` against the CA."""
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), *map(str, options), str(cert)],
                          capture_output=True, text=True, check=False)


def mode(path: Path) -> int:
    """A file's permission bits."""
    return path.stat().st_mode & 0o777


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    """A new fleet CA's folder."""
    ok("init", "--dir", tmp_path / "ca", "--name", "Test Fleet CA")
    return tmp_path / "ca"


# ---------------------------------------------------------------- init


def test_init_creates_a_private_ca_certificate_and_an_empty_database(ca: Path) -> None:
    assert mode(ca) == 0o700 and mode(ca / "ca.key") == 0o600
    printed = text(ca / "ca.crt")
    assert "Subject: CN=Test Fleet CA" in printed and "Issuer: CN=Test Fleet CA" in printed
    assert re.search(r"Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n", printed)
    assert re.search(r"Key Usage: critical\n\s+Certificate Sign, CRL Sign\n", printed)
    assert "ASN1 OID: prime256v1" in printed
    assert ok("list", "--dir", ca).splitlines() == ["CN  serial  expires  status"]


def test_init_twice_is_refused_and_the_key_is_kept(ca: Path) -> None:
    key = (ca / "ca.key").read_bytes()
    refused("holds a CA already (ca.key, ca.crt, index.txt): a CA key is never overwritten", "init", "--dir", ca)
    assert (ca / "ca.key").read_bytes() == key


def test_init_keeps_a_name_with_a_slash_as_one_cn(tmp_path: Path) -> None:
    ok("init", "--dir", tmp_path / "ca", "--name", "Stadtwerke A/B+C=D")
    subject = openssl("x509", "-in", tmp_path / "ca" / "ca.crt", "-noout", "-subject", "-nameopt", "RFC2253")
    assert subject == "subject=CN=Stadtwerke A/B\\+C=D\n"  # one CN; RFC 2253 escapes the plus


def test_commands_without_a_ca_are_refused(tmp_path: Path) -> None:
    refused("no fleet CA in", "list", "--dir", tmp_path / "nothing")


# ---------------------------------------------------------------- sign


def test_sign_issues_a_client_certificate_and_ignores_the_extensions_the_request_asks_for(ca: Path,
                                                                                         tmp_path: Path) -> None:
    csr = request(tmp_path / "station", "/CN=DE-BER-0042", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign", "-addext", "extendedKeyUsage=serverAuth",
                  "-addext", "subjectAltName=DNS:broker.example.org")
    assert ok("sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "station.crt") == \
        f"signed DE-BER-0042: wrote {tmp_path / 'station.crt'}\n"
    printed = text(tmp_path / "station.crt")
    assert "Subject: CN=DE-BER-0042\n" in printed and "Issuer: CN=Test Fleet CA" in printed
    assert re.search(r"Basic Constraints: critical\n\s+CA:FALSE\n", printed)
    assert re.search(r"Key Usage: critical\n\s+Digital Signature\n", printed)
    assert re.search(r"Extended Key Usage: \n\s+TLS Web Client Authentication\n", printed)
    for asked in ("CA:TRUE", "Certificate Sign", "TLS Web Server Authentication", "Subject Alternative Name"):
        assert asked not in printed
    assert verify(ca / "ca.crt", tmp_path / "station.crt", "-purpose", "sslclient").returncode == 0
    assert verify(ca / "ca.crt", tmp_path / "station.crt", "-purpose", "sslserver").returncode != 0
    assert mode(tmp_path / "station.crt") == 0o644
    [row] = ok("list", "--dir", ca).splitlines()[1:]
    assert row.split()[0] == "DE-BER-0042" and row.split()[3] == "valid"


@pytest.mark.parametrize("key", [EC_P384, RSA_2048], ids=["EC P-384", "RSA 2048"])
def test_sign_accepts_other_good_key_types(ca: Path, tmp_path: Path, key: tuple[str, ...]) -> None:
    ok("sign", "--dir", ca, "--csr", request(tmp_path, "/CN=S1", key=key), "--out", tmp_path / "S1.crt")
    assert verify(ca / "ca.crt", tmp_path / "S1.crt").returncode == 0


@pytest.mark.parametrize("subject, message", [
    ("/CN=S\\/1", "CN 'S/1' is not a valid station id: expected a letter or digit"),
    ("/CN=-S1", "CN '-S1' is not a valid station id"),
    ("/CN=S 1", "CN 'S 1' is not a valid station id"),
    ("/CN=S1/O=Fleet", "the subject 'O=Fleet,CN=S1' has more than a CN"),
    ("/CN=S1/CN=S2", "the subject 'CN=S2,CN=S1' has more than a CN"),
    ("/CN=S1+OU=x", "the subject 'CN=S1+OU=x' has more than a CN"),
    ("/CN=S1/emailAddress=a@b.c", "the subject 'emailAddress=a@b.c,CN=S1' has more than a CN"),
    ("/O=Fleet", "the subject 'O=Fleet' has no CN"),
])
def test_sign_refuses_a_subject_that_is_not_only_a_station_id(ca: Path, tmp_path: Path, subject: str,
                                                              message: str) -> None:
    csr = request(tmp_path, subject)
    refused(f"{csr}: {message}", "sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "S1.crt")
    assert not (tmp_path / "S1.crt").exists()
    assert len(ok("list", "--dir", ca).splitlines()) == 1


@pytest.mark.parametrize("key, message", [
    (RSA_1024, "key type RSA of 1024 bits is not accepted"),
    (EC_P521, "key type EC secp521r1 is not accepted"),
    (ED25519, "key type ED25519 is not accepted"),
], ids=["RSA 1024", "EC P-521", "Ed25519"])
def test_sign_refuses_weak_or_unexpected_keys(ca: Path, tmp_path: Path, key: tuple[str, ...], message: str) -> None:
    refused(message, "sign", "--dir", ca, "--csr", request(tmp_path, "/CN=S1", key=key), "--out", tmp_path / "S1.crt")


def test_sign_refuses_a_request_whose_signature_does_not_verify(ca: Path, tmp_path: Path) -> None:
    openssl("req", "-in", request(tmp_path, "/CN=S1"), "-outform", "DER", "-out", tmp_path / "tampered.der")
    der = bytearray((tmp_path / "tampered.der").read_bytes())
    der[-1] ^= 0x01  # the last byte of the signature
    (tmp_path / "tampered.der").write_bytes(bytes(der))
    openssl("req", "-inform", "DER", "-in", tmp_path / "tampered.der", "-out", tmp_path / "tampered.csr")
    refused("the request's signature does not verify", "sign", "--dir", ca, "--csr", tmp_path / "tampered.csr",
            "--out", tmp_path / "S1.crt")


def test_sign_refuses_what_is_not_a_request(ca: Path, tmp_path: Path) -> None:
    (tmp_path / "garbage.csr").write_text("not a request\n", encoding="ascii")
    refused("not a PEM certificate request", "sign", "--dir", ca, "--csr", tmp_path / "garbage.csr",
            "--out", tmp_path / "S1.crt")
    refused("cannot read", "sign", "--dir", ca, "--csr", tmp_path / "missing.csr", "--out", tmp_path / "S1.crt")
    refused("is the request itself", "sign", "--dir", ca, "--csr", tmp_path / "garbage.csr",
            "--out", tmp_path / "garbage.csr")


def test_a_second_certificate_needs_renew_until_the_first_is_revoked(ca: Path, tmp_path: Path) -> None:
    csr = request(tmp_path, "/CN=S1")
    ok("sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "first.crt")
    refused("S1 has a valid certificate already", "sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "second.crt")
    assert not (tmp_path / "second.crt").exists()
    ok("sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "second.crt", "--renew")
    assert [row.split()[3] for row in ok("list", "--dir", ca).splitlines()[1:]] == ["valid", "valid"]
    ok("revoke", "--dir", ca, "--id", "S1")
    ok("sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "third.crt")


def test_a_certificate_may_not_outlive_the_ca(tmp_path: Path) -> None:
    ok("init", "--dir", tmp_path / "ca", "--days", "30")
    refused("would outlive the CA", "sign", "--dir", tmp_path / "ca", "--csr", request(tmp_path, "/CN=S1"),
            "--out", tmp_path / "S1.crt")
    ok("sign", "--dir", tmp_path / "ca", "--csr", tmp_path / "station.csr", "--out", tmp_path / "S1.crt",
       "--days", "29")


# ---------------------------------------------------------------- station and broker


def test_station_makes_key_and_certificate_in_one_step(ca: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    ok("station", "--dir", ca, "--id", "BENCH-1", "--out", out)
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "station.crt", "station.key"]
    assert mode(out / "station.key") == 0o600 and mode(out) == 0o700
    assert verify(out / "ca.crt", out / "station.crt", "-purpose", "sslclient").returncode == 0
    assert openssl("x509", "-in", out / "station.crt", "-noout", "-pubkey") == \
        openssl("pkey", "-in", out / "station.key", "-pubout")
    refused("BENCH-1 has a valid certificate already", "station", "--dir", ca, "--id", "BENCH-1",
            "--out", tmp_path / "again")
    assert not (tmp_path / "again").exists()  # no key is made for a refused certificate
    refused("station id 'a/b' is not valid", "station", "--dir", ca, "--id", "a/b", "--out", tmp_path / "bad")
    refused("exists already: a key is never overwritten", "station", "--dir", ca, "--id", "BENCH-1", "--out", out,
            "--renew")


def test_broker_certificate_names_every_host_and_address(ca: Path, tmp_path: Path) -> None:
    out = tmp_path / "broker"
    ok("broker", "--dir", ca, "--host", "broker.example.org", "--host", "mqtt.example.org", "--ip", "192.0.2.7",
       "--ip", "2001:db8::7", "--out", out)
    printed = text(out / "broker.crt")
    assert "Subject: CN=broker.example.org\n" in printed
    assert "DNS:broker.example.org, DNS:mqtt.example.org, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:7" \
        in printed
    assert re.search(r"Extended Key Usage: \n\s+TLS Web Server Authentication\n", printed)
    assert verify(out / "ca.crt", out / "broker.crt", "-purpose", "sslserver", "-verify_hostname",
                  "mqtt.example.org").returncode == 0
    assert verify(out / "ca.crt", out / "broker.crt", "-purpose", "sslclient").returncode != 0
    assert mode(out / "broker.key") == 0o600
    refused("not a host name or IP address: 'bad_host', '300.1.1.1'", "broker", "--dir", ca, "--host", "bad_host",
            "--ip", "300.1.1.1", "--out", tmp_path / "other")
    refused("give the broker's host name with --host", "broker", "--dir", ca, "--ip", "192.0.2.7",
            "--out", tmp_path / "other")


# ---------------------------------------------------------------- revoke, crl, list


def test_revoked_certificate_is_in_the_crl_and_fails_verification(ca: Path, tmp_path: Path) -> None:
    for station_id in ("S1", "S2"):
        ok("station", "--dir", ca, "--id", station_id, "--out", tmp_path / station_id)
    serial = openssl("x509", "-in", tmp_path / "S1" / "station.crt", "-noout", "-serial").strip().split("=")[1]
    assert ok("revoke", "--dir", ca, "--id", "S1", "--reason", "keyCompromise").startswith(
        f"revoked S1 serial {serial}\n")
    refused("S1 has no valid certificate to revoke", "revoke", "--dir", ca, "--id", "S1")
    refused(f"serial {serial} (S1) is revoked already", "revoke", "--dir", ca, "--serial", serial)
    refused("no certificate with serial 0BAD", "revoke", "--dir", ca, "--serial", "0BAD")
    assert "(1 revoked)" in ok("crl", "--dir", ca, "--out", tmp_path / "crl.pem")
    crl = openssl("crl", "-in", tmp_path / "crl.pem", "-noout", "-text")
    assert f"Serial Number: {serial}" in crl and "Key Compromise" in crl
    checked = ("-crl_check", "-CRLfile", tmp_path / "crl.pem")
    assert "certificate revoked" in verify(ca / "ca.crt", tmp_path / "S1" / "station.crt", *checked).stderr
    assert verify(ca / "ca.crt", tmp_path / "S2" / "station.crt", *checked).returncode == 0
    rows = {row.split()[0]: row.split() for row in ok("list", "--dir", ca).splitlines()[1:]}
    today = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d}"
    assert rows["S1"][1:] == [serial, rows["S1"][2], "revoked", today] and rows["S2"][3] == "valid"


def test_revoke_by_serial_leaves_the_other_certificate_of_the_station(ca: Path, tmp_path: Path) -> None:
    csr = request(tmp_path, "/CN=S1")
    ok("sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "old.crt")
    ok("sign", "--dir", ca, "--csr", csr, "--out", tmp_path / "new.crt", "--renew")
    old = openssl("x509", "-in", tmp_path / "old.crt", "-noout", "-serial").strip().split("=")[1]
    ok("revoke", "--dir", ca, "--serial", old.lower(), "--reason", "superseded")
    assert [row.split()[3] for row in ok("list", "--dir", ca).splitlines()[1:]] == ["revoked", "valid"]


def test_without_openssl_the_failure_is_operational(ca: Path, tmp_path: Path) -> None:
    result = fleet("list", "--dir", ca, env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 0  # listing reads the database only
    result = fleet("crl", "--dir", ca, "--out", tmp_path / "crl.pem", env={**os.environ, "PATH": str(tmp_path)})
    assert (result.returncode, result.stderr) == (1, "fleet_ca.py: error: openssl not found: install the openssl "
                                                     "package\n")


# ---------------------------------------------------------------- a real mosquitto


def fleet_pki(folder: Path, stations: tuple[str, ...]) -> Pki:
    """A fleet CA, the broker's certificate for localhost and signed station requests; an empty CRL in crl.pem."""
    ok("init", "--dir", folder / "ca")
    ok("broker", "--dir", folder / "ca", "--host", "localhost", "--ip", "127.0.0.1", "--out", folder / "broker")
    for station_id in stations:
        csr = request(folder / station_id, f"/CN={station_id}")
        ok("sign", "--dir", folder / "ca", "--csr", csr, "--out", folder / station_id / "station.crt")
    ok("crl", "--dir", folder / "ca", "--out", folder / "crl.pem")
    return Pki(folder, CertFiles(folder / "ca" / "ca.crt", folder / "ca" / "ca.key"),
               CertFiles(folder / "broker" / "broker.crt", folder / "broker" / "broker.key"),
               {station_id: CertFiles(folder / station_id / "station.crt", folder / station_id / "station.key")
                for station_id in stations})


def test_docs_show_the_stations_listener_with_the_crlfile_line_the_tests_add() -> None:
    blocks = re.findall(r"```\n(.*?)```", (ROOT / "docs" / "broker.md").read_text(encoding="utf-8"), re.DOTALL)
    [configuration] = [block for block in blocks if block.startswith("per_listener_settings") and "crlfile" not in block
                       and "require_certificate true" in block]  # the printed one (test_broker_accounts.py)
    listener = configuration.split("\n\n")[1] + "\n"
    assert listener.replace(f"{CAFILE_LINE}\n", f"{CAFILE_LINE}\n{CRLFILE_LINE}\n") in blocks


@pytest.mark.slow
def test_station_with_a_fleet_certificate_writes_only_its_own_topics(tmp_path: Path,
                                                                     peers: Callable[..., Peer]) -> None:
    pki = fleet_pki(tmp_path / "pki", ("S1", "S2"))
    mosquitto = configured_broker(tmp_path / "broker", pki, certificates=True, crl=tmp_path / "pki" / "crl.pem")
    try:
        operator = peers(mosquitto.staff_port, "op1", secret(tmp_path / "broker", "op1"), pki=pki)
        assert operator.connect() == SUCCESS and operator.subscribe(f"{P}/#") == [GRANTED_QOS_1]
        station = peers(mosquitto.port, client_id="S1", pki=pki, cert=pki.clients["S1"])
        assert station.connect() == SUCCESS
        payload = unique()
        assert station.publish(f"{P}/S1/event/payment", payload) == SUCCESS
        operator.wait_message(f"{P}/S1/event/payment", payload)
        assert_denied(station, f"{P}/S2/event/payment", operator, f"{P}/S1/event/marker")
        assert peers(mosquitto.port, pki=pki).connect() is None  # no client certificate: TLS refused
    finally:
        mosquitto.stop()


def reload(mosquitto: Mosquitto) -> None:
    """SIGHUP (systemctl reload) and wait until mosquitto has begun to read its files again.

    mosquitto runs one thread: a connection made after the log line is served with the new files.
    """
    assert mosquitto.process is not None
    before = mosquitto.log().count("Reloading config.")
    mosquitto.process.send_signal(signal.SIGHUP)
    wait_for(lambda: mosquitto.log().count("Reloading config.") > before, TIMEOUT_S, "mosquitto to reload")


@pytest.mark.slow
def test_revoked_certificate_cannot_connect_once_mosquitto_has_read_the_crl(tmp_path: Path,
                                                                           peers: Callable[..., Peer]) -> None:
    pki = fleet_pki(tmp_path / "pki", ("S1", "S2"))
    folder = tmp_path / "broker"
    mosquitto = configured_broker(folder, pki, certificates=True, crl=tmp_path / "pki" / "crl.pem")
    connect = lambda station_id: peers(mosquitto.port, client_id=station_id, pki=pki,
                                       cert=pki.clients[station_id]).connect()
    try:
        ok("revoke", "--dir", tmp_path / "pki" / "ca", "--id", "S1", "--reason", "keyCompromise")
        ok("crl", "--dir", tmp_path / "pki" / "ca", "--out", folder / "crl.pem")
        survivor = peers(mosquitto.port, client_id="S1", pki=pki, cert=pki.clients["S1"])
        assert survivor.connect() == SUCCESS  # mosquitto reads crlfile at start and on reload only

        reload(mosquitto)
        assert connect("S1") is None
        assert connect("S2") == SUCCESS
        # A reload does not end a connection made before it: the revoked station stays until a restart.
        assert not survivor.closed and survivor.publish(f"{P}/S1/event/payment", unique()) < 0x80

        mosquitto.restart()
        wait_for(lambda: survivor.closed, TIMEOUT_S, "the revoked station's connection closed by the restart")
        assert connect("S1") is None
        assert connect("S2") == SUCCESS
        assert "certificate verify failed" in mosquitto.log()
    finally:
        mosquitto.stop()


@pytest.mark.slow
def test_an_expired_crl_shuts_out_every_station(tmp_path: Path, peers: Callable[..., Peer]) -> None:
    pki = fleet_pki(tmp_path / "pki", ("S2",))
    folder = tmp_path / "broker"
    mosquitto = configured_broker(folder, pki, certificates=True, crl=tmp_path / "pki" / "crl.pem")
    try:
        # fleet_ca.py makes CRLs for a day at least; openssl with the CA's configuration makes one for a second.
        openssl("ca", "-config", "openssl.cnf", "-gencrl", "-crlsec", "1", "-out", folder / "crl.pem",
                cwd=tmp_path / "pki" / "ca")
        next_update = datetime.datetime.strptime(
            openssl("crl", "-in", folder / "crl.pem", "-noout", "-nextupdate").strip().removeprefix("nextUpdate="),
            "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.UTC)
        wait_for(lambda: datetime.datetime.now(datetime.UTC) > next_update, TIMEOUT_S, "the CRL to expire")
        reload(mosquitto)
        assert peers(mosquitto.port, client_id="S2", pki=pki, cert=pki.clients["S2"]).connect() is None
        shutil.copyfile(tmp_path / "pki" / "crl.pem", folder / "crl.pem")
        reload(mosquitto)
        assert peers(mosquitto.port, client_id="S2", pki=pki, cert=pki.clients["S2"]).connect() == SUCCESS
    finally:
        mosquitto.stop()


@pytest.mark.slow
def test_a_crl_mosquitto_cannot_read_at_reload_lets_revoked_certificates_in(tmp_path: Path,
                                                                            peers: Callable[..., Peer]) -> None:
    pki = fleet_pki(tmp_path / "pki", ("S1",))
    ok("revoke", "--dir", tmp_path / "pki" / "ca", "--id", "S1")
    ok("crl", "--dir", tmp_path / "pki" / "ca", "--out", tmp_path / "pki" / "crl.pem")
    folder = tmp_path / "broker"
    mosquitto = configured_broker(folder, pki, certificates=True, crl=tmp_path / "pki" / "crl.pem")
    connect = lambda: peers(mosquitto.port, client_id="S1", pki=pki, cert=pki.clients["S1"]).connect()
    try:
        assert connect() is None
        (folder / "crl.pem").write_text("not a CRL\n", encoding="ascii")
        reload(mosquitto)
        assert connect() == SUCCESS  # mosquitto logs an error and goes on without any CRL
        assert "Unable to load certificate revocation file" in mosquitto.log()
        shutil.copyfile(tmp_path / "pki" / "crl.pem", folder / "crl.pem")
        reload(mosquitto)
        assert connect() is None
    finally:
        mosquitto.stop()
