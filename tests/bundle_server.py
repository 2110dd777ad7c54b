"""An HTTPS file server for tests of the download: honours Range, and can cut a response short or refuse on purpose."""
from __future__ import annotations

import http.server
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from certs import Pki


@dataclass
class Behaviour:
    """What the server does next: cut the next ``cuts`` responses after ``cut_at`` bytes, answer ``status`` instead."""

    cuts: int = 0
    cut_at: int = 0
    status: int | None = None
    ranges: bool = True
    requests: list[str] = field(default_factory=list)  # the Range header of each GET ("" without one)


class BundleServer:
    """Serves the files of ``folder`` over HTTPS on a free loopback port with the test PKI's server certificate."""

    def __init__(self, folder: Path, pki: Pki) -> None:
        self.folder = folder
        self.behaviour = Behaviour()
        behaviour = self.behaviour
        served = folder

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked = self.headers.get("Range", "")
                behaviour.requests.append(asked)
                if behaviour.status is not None:
                    self.send_error(behaviour.status)
                    return
                path = served / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                found = re.fullmatch(r"bytes=(\d+)-", asked)
                if found and behaviour.ranges:
                    start = int(found.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if behaviour.cuts > 0:
                    behaviour.cuts -= 1
                    self.wfile.write(body[:behaviour.cut_at])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-body
                    return
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up (a refused certificate, a stopped download): nothing for the test log

        self.httpd = Server(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server.cert, pki.server.key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, name: str) -> str:
        """The https:// address of file ``name``."""
        return f"https://localhost:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> BundleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
