"""The ``/client/api`` endpoint: parse, authenticate, authorise, bind, run, render."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from hvcloud import logs
from hvcloud.server.api import auth, errors, visibility
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.envelope import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    error_body,
    render_json,
    render_xml,
)
from hvcloud.server.api.params import RequestParams
from hvcloud.server.api.registry import REGISTRY, Registry, bind
from hvcloud.server.api.results import RawResult, body_of
from hvcloud.server.db.models import User
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN
from hvcloud.server.errors import CloudError
from hvcloud.server.state import ServerState

log = logs.get(__name__)

SESSION_COMMANDS = ("login", "logout")


@dataclass
class Outcome:
    status: int
    response_name: str
    body: dict[str, Any]
    cookies: dict[str, str] = field(default_factory=dict)
    clear_cookies: tuple[str, ...] = ()


def _error(exc: CloudError, command: str | None) -> Outcome:
    """The API's envelope of any :class:`CloudError`, raised by a command or by a manager below it."""
    generic = exc.generic_envelope or command is None or exc.code == errors.UNSUPPORTED_ACTION
    name = "errorresponse" if generic else f"{(command or '').lower()}response"
    return Outcome(exc.code, name, error_body(exc.code, exc.text, exc.cserrorcode))


def _login(state: ServerState, params: RequestParams, method: str) -> Outcome:
    if method != "POST":
        raise errors.ApiError(errors.METHOD_NOT_ALLOWED,
                              "Please use HTTP POST to authenticate using this API")
    username, password = params.get("username"), params.get("password")
    if not username or password is None:
        raise errors.missing_parameter("login", "username" if not username else "password")
    with state.sessions() as db:
        try:
            new = auth.login(db, username, password, params.get("domain"), params.get("domainid"),
                             state.config.incorrect_login_attempts_allowed)
        except errors.ApiError:
            db.commit()  # the failure count
            raise
        user = new.user
        body = {
            "username": user.username, "userid": user.id, "domainid": user.account.domain_id,
            "timeout": state.config.session_timeout_seconds, "account": user.account.name,
            "firstname": user.firstname, "lastname": user.lastname, "type": str(user.account.account_type),
            "timezone": user.timezone or "UTC", "timezoneoffset": "0.0", "registered": "false",
            "sessionkey": new.key, "is2faenabled": "false", "is2faverified": "true",
        }
        db.commit()
    cookies = {auth.SESSION_COOKIE: new.key, auth.JSESSION_COOKIE: new.session_id}
    return Outcome(200, "loginresponse", body, cookies=cookies)


def _authenticate(state: ServerState, db: Any, params: RequestParams, cookies: dict[str, str]) -> User:
    cookie_only = params.get("apikey") is None and auth.SESSION_COOKIE in cookies
    if params.get("sessionkey") is not None or cookie_only:
        return auth.verify_session(db, params, cookies, state.config.session_timeout_seconds)
    return auth.verify_signed_request(db, state.box, params, require_v3=state.config.signature_v3_required,
                                      expires_window_seconds=state.config.signature_expires_window_seconds)


def process(state: ServerState, registry: Registry, method: str, params: RequestParams,
            cookies: dict[str, str], client_address: str | None = None) -> Outcome:
    """Run one API call synchronously (called in a worker thread)."""
    command_name = params.get("command")
    try:
        if not command_name:
            raise errors.ApiError(errors.UNSUPPORTED_ACTION, "no command specified", errors.CS_SERVER_API)
        if command_name == "login":
            return _login(state, params, method)
        if command_name == "logout":
            with state.sessions.begin() as db:
                auth.logout(db, params, cookies)
            return Outcome(200, "logoutresponse", {"description": "success"},
                           clear_cookies=(auth.SESSION_COOKIE, auth.JSESSION_COOKIE))
        command = registry.get(command_name)
        with state.sessions() as db:
            try:
                user = _authenticate(state, db, params, cookies)
            except errors.ApiError:
                db.commit()
                raise
            if db.dirty:
                # a session's last_seen, in its own short transaction: a command that writes would
                # otherwise hold SQLite's write lock from its first statement, and one that takes a
                # number from ``db.sequences`` (another connection) would wait on itself
                db.commit()
            if user.account.account_type != ACCOUNT_TYPE_ADMIN:
                state.rate_limiter.check(user.account_id)
            if command is None:
                raise errors.unauthorized(errors.NOT_AVAILABLE_TEXT, generic_envelope=True)
            admin = user.account.account_type == ACCOUNT_TYPE_ADMIN
            if not command.open_to(user.account.account_type):
                # whatever its role's rules say: admin commands trust their caller to be a root admin
                # (or, for those open to them, a domain admin the handler keeps to its subtree)
                raise errors.unauthorized(errors.NOT_AVAILABLE_TEXT)
            if not state.roles.allows(db, user.account.role, command.name, admin_only=command.root_only):
                raise errors.not_available_for(command.name, user.account.name)
            bad = params.has_control_characters()
            if bad is not None:
                raise errors.param_error(f"Received value for parameter {bad[:64]} contains control "
                                         "characters, which are not allowed")
            args = bind(command, params)
            ctx = CallContext(state=state, db=db, user=user, command=command.name, http_method=method,
                              client_address=client_address)
            try:
                result = command.handler(ctx, args)
                db.commit()
                if ctx.queued_jobs:
                    state.notify_jobs()
            except Exception:
                db.rollback()
                raise
        body = body_of(result)
        outcome = Outcome(200, command.response_name, body if admin else visibility.for_user(body))
        if isinstance(result, RawResult):
            outcome.cookies, outcome.clear_cookies = result.cookies, result.clear_cookies
        return outcome
    except CloudError as exc:
        return _error(exc, command_name if command_name and registry.get(command_name) else None)
    except Exception:
        log.exception("API command failed", command=command_name)
        return _error(errors.internal("Internal error executing command, please contact your system "
                                      "administrator"), command_name)


async def _read_pairs(request: Request, max_body: int) -> list[tuple[str, str]]:
    """The query and form parameters as received; ApiError only for a body that cannot be read.

    The number of parameters is checked by ``RequestParams`` (the body size bounds the work here), so
    that a refusal can still be rendered in the format the request asked for."""
    pairs: list[tuple[str, str]] = list(request.query_params.multi_items())
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        body = b""
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body:
                    raise errors.param_error(f"request body exceeds {max_body} bytes")
        except ClientDisconnect:  # gone, or cut off by the listener's body timeout (hvcloud.http_guard)
            raise errors.param_error("the request body was not received") from None
        if body and (not ctype or ctype.startswith("application/x-www-form-urlencoded")):
            try:
                text = body.decode("utf-8")
                pairs += parse_qsl(text, keep_blank_values=True, errors="strict")
            except (UnicodeDecodeError, ValueError) as exc:
                raise errors.param_error(f"malformed request body: {str(exc)[:80]}") from None
    return pairs


def _wants_json(pairs: list[tuple[str, str]]) -> bool:
    """``response=json`` as the server reads it: the first parameter named ``response`` in any case."""
    for name, value in pairs:
        if name.lower() == "response":
            return value.lower() == "json"
    return False


def header_text(text: str, limit: int = 512) -> str:
    """Error text fit for a header: error texts echo parameter values, and a CR/LF or other control
    character in a header is response splitting, and h11 also refuses leading or trailing blanks; uvicorn
    drops the connection on either, so the client got no answer at all."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit]).strip()


#: how a throttled login waits (a coroutine: the event loop keeps serving other requests meanwhile)
_pause = asyncio.sleep


async def _run(state: ServerState, registry: Registry, throttle: auth.LoginThrottle, request: Request,
               params: RequestParams) -> Outcome:
    """Run the call in a worker thread; a ``login`` first waits out its client address's pause and
    its outcome feeds the next one."""
    if params.get("command") != "login":
        return await run_in_threadpool(process, state, registry, request.method, params, dict(request.cookies),
                                       request.client.host if request.client else None)
    source = auth.LoginThrottle.source_key(request.client.host if request.client else "")
    wait = throttle.wait(source)
    if wait > 0:
        await _pause(wait)
    outcome = await run_in_threadpool(process, state, registry, request.method, params, dict(request.cookies))
    if outcome.status == errors.ACCOUNT_ERROR:
        throttle.failed(source)
    elif outcome.status == 200:
        throttle.succeeded(source)
    return outcome


def make_handler(state: ServerState, registry: Registry = REGISTRY) -> Any:
    throttle = auth.LoginThrottle(state.config.login_failure_delay_seconds,
                                  state.config.login_failure_delay_max_seconds)
    auth.dummy_hash()

    async def api(request: Request) -> Response:
        pairs: list[tuple[str, str]] = list(request.query_params.multi_items())
        try:
            pairs = await _read_pairs(request, state.config.max_body_bytes)
            params = RequestParams.from_pairs(pairs)
        except CloudError as exc:
            outcome = _error(exc, None)
            as_json = _wants_json(pairs)
        else:
            as_json = (params.get("response") or "").lower() == "json"
            outcome = await _run(state, registry, throttle, request, params)
        if as_json:
            content, media = render_json(outcome.response_name, outcome.body), JSON_CONTENT_TYPE
        else:
            content, media = render_xml(outcome.response_name, outcome.body), XML_CONTENT_TYPE
        response = Response(content, status_code=outcome.status, media_type=media)
        if outcome.status != 200 and "errortext" in outcome.body:
            response.headers["X-Description"] = header_text(str(outcome.body["errortext"]))
        secure = request.url.scheme == "https"
        for name, value in outcome.cookies.items():
            path = "/client" if name == auth.JSESSION_COOKIE else "/"
            response.set_cookie(name, value, path=path, httponly=True, samesite="lax", secure=secure)
        for name in outcome.clear_cookies:
            response.delete_cookie(name, path="/client" if name == auth.JSESSION_COOKIE else "/")
        return response

    return api
