"""The console proxy against real QEMU VNC servers: the bridge, one-use tokens, refusals with a
clear reason, hostile clients, and what the database and the log keep."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from hvcloud import logs
from hvcloud.console_proxy.tokens import TokenSigner
from tests.support import rfb_client
from tests.support.console_proxy import ProxyThread, proxy_config
from tests.support.console_world import ConsoleWorld
from tests.support.ports import free_port
from tests.support.vnc_servers import VncServer
from tests.support.wait import wait_for


def refusal(url: str) -> rfb_client.ConsoleRefused:
    with pytest.raises(rfb_client.ConsoleRefused) as caught:
        asyncio.run(rfb_client.first_update(url))
    return caught.value


def assert_refused(url: str, reason: str, code: int) -> None:
    exc = refusal(url)
    assert exc.close_code == code, exc
    assert exc.close_reason == reason, exc
    assert exc.rfb_reason == reason, exc


def test_a_console_shows_the_vms_screen_through_the_proxy(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                                          vm: str) -> None:
    token, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)
    init, update = asyncio.run(rfb_client.first_update(proxy.urls(token)["websockify"]))
    assert (init.width, init.height, init.bits_per_pixel) == (640, 480, 32)
    assert update.covered == 640 * 480 and len(update.pixel_bytes) == 640 * 480 * 4
    assert len(set(update.pixel_bytes[0::4])) > 1, "the screen of a paused QEMU shows text, not one colour"
    wait_for("the session's end to be recorded", lambda: (world.session(grant.token_id) or {}).get("closed"))
    row = world.session(grant.token_id)
    assert row is not None and row["used"] is not None and row["proxy_id"] == proxy.service.store.proxy_id
    assert row["close_reason"] == "client closed" and row["proxy_client_address"] == "127.0.0.1"
    assert row["bytes_to_client"] > 640 * 480 * 4 and row["bytes_from_client"] > 0
    wait_for("no console left open", lambda: proxy.active == 0)


def test_a_token_opens_one_console(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread, vm: str) -> None:
    token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
    asyncio.run(rfb_client.first_update(proxy.urls(token)["websockify"]))
    assert_refused(proxy.urls(token)["websockify"], "token already used or unknown", 1008)


def test_expired_forged_tampered_and_unknown_tokens_are_refused(world: ConsoleWorld, vnc: VncServer,
                                                                proxy: ProxyThread, vm: str) -> None:
    expired, _ = world.grant(vm, vnc.host, vnc.port, vnc.password, ttl=-1)
    assert_refused(proxy.urls(expired)["websockify"], "expired token", 1008)
    # the row expired though the token has not (the server's clock and the proxy's disagree)
    stale, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)
    world.expire(grant.token_id)
    assert_refused(proxy.urls(stale)["websockify"], "token already used or unknown", 1008)
    unrecorded, _ = world.grant(vm, vnc.host, vnc.port, vnc.password, record=False)
    assert_refused(proxy.urls(unrecorded)["websockify"], "token already used or unknown", 1008)
    _, real = world.grant(vm, vnc.host, vnc.port, vnc.password)
    forged = TokenSigner(os.urandom(32)).mint(real)
    assert_refused(proxy.urls(forged)["websockify"], "forged or corrupted token", 1008)
    good, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
    middle = len(good) // 2
    tampered = good[:middle] + ("A" if good[middle] != "A" else "B") + good[middle + 1:]
    assert_refused(proxy.urls(tampered)["websockify"], "forged or corrupted token", 1008)
    for junk in ("", "x" * 5000, "é" * 10):
        assert_refused(proxy.urls(junk)["websockify"], "malformed token", 1008)
    assert_refused(proxy.urls("not a token")["websockify"], "forged or corrupted token", 1008)
    # none of these refusals used up the real token
    asyncio.run(rfb_client.first_update(proxy.urls(good)["websockify"]))


def test_the_extra_validation_token_must_match(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                               vm: str) -> None:
    token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password, extra="abc123")
    reason = "extra validation token does not match"
    assert_refused(proxy.urls(token)["websockify"], reason, 1008)
    assert_refused(proxy.urls(token, extra="abc124")["websockify"], reason, 1008)
    asyncio.run(rfb_client.first_update(proxy.urls(token, extra="abc123")["websockify"]))


def test_consoles_of_stopped_or_deleted_vms_are_refused(world: ConsoleWorld, vnc: VncServer,
                                                        proxy: ProxyThread) -> None:
    stopped = world.add_vm()
    token, grant = world.grant(stopped, vnc.host, vnc.port, vnc.password)
    world.set_vm_state(stopped, "Stopped")
    assert_refused(proxy.urls(token)["websockify"], "the VM is not running", 1008)
    assert (world.session(grant.token_id) or {}).get("used") is None, "a refusal does not use the token"
    world.set_vm_state(stopped, "Running")
    asyncio.run(rfb_client.first_update(proxy.urls(token)["websockify"]))
    deleted = world.add_vm()
    token, _ = world.grant(deleted, vnc.host, vnc.port, vnc.password)
    world.delete_vm(deleted)
    assert_refused(proxy.urls(token)["websockify"], "the VM is not running", 1008)


def test_a_host_that_does_not_answer_gives_a_clear_reason(world: ConsoleWorld, proxy: ProxyThread, vm: str) -> None:
    token, grant = world.grant(vm, "127.0.0.1", free_port(), "whatever")
    assert_refused(proxy.urls(token)["websockify"], "the VM's host does not answer", 1011)
    wait_for("the failure recorded", lambda: (world.session(grant.token_id) or {}).get("closed"))
    assert (world.session(grant.token_id) or {})["close_reason"] == "the VM's host does not answer"


def test_a_wrong_vnc_password_gives_a_clear_reason(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                                   vm: str) -> None:
    token, _ = world.grant(vm, vnc.host, vnc.port, "not-the-password")
    assert_refused(proxy.urls(token)["websockify"], "VNC authentication failed", 1011)
    token, _ = world.grant(vm, vnc.host, vnc.port, None)
    assert_refused(proxy.urls(token)["websockify"], "VNC authentication failed", 1011)


def test_something_that_is_not_a_vnc_server(world: ConsoleWorld, proxy: ProxyThread, vm: str) -> None:
    """An HTTP-ish server, and one that says nothing at all."""
    async def scenario() -> list[rfb_client.ConsoleRefused]:
        async def chatty(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await w.drain()

        async def silent(r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
            await r.read()

        out = []
        for handler in (chatty, silent):
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            token, _ = world.grant(vm, "127.0.0.1", port, "pw")
            with pytest.raises(rfb_client.ConsoleRefused) as caught:
                await rfb_client.first_update(proxy.urls(token)["websockify"])
            out.append(caught.value)
            server.close()
        return out

    chatty, silent = asyncio.run(scenario())
    assert (chatty.close_code, chatty.close_reason) == (1011, "not a VNC server")
    assert (silent.close_code, silent.close_reason) == (1011, "not a VNC server")


def raw_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


@pytest.mark.parametrize("request_bytes", [
    b"GET /websockify?token=x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET /websockify?token=x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    b"GET /websockify?token=x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
    b"GET /websockify?token=x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"POST /websockify HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"GET /websockify HTTP/9.9\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
], ids=["no-upgrade", "version-99", "bad-key", "no-key", "post", "http-9", "tls-hello"])
def test_malformed_upgrades_get_a_4xx_and_the_proxy_goes_on(proxy: ProxyThread, request_bytes: bytes) -> None:
    assert proxy.service is not None
    answer = raw_http(proxy.service.port, request_bytes)
    status = answer.split(b"\r\n", 1)[0]
    assert re.match(rb"HTTP/1\.[01] 4\d\d ", status), answer[:200]
    assert b"Traceback" not in answer
    assert httpx.get(f"{proxy.base}/healthz").json()["status"] == "ok"


def relay(url: str, action: Callable[[rfb_client.RfbClient], Awaitable[None]]) -> rfb_client.ConsoleClosed:
    """Open a console, do ``action``, and return how the proxy closed it."""
    async def scenario() -> rfb_client.ConsoleClosed:
        client = await rfb_client.open_ws(url)
        await action(client)
        return await rfb_client.until_closed(client)

    return asyncio.run(scenario())


def test_an_oversized_message_closes_the_console_with_1009(world: ConsoleWorld, vnc: VncServer,
                                                           proxy: ProxyThread, vm: str) -> None:
    token, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)

    async def big(client: rfb_client.RfbClient) -> None:
        assert isinstance(client.channel, rfb_client._WsChannel)
        await client.channel.ws.send_bytes(b"\x00" * (64 * 1024 + 1))

    closed = relay(proxy.urls(token)["websockify"], big)
    assert closed.close_code == 1009
    wait_for("the close recorded", lambda: (world.session(grant.token_id) or {}).get("closed"))
    assert (world.session(grant.token_id) or {})["close_reason"] == "message too large"
    wait_for("no console left open", lambda: proxy.active == 0)


def test_a_text_message_closes_the_console_with_1003(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                                     vm: str) -> None:
    token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)

    async def text(client: rfb_client.RfbClient) -> None:
        assert isinstance(client.channel, rfb_client._WsChannel)
        await client.channel.ws.send_str("hello")

    closed = relay(proxy.urls(token)["websockify"], text)
    assert (closed.close_code, closed.close_reason) == (1003, "binary messages only")


def test_a_client_that_never_reads_is_closed_and_leaves_nothing_behind(world: ConsoleWorld, vnc: VncServer,
                                                                      tmp_path: Any) -> None:
    with ProxyThread(proxy_config(world.key, world.db_url, send_timeout_seconds=1.0,
                                  heartbeat_seconds=600)) as slow_proxy:
        tasks_before = slow_proxy.tasks()
        vm = world.add_vm()
        token, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)

        async def hog() -> None:
            """Keeps asking for the whole screen (QEMU merges requests it has not answered yet, so
            one burst is not enough) and never reads an answer."""
            client = await rfb_client.open_ws(slow_proxy.urls(token)["websockify"])
            try:
                async with asyncio.timeout(120):
                    while slow_proxy.active or not (world.session(grant.token_id) or {}).get("closed"):
                        with contextlib.suppress(ConnectionError):
                            await client.request_update(incremental=False)
                        await asyncio.sleep(0.02)
            finally:
                await client.close()

        asyncio.run(hog())
        wait_for("the close recorded", lambda: (world.session(grant.token_id) or {}).get("closed"))
        assert (world.session(grant.token_id) or {})["close_reason"] == "client too slow"
        # the proxy still serves, and holds no task more than before
        token2, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
        asyncio.run(rfb_client.first_update(slow_proxy.urls(token2)["websockify"]))
        wait_for("no console left open", lambda: slow_proxy.active == 0)
        wait_for("the proxy's tasks back to their number before", lambda: slow_proxy.tasks() <= tasks_before)


def test_an_rdp_token_gives_one_rdp_file(world: ConsoleWorld, proxy: ProxyThread) -> None:
    vm = world.add_vm(name="web/01 evil\r\nname")
    token, grant = world.grant(vm, "192.0.2.10", 2179, protocol="rdp",
                               instance_id="5c0ee4b2-7b5f-4c1c-9e2e-1f0b7c6d0a11")
    first = httpx.get(proxy.urls(token)["rdp"])
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/x-rdp"
    assert first.headers["content-disposition"] == 'attachment; filename="web_01_evil_name.rdp"'
    assert first.headers["cache-control"] == "no-store"
    lines = first.text.split("\r\n")
    assert lines[:6] == ["full address:s:192.0.2.10:2179", "server port:i:2179",
                         "pcb:s:5c0ee4b2-7b5f-4c1c-9e2e-1f0b7c6d0a11", "negotiate security layer:i:1",
                         "prompt for credentials:i:1", "authentication level:i:2"]
    again = httpx.get(proxy.urls(token)["rdp"])
    assert again.status_code == 403 and again.text.strip() == "token already used or unknown"
    assert (world.session(grant.token_id) or {})["close_reason"] == "rdp file served"


def test_tokens_go_only_where_their_protocol_does(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                                  vm: str) -> None:
    vnc_token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
    answer = httpx.get(proxy.urls(vnc_token)["rdp"])
    assert answer.status_code == 400 and answer.text.strip() == "the token is not for this kind of console"
    rdp_token, _ = world.grant(vm, "192.0.2.10", 2179, protocol="rdp", instance_id="x")
    assert_refused(proxy.urls(rdp_token)["websockify"], "the token is not for this kind of console", 1008)
    assert httpx.get(proxy.urls("garbage")["rdp"]).status_code == 403
    # neither refusal used the tokens up
    asyncio.run(rfb_client.first_update(proxy.urls(vnc_token)["websockify"]))
    assert httpx.get(proxy.urls(rdp_token)["rdp"]).status_code == 200


@pytest.mark.parametrize("path", ["/novnc/../../../../etc/passwd", "/novnc/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                  "/novnc/core/../../../etc/passwd", "/novnc/core", "/novnc/core/",
                                  "/novnc/", "/novnc/.hidden", "/novnc/core%2f..%2f..%2f..%2fetc%2fpasswd",
                                  "/novnc//etc/passwd", "/novnc/core/rfb.js%00.txt"])
def test_novnc_files_stay_inside_the_novnc_directory(proxy: ProxyThread, path: str) -> None:
    assert proxy.service is not None
    answer = raw_http(proxy.service.port, f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
    status = answer.split(b"\r\n", 1)[0]
    assert status.startswith((b"HTTP/1.1 404", b"HTTP/1.1 400")), answer[:300]
    assert b"root:" not in answer


def test_the_page_and_novnc_are_served_with_safe_headers(world: ConsoleWorld, proxy: ProxyThread, vm: str) -> None:
    token, _ = world.grant(vm, "127.0.0.1", 1)
    page = httpx.get(proxy.urls(token)["console"])
    assert page.status_code == 200 and 'src="console.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    script = httpx.get(f"{proxy.base}/console.js")
    assert script.headers["content-type"].startswith("text/javascript") and "hvConsole" in script.text
    rfb_js = httpx.get(f"{proxy.base}/novnc/core/rfb.js")
    assert rfb_js.status_code == 200 and rfb_js.headers["content-type"].startswith("text/javascript")
    assert "export default class RFB" in rfb_js.text


def test_two_proxies_on_one_database_open_a_token_once(world: ConsoleWorld, vnc: VncServer,
                                                       proxy: ProxyThread, vm: str) -> None:
    with ProxyThread(proxy_config(world.key, world.db_url, name="second")) as other:
        names = {p["name"] for p in world.proxies()}
        assert {"test-proxy", "second"} <= names
        token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
        asyncio.run(rfb_client.first_update(proxy.urls(token)["websockify"]))
        assert_refused(other.urls(token)["websockify"], "token already used or unknown", 1008)

        # the same token at both at once: exactly one console opens
        for _ in range(3):
            token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)

            async def race(t: str = token) -> list[Any]:
                return await asyncio.gather(rfb_client.first_update(proxy.urls(t)["websockify"]),
                                            rfb_client.first_update(other.urls(t)["websockify"]),
                                            return_exceptions=True)

            results = asyncio.run(race())
            opened = [r for r in results if isinstance(r, tuple)]
            refused = [r for r in results if isinstance(r, rfb_client.ConsoleRefused)]
            assert len(opened) == 1 and len(refused) == 1, results
            assert refused[0].close_reason == "token already used or unknown"
    assert "second" not in {p["name"] for p in world.proxies()}, "a stopped proxy removes its row"


def test_the_proxy_row_beats_with_its_session_count(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                                    vm: str) -> None:
    assert proxy.service is not None
    proxy_id = proxy.service.store.proxy_id

    def row() -> dict[str, Any]:
        return next(p for p in world.proxies() if p["id"] == proxy_id)

    token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)

    async def hold() -> None:
        client = await rfb_client.open_ws(proxy.urls(token)["websockify"])
        try:
            await asyncio.to_thread(wait_for, "the beat to count the console",
                                    lambda: row()["active_sessions"] == 1)
        finally:
            await client.close()

    asyncio.run(hold())
    wait_for("the beat to count none", lambda: row()["active_sessions"] == 0)


def test_shutting_down_closes_consoles_with_a_reason(world: ConsoleWorld, vnc: VncServer, vm: str) -> None:
    box = ProxyThread(proxy_config(world.key, world.db_url, name="going"))
    box.__enter__()
    token, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)

    async def scenario() -> rfb_client.ConsoleClosed:
        client = await rfb_client.open_ws(box.urls(token)["websockify"])
        await asyncio.to_thread(box.__exit__, None, None, None)
        return await rfb_client.until_closed(client)

    closed = asyncio.run(scenario())
    assert (closed.close_code, closed.close_reason) == (1001, "proxy shutting down")
    assert (world.session(grant.token_id) or {})["close_reason"] == "proxy shutting down"
    assert "going" not in {p["name"] for p in world.proxies()}


def test_no_token_reaches_the_log(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread, vm: str,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", json_output=True)  # whatever an earlier test set, the proxy logs its sessions
    tokens = []
    token, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)
    tokens.append(token)
    asyncio.run(rfb_client.first_update(proxy.urls(token)["websockify"]))
    refusal(proxy.urls(token)["websockify"])
    bad, _ = world.grant(vm, vnc.host, vnc.port, "wrong")
    tokens.append(bad)
    refusal(proxy.urls(bad)["websockify"])
    rdp, _ = world.grant(vm, "192.0.2.1", 2179, protocol="rdp", instance_id="i")
    tokens.append(rdp)
    httpx.get(proxy.urls(rdp)["rdp"])
    httpx.get(proxy.urls(rdp)["rdp"])
    httpx.get(proxy.urls(rdp)["console"])
    assert proxy.service is not None
    raw_http(proxy.service.port, f"GET /websockify?token={token} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    wait_for("the session's end logged", lambda: (world.session(grant.token_id) or {}).get("closed"))
    out, err = capfd.readouterr()
    logged = out + err
    assert grant.token_id in logged, "the capture sees the proxy's log lines"
    for t in tokens:
        assert t not in logged
        assert t[:40] not in logged
    assert "Traceback" not in logged
    assert vnc.password is not None and vnc.password not in logged




def test_a_database_that_does_not_answer_refuses_consoles_without_a_crash(world: ConsoleWorld, vnc: VncServer,
                                                                         vm: str) -> None:
    from hvcloud.server.db.engine import make_engine, make_session_factory

    with ProxyThread(proxy_config(world.key, world.db_url, name="no-db", heartbeat_seconds=0.2)) as p:
        assert p.service is not None
        store = p.service.store
        good = store._sessions
        # nothing listens on port 1: every statement fails at connect
        dead = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
        store._sessions = make_session_factory(dead)
        try:
            token, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)
            assert_refused(p.urls(token)["websockify"], "the console database is unavailable", 1011)
            beats = p.service.beats
            wait_for("two beats against the dead database", lambda: p.service is not None
                     and p.service.beats >= beats + 2)
            rdp, _ = world.grant(vm, "192.0.2.1", 2179, protocol="rdp", instance_id="i")
            answer = httpx.get(p.urls(rdp)["rdp"])
            assert answer.status_code == 503 and answer.text.strip() == "the console database is unavailable"
        finally:
            store._sessions = good
            dead.dispose()
        # back: the token was never claimed, so it still opens its console
        asyncio.run(rfb_client.first_update(p.urls(token)["websockify"]))
        assert (world.session(grant.token_id) or {})["used"] is not None
