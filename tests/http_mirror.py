"""A local HTTP mirror for the download tests (never the internet): it serves files by name, honours or ignores
Range requests, can drop the connection part-way, and records what it was asked for and what it sent."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Server:
    """What the fake mirror serves and what it saw: the Range header and the body bytes sent, per GET."""

    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    cut_after: int | None = None  # the next response drops the connection after this many body bytes
    ranges: list[str | None] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    base: str = ""

    def url(self, file_name: str) -> str:
        return f"{self.base}/{file_name}"


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            wanted = self.headers.get("Range")
            server.ranges.append(wanted)
            data = server.files.get(self.path.lstrip("/"))
            if data is None:
                server.sent.append(0)
                self.send_error(404)
                return
            start = 0
            if wanted and server.honour_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
                if start >= len(data):
                    server.sent.append(0)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if server.cut_after is not None:
                body, server.cut_after = body[: server.cut_after], None
                self.close_connection = True
            # Noted before writing: the client may have read it all, and the test asserted, before the next line runs.
            server.sent.append(len(body))
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_port}"
    # A short poll interval keeps shutdown() from adding half a second to every test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
