"""The agent's HTTP application: CloudStack's ``/api/HypervResource/<FQCN>`` RPC endpoint.

Status codes follow what the Java management server understands (reference §1.5): 404 for a
command the agent does not handle (the server turns it into an UnsupportedAnswer), 200 with an
in-band ``result:false`` for a command that failed or whose body is malformed, and 4xx without a
body only where there is no command to answer (oversized or unauthenticated requests, a broken
startup exchange).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from hvcloud import logs
from hvcloud.agent import handlers as _handlers  # noqa: F401 - fills the dispatch table
from hvcloud.agent.auth import Authenticator, AuthError
from hvcloud.agent.context import HostContext, HostRegistry
from hvcloud.agent.dispatch import HANDLERS, Dispatcher
from hvcloud.agent.handlers.host import startup, vm_state_report
from hvcloud.http_guard import peer_of
from hvcloud.wire import codec
from hvcloud.wire.commands import HOST_VM_STATE_REPORT, STARTUP

log = logs.get("hvcloud.agent.app")

STATUS_LINE = "HypervResource controller running, use POST to send JSON encoded RPCs"
_FQCN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*){1,20}$")
JSON = codec.CONTENT_TYPE


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The request body, refusing more than ``limit`` bytes and clients slower than ``seconds``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            raise BodyTooLarge from None
    chunks: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)

    async with asyncio.timeout(seconds):
        await collect()
    return b"".join(chunks)


@dataclass(frozen=True)
class ControlEndpoint:
    """A ``POST`` endpoint outside the command protocol that a driver's wiring adds (the
    simulator's fault plan); requests are authenticated like commands, then ``handle`` gets the
    host and the body."""

    path: str
    handle: Callable[[HostContext, bytes], Response]


def _answer_response(body: bytes) -> Response:
    return Response(body, status_code=200, media_type=None, headers={"content-type": JSON})


class AgentApp:
    def __init__(self, registry: HostRegistry, auth: Authenticator, *, max_body: int,
                 body_timeout: float = 60.0, heartbeat_interval: float = 60.0,
                 control: Sequence[ControlEndpoint] = ()) -> None:
        self.registry = registry
        self.auth = auth
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.heartbeat_interval = heartbeat_interval
        self.dispatcher = Dispatcher()
        routes = [
            Route("/api/HypervResource", self.status, methods=["GET"]),
            Route("/api/HypervResource/{fqcn:str}", self.command, methods=["POST"]),
        ]
        for endpoint in control:
            routes.append(Route(endpoint.path, self._control(endpoint), methods=["POST"]))
        self.app = Starlette(routes=routes, lifespan=self._lifespan)

    # ---------------------------------------------------------------- lifecycle

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(self._heartbeats())
        try:
            yield
        finally:
            task.cancel()
            self.dispatcher.close()

    async def _heartbeats(self) -> None:
        """Write ``hb-<ip>`` on every attached pool, so neighbours can answer CheckOnHost."""
        while True:
            for ctx in self.registry.hosts:
                for pool in list(ctx.pools.values()):
                    try:
                        await self.dispatcher.run_blocking(ctx.storage.write_heartbeat, pool, ctx.host_ip)
                    except Exception as exc:
                        log.warning("heartbeat write failed", host=ctx.address, pool=pool.uuid, reason=str(exc))
            await asyncio.sleep(self.heartbeat_interval)

    # ---------------------------------------------------------------- endpoints

    async def status(self, request: Request) -> Response:
        return PlainTextResponse(STATUS_LINE)

    async def _authorised(self, request: Request) -> tuple[bytes, HostContext] | Response:
        """The body and the host of a request whose sender may send commands, or the refusal.

        The headers are checked before the body is read, so that a client without credentials
        cannot make the agent hold its body (up to ``max_body`` for up to ``body_timeout``); the
        signature covers the body and is checked once it is in."""
        client = request.client.host if request.client else None
        try:
            self.auth.check_headers(client, request.headers)
        except AuthError as exc:
            return self._refused(request, client, exc, close=True)
        try:
            body = await read_body(request, self.max_body, self.body_timeout)
        except BodyTooLarge:
            return PlainTextResponse(f"request body larger than {self.max_body} bytes", status_code=413)
        except TimeoutError:
            return PlainTextResponse("request body not received in time", status_code=408)
        try:
            self.auth.check_signature(request.method, request.url.path, request.headers, body)
        except AuthError as exc:
            return self._refused(request, client, exc, close=False)
        server = request.scope.get("server")
        ctx = self.registry.resolve(server[0] if server else None)
        if ctx is None:
            return PlainTextResponse("no host is served on this address", status_code=421)
        return body, ctx

    def _refused(self, request: Request, client: str | None, exc: AuthError, *, close: bool) -> Response:
        """The refusal; ``close`` ends the connection, whose unread body is not worth receiving."""
        peer = peer_of(request.scope)
        log.warning("request refused", client=client, peer=peer, path=request.url.path, reason=str(exc))
        headers = {"connection": "close"} if close else None
        return PlainTextResponse(str(exc), status_code=exc.status, headers=headers)

    async def command(self, request: Request) -> Response:
        fqcn: str = request.path_params["fqcn"]
        if len(fqcn) > 256 or not _FQCN.match(fqcn):
            return PlainTextResponse("Unsupported command", status_code=404)
        handler = HANDLERS.get(fqcn)
        if handler is None and fqcn not in (STARTUP, HOST_VM_STATE_REPORT):
            return PlainTextResponse(f"Unsupported command {fqcn}", status_code=404)
        checked = await self._authorised(request)
        if isinstance(checked, Response):
            return checked
        body, ctx = checked
        if fqcn == STARTUP:
            return await self._startup(ctx, body)
        if fqcn == HOST_VM_STATE_REPORT:
            report = await self.dispatcher.run_blocking(vm_state_report, ctx)
            return _answer_response(codec.encode_vm_state_report(report))
        assert handler is not None
        try:
            cmd = codec.parse_command(fqcn, codec.decode_json(body))
        except codec.WireError as exc:
            answer = handler.answer(result=False, details=f"{handler.short} failed: invalid request: {exc}")
            return _answer_response(codec.encode_answer(answer))
        answer = await self.dispatcher.dispatch(ctx, handler, cmd)
        return _answer_response(codec.encode_answer(answer))

    async def _startup(self, ctx: HostContext, body: bytes) -> Response:
        try:
            objs = codec.parse_wrapped_array(codec.decode_json(body))
        except codec.WireError as exc:
            return PlainTextResponse(f"invalid startup exchange: {exc}", status_code=400)
        try:
            out = await self.dispatcher.run_blocking(startup, ctx, objs)
        except codec.WireError as exc:
            return PlainTextResponse(f"invalid startup exchange: {exc}", status_code=400)
        log.info("startup exchange", host=ctx.address, guid=ctx.identity.guid, zone=ctx.identity.zone,
                 pod=ctx.identity.pod, cluster=ctx.identity.cluster)
        return _answer_response(codec.encode_wrapped_array(out))

    def _control(self, endpoint: ControlEndpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            checked = await self._authorised(request)
            if isinstance(checked, Response):
                return checked
            body, ctx = checked
            return endpoint.handle(ctx, body)

        return handle
