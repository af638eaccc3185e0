"""A loopback HTTP server for template downloads, with the misbehaviours the server must survive."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class ImageServer:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.hits: list[str] = []

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path.lstrip('/')}"


def _handler(server: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.hits.append(self.path)
            if self.path.startswith("/redirect-other/"):
                target = f"http://127.0.0.2:{server.port}/{self.path.split('/', 2)[2]}"
                self._redirect(target)
                return
            if self.path.startswith("/redirect-same/"):
                self._redirect("/" + self.path.split("/", 2)[2])
                return
            chunked = self.path.startswith("/chunked/")
            name = self.path.split("?")[0].split("/")[-1]  # a query (e.g. a token) names no file
            path = server.root / name
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                with contextlib.suppress(ConnectionError):
                    for i in range(0, len(data), 65536):
                        part = data[i:i + 65536]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(ConnectionError):
                self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def serve_images(root: Path) -> Iterator[ImageServer]:
    holder = ImageServer(root, 0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
    httpd.protocol_version = "HTTP/1.1"
    holder.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        httpd.shutdown()
        httpd.server_close()
