"""The agent's and the server's listeners over real sockets: forwarding headers believed only from
trusted proxies, unsigned bodies refused before they are read, slow headers cut off, and a cap on
the connections one address holds while still sending requests (``hvcloud.http_guard``)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hvcloud.agent_client import AgentClient
from hvcloud.wire import commands as C
from tests.fuzz.agent_fuzz import snapshot
from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for

READY = "com.cloud.agent.api.ReadyCommand"
READY_BODY = b'{"contextMap":{},"wait":0}'
ALLOWED = "10.20.30.40"
#: generous bound for "was disconnected, did not hang"; the timeouts under test are 1 second
HANG = 20.0


def _compat(tmp: Path, *extra: str) -> AgentProcess:
    return AgentProcess(tmp, address="127.0.0.1",
                        args=["--auth", "cloudstack-compat", "--allow-from", f"{ALLOWED}/32", *extra]).start()


def _ready_forwarded(agent: AgentProcess) -> httpx.Response:
    with httpx.Client(verify=False, timeout=30) as c:
        return c.post(f"{agent.endpoint()}/api/HypervResource/{READY}", content=READY_BODY,
                      headers={"content-type": "application/json", "x-forwarded-for": ALLOWED})


def _tls(host: str, port: int) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(socket.create_connection((host, port), timeout=HANG), server_hostname=host)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (socket.timeout if it never does)."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


# --------------------------------------------------------------------------- forwarding headers


def test_forwarded_for_does_not_pass_the_allow_list(tmp_path: Path) -> None:
    """Regression: uvicorn believed X-Forwarded-For from 127.0.0.1, so any local process could claim
    an allowed address and run every command of a cloudstack-compat agent."""
    agent = _compat(tmp_path / "agent")
    try:
        before = snapshot(agent.data_dir)
        r = _ready_forwarded(agent)
        assert r.status_code == 403, r.text
        assert "127.0.0.1" in r.text and ALLOWED not in r.text
        assert snapshot(agent.data_dir) == before
    finally:
        agent.kill()
    refused = [ln for ln in agent.log_path.read_text().splitlines() if "request refused" in ln]
    assert refused and "127.0.0.1" in refused[-1], refused


def test_a_trusted_proxy_forwards_the_client_address(tmp_path: Path) -> None:
    agent = _compat(tmp_path / "agent", "--trusted-proxy", "127.0.0.1/32")
    try:
        r = _ready_forwarded(agent)
        assert r.status_code == 200, r.text
        with httpx.Client(verify=False, timeout=30) as c:  # the proxy's own requests are not the client's
            r = c.post(f"{agent.endpoint()}/api/HypervResource/{READY}", content=READY_BODY,
                       headers={"content-type": "application/json"})
        assert r.status_code == 403
    finally:
        agent.kill()


def _access_lines(server: ServerProcess) -> list[str]:
    server.log.flush()
    return [ln for ln in server.log_path.read_text().splitlines() if "/client/api" in ln and "HTTP/1.1" in ln]


@pytest.mark.parametrize("trusted", [False, True])
def test_server_access_log_shows_the_real_peer(tmp_path: Path, trusted: bool) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, None, ["--trusted-proxy", "127.0.0.1/32"] if trusted else [], log_level="info")
    try:
        r = httpx.get(f"{server.endpoint}?command=listZones&response=json",
                      headers={"x-forwarded-for": "203.0.113.77"}, timeout=30)
        assert r.status_code == 401
        lines = wait_for("the access log line", lambda: [ln for ln in _access_lines(server) if "listZones" in ln], 30)
    finally:
        server.stop()
    assert lines, server.log_path.read_text()[-2000:]
    if trusted:
        assert "203.0.113.77" in lines[-1], lines
    else:
        assert "203.0.113.77" not in lines[-1] and "127.0.0.1:" in lines[-1], lines


# --------------------------------------------------------------------------- holding resources


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path_factory.mktemp("guard") / "agent", address="127.0.0.1",
                        args=["--header-timeout", "1", "--max-pending-per-source", "4"]).start()
    yield proc
    proc.kill()


def test_an_unsigned_large_body_is_refused_before_it_is_read(agent: AgentProcess) -> None:
    """Regression: the agent read up to 8 MiB of unsigned body, for up to 60 s, before looking at the
    signature headers. Here the client sends only the headers of an 8 MiB POST and gets 401 at once."""
    s = _tls(agent.address, agent.port)
    try:
        s.sendall((f"POST /api/HypervResource/{READY} HTTP/1.1\r\nHost: {agent.address}\r\n"
                   "Content-Type: application/json\r\nContent-Length: 8388608\r\n\r\n").encode())
        s.settimeout(HANG)
        answer = _read_until_closed(s)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"authentication required" in answer


def test_a_wrong_user_is_refused_before_the_body(agent: AgentProcess) -> None:
    s = _tls(agent.address, agent.port)
    try:
        s.sendall((f"POST /api/HypervResource/{READY} HTTP/1.1\r\nHost: {agent.address}\r\n"
                   "x-hvcloud-user: mallory\r\nx-hvcloud-timestamp: 1\r\nx-hvcloud-nonce: abcdefgh12345678\r\n"
                   f"x-hvcloud-signature: {'A' * 43}=\r\nContent-Length: 8388608\r\n\r\n").encode())
        s.settimeout(HANG)
        answer = _read_until_closed(s)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_half_a_header_line_is_disconnected(agent: AgentProcess) -> None:
    s = _tls(agent.address, agent.port)
    try:
        s.sendall(f"POST /api/HypervResource/{READY} HTTP/1.1\r\nHost: x\r\nContent-".encode())
        s.settimeout(HANG)
        started = time.monotonic()
        assert _read_until_closed(s) == b""
        assert time.monotonic() - started < HANG
    finally:
        s.close()


def test_blank_lines_after_a_request_do_not_hold_the_connection(agent: AgentProcess) -> None:
    """uvicorn stops its keep-alive timer on any byte, even the blank lines its parser skips."""
    s = _tls(agent.address, agent.port)
    try:
        s.sendall(f"GET /api/HypervResource HTTP/1.1\r\nHost: {agent.address}\r\n\r\n".encode())
        s.settimeout(HANG)
        answer = b""
        while not answer.endswith(b"RPCs"):
            answer += s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        s.sendall(b"\r\n")
        assert _read_until_closed(s) == b""
    finally:
        s.close()


def test_the_server_disconnects_slow_headers_and_stalled_bodies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, None, ["--header-timeout", "1", "--body-timeout", "1"], log_level="info")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG) as s:
            s.sendall(b"GET /client/api?command=listZones HTTP/1.1\r\nHost: x\r\nAccept: ")
            assert _read_until_closed(s) == b""
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG) as s:
            s.sendall(b"POST /client/api HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                      b"\r\nContent-Length: 100\r\n\r\ncommand=li")
            assert _read_until_closed(s) == b""
        # both cut-offs logged; then the log is read whole, after the stop, for anything more
        wait_for("both slow clients in the log", lambda: server.log_path.read_text().count("client too slow") >= 2, 30)
    finally:
        server.stop()
    text = server.log_path.read_text()
    assert text.count("client too slow") == 2 and "Traceback" not in text, text[-3000:]


def test_pending_connections_per_source_are_capped(agent: AgentProcess) -> None:
    held = []
    try:
        for _ in range(4):
            s = _tls(agent.address, agent.port)
            s.sendall(b"POST /api/HypervResource/x HTTP/1.1\r\n")
            held.append(s)
        extra = _tls(agent.address, agent.port)
        extra.settimeout(HANG)
        answer = _read_until_closed(extra)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer
    finally:
        for s in held:
            s.close()
    time.sleep(1.5)  # the held connections are gone (and would have timed out by now anyway)

    async def one() -> bool:
        async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
            return (await c.send(C.ReadyCommand())).result

    assert asyncio.run(one())


# --------------------------------------------------------------------------- keep-alive


def test_the_listeners_keep_idle_connections_longer_than_their_clients_do() -> None:
    """A listener that closes an idle connection while its client reuses it resets the client's request
    (closing with unread data sends RST): both listeners outlast httpx's idle expiry (the CLI's and the
    tests' client, 5 s) and the agent client's (the server's connections to agents)."""
    from hvcloud import http_guard
    from hvcloud.agent_client import KEEPALIVE_SECONDS
    from hvcloud.server.config import ServerConfig

    options = http_guard.uvicorn_options(ServerConfig.build(Path("unused")).connection_limits)
    assert options["timeout_keep_alive"] == http_guard.KEEP_ALIVE_SECONDS
    httpx_expiry = httpx.Limits().keepalive_expiry
    assert httpx_expiry is not None
    assert httpx_expiry < http_guard.KEEP_ALIVE_SECONDS
    assert http_guard.KEEP_ALIVE_SECONDS > KEEPALIVE_SECONDS


def test_the_server_keeps_an_idle_connection_past_a_clients_expiry(tmp_path: Path) -> None:
    """The same socket answers again after six idle seconds (uvicorn's own default closed it at five,
    which is exactly when httpx still reuses it)."""
    import http.client

    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, None, [])
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG)
        answers = []
        for pause in (0.0, 6.0):
            time.sleep(pause)
            conn.request("GET", "/client/api?command=listZones&response=json")
            sock = conn.sock
            response = conn.getresponse()
            response.read()
            answers.append((response.status, sock))
        conn.close()
    finally:
        server.stop()
    assert [status for status, _ in answers] == [401, 401]  # no credentials: refused, but answered
    assert answers[0][1] is answers[1][1]  # on the connection kept open, not a new one
