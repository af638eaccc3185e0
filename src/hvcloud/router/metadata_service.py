"""The router's metadata (port 80) and password (port 8080) service, one process per router.

Run inside the router's namespace: ``python -m hvcloud.router.metadata_service --dir D --address A
--pid-file P``. Every answer depends on the request's source address only: the VM at 10.1.1.5 is
served ``D/vmdata/10.1.1.5.json`` and its password from ``D/passwords/``; an address without data
gets 404. Files are read per request, so the agent's changes are live without a restart or signal.
HTTP/1.0 answers, one request per connection (busybox wget, curl and cloud-init alike).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hvcloud import logs
from hvcloud.atomic_file import load_json, write_atomic
from hvcloud.router import metadata, passwords
from hvcloud.router.validation import VmFiles

log = logs.get(__name__)

METADATA_PORT = 80
PASSWORD_PORT = 8080
#: connections served at once per port; more are closed at once
MAX_CONNECTIONS = 64
#: seconds a client may take to send its request
REQUEST_TIMEOUT = 10.0
#: a request line or header line longer than this is refused (http.server allows 64 KiB)
MAX_LINE = 8192


def vm_files(directory: Path, ip: str) -> VmFiles | None:
    """The vm data of the VM at ``ip`` (a canonical address), None when there is none."""
    path = directory / "vmdata" / f"{ip}.json"
    data = load_json(path, None)
    return None if data is None else metadata.files_from_json(data)


def _peer(handler: BaseHTTPRequestHandler) -> str | None:
    try:
        return str(ipaddress.IPv4Address(handler.client_address[0]))
    except ValueError:
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "hvcloud-router"
    sys_version = ""
    timeout = REQUEST_TIMEOUT
    directory: Path

    def handle(self) -> None:
        """One request per connection, whatever the client asks for."""
        self.close_connection = True
        # a client that went away or stalled gets nothing
        with contextlib.suppress(ConnectionError, TimeoutError):
            self.handle_one_request()

    def handle_one_request(self) -> None:
        # the base class reads a request line of up to 64 KiB: cap it lower before it parses
        try:
            line = self.rfile.readline(MAX_LINE + 1)
        except TimeoutError:
            self.close_connection = True
            return
        if len(line) > MAX_LINE:
            self.requestline, self.command = "", "GET"
            self.send_error(414)
            return
        self.raw_requestline = line
        if not line:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        if self.command not in ("GET", "HEAD"):
            self.send_error(405)
            return
        self.serve()
        self.wfile.flush()
        self.close_connection = True

    def serve(self) -> None:
        raise NotImplementedError

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A short plain answer, with a status line even to a garbled or HTTP/0.9 request."""
        self.request_version = "HTTP/1.0"
        self.command = getattr(self, "command", None) or "GET"
        self.close_connection = True
        self.reply(code, f"{code} {self.responses.get(code, ('Error',))[0]}\n".encode())

    def reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetadataHandler(_Handler):
    def serve(self) -> None:
        ip = _peer(self)
        files = vm_files(self.directory, ip) if ip else None
        body = metadata.resolve(self.path, files) if files is not None else None
        log.debug("metadata.request", client=ip, path=self.path[:200], found=body is not None)
        if body is None:
            self.reply(404, b"Not Found\n")
        else:
            self.reply(200, body)


class PasswordHandler(_Handler):
    def serve(self) -> None:
        ip = _peer(self)
        request = self.headers.get(passwords.HEADER)
        if ip is None:
            self.reply(200, passwords.BAD_REQUEST.encode())
            return
        reply = passwords.answer(passwords.FilePasswords(self.directory / "passwords"), ip, request)
        log.info("password.request", client=ip, request=(request or "")[:40],
                 delivered=reply not in (passwords.SAVED_PASSWORD, passwords.BAD_REQUEST))
        self.reply(200, reply.encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = MAX_CONNECTIONS

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def handler_for(base: type[_Handler], directory: Path) -> type[_Handler]:
    return type(base.__name__, (base,), {"directory": directory})


def make_servers(directory: Path, address: str, metadata_port: int = METADATA_PORT,
                 password_port: int = PASSWORD_PORT) -> tuple[Server, Server]:
    """The metadata and the password server, bound (port 0: any free port)."""
    return (Server((address, metadata_port), handler_for(MetadataHandler, directory)),
            Server((address, password_port), handler_for(PasswordHandler, directory)))


def serve(directory: Path, address: str, pid_file: Path | None,
          metadata_port: int = METADATA_PORT, password_port: int = PASSWORD_PORT) -> None:
    servers = make_servers(directory, address, metadata_port, password_port)
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    # the agent reloads dnsmasq with SIGHUP; this service reads its files per request
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if pid_file is not None:
        write_atomic(pid_file, f"{os.getpid()}\n".encode(), fsync=False)
    log.info("metadata.started", address=address, metadata_port=metadata_port, password_port=password_port)
    servers[0].serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hvcloud router metadata and password service")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--pid-file", type=Path, default=None)
    parser.add_argument("--metadata-port", type=int, default=METADATA_PORT)
    parser.add_argument("--password-port", type=int, default=PASSWORD_PORT)
    args = parser.parse_args(argv)
    logs.configure()
    try:
        serve(args.dir, str(ipaddress.IPv4Address(args.address)), args.pid_file,
              args.metadata_port, args.password_port)
    except (OSError, ValueError) as exc:
        log.error("metadata.failed", error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
