"""baresip's ctrl_tcp framing: JSON objects in netstrings ("<length>:<bytes>,"), both ways."""
from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_FRAME", "FrameError", "NetstringReader", "encode"]

MAX_FRAME = 64 * 1024  # ctrl_tcp's own messages are far smaller; anything bigger is a broken stream
_MAX_DIGITS = len(str(MAX_FRAME))


class FrameError(ValueError):
    """The byte stream is not netstring-framed JSON objects: the connection must be dropped (no resync is possible)."""


def encode(message: dict[str, Any]) -> bytes:
    """One JSON object as a netstring."""
    data = json.dumps(message, separators=(",", ":")).encode()
    return str(len(data)).encode() + b":" + data + b","


class NetstringReader:
    """Splits a byte stream into the JSON objects it frames; FrameError on the first byte that breaks the framing."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The complete messages ``data`` finished (a partial one is kept for the next call)."""
        self._buffer += data
        messages = []
        while self._buffer:
            colon = self._buffer.find(b":", 0, _MAX_DIGITS + 1)
            if colon < 0:
                if len(self._buffer) > _MAX_DIGITS or not self._buffer.isdigit():
                    raise FrameError(f"no length prefix in {bytes(self._buffer[:16])!r}")
                break
            digits = bytes(self._buffer[:colon])
            if not digits.isdigit() or (len(digits) > 1 and digits.startswith(b"0")):
                raise FrameError(f"bad length prefix {digits!r}")
            length = int(digits)
            if length > MAX_FRAME:
                raise FrameError(f"frame of {length} bytes; at most {MAX_FRAME}")
            end = colon + 1 + length
            if len(self._buffer) <= end:
                break
            if self._buffer[end] != ord(","):
                raise FrameError(f"frame of {length} bytes not followed by ','")
            payload = bytes(self._buffer[colon + 1:end])
            del self._buffer[:end + 1]
            try:
                message = json.loads(payload)
            except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, a number too long to convert
                raise FrameError(f"not JSON: {exc}") from exc
            if not isinstance(message, dict):
                raise FrameError(f"expected a JSON object, got {type(message).__name__}")
            messages.append(message)
        return messages
