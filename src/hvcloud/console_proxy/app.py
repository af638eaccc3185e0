"""The console proxy's web application (aiohttp).

``GET /console`` the page (``page``), ``GET /websockify`` the WebSocket bridged to the VM's VNC
server, ``GET /rdp`` an ``.rdp`` file for a Hyper-V console, ``GET /novnc/…`` noVNC's files from
the configured directory, ``GET /healthz``. A token is checked (``tokens``) and claimed
(``sessions``) before anything reaches a host; refusals and failures close the WebSocket with a
short reason (also sent as an RFB security failure so noVNC shows it) and a code:

* 1008 the token or the VM refuses the console, 1013 the proxy is full,
* 1011 the VM's VNC server cannot be reached or refuses the proxy (or the database is down),
* 1009 a client message over ``max_frame_bytes``, 1003 a text message, 1002 a broken handshake,
* 4000 idle, 4008 a client that does not read ("client too slow"), 1001 the proxy is shutting down,
* 1000 the VNC server or the client ended the console.

Tokens appear in no log line: a session is logged by its ``token_id`` under the key ``console``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WebSocketError, WSMessage, WSMsgType, web

from hvcloud import logs
from hvcloud.console_proxy import page, rfb
from hvcloud.console_proxy.config import ProxyConfig
from hvcloud.console_proxy.sessions import SessionStore
from hvcloud.console_proxy.tokens import ConsoleGrant, TokenError, TokenSigner

log = logs.get(__name__)

CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_PROTOCOL, CLOSE_UNSUPPORTED = 1000, 1001, 1002, 1003
CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_ERROR, CLOSE_TRY_LATER = 1008, 1009, 1011, 1013
CLOSE_IDLE, CLOSE_SLOW = 4000, 4008

EXTRA_MISMATCH = "extra validation token does not match"
WRONG_PROTOCOL = "the token is not for this kind of console"
CLIENT_TOO_SLOW = "client too slow"
SHUTTING_DOWN = "proxy shutting down"
#: the longest close reason a WebSocket close frame carries (125 bytes minus the code)
MAX_CLOSE_REASON = 123
_RELAY_CHUNK = 256 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_LINE_BREAK = re.compile(r"[\r\n\x00]")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; object-src 'none'")
_CONTENT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
                  ".html": "text/html", ".svg": "image/svg+xml", ".json": "application/json"}

CONFIG_KEY: web.AppKey[ProxyConfig] = web.AppKey("config", ProxyConfig)


@dataclass
class Stats:
    """Counters tests and the heartbeat read."""

    opened: int = 0
    closed: int = 0
    refused: int = 0
    rdp_files: int = 0
    bytes_to_clients: int = 0
    bytes_from_clients: int = 0


@dataclass(eq=False)
class Console:
    """One live console: its WebSocket and the reason to stop it, if one came from outside."""

    console_id: str
    vm_id: str
    ws: web.WebSocketResponse
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: tuple[int, str] = (CLOSE_GOING_AWAY, SHUTTING_DOWN)
    bytes_to_client: int = 0
    bytes_from_client: int = 0


@dataclass(eq=False)
class ProxyState:
    config: ProxyConfig
    signer: TokenSigner
    store: SessionStore
    consoles: set[Console] = field(default_factory=set)
    stats: Stats = field(default_factory=Stats)
    #: handlers between the upgrade and the relay (counted against max_sessions too)
    pending: int = 0

    @property
    def active(self) -> int:
        return len(self.consoles)

    async def shutdown(self) -> None:
        """Stop every console with "proxy shutting down" and wait (bounded) for their records."""
        for con in list(self.consoles):
            con.stop_reason = (CLOSE_GOING_AWAY, SHUTTING_DOWN)
            con.stop.set()
        for _ in range(100):
            if not self.consoles:
                return
            await asyncio.sleep(0.05)


STATE_KEY: web.AppKey[ProxyState] = web.AppKey("state", ProxyState)


class WsStream:
    """A ``rfb.ByteStream`` over the browser's WebSocket, for the handshake: binary messages are
    read into a buffer; bytes left over when the relay starts go to the VNC server first."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.buffer = bytearray()
        self.received = 0
        self.sent = 0

    async def readexactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            msg = await self.ws.receive()
            if msg.type is WSMsgType.BINARY:
                self.buffer += msg.data
                self.received += len(msg.data)
            elif msg.type is WSMsgType.TEXT:
                raise _Closed(CLOSE_UNSUPPORTED, "binary messages only")
            else:
                raise _Closed(*_client_end(msg))
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(data)
        self.sent += len(data)


def _client_end(msg: WSMessage) -> tuple[int, str]:
    """Why the client's side ended: a close, an oversized message, unanswered pings, a lost link."""
    if msg.type is WSMsgType.CLOSE:
        return CLOSE_NORMAL, "client closed"
    if msg.type is WSMsgType.ERROR:
        if isinstance(msg.data, WebSocketError) and msg.data.code == CLOSE_TOO_BIG:
            return CLOSE_TOO_BIG, "message too large"
        if isinstance(msg.data, TimeoutError):
            return CLOSE_SLOW, "client does not answer"
    return CLOSE_NORMAL, "client connection lost"


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def check_grant(signer: TokenSigner, token: str, extra: str | None, protocol: str) -> ConsoleGrant:
    """The grant of ``token`` if it is one for ``protocol`` and ``extra`` matches; else TokenError."""
    grant = signer.open(token)
    if grant.extra is not None and not hmac.compare_digest(grant.extra.encode(), (extra or "").encode()):
        raise TokenError(EXTRA_MISMATCH)
    if grant.protocol != protocol:
        raise TokenError(WRONG_PROTOCOL)
    return grant


# -- handlers ----------------------------------------------------------------------------------------
async def console_page(_request: web.Request) -> web.Response:
    return web.Response(text=page.HTML, content_type="text/html",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})


async def console_script(_request: web.Request) -> web.Response:
    return web.Response(text=page.SCRIPT, content_type="text/javascript")


async def console_style(_request: web.Request) -> web.Response:
    return web.Response(text=page.CSS, content_type="text/css")


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response({"status": "ok", "sessions": state.active,
                              "proxy": state.store.proxy_id, "name": state.store.name})


async def novnc_file(request: web.Request) -> web.StreamResponse:
    """A file of the noVNC directory: the path is confined lexically (no ``..``, no hidden names,
    no directories), since Debian's package may link to files elsewhere."""
    rel = request.match_info.get("path", "")
    parts = rel.split("/")
    if (not rel or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts)):
        raise web.HTTPNotFound()
    path = request.app[CONFIG_KEY].novnc_dir.joinpath(*parts)
    if not path.is_file():
        raise web.HTTPNotFound()
    ctype = _CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.FileResponse(path, headers={"Content-Type": ctype, "Cache-Control": "public, max-age=3600"})


async def rdp_file(request: web.Request) -> web.Response:
    """The ``.rdp`` file of an ``rdp`` grant: VMConnect's address and the VM's id as the
    pre-connection blob. One use, like a VNC console."""
    state = request.app[STATE_KEY]
    headers = {"Cache-Control": "no-store"}
    try:
        grant = check_grant(state.signer, request.query.get("token", ""), request.query.get("extra"), "rdp")
    except TokenError as exc:
        state.stats.refused += 1
        status = 400 if exc.reason == WRONG_PROTOCOL else 403
        log.info("console.refused", kind="rdp", reason=exc.reason, client=request.remote)
        return web.Response(status=status, text=exc.reason + "\n", headers=headers)
    reason = await state.store.claim(grant, request.remote or "")
    if reason is not None:
        state.stats.refused += 1
        log.info("console.refused", kind="rdp", reason=reason, console=grant.token_id, vm=grant.vm_id)
        return web.Response(status=403 if reason != "the console database is unavailable" else 503,
                            text=reason + "\n", headers=headers)
    host, instance = _LINE_BREAK.sub("", grant.host), _LINE_BREAK.sub("", grant.instance_id or grant.vm_id)
    body = "\r\n".join([
        f"full address:s:{host}:{grant.port}",
        f"server port:i:{grant.port}",
        f"pcb:s:{instance}",
        "negotiate security layer:i:1",
        "prompt for credentials:i:1",
        "authentication level:i:2",
        "",
    ])
    filename = _SAFE_NAME.sub("_", grant.vm_name).strip("._") or "console"
    await state.store.close(grant.token_id, "rdp file served", len(body), 0)
    state.stats.rdp_files += 1
    log.info("console.rdp_served", console=grant.token_id, vm=grant.vm_id)
    return web.Response(body=body.encode(), headers={
        **headers, "Content-Type": "application/x-rdp",
        "Content-Disposition": f'attachment; filename="{filename}.rdp"'})


async def websockify(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    cfg = state.config
    ws = web.WebSocketResponse(protocols=("binary",), max_msg_size=cfg.max_frame_bytes, compress=False,
                               heartbeat=cfg.heartbeat_seconds, timeout=5.0)
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="a WebSocket upgrade is required\n")
    try:
        await ws.prepare(request)
    except (web.HTTPException, ConnectionError):
        return web.Response(status=400, text="a WebSocket upgrade is required\n")
    if state.active + state.pending >= cfg.max_sessions:
        state.stats.refused += 1
        await _close(ws, CLOSE_TRY_LATER, "too many consoles on this proxy")
        return ws
    state.pending += 1
    try:
        await _serve(request, ws, state)
    except Exception as exc:  # never a traceback with a request in it; the console ends
        log.warning("console.error", error=type(exc).__name__)
        await _close(ws, CLOSE_ERROR, "proxy error")
    finally:
        state.pending = max(0, state.pending - 1)
    return ws


async def _serve(request: web.Request, ws: web.WebSocketResponse, state: ProxyState) -> None:
    cfg = state.config
    client = WsStream(ws)
    version: rfb.Version | None = None
    grant: ConsoleGrant | None = None
    claimed = False
    vnc: rfb.TcpStream | None = None
    try:
        async with asyncio.timeout(cfg.handshake_timeout_seconds):
            version = await rfb.client_version(client)
            grant = check_grant(state.signer, request.query.get("token", ""), request.query.get("extra"), "vnc")
            reason = await state.store.claim(grant, request.remote or "")
            if reason is not None:
                raise _Closed(CLOSE_ERROR if reason.startswith("the console database") else CLOSE_POLICY, reason)
            claimed = True
            vnc = await rfb.connect_vnc(grant.host, grant.port, grant.vnc_password, cfg.vnc_connect_timeout_seconds)
            client_init = await rfb.client_accept(client, version)
            await vnc.write(client_init + bytes(client.buffer))
            client.buffer.clear()
    except TimeoutError:
        await _refuse(state, ws, client, version, grant, claimed, CLOSE_PROTOCOL, "handshake timeout")
        return
    except TokenError as exc:
        await _refuse(state, ws, client, version, grant, claimed, CLOSE_POLICY, exc.reason)
        return
    except rfb.RfbError as exc:
        if vnc is not None:
            vnc.close()
        code = CLOSE_PROTOCOL if exc.reason == rfb.BAD_CLIENT else CLOSE_ERROR
        await _refuse(state, ws, client, version, grant, claimed, code, exc.reason)
        return
    except _Closed as exc:
        if vnc is not None:
            vnc.close()
        await _refuse(state, ws, client, version, grant, claimed, exc.code, exc.reason)
        return
    except (ConnectionError, asyncio.IncompleteReadError):
        if vnc is not None:
            vnc.close()
        await _refuse(state, ws, client, version, grant, claimed, CLOSE_ERROR, rfb.VNC_CLOSED)
        return
    assert grant is not None and vnc is not None
    con = Console(grant.token_id, grant.vm_id, ws, bytes_to_client=client.sent, bytes_from_client=client.received)
    state.consoles.add(con)
    state.stats.opened += 1
    log.info("console.opened", console=grant.token_id, vm=grant.vm_id, vm_name=grant.vm_name,
             client=request.remote)
    try:
        code, reason = await _relay(con, vnc, cfg)
    finally:
        vnc.close()
        state.consoles.discard(con)
    await _close(ws, code, reason, request)
    state.stats.closed += 1
    state.stats.bytes_to_clients += con.bytes_to_client
    state.stats.bytes_from_clients += con.bytes_from_client
    log.info("console.closed", console=grant.token_id, vm=grant.vm_id, reason=reason, code=code,
             bytes_to_client=con.bytes_to_client, bytes_from_client=con.bytes_from_client)
    await state.store.close(grant.token_id, reason, con.bytes_to_client, con.bytes_from_client)


async def _refuse(state: ProxyState, ws: web.WebSocketResponse, client: WsStream, version: rfb.Version | None,
                  grant: ConsoleGrant | None, claimed: bool, code: int, reason: str) -> None:
    """Tell the client why (an RFB security failure when the handshake got that far, and the
    WebSocket close reason), and record the end of a claimed console."""
    state.stats.refused += 1
    if version is not None and not ws.closed:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(rfb.client_refuse(client, version, reason), 2.0)
    await _close(ws, code, reason)
    log.info("console.refused", kind="vnc", reason=reason, code=code,
             console=grant.token_id if grant else None, vm=grant.vm_id if grant else None)
    if grant is not None and claimed:
        await state.store.close(grant.token_id, reason, client.sent, client.received)


async def _close(ws: web.WebSocketResponse, code: int, reason: str, request: web.Request | None = None) -> None:
    """Close with ``code`` and ``reason``. A client too slow to read is cut off at once (its unsent
    bytes dropped), as is one that does not take the close frame within a short wait."""
    if not ws.closed and code != CLOSE_SLOW:
        try:
            await asyncio.wait_for(ws.close(code=code, message=reason.encode()[:MAX_CLOSE_REASON]), 3.0)
            return
        except asyncio.CancelledError:
            # aiohttp's writer hands a send cancelled earlier (a timed-out frame) on to the next one
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        except Exception:  # the connection is cut below
            pass
    if request is not None and request.transport is not None:
        request.transport.abort()


async def _relay(con: Console, vnc: rfb.TcpStream, cfg: ProxyConfig) -> tuple[int, str]:
    """Copy bytes both ways until one side ends; the close code and reason."""
    loop = asyncio.get_running_loop()
    last = [loop.time()]

    async def upstream() -> tuple[int, str]:
        while True:
            msg = await con.ws.receive()
            if msg.type is WSMsgType.BINARY:
                data: bytes = msg.data
                con.bytes_from_client += len(data)
                last[0] = loop.time()
                vnc.writer.write(data)
                try:
                    await asyncio.wait_for(vnc.writer.drain(), cfg.send_timeout_seconds)
                except TimeoutError:
                    return CLOSE_ERROR, "the VNC server does not read"
                except ConnectionError:
                    return CLOSE_NORMAL, rfb.VNC_CLOSED
            elif msg.type is WSMsgType.TEXT:
                return CLOSE_UNSUPPORTED, "binary messages only"
            else:
                return _client_end(msg)

    async def downstream() -> tuple[int, str]:
        while True:
            try:
                data = await vnc.reader.read(_RELAY_CHUNK)
            except ConnectionError:
                data = b""
            if not data:
                return CLOSE_NORMAL, rfb.VNC_CLOSED
            last[0] = loop.time()
            try:
                await asyncio.wait_for(con.ws.send_bytes(data), cfg.send_timeout_seconds)
            except TimeoutError:
                return CLOSE_SLOW, CLIENT_TOO_SLOW
            except ConnectionError:
                return CLOSE_NORMAL, "client gone"
            con.bytes_to_client += len(data)

    async def idle() -> tuple[int, str]:
        while True:
            left = last[0] + cfg.idle_timeout_seconds - loop.time()
            if left <= 0:
                return CLOSE_IDLE, "idle timeout"
            await asyncio.sleep(min(left, 30.0))

    async def stopped() -> tuple[int, str]:
        await con.stop.wait()
        return con.stop_reason

    tasks = [asyncio.create_task(c()) for c in (upstream, downstream, idle, stopped)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = next(t for t in tasks if t in done)
        return first.result()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        _secure(exc.headers)
        raise
    if not response.prepared:
        _secure(response.headers)
    return response


def _secure(headers: Any) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")


def build_app(config: ProxyConfig, store: SessionStore) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=64 * 1024)
    app[CONFIG_KEY] = config
    app[STATE_KEY] = ProxyState(config, TokenSigner(config.token_key), store)
    app.router.add_get("/console", console_page)
    app.router.add_get("/console.js", console_script)
    app.router.add_get("/console.css", console_style)
    app.router.add_get("/websockify", websockify)
    app.router.add_get("/rdp", rdp_file)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/novnc/{path:.*}", novnc_file)
    return app


def state_of(app: web.Application) -> ProxyState:
    return app[STATE_KEY]


def novnc_present(novnc_dir: Path) -> bool:
    return (novnc_dir / "core" / "rfb.js").is_file()
