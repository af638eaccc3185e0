"""The agent as a real HTTPS process under attack: forged, replayed and stale requests, mTLS
certificates that must not pass, address allow-lists, slow clients and oversized bodies.

(Unsigned requests, a rogue CA, and compat mode's basic allow-list are in ``tests/e2e``.)
"""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hvcloud.agent_client import AgentClient, AgentRefused, AgentUnreachable
from hvcloud.wire import commands as C
from hvcloud.wire import signing
from tests.fuzz.agent_fuzz import DATA, snapshot
from tests.support.agent_process import PASSWORD, USER, AgentProcess

READY = "com.cloud.agent.api.ReadyCommand"
START = "com.cloud.agent.api.StartCommand"
MAX_BODY = 4096


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path_factory.mktemp("sec") / "agent", address="127.0.0.1",
                        args=["--max-body", str(MAX_BODY), "--body-timeout", "3"]).start()
    yield proc
    proc.kill()


def _post(agent: AgentProcess, fqcn: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(verify=False, timeout=30) as c:
        return c.post(f"{agent.endpoint()}/api/HypervResource/{fqcn}", content=body,
                      headers={"content-type": "application/json", **headers})


def _signed(fqcn: str, body: bytes, **kw: float) -> dict[str, str]:
    return signing.sign_headers(USER, PASSWORD, "POST", f"/api/HypervResource/{fqcn}", body, **kw)


def _start_body() -> bytes:
    return (DATA / "StartCommand.json").read_bytes()


@pytest.mark.parametrize("attack", ["tampered", "replayed", "stale", "other-path", "wrong-password", "no-nonce"])
def test_forged_requests_are_refused_and_change_nothing(agent: AgentProcess, attack: str) -> None:
    body = _start_body()
    headers = _signed(START, body)
    sent = body
    if attack == "tampered":
        sent = body.replace(b'"cpus":1', b'"cpus":2') if b'"cpus":1' in body else body + b" "
    elif attack == "replayed":
        ready = b'{"contextMap":{},"wait":0}'
        first = _signed(READY, ready)
        assert _post(agent, READY, ready, first).status_code == 200
        headers, sent = first, ready
    elif attack == "stale":
        headers = _signed(START, body, now=time.time() - signing.MAX_SKEW - 60)
    elif attack == "other-path":
        headers = _signed(READY, body)
    elif attack == "wrong-password":
        headers = signing.sign_headers(USER, PASSWORD + "x", "POST", f"/api/HypervResource/{START}", body)
    elif attack == "no-nonce":
        del headers[signing.HEADER_NONCE]
    before = snapshot(agent.data_dir)
    fqcn = READY if attack == "replayed" else START
    r = _post(agent, fqcn, sent, headers)
    assert r.status_code == 401 and len(r.content) < 200
    assert snapshot(agent.data_dir) == before


def test_signed_start_is_accepted(agent: AgentProcess) -> None:
    """The refusals above are about the forgery: the same request, signed, works."""
    body = _start_body()
    r = _post(agent, START, body, _signed(START, body))
    assert r.status_code == 200 and json.loads(r.text)[0]["com.cloud.agent.api.StartAnswer"]["result"] is True


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_bodies_are_refused(agent: AgentProcess, chunked: bool) -> None:
    big = b'{"pad":"' + b"A" * (MAX_BODY * 4) + b'"}'
    before = snapshot(agent.data_dir)
    headers = _signed(START, big)
    with httpx.Client(verify=False, timeout=30) as c:
        url = f"{agent.endpoint()}/api/HypervResource/{START}"
        if chunked:
            r = c.post(url, content=iter([big[i:i + 1000] for i in range(0, len(big), 1000)]), headers=headers)
        else:
            r = c.post(url, content=big, headers=headers)
    assert r.status_code == 413 and str(MAX_BODY) in r.text
    assert snapshot(agent.data_dir) == before


def _tls(agent: AgentProcess) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((agent.address, agent.port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname=agent.address)


def test_slow_body_is_cut_off_and_blocks_nobody(agent: AgentProcess) -> None:
    body = b'{"contextMap":{},"wait":0}' + b" " * 200
    headers = _signed(READY, body)
    slow = _tls(agent)
    head = [f"POST /api/HypervResource/{READY} HTTP/1.1", f"Host: {agent.address}", f"Content-Length: {len(body)}",
            "Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items())]
    slow.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    answer: list[bytes] = []
    stop = threading.Event()

    def trickle() -> None:
        try:
            for i in range(len(body)):
                if stop.is_set():
                    return
                slow.sendall(body[i:i + 1])
                time.sleep(0.25)
        except OSError:
            return

    def read() -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = slow.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        answer.append(data)
        stop.set()

    threads = [threading.Thread(target=trickle, daemon=True), threading.Thread(target=read, daemon=True)]
    for t in threads:
        t.start()

    async def others() -> int:
        async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
            done = 0
            for _ in range(10):
                done += (await c.send(C.ReadyCommand())).result
            return done

    assert asyncio.run(others()) == 10
    assert not answer, "the other requests finished while the slow client was still sending"
    threads[1].join(timeout=60)
    slow.close()
    assert answer and answer[0].startswith(b"HTTP/1.1 408"), answer


def test_connections_that_never_finish_their_headers_block_nobody(agent: AgentProcess) -> None:
    idle = []
    for _ in range(50):
        s = _tls(agent)
        s.sendall(f"POST /api/HypervResource/{READY} HTTP/1.1\r\nHost: x\r\nContent-".encode())
        idle.append(s)
    try:
        async def one() -> bool:
            async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
                return (await c.send(C.ReadyCommand())).result

        assert asyncio.run(one())
    finally:
        for s in idle:
            s.close()


# --------------------------------------------------------------------------- mTLS and allow-lists


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pki(tmp: Path) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A CA and client certificates: valid, expired and not yet valid (all signed by the CA)."""
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("ca")).issuer_name(_name("ca")).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - 10 * day).not_valid_after(now + 10 * day)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = {}
    for label, start, end in (("valid", now - day, now + day), ("expired", now - 5 * day, now - day),
                              ("future", now + day, now + 5 * day)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(label)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end).sign(ca_key, hashes.SHA256()))
        kp, cp = tmp / f"{label}.key", tmp / f"{label}.pem"
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[label] = (str(cp), str(kp))
    return tmp / "ca.pem", out


def test_mtls_refuses_expired_and_not_yet_valid_certificates(tmp_path: Path) -> None:
    ca, certs = _pki(tmp_path)
    proc = AgentProcess(tmp_path / "mtls", address="127.0.0.1", args=["--auth", "mtls", "--client-ca", str(ca)]).start()
    try:
        async def go() -> None:
            async with AgentClient(proc.endpoint(), cert=certs["valid"]) as c:
                assert (await c.send(C.ReadyCommand())).result
            for label in ("expired", "future"):
                async with AgentClient(proc.endpoint(), cert=certs[label]) as c:
                    with pytest.raises(AgentUnreachable):
                        await c.send(C.ReadyCommand())

        asyncio.run(go())
    finally:
        proc.kill()


def test_allow_list_narrows_mtls_and_password_modes(tmp_path: Path) -> None:
    ca, certs = _pki(tmp_path)
    mtls = AgentProcess(tmp_path / "m", address="127.0.0.1", args=["--auth", "mtls", "--client-ca", str(ca),
                                                      "--allow-from", "10.9.9.0/24"]).start()
    password = AgentProcess(tmp_path / "p", address="127.0.0.1", args=["--allow-from", "127.0.0.2/32"]).start()
    compat = AgentProcess(tmp_path / "c", address="127.0.0.1", args=["--auth", "cloudstack-compat",
                                                        "--allow-from", "127.0.0.2/32,::1"]).start()
    try:
        async def go() -> None:
            for proc, kw in ((mtls, {"cert": certs["valid"]}), (password, {"username": USER, "password": PASSWORD}),
                             (compat, {})):
                before = snapshot(proc.data_dir)
                async with AgentClient(proc.endpoint(), **kw) as c:  # type: ignore[arg-type]
                    with pytest.raises(AgentRefused) as err:
                        await c.send(C.ReadyCommand())
                    assert err.value.status == 403
                assert snapshot(proc.data_dir) == before

        asyncio.run(go())
    finally:
        for p in (mtls, password, compat):
            p.kill()


@pytest.mark.parametrize("seconds", [0, -1, 7200])
def test_body_timeout_must_be_sensible(seconds: float) -> None:
    from hvcloud.agent.config import AgentConfig, ConfigError

    with pytest.raises(ConfigError, match="body-timeout"):
        AgentConfig(body_timeout=seconds).validate()
