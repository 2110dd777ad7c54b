"""The intercom on baresip: a supervised child process, driven and heard through its ctrl_tcp socket."""
from __future__ import annotations

import collections
import contextlib
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.intercom.baresip_files import PasswordUnusable, dial_uri, write_folder
from drivers.intercom.netstring import FrameError, NetstringReader, encode
from kiosk.config import VoiceSettings
from kiosk.domain.events import CallOffered, CallProgress, Event, IntercomHealth
from kiosk.domain.voice import CallPhase, FailReason

__all__ = ["CALLBACK_TONE_S", "RESTART_DELAYS_S", "BaresipIntercom"]

log = logging.getLogger(__name__)

RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # after the user agent died: the first restart, the next, ...
CONNECT_S = 10.0  # how long a fresh baresip may take to open its control socket
PING_S = 30.0  # a baresip quiet this long is asked something; one that then stays quiet as long is restarted
HEALTHY_RUN_S = 60.0  # a baresip that ran this long died of something new: restart it after the first delay again
CALLBACK_TONE_S = 1.0  # an agent's callback rings this long on the station's speaker before it is answered
STOPPED = "the SIP user agent stopped"

Post = Callable[[Event], None]

# baresip's call events and the phase each means for the station's call.
CALL_EVENTS = {
    "CALL_RINGING": CallPhase.RINGING,
    "CALL_PROGRESS": CallPhase.RINGING,
    "CALL_ESTABLISHED": CallPhase.TALKING,
    "CALL_CLOSED": CallPhase.ENDED,
}


class BaresipIntercom:
    """Help by voice through baresip (kiosk.ports.Intercom): one call at a time, each bound to a help ticket.

    A supervisor thread starts baresip with a folder written from the settings, connects to its
    ctrl_tcp socket and reads its events; when baresip dies (or its stream breaks) the calls it
    held fail, the ``help`` fault says so, and it is started again after RESTART_DELAYS_S.
    """

    def __init__(self, voice: VoiceSettings, station_id: str, folder: Path, post: Post) -> None:
        self._voice = voice
        self._station = station_id
        self._folder = folder
        self._post = post
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._calls: dict[str, str] = {}  # SIP Call-ID -> ticket
        self._dialling: str | None = None  # the ticket whose outgoing call has no Call-ID yet
        self._offered: set[str] = set()  # incoming calls baresip announced and has not closed
        self._gone: collections.deque[str] = collections.deque(maxlen=16)  # calls hung up: their late events
        self._strays: dict[str, None] = {}  # tickets whose call was hung up before baresip named it (oldest first):
        # that call's late close is not the next call's, and a refused dial has none
        self._tail: collections.deque[str] = collections.deque(maxlen=20)  # baresip's last lines, for the fault
        self._answer_timer: threading.Timer | None = None

    @property
    def ready(self) -> bool:
        """baresip runs and its control socket is connected (a call asked for now is placed)."""
        with self._lock:
            return self._sock is not None

    @property
    def process_id(self) -> int | None:
        """The running baresip's process id (for diagnostics), None while none runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    # ---- the port ----

    def start(self) -> None:
        """Start supervising baresip in the background."""
        self._thread = threading.Thread(target=self._supervise, name="baresip", daemon=True)
        self._thread.start()

    def dial(self, ticket_id: str) -> None:
        """Call voice.destination for ``ticket_id``; a call that cannot be placed fails at once."""
        with self._lock:
            busy = self._dialling is not None or bool(self._calls)
            sent = not busy and self._send_locked({"command": "dial", "params": dial_uri(self._voice, ticket_id,
                                                                                          self._station),
                                                   "token": f"dial:{ticket_id}"})
            if sent:
                self._dialling = ticket_id
        if not sent:
            reason = "another call is going on" if busy else STOPPED
            log.warning("help ticket %s: call not placed: %s", ticket_id, reason)
            self._post(CallProgress(ticket_id, CallPhase.FAILED, reason=FailReason.UNREACHABLE))

    def hang_up(self, ticket_id: str) -> None:
        """End ``ticket_id``'s call (baresip has one call at a time: call_max_calls 1, so its current one); the
        call is forgotten at once, and its late events are not taken for the next call's."""
        with self._lock:
            if ticket_id != self._dialling and ticket_id not in self._calls.values():
                return
            self._cancel_answer_locked()
            self._send_locked({"command": "hangup", "token": f"hangup:{ticket_id}"})
            if self._dialling == ticket_id:
                self._dialling = None
                self._strays[ticket_id] = None
            for call_id in [c for c, t in self._calls.items() if t == ticket_id]:
                del self._calls[call_id]
                self._gone.append(call_id)

    def answer(self, ticket_id: str, call_id: str) -> None:
        """Answer an agent's callback after CALLBACK_TONE_S of ring tone on the station's speaker; a call that is
        gone meanwhile (the agent gave up, baresip restarted) fails at once."""
        with self._lock:
            ringing = call_id in self._offered and self._sock is not None
            if ringing:
                self._calls[call_id] = ticket_id
                self._cancel_answer_locked()
                self._answer_timer = threading.Timer(CALLBACK_TONE_S, self._accept, (call_id,))
                self._answer_timer.daemon = True
                self._answer_timer.start()
        if not ringing:
            log.warning("help ticket %s: the callback %s is gone before it was answered", ticket_id, call_id)
            self._post(CallProgress(ticket_id, CallPhase.ENDED, call_id, reason="the caller hung up"))

    def refuse(self, call_id: str) -> None:
        """Refuse an incoming call (baresip answers 486 to an unanswered incoming call it hangs up)."""
        with self._lock:
            if call_id in self._offered and call_id not in self._calls:  # baresip's hangup ends its newest call
                self._send_locked({"command": "hangup", "token": f"refuse:{call_id}"})

    def close(self) -> None:
        """Hang up, stop baresip and the supervisor."""
        self._stopping.set()
        with self._lock:
            self._cancel_answer_locked()
            self._send_locked({"command": "hangup", "token": "close"})
            if self._sock is not None:
                with contextlib.suppress(OSError):  # wakes the reader's recv (close alone would not)
                    self._sock.shutdown(socket.SHUT_RDWR)
        self._stop_process()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ---- the supervisor thread ----

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                reason = self._run_once()
            except Exception as exc:  # a bug must not end the supervision: the fault says it, baresip restarts
                log.exception("baresip supervision failed")
                reason = f"{type(exc).__name__}: {exc}"
            self._lost(reason)
            if self._stopping.is_set():
                break
            if time.monotonic() - began > HEALTHY_RUN_S:
                failures = 0
            delay = RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S) - 1)]
            failures += 1
            log.warning("baresip stopped (%s); starting it again in %.0f s", reason, delay)
            self._stopping.wait(delay)  # a back-off, not synchronisation: close() ends it at once

    def _run_once(self) -> str:
        """Start baresip, connect, read its events until it ends; why it ended (_lost makes it the fault)."""
        try:
            files = write_folder(self._folder, self._voice, self._station)
        except (PasswordUnusable, OSError) as exc:
            return str(exc)
        if shutil.which(self._voice.program) is None:
            return f"cannot find the SIP user agent {self._voice.program!r} (Debian's baresip-core)"
        try:
            self._process = subprocess.Popen(  # setpriv (util-linux): killed with the station, no orphan keeps the port
                ["setpriv", "--pdeathsig", "TERM", "--", self._voice.program, "-f", str(files.folder)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as exc:
            return f"cannot start {self._voice.program}: {exc}"
        threading.Thread(target=self._log_output, args=(self._process,), name="baresip-output", daemon=True).start()
        sock = self._connect(files.control_port)
        if sock is None:
            return "its control socket did not open: " + " / ".join(list(self._tail)[-3:])
        with self._lock:
            self._sock = sock
        if not self._voice.registrar:
            self._post(IntercomHealth(None))  # nothing to register with: calls go straight out
        return self._read(sock)

    def _connect(self, port: int) -> socket.socket | None:
        deadline = time.monotonic() + CONNECT_S
        while time.monotonic() < deadline and not self._stopping.is_set():
            if self._process is None or self._process.poll() is not None:
                return None
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                self._stopping.wait(0.05)  # baresip is still starting: try again shortly
        return None

    def _read(self, sock: socket.socket) -> str:
        reader = NetstringReader()
        asked = False  # a quiet baresip was asked something and has not answered yet
        while True:
            sock.settimeout(PING_S)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if asked:
                    return f"baresip does not answer on its control socket (for {2 * PING_S:.0f} s)"
                with self._lock:
                    asked = self._send_locked({"command": "reginfo", "token": "ping"})
                continue
            except OSError as exc:
                return f"control socket: {exc}"
            asked = False
            if not data:
                return "control socket closed"
            try:
                messages = reader.feed(data)
            except FrameError as exc:
                return f"control stream broken: {exc}"
            for message in messages:
                try:
                    self._heard(message)
                except Exception:  # one odd event must not stop the intercom
                    log.exception("baresip event not understood: %r", message)

    def _lost(self, reason: str) -> None:
        """baresip is gone: its calls failed, the fault is raised, the process is reaped."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            tickets = [*self._calls.values(), *([self._dialling] if self._dialling else [])]
            self._calls.clear()
            self._offered.clear()
            self._dialling = None
            self._strays.clear()
        self._stop_process()
        for ticket in dict.fromkeys(tickets):
            self._post(CallProgress(ticket, CallPhase.ENDED, reason=STOPPED))
        if not self._stopping.is_set():
            self._post(IntercomHealth("voice_down", reason))

    def _stop_process(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._tail.append(line)
                log.debug("baresip: %s", line)

    # ---- what baresip says ----

    def _heard(self, message: dict[str, Any]) -> None:
        if message.get("response") is True:
            self._response(message)
            return
        if message.get("event") is not True:
            return
        kind = message.get("type")
        if kind == "REGISTER_OK":
            self._post(IntercomHealth(None))
        elif kind == "REGISTER_FAIL":
            self._post(IntercomHealth("voice_unregistered", str(message.get("param", ""))))
        elif kind == "CALL_INCOMING":
            call_id = str(message.get("id", ""))
            with self._lock:
                self._offered.add(call_id)
            self._post(CallOffered(call_id, str(message.get("peeruri", ""))))
        elif kind in CALL_EVENTS:
            self._call_event(CALL_EVENTS[kind], message)

    def _call_event(self, phase: CallPhase, message: dict[str, Any]) -> None:
        call_id = str(message.get("id", ""))
        outgoing = message.get("direction") == "outgoing"
        with self._lock:
            if phase is CallPhase.ENDED:
                self._offered.discard(call_id)
            ticket = self._calls.get(call_id)
            if ticket is None and outgoing and call_id not in self._gone:
                if phase is CallPhase.ENDED and self._strays:  # the close of a call hung up before it was named
                    del self._strays[next(iter(self._strays))]
                    return
                if self._dialling is not None:
                    ticket = self._calls[call_id] = self._dialling
                    self._dialling = None
            if ticket is None:
                return
            if phase is CallPhase.ENDED:
                del self._calls[call_id]
        reason = str(message.get("param", "")) if phase is CallPhase.ENDED else ""
        self._post(CallProgress(ticket, phase, call_id, str(message.get("peeruri", "")), reason))

    def _response(self, message: dict[str, Any]) -> None:
        token = str(message.get("token", ""))
        if message.get("ok") is True or not token.startswith("dial:"):
            return
        ticket = token[len("dial:"):]
        with self._lock:
            self._strays.pop(ticket, None)  # hung up already, and there was no call: no close will come
            if self._dialling != ticket:
                return
            self._dialling = None
        log.warning("help ticket %s: baresip refused the call: %s", ticket, message.get("data"))
        self._post(CallProgress(ticket, CallPhase.FAILED, reason=FailReason.UNREACHABLE))

    # ---- helpers ----

    def _accept(self, call_id: str) -> None:
        with self._lock:
            if call_id in self._calls:
                self._send_locked({"command": "accept", "token": f"accept:{call_id}"})

    def _cancel_answer_locked(self) -> None:
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None

    def _send_locked(self, command: dict[str, str]) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendall(encode(command))
        except OSError as exc:
            log.warning("baresip command %s not sent: %s", command.get("command"), exc)
            return False
        return True
