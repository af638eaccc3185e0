"""``hvcloud server run --tls-cert/--tls-key``: a real server process (one, and two sharing one socket)
serving HTTPS with a self-signed certificate made for the test; its login cookies are ``Secure``.
The two-process server also counts failed logins arriving at both processes at once, and runs with
``api.signature.version3.required`` (the ``cs`` client signs with version 3 by default)."""

from __future__ import annotations

import sqlite3
import ssl
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cs import CloudStack

from hvcloud.agent.tls import ensure_self_signed
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ensure_self_signed(tmp_path_factory.mktemp("tls"), ["127.0.0.1"])


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-processes"])
def server(request: pytest.FixtureRequest, cert: tuple[Path, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("server") / "data"
    data.mkdir()
    args = ["--processes", str(request.param), "--setting", "api.signature.version3.required=true"]
    proc = ServerProcess(data, None, args, tls=cert)
    yield proc
    proc.stop()


def client(server: ServerProcess, cert: Path) -> CloudStack:
    return CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                      verify=str(cert), fetch_result=True, timeout=60, poll_interval=0.2)


def pinned(cert: Path) -> ssl.SSLContext:
    """Trust exactly the test's self-signed certificate."""
    context = ssl.create_default_context(cafile=str(cert))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def test_https_login_sets_secure_cookies(server: ServerProcess, cert: tuple[Path, Path]) -> None:
    password = (server.data_dir / "admin-password").read_text().strip()
    with httpx.Client(verify=pinned(cert[0]), timeout=30) as http:
        resp = http.post(server.endpoint, data={"command": "login", "username": "admin", "password": password,
                                                "response": "json"})
        assert resp.status_code == 200, resp.text
        cookies = resp.headers.get_list("set-cookie")
        assert {c.split("=", 1)[0] for c in cookies} == {"sessionkey", "JSESSIONID"}
        assert all("; secure" in c.lower() and "httponly" in c.lower() for c in cookies), cookies
        key = resp.json()["loginresponse"]["sessionkey"]
        listed = http.get(server.endpoint, params={"command": "listZones", "response": "json", "sessionkey": key})
        assert listed.status_code == 200
    with pytest.raises(httpx.TransportError):  # no plain HTTP on the TLS port
        httpx.get(server.endpoint.replace("https://", "http://"), timeout=10)


def test_signed_calls_over_https_need_version3_when_required(server: ServerProcess,
                                                             cert: tuple[Path, Path]) -> None:
    cs = client(server, cert[0])
    assert cs.listZones(fetch_list=True) == []  # cs signs with signatureversion=3, expires in 10 min
    old_style = CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                           verify=str(cert[0]), expiration=-1)
    with pytest.raises(Exception, match="401"):
        old_style.listZones()


def test_failed_logins_at_every_process_are_all_counted(server: ServerProcess, cert: tuple[Path, Path]) -> None:
    cs = client(server, cert[0])
    cs.createAccount(username="mallory-target", password="right-pw", firstname="M", lastname="T",
                     email="m@example.org", accounttype=0)

    def attempt(i: int) -> int:
        with httpx.Client(verify=pinned(cert[0]), timeout=60) as http:  # a new connection each time
            return http.post(server.endpoint, data={"command": "login", "username": "mallory-target",
                                                    "password": f"guess-{i}", "response": "json"}).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(attempt, range(4))) == [531] * 4
    db = sqlite3.connect(server.data_dir / "hvcloud.db")
    try:
        row = db.execute("SELECT state, login_attempts FROM user WHERE username = 'mallory-target'").fetchone()
    finally:
        db.close()
    assert row == ("enabled", 4)
    assert attempt(5) == 531
    user = cs.listUsers(username="mallory-target")["user"][0]
    assert user["state"] == "disabled"


def test_tls_options_are_checked_before_the_server_starts(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    from hvcloud.server.config import check_tls

    check_tls(None, None)
    check_tls(*cert)
    with pytest.raises(ValueError, match="go together"):
        check_tls(cert[0], None)
    (tmp_path / "junk.pem").write_text("not a certificate \u00e9\n")
    with pytest.raises(ValueError, match="cannot load the TLS certificate"):
        check_tls(tmp_path / "junk.pem", cert[1])
    with pytest.raises(ValueError, match="cannot load"):
        check_tls(tmp_path / "missing.pem", cert[1])
    run = subprocess.run([sys.executable, "-m", "hvcloud.cli.main", "server", "run", "--data-dir",  # noqa: S603
                          str(tmp_path / "data"), "--tls-cert", str(cert[0])], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode != 0 and "go together" in run.stderr
