"""An HTTP server on 127.0.0.1 whose routes misbehave on purpose, for the shared download's tests:
lying or missing lengths, redirects anywhere, stalls and drips."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


class HostileServer:
    def __init__(self) -> None:
        self.port = 0
        self.routes: dict[str, Route] = {}
        #: (path, Host header, Accept-Encoding header) of every request
        self.requests: list[tuple[str, str, str]] = []
        #: set when the test ends, so stalled handlers return
        self.release = threading.Event()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [p for p, _host, _enc in self.requests]


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append((self.path, self.headers.get("Host", ""),
                                    self.headers.get("Accept-Encoding", "")))
            route = server.routes.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_error(404)
                return
            with contextlib.suppress(ConnectionError):
                route(self)

    return Handler


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    holder = HostileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
    httpd.daemon_threads = True
    holder.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        holder.release.set()
        httpd.shutdown()
        httpd.server_close()


def body(data: bytes, *, length: str | None = None, chunked: bool = False,
         headers: dict[str, str] | None = None) -> Route:
    """200 with ``data``; ``Content-Length`` is the true length unless ``length`` says otherwise,
    chunked encoding when asked, else (``length=""``) no length and the connection closes."""
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for i in range(0, len(data), 65536):
                part = data[i:i + 65536]
                h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
            return
        if length != "":
            h.send_header("Content-Length", str(len(data)) if length is None else length)
        else:
            h.close_connection = True
        h.end_headers()
        h.wfile.write(data)
        if length is not None:
            h.close_connection = True

    return send


def redirect(location: str | None, status: int = 302) -> Route:
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        if location is not None:
            h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return send


def stall_before_headers(server: HostileServer) -> Route:
    def send(h: BaseHTTPRequestHandler) -> None:
        server.release.wait(30)

    return send


def stall_after(server: HostileServer, first: bytes, announced: int) -> Route:
    """Headers and the first bytes of a body of ``announced`` bytes, then nothing."""
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(announced))
        h.end_headers()
        h.wfile.write(first)
        h.wfile.flush()
        server.release.wait(30)
        h.close_connection = True

    return send


def drip(server: HostileServer, data: bytes, interval: float) -> Route:
    """The body one byte at a time, each well within any read timeout."""
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for i in range(len(data)):
            if server.release.is_set():
                return
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            time.sleep(interval)

    return send
