"""The Unix socket on which a running simulated station takes `kiosk sim` commands, and the client's end of it."""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Mapping
from pathlib import Path

from kiosk.cli.line_socket import exchange
from kiosk.cli.sim_control import LOOP_S, Controller
from kiosk.cli.sim_protocol import MAX_LINE, Answer, BadRequest, Code, Request, parse_answer, parse_request

__all__ = ["ANSWER_S", "CLIENTS", "IDLE_S", "ControlError", "ControlSocket", "NoStation", "ask", "control_path"]

log = logging.getLogger(__name__)

CLIENTS = 8  # connections served at once; one more is told the station is busy
IDLE_S = 30.0  # a client that sends no complete line for this long is closed
ANSWER_S = LOOP_S + 5.0  # a command waits this long for the one before it, and the client for its answer
CLIENT_MARGIN_S = 5.0  # the client waits this much longer than the station, which says when it gave up
MAX_PATH = 107  # bytes of a Unix socket's path (sun_path, without its NUL)


class ControlError(Exception):
    """The control socket cannot be opened (another station listens on it, a file is in the way); str() says why."""


class NoStation(Exception):
    """No simulated station answered on the control socket; str() says why (none listens, no permission, silence)."""


def control_path(station_id: str, database: Path, environ: Mapping[str, str]) -> Path:
    """Where the simulated station ``station_id`` listens: ``$XDG_RUNTIME_DIR/kiosk/<id>.sock``.

    Without a runtime directory (XDG_RUNTIME_DIR unset or not absolute): ``<id>.control.sock``
    beside the station's database.
    """
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "kiosk" / f"{station_id}.sock"
    return database.parent / f"{station_id}.control.sock"


class ControlSocket:
    """The simulated station's end: a Unix socket (mode 0600) answering one JSON line per request line.

    ``open`` binds it before the station is built, so that a second station on the same path
    fails at once; ``serve`` starts answering with a controller. Requests are carried out one at
    a time; a bad line is answered with what is wrong, a line longer than MAX_LINE ends the
    connection, a half line is dropped when its client goes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._server: socket.socket | None = None
        self._inode: int | None = None
        self._controller: Controller | None = None
        self._closing = threading.Event()
        self._one_at_a_time = threading.Lock()
        self._slots = threading.BoundedSemaphore(CLIENTS)
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()

    def open(self) -> None:
        """Listen on the path; a stale socket from a run that ended is replaced. ControlError if it cannot be had."""
        path = self.path
        if len(os.fsencode(path)) > MAX_PATH:
            raise ControlError(f"{path}: a Unix socket's path has at most {MAX_PATH} bytes; choose a shorter --control")
        self._clear_stale(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.umask(0o177)
            server.bind(str(path))
            server.listen(CLIENTS)
            self._inode = path.stat().st_ino
        except OSError as exc:
            server.close()
            raise ControlError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
        finally:
            os.umask(old_umask)
        self._server = server

    def serve(self, controller: Controller) -> None:
        """Start answering requests with ``controller`` (after ``open``)."""
        assert self._server is not None, "open() first"
        self._controller = controller
        threading.Thread(target=self._accept, args=(self._server,), name="sim-control", daemon=True).start()
        log.info("live control: kiosk sim --control %s", self.path)

    def close(self) -> None:
        """Stop: a command in progress is answered that the station stops; the socket file goes (if still ours)."""
        self._closing.set()
        if self._controller is not None:
            self._controller.close()
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        with self._lock:
            clients = list(self._clients)
        for conn in clients:  # their threads read an end of file and go
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:  # not a socket another station made since
                self.path.unlink()

    @staticmethod
    def _clear_stale(path: Path) -> None:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ControlError(f"cannot use {path}: {exc.strerror or exc}") from exc
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"{path} exists and is not a socket: it is not replaced; remove it or choose another "
                               "--control PATH")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                probe.connect(str(path))
        except ConnectionRefusedError:
            log.info("live control: the stale socket %s of a run that ended is replaced", path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        except OSError as exc:
            raise ControlError(f"cannot use {path}: {exc.strerror or exc}") from exc
        raise ControlError(f"another simulated station listens on {path}: give each station its own id "
                           "([station] id in its --config) or its own --control PATH")

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            if not self._slots.acquire(blocking=False):
                self._refuse(conn, Answer(False, Code.BUSY, f"{CLIENTS} clients are connected already; try again"))
                continue
            threading.Thread(target=self._serve_client, args=(conn,), name="sim-control-client", daemon=True).start()

    @staticmethod
    def _refuse(conn: socket.socket, answer: Answer) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(1.0)
            conn.sendall(answer.line())

    def _serve_client(self, conn: socket.socket) -> None:
        with self._lock:
            self._clients.add(conn)
        try:
            with conn:
                conn.settimeout(IDLE_S)
                self._converse(conn)
        except OSError as exc:  # the client went (reset, timeout): nothing to answer to
            log.debug("live control: a client went: %s", exc)
        finally:
            with self._lock:
                self._clients.discard(conn)
            self._slots.release()

    def _converse(self, conn: socket.socket) -> None:
        """Answer each line the client sends until it closes, goes quiet for IDLE_S or sends too long a line."""
        pending = b""
        while not self._closing.is_set():
            newline = pending.find(b"\n")
            if newline < 0:
                if len(pending) >= MAX_LINE:
                    conn.sendall(Answer(False, Code.TOO_LONG, f"a request is one line of at most {MAX_LINE - 1} "
                                                              "bytes; the connection is closed").line())
                    return
                try:
                    chunk = conn.recv(MAX_LINE)
                except TimeoutError:
                    if pending:
                        conn.sendall(Answer(False, Code.BAD_REQUEST, f"no end of line within {IDLE_S:g} s; the "
                                                                     "connection is closed").line())
                    return
                if not chunk:
                    if pending:
                        log.debug("live control: a client went in the middle of a line: %r", pending[:80])
                    return
                pending += chunk
                continue
            line, pending = pending[:newline], pending[newline + 1:]
            answer = self._answer(line.removesuffix(b"\r"))
            conn.sendall(answer.line())
            if answer.code is Code.TOO_LONG:
                return

    def _answer(self, line: bytes) -> Answer:
        try:
            request = parse_request(line)
        except BadRequest as exc:
            return Answer(False, exc.code, str(exc))
        if self._closing.is_set() or self._controller is None:
            return Answer(False, Code.STOPPING, "the station is stopping")
        if not self._one_at_a_time.acquire(timeout=ANSWER_S):
            return Answer(False, Code.BUSY, f"another command kept the station busy for {ANSWER_S:g} s")
        try:
            return self._controller.execute(request)
        finally:
            self._one_at_a_time.release()


def ask(path: Path, request: Request, timeout: float = ANSWER_S + CLIENT_MARGIN_S) -> Answer:
    """Send ``request`` to the simulated station listening on ``path`` and return its answer.

    NoStation when none listens there, it may not be asked, or it does not answer within ``timeout`` s.
    """
    try:
        received = exchange(path, request.line(), timeout)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise NoStation(f"no simulated station listens on {path} (start one with `kiosk run --simulate`)") from exc
    except PermissionError as exc:
        raise NoStation(f"no permission to use {path}: it is another user's station") from exc
    except TimeoutError as exc:
        raise NoStation(f"the station on {path} did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise NoStation(f"cannot ask the station on {path}: {exc.strerror or exc}") from exc
    try:
        return parse_answer(received)
    except ValueError as exc:
        detail = "it closed the connection without one" if not received else f"not an answer: {received[:80]!r}"
        raise NoStation(f"the station on {path} did not answer: {detail}") from exc
