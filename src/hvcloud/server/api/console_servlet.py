"""``GET /client/console``: the entry CloudStack's older UI opened (its ConsoleProxyServlet).

``cmd=access&vm=<uuid>`` answers 302 to a fresh console URL on a proxy; ``cmd=thumbnail&vm=<uuid>
[&w=&h=]`` answers the VM's screen as ``image/png``. The caller is the logged-in session: the
``sessionkey`` parameter and cookie must agree, as for ``/client/api`` (a cookie alone would let any
page the user visits open consoles in their name). Plain-text errors: 401 without a session, 404
for a VM that does not exist or is not the caller's (the same answer, so existence does not leak),
409 for a VM not running, 503 when its host, the agent or every proxy is unavailable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from hvcloud import logs
from hvcloud.server.api import auth, errors
from hvcloud.server.api.params import RequestParams
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN
from hvcloud.server.errors import CloudError
from hvcloud.server.orchestration import consoles, thumbnails
from hvcloud.server.orchestration.vm.access import visible_vm
from hvcloud.server.orchestration.vm.states import InvalidState
from hvcloud.server.state import ServerState

log = logs.get(__name__)

NO_STORE = {"Cache-Control": "no-store"}
#: query strings longer than this are refused before parsing (the real ones are ~150 characters)
MAX_QUERY = 2048
_MAX_SIDE_DIGITS = 5


@dataclass(frozen=True)
class _Reply:
    status: int
    text: str = ""
    location: str | None = None
    png: bytes | None = None


def _text(status: int, text: str) -> _Reply:
    return _Reply(status, text)


def _side(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_SIDE_DIGITS:
        raise errors.param_error("w and h must be whole numbers of pixels")
    return int(raw)


def _of_error(exc: CloudError) -> _Reply:
    if isinstance(exc, InvalidState):
        return _text(409, exc.text)
    if exc.code == errors.UNAUTHORIZED:
        return _text(401, "Not logged in, or the session has expired")
    if exc.code == errors.PARAM_ERROR:
        return _text(400, exc.text)
    if exc.code in (errors.RESOURCE_UNAVAILABLE, errors.API_LIMIT_EXCEED):
        return _text(503 if exc.code == errors.RESOURCE_UNAVAILABLE else 429, exc.text)
    return _text(500, "Internal error")


def serve(state: ServerState, params: RequestParams, cookies: dict[str, str], client: str | None) -> _Reply:
    """One request, in a worker thread."""
    cmd, vm_id = params.get("cmd"), params.get("vm") or ""
    try:
        with state.sessions() as db:
            try:
                user = auth.verify_session(db, params, cookies, state.config.session_timeout_seconds)
            except CloudError:
                db.commit()  # an expired session's row is removed
                raise
            if user.account.account_type != ACCOUNT_TYPE_ADMIN:
                state.rate_limiter.check(user.account_id)
            if cmd not in ("access", "thumbnail"):
                return _text(400, "cmd must be access or thumbnail")
            if not vm_id:
                return _text(400, "vm is required")
            try:
                visible_vm(db, user, vm_id)
            except CloudError:
                return _text(404, "No such virtual machine")
            if cmd == "access":
                access = consoles.grant_console(db, state.config, state.box, state.agents, user, vm_id, None,
                                                client)
                db.commit()
                return _Reply(302, location=access.url)
            width = _side(params.get("w"), thumbnails.DEFAULT_WIDTH)
            height = _side(params.get("h"), thumbnails.DEFAULT_HEIGHT)
            shot = thumbnails.thumbnail(db, state.agents, user, vm_id, width, height)
            db.commit()  # the session's last_seen
            return _Reply(200, png=shot.png)
    except CloudError as exc:
        return _of_error(exc)
    except Exception:
        log.exception("console_servlet_failed", cmd=(cmd or "")[:16])
        return _text(500, "Internal error")


def make_console_handler(state: ServerState) -> Callable[[Request], Awaitable[Response]]:
    async def console(request: Request) -> Response:
        if len(request.url.query) > MAX_QUERY:
            return PlainTextResponse("query too long", status_code=414, headers=NO_STORE)
        pairs = list(request.query_params.multi_items())
        try:
            params = RequestParams.from_pairs(pairs)
        except CloudError as exc:
            return PlainTextResponse(exc.text[:200], status_code=400, headers=NO_STORE)
        reply = await run_in_threadpool(serve, state, params, dict(request.cookies),
                                        request.client.host if request.client else None)
        if reply.location is not None:
            return RedirectResponse(reply.location, status_code=302, headers=NO_STORE)
        if reply.png is not None:
            return Response(reply.png, media_type="image/png", headers=NO_STORE)
        return PlainTextResponse(reply.text, status_code=reply.status, headers=NO_STORE)

    return console
