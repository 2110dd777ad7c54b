"""One line asked and one line answered over a local Unix socket (the doctor's and the live control's clients)."""
from __future__ import annotations

import socket
from pathlib import Path

__all__ = ["exchange"]


def exchange(path: Path, request: bytes, timeout: float) -> bytes:
    """Send ``request`` (a line) to the socket at ``path`` and return what came back up to its first newline,
    or up to the end if the other side closed first; OSError (FileNotFoundError, ConnectionRefusedError,
    PermissionError, TimeoutError, ...) as the socket raises it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(request)
        received = b""
        while not received.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received
