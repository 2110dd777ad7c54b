"""Fetching a bundle: over HTTPS with resume (HTTP Range) and bounded retries, or copied from a file (a USB stick)."""
from __future__ import annotations

import logging
import os
import ssl
import stat
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ATTEMPTS", "CHUNK", "DownloadFailed", "Fetcher"]

log = logging.getLogger(__name__)

ATTEMPTS = 6  # tries in a row without progress; a try that brought bytes starts the count again
CHUNK = 256 * 1024
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadFailed(Exception):
    """The bundle could not be fetched (refused, too large, retries exhausted, or stopped); str() says why."""


@dataclass
class Fetcher:
    """Fetches ``source`` into a ``.part`` file it can resume, then renames it to ``dest``.

    ``ca_file`` adds a CA for the download server (empty: the system's CAs); ``max_bytes``
    caps the size; ``pause`` waits between tries (a function of the try number, interruptible
    by ``stop``, which also ends a transfer); ``progress`` hears (bytes so far, total or None).
    """

    ca_file: str = ""
    max_bytes: int = 500 * 1024 * 1024
    timeout_s: float = 30.0
    pause: Callable[[int], float] = lambda attempt: min(60.0, 2.0 ** attempt)
    stop: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[int, int | None], None] | None = None

    def fetch(self, source: str, dest: Path) -> Path:
        """Fetch ``source`` (an https:// address or an absolute file path) to ``dest``; DownloadFailed if it cannot."""
        if dest.is_file():
            return dest
        part = dest.with_name(dest.name + ".part")
        if source.startswith("/"):
            return self._copy(Path(source), part, dest)
        failures = 0
        last = ""
        while failures < ATTEMPTS:
            if self.stop.is_set():
                raise DownloadFailed("stopped")
            before = part.stat().st_size if part.exists() else 0
            try:
                self._get(source, part)
                os.replace(part, dest)
                return dest
            except _Refused as exc:
                raise DownloadFailed(str(exc)) from exc
            except ssl.SSLCertVerificationError as exc:
                raise DownloadFailed(f"the server's certificate is not trusted: {exc.verify_message}") from exc
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLCertVerificationError):
                    raise DownloadFailed(f"the server's certificate is not trusted: {exc.reason.verify_message}") from exc
                last = f"{type(exc).__name__}: {exc}"
            except (OSError, TimeoutError, _Short) as exc:
                last = f"{type(exc).__name__}: {exc}"
            grown = (part.stat().st_size if part.exists() else 0) > before
            failures = 1 if grown else failures + 1
            log.warning("download of %s interrupted (%s); %s", source, last,
                        f"try {failures + 1} of {ATTEMPTS}" if failures < ATTEMPTS else "giving up")
            if failures < ATTEMPTS and self.stop.wait(self.pause(failures)):
                raise DownloadFailed("stopped")
        raise DownloadFailed(f"{ATTEMPTS} tries in a row brought nothing; last: {last}")

    def _context(self) -> ssl.SSLContext:
        """The system's CAs, and ``ca_file`` besides them if set."""
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context

    def _get(self, url: str, part: Path) -> None:
        """One try: ask for what is missing (Range), append it; _Short if the server stopped early."""
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout_s, context=self._context())
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to send: the part is whole (its checksum will tell)
                return
            if exc.code in RETRYABLE_HTTP:
                raise
            raise _Refused(f"the server answered {exc.code} {exc.reason}") from exc
        with response:
            if not url.startswith("https://") or not response.geturl().startswith("https://"):
                raise _Refused(f"redirected to {response.geturl()}: only https:// is accepted")
            resumed = response.status == 206
            length = response.headers.get("Content-Length")
            total = (have if resumed else 0) + int(length) if length and length.isdigit() else None
            if total is not None and total > self.max_bytes:
                raise _Refused(f"{total} bytes; at most {self.max_bytes} (updates.max_bundle_mb)")
            mode = "ab" if resumed else "wb"
            with open(part, mode) as out:
                size = have if resumed else 0
                while chunk := response.read(CHUNK):
                    if self.stop.is_set():
                        raise DownloadFailed("stopped")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _Refused(f"more than {self.max_bytes} bytes (updates.max_bundle_mb)")
                    out.write(chunk)
                    if self.progress is not None:
                        self.progress(size, total)
                out.flush()
                os.fsync(out.fileno())
            if total is not None and size < total:
                raise _Short(f"{size} of {total} bytes")

    def _copy(self, source: Path, part: Path, dest: Path) -> Path:
        """A bundle on local media: copied whole (the media may be pulled out once it is done), a regular file only."""
        try:
            with open(source, "rb") as given, open(part, "wb") as out:
                if not stat.S_ISREG(os.fstat(given.fileno()).st_mode):
                    raise DownloadFailed(f"{source}: not a regular file")
                size = 0
                while chunk := given.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DownloadFailed(f"{source}: more than {self.max_bytes} bytes (updates.max_bundle_mb)")
                    if self.stop.is_set():
                        raise DownloadFailed("stopped")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise DownloadFailed(f"{source}: {exc.strerror or exc}") from exc
        except DownloadFailed:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        return dest


class _Refused(Exception):
    """The server's answer will not change by asking again (not found, forbidden, too large)."""


class _Short(Exception):
    """The connection ended before the announced length."""
