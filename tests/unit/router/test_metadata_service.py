"""The metadata and password service over real HTTP on loopback (in this process, no namespace):
answers by source address, old and new HTTP clients, and malformed or hostile requests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.atomic_file import save_json
from hvcloud.router import validation
from hvcloud.router.metadata import files_to_json
from hvcloud.router.metadata_service import MAX_LINE, Server, make_servers
from hvcloud.router.passwords import FilePasswords


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    servers = make_servers(tmp_path, "127.0.0.1", 0, 0)
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield tmp_path, servers[0].server_address[1], servers[1].server_address[1]
    for s in servers:
        s.shutdown()
        s.server_close()


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def get(port: int, path: str, version: str = "HTTP/1.1", headers: str = "") -> tuple[int, bytes]:
    reply = raw(port, f"GET {path} {version}\r\nHost: x\r\n{headers}\r\n".encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def give_localhost(directory: Path, data: list[tuple[str, str, str | None]]) -> None:
    save_json(directory / "vmdata" / "127.0.0.1.json", files_to_json(validation.vm_data(data)))


def test_unknown_source_gets_404_then_its_own_data_live(service: tuple[Path, int, int]) -> None:
    directory, port, _ = service
    assert get(port, "/latest/meta-data/instance-id")[0] == 404
    # another address's data is never served to this one
    save_json(directory / "vmdata" / "10.1.1.10.json", files_to_json(validation.vm_data([("metadata", "x", "y")])))
    assert get(port, "/latest/meta-data/x")[0] == 404
    give_localhost(directory, [("metadata", "instance-id", "i-9"), ("userdata", "user-data", "aGk=")])
    assert get(port, "/latest/meta-data/instance-id") == (200, b"i-9")
    assert get(port, "/latest/user-data", "HTTP/1.0") == (200, b"hi")
    assert get(port, "/latest/meta-data/") == (200, b"instance-id\n")
    give_localhost(directory, [("metadata", "instance-id", "i-10")])
    assert get(port, "/latest/meta-data/instance-id") == (200, b"i-10")
    assert get(port, "/latest/user-data")[0] == 404


def test_answers_close_the_connection_with_a_length(service: tuple[Path, int, int]) -> None:
    directory, port, _ = service
    give_localhost(directory, [("metadata", "instance-id", "i-9")])
    reply = raw(port, b"GET /latest/instance-id HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    assert reply.startswith(b"HTTP/1.0 200") and b"Content-Length: 3\r\n" in reply and reply.endswith(b"i-9")
    head = raw(port, b"HEAD /latest/instance-id HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and head.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("request_", [
    b"POST /latest/user-data HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"DELETE /latest/user-data HTTP/1.1\r\n\r\n",
    b"GET /latest/user-data HTTP/9.9\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET " + b"/" * (MAX_LINE + 10) + b" HTTP/1.1\r\n\r\n",
    b"GET /latest/user-data HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
    b"GET /latest/user-data HTTP/1.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(100) + b"\r\n\r\n",
    b"GET /latest/\xff\xfe\x00 HTTP/1.1\r\n\r\n",
])
def test_malformed_and_oversized_requests_are_refused(service: tuple[Path, int, int], request_: bytes) -> None:
    directory, port, pw_port = service
    give_localhost(directory, [("userdata", "user-data", "aGk=")])
    for p in (port, pw_port):
        reply = raw(p, request_)
        assert reply == b"" or int(reply.split()[1]) >= 400 or (p == pw_port and reply.endswith(b"\r\n\r\nbad_request"))
    assert get(port, "/latest/user-data") == (200, b"hi")


def test_a_client_that_connects_and_says_nothing_does_not_block_others(service: tuple[Path, int, int]) -> None:
    directory, port, _ = service
    give_localhost(directory, [("metadata", "instance-id", "i-9")])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
    try:
        assert get(port, "/latest/instance-id") == (200, b"i-9")
    finally:
        for s in idle:
            s.close()


def test_password_protocol_over_http(service: tuple[Path, int, int]) -> None:
    directory, _, pw_port = service
    send, saved = "DomU_Request: send_my_password\r\n", "DomU_Request: saved_password\r\n"
    assert get(pw_port, "/", "HTTP/1.0", send) == (200, b"saved_password")
    FilePasswords(directory / "passwords").save("127.0.0.1", "s3cret")
    assert get(pw_port, "/", "HTTP/1.0", "DomU_Request: bogus\r\n") == (200, b"bad_request")
    assert get(pw_port, "/") == (200, b"bad_request")
    assert get(pw_port, "/", "HTTP/1.0", send) == (200, b"s3cret")
    assert get(pw_port, "/", "HTTP/1.1", saved) == (200, b"saved_password")
    assert get(pw_port, "/", "HTTP/1.0", send) == (200, b"saved_password")


def test_server_limits_concurrent_connections() -> None:
    assert Server.request_queue_size >= 8
