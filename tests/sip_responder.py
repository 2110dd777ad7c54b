"""A SIP destination on loopback UDP that answers every INVITE with one final status (603 Decline, 404 Not Found...).

baresip 1.0 can only answer 486 to a call it hangs up, so the tests use this for the other refusals.
"""
from __future__ import annotations

import socket
import threading


class SipResponder:
    """Answers each INVITE with ``status`` (e.g. "603 Decline"); ``invites`` counts them. Ignores everything else."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.invites = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.uri = f"sip:help@127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self._sock.recvfrom(65536)
            except OSError:
                return
            request = data.decode("utf-8", "replace")
            if not request.startswith("INVITE "):
                continue
            self.invites += 1
            headers = {}
            for line in request.split("\r\n")[1:]:
                if not line:
                    break
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
            reply = [f"SIP/2.0 {self.status}", *(f"Via: {via}" for via in headers.get("via", [])),
                     f"From: {headers['from'][0]}", f"To: {headers['to'][0]};tag=responder",
                     f"Call-ID: {headers['call-id'][0]}", f"CSeq: {headers['cseq'][0]}", "Content-Length: 0", "", ""]
            self._sock.sendto("\r\n".join(reply).encode(), peer)

    def close(self) -> None:
        self._sock.close()
