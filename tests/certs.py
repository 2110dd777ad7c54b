"""Test certificates made with the openssl command line: a CA, a server certificate for localhost, clients."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"


@dataclass(frozen=True)
class CertFiles:
    """Paths of one certificate and its private key (PEM)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """A throw-away CA, the broker's certificate and the client certificates, all in ``folder``."""

    folder: Path
    ca: CertFiles
    server: CertFiles
    clients: dict[str, CertFiles]


def _openssl(folder: Path, *args: str, config: str | None = None) -> None:
    """Run openssl in ``folder``; fail with its own message when it fails."""
    extra: tuple[str, ...] = ()
    if config is not None:
        config_path = folder / "openssl-ext.cnf"
        config_path.write_text(config, encoding="utf-8")
        extra = ("-extfile", str(config_path))
    result = subprocess.run(["openssl", *args, *extra], cwd=folder, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr}")


def _key(folder: Path, name: str) -> Path:
    path = folder / f"{name}.key"
    _openssl(folder, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    return path


def _signed(folder: Path, ca: CertFiles, name: str, subject: str, extensions: str) -> CertFiles:
    """A key and a certificate for ``subject`` signed by ``ca``."""
    key = _key(folder, name)
    csr = folder / f"{name}.csr"
    cert = folder / f"{name}.crt"
    _openssl(folder, "req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    _openssl(folder, "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
             "-CAcreateserial", "-days", DAYS, "-sha256", "-out", str(cert), config=extensions)
    return CertFiles(cert, key)


def make_pki(folder: Path, client_cns: tuple[str, ...] = ()) -> Pki:
    """Create a CA, a server certificate for CN=localhost (SAN DNS:localhost, IP:127.0.0.1) and client certificates.

    Each client certificate has the given CN (the station id, which the broker takes as the
    username with ``use_identity_as_username``). Returns the paths of every file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key(folder, "ca")
    ca_cert = folder / "ca.crt"
    _openssl(folder, "req", "-new", "-x509", "-key", str(ca_key), "-subj", "/CN=kiosk test CA", "-days", DAYS,
             "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca_cert))
    ca = CertFiles(ca_cert, ca_key)
    server = _signed(folder, ca, "server", "/CN=localhost",
                     "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
                     "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    clients = {
        cn: _signed(folder, ca, f"client-{cn}", f"/CN={cn}",
                    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
        for cn in client_cns
    }
    return Pki(folder, ca, server, clients)
