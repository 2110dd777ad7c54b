"""Fetching a bundle over real HTTPS: resume after a cut, bounded retries, refusals that retrying cannot change."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from bundle_server import BundleServer
from certs import make_pki

from kiosk.releases.download import ATTEMPTS, DownloadFailed, Fetcher

SIZE = 3 * 1024 * 1024 + 17


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def served(tmp_path: Path, pki):
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "kiosk.tar").write_bytes(os.urandom(SIZE))
    with BundleServer(folder, pki) as server:
        yield server


def fetcher(pki, **kwargs: object) -> Fetcher:
    return Fetcher(str(pki.ca.cert), pause=lambda attempt: 0.0, **kwargs)  # type: ignore[arg-type]


def test_a_download_arrives_whole(tmp_path: Path, served: BundleServer, pki) -> None:
    dest = fetcher(pki).fetch(served.url("kiosk.tar"), tmp_path / "b.tar")
    assert dest.read_bytes() == (served.folder / "kiosk.tar").read_bytes()
    assert served.behaviour.requests == [""]
    assert not (tmp_path / "b.tar.part").exists()


def test_a_cut_download_resumes_where_it_stopped(tmp_path: Path, served: BundleServer, pki) -> None:
    served.behaviour.cuts, served.behaviour.cut_at = 2, 1024 * 1024
    dest = fetcher(pki).fetch(served.url("kiosk.tar"), tmp_path / "b.tar")
    original = (served.folder / "kiosk.tar").read_bytes()
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == hashlib.sha256(original).hexdigest()
    assert served.behaviour.requests == ["", "bytes=1048576-", "bytes=2097152-"]


def test_a_part_left_by_a_restart_is_resumed(tmp_path: Path, served: BundleServer, pki) -> None:
    original = (served.folder / "kiosk.tar").read_bytes()
    (tmp_path / "b.tar.part").write_bytes(original[:1000])
    dest = fetcher(pki).fetch(served.url("kiosk.tar"), tmp_path / "b.tar")
    assert dest.read_bytes() == original and served.behaviour.requests == ["bytes=1000-"]


def test_a_server_without_ranges_sends_it_all_again(tmp_path: Path, served: BundleServer, pki) -> None:
    original = (served.folder / "kiosk.tar").read_bytes()
    (tmp_path / "b.tar.part").write_bytes(b"x" * 1000)
    served.behaviour.ranges = False
    assert fetcher(pki).fetch(served.url("kiosk.tar"), tmp_path / "b.tar").read_bytes() == original


def test_retries_are_bounded_when_nothing_arrives(tmp_path: Path, served: BundleServer, pki) -> None:
    served.behaviour.status = 503
    with pytest.raises(DownloadFailed, match=f"{ATTEMPTS} tries in a row brought nothing"):
        fetcher(pki).fetch(served.url("kiosk.tar"), tmp_path / "b.tar")
    assert len(served.behaviour.requests) == ATTEMPTS


def test_not_found_is_not_retried(tmp_path: Path, served: BundleServer, pki) -> None:
    with pytest.raises(DownloadFailed, match="404"):
        fetcher(pki).fetch(served.url("missing.tar"), tmp_path / "b.tar")
    assert len(served.behaviour.requests) == 1


def test_a_bundle_over_the_cap_is_refused(tmp_path: Path, served: BundleServer, pki) -> None:
    with pytest.raises(DownloadFailed, match="at most 1048576"):
        fetcher(pki, max_bytes=1024 * 1024).fetch(served.url("kiosk.tar"), tmp_path / "b.tar")


def test_an_unknown_certificate_authority_is_refused(tmp_path: Path, served: BundleServer) -> None:
    with pytest.raises(DownloadFailed, match="certificate is not trusted"):
        Fetcher().fetch(served.url("kiosk.tar"), tmp_path / "b.tar")
    assert len(served.behaviour.requests) == 0  # refused in the handshake, and not tried again


def test_a_stop_ends_the_retries(tmp_path: Path, served: BundleServer, pki) -> None:
    served.behaviour.status = 503
    stopping = fetcher(pki)
    stopping.pause = lambda attempt: stopping.stop.set() or 0.0  # type: ignore[func-returns-value]
    with pytest.raises(DownloadFailed, match="stopped"):
        stopping.fetch(served.url("kiosk.tar"), tmp_path / "b.tar")


def test_a_file_on_local_media_is_copied(tmp_path: Path) -> None:
    source = tmp_path / "stick" / "kiosk.tar"
    source.parent.mkdir()
    source.write_bytes(b"bundle")
    assert Fetcher().fetch(str(source), tmp_path / "b.tar").read_bytes() == b"bundle"
    with pytest.raises(DownloadFailed, match="No such file"):
        Fetcher().fetch(str(tmp_path / "stick" / "gone.tar"), tmp_path / "c.tar")
