"""Authentication of API calls: API-key signatures and ``login`` sessions."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server.api import errors
from hvcloud.server.api.params import RequestParams
from hvcloud.server.api.signature import parse_expires, signature_matches
from hvcloud.server.db.crypto import SecretBox, SecretDecryptError, hash_password, verify_password
from hvcloud.server.db.models import Domain, LoginSession, User, utcnow
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN

log = logs.get(__name__)

SESSION_COOKIE = "sessionkey"
JSESSION_COOKIE = "JSESSIONID"
#: longest ``expires`` window the setting may name (a larger one overflows date arithmetic)
_MAX_EXPIRES_WINDOW = 366 * 86400.0


def _usable(user: User | None) -> bool:
    """Enabled, and neither the user nor its account deleted (a removed row is only a tombstone)."""
    return (user is not None and user.state == "enabled" and user.account.state == "enabled"
            and user.removed is None and user.account.removed is None)


def _check_expiry(params: RequestParams, now: datetime, require_v3: bool, window_seconds: float) -> None:
    """CloudStack's check of ``signatureversion=3`` requests (an ``expires`` not yet past); with
    ``require_v3`` an older signature, which never expires, is refused, and so is an ``expires``
    further ahead than the window (a captured request would otherwise stay replayable for years)."""
    if (params.get("signatureversion") or "").strip() != "3":
        if require_v3:
            raise errors.unauthorized()
        return
    expires_raw = params.get("expires")
    expires = parse_expires(expires_raw) if expires_raw else None
    if expires is None or expires < now:
        raise errors.unauthorized()
    if require_v3 and expires > now + timedelta(seconds=min(window_seconds, _MAX_EXPIRES_WINDOW)):
        raise errors.unauthorized()


def verify_signed_request(db: Session, box: SecretBox, params: RequestParams, now: datetime | None = None,
                          *, require_v3: bool = False, expires_window_seconds: float = 600.0) -> User:
    api_key = params.get("apikey")
    signature = params.get("signature")
    if not api_key or not signature:
        raise errors.unauthorized()
    _check_expiry(params, now or datetime.now(UTC), require_v3, expires_window_seconds)
    user = db.scalar(select(User).where(User.api_key == api_key))
    if user is None or not _usable(user) or user.secret_key_enc is None:
        raise errors.unauthorized()
    try:
        secret = box.decrypt(user.secret_key_enc)
    except SecretDecryptError:
        raise errors.unauthorized() from None
    if not signature_matches(params.pairs, secret, signature):
        raise errors.unauthorized()
    return user


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


#: how stale a session's ``last_seen`` may get before a call writes it again
SESSION_TOUCH_SECONDS = 60


def verify_session(db: Session, params: RequestParams, cookies: dict[str, str], timeout_seconds: int) -> User:
    """CloudStack's default ``CookieAndParameter`` check: the parameter and the cookie must agree."""
    key = params.get("sessionkey")
    cookie = cookies.get(SESSION_COOKIE)
    if not key or not cookie or not secrets.compare_digest(key, cookie):
        raise errors.unauthorized()
    row = db.scalar(select(LoginSession).where(LoginSession.key_hash == _key_hash(key)))
    if row is None:
        raise errors.unauthorized()
    now = utcnow()
    if row.last_seen + timedelta(seconds=timeout_seconds) < now or not _usable(row.user):
        db.delete(row)
        raise errors.unauthorized()
    # the session's clock is kept to within a tenth of its timeout (at most a minute): a session's
    # calls are then reads, not one write each (``endpoint.process`` commits a touch on its own)
    if now - row.last_seen >= timedelta(seconds=min(SESSION_TOUCH_SECONDS, timeout_seconds // 10)):
        row.last_seen = now
    return row.user


@dataclass
class NewSession:
    user: User
    session_id: str
    key: str


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password with the same cost as real ones: a login naming an unknown user
    verifies against it, so that it takes as long as one naming a real user (made when the app is
    built, so the first such login does not pay for the hashing too)."""
    return hash_password(secrets.token_urlsafe(16))


def _login_user(db: Session, username: str, domain_path: str | None, domain_id: str | None) -> User | None:
    """The user ``login`` names, or None when there is none by that name in that domain."""
    if len(username) > 255:
        return None
    user = db.scalar(select(User).where(User.username == username, User.removed.is_(None)))
    if user is None or (domain_id is not None and user.account.domain_id != domain_id):
        return None
    if domain_path is not None:
        wanted = domain_path.strip("/")
        domain = db.get(Domain, user.account.domain_id)
        actual = "" if domain is None or domain.path == "ROOT" else domain.path.removeprefix("ROOT/")
        if wanted.lower() not in ("", "root") and wanted != actual:
            return None
    return user


def _count_failure(db: Session, user: User, allowed: int) -> None:
    """Count a failed login of an enabled user; at ``allowed`` failures in a row the user is disabled,
    as CloudStack does (root admins are exempt there too: locking out the only admin would hand any
    caller a denial of service). One UPDATE does both, so that servers sharing the database count
    every failure; ``state`` is assigned first because MySQL evaluates assignments left to right."""
    if allowed <= 0 or user.account.account_type == ACCOUNT_TYPE_ADMIN or user.state != "enabled":
        return
    attempts = User.login_attempts + 1
    db.execute(update(User).where(User.id == user.id, User.state == "enabled").ordered_values(
        (User.state, case((attempts >= allowed, "disabled"), else_=User.state)),
        (User.login_attempts, case((attempts >= allowed, allowed), else_=attempts)),
    ).execution_options(synchronize_session=False))
    state = db.scalar(select(User.state).where(User.id == user.id))
    if state == "disabled":
        log.warning("login.user_disabled", user_id=user.id, reason="failed login attempts", allowed=allowed)


def login(db: Session, username: str, password: str, domain_path: str | None,
          domain_id: str | None, allowed_attempts: int = 5) -> NewSession:
    """Check a ``login``; every path verifies exactly one password hash (a dummy one for unknown
    users), so that the answer's timing does not tell which usernames exist. A failure is counted in
    ``db``: the caller commits it even though this raises."""
    failure = errors.ApiError(errors.ACCOUNT_ERROR, "Failed to authenticate user " + username[:64]
                              + " in domain; please provide valid credentials", errors.CS_SERVER_API)
    user = _login_user(db, username, domain_path, domain_id)
    if not verify_password(password, dummy_hash() if user is None else user.password_hash) or user is None:
        if user is not None:
            _count_failure(db, user, allowed_attempts)
        raise failure
    if not _usable(user):
        # CloudStack answers "disabled/locked" here, but only to the right password: after a lockout
        # that would tell whoever keeps guessing which guess was right, so the answer stays the same
        log.info("login.refused", user_id=user.id, reason="user or account not enabled")
        raise failure
    if user.login_attempts:
        user.login_attempts = 0
    key = secrets.token_urlsafe(20)
    row = LoginSession(key_hash=_key_hash(key), user_id=user.id)
    db.add(row)
    db.flush()
    return NewSession(user=user, session_id=row.id, key=key)


@dataclass
class _Source:
    failures: int
    not_before: float
    last_failure: float


class LoginThrottle:
    """A per-client-address pause before a ``login`` that follows failed ones, in memory.

    The pause doubles with each further failure from the address up to ``cap`` and ends with a
    success. At most ``max_sources`` addresses are remembered (the least recently failed are dropped)
    and an address is forgotten ``forget_after`` seconds after its last failure, so the memory stays
    bounded whatever a flood of addresses does. Per process: with several server processes an address
    may be paused by one process and not another; the lockout counter in the database is what bounds
    guessing across processes."""

    def __init__(self, base: float, cap: float, *, max_sources: int = 4096, forget_after: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base, self.cap, self.max_sources, self.forget_after = base, cap, max_sources, forget_after
        self._clock = clock
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    @staticmethod
    def source_key(host: str) -> str:
        """The address a pause applies to: an IPv6 client is taken by its /64, which one host
        commonly holds whole (else each of its addresses would start afresh)."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host[:64]
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    def wait(self, source: str) -> float:
        """Seconds the next login from ``source`` waits before it is checked."""
        entry = self._sources.get(source)
        return 0.0 if entry is None else max(entry.not_before - self._clock(), 0.0)

    def failed(self, source: str) -> None:
        now = self._clock()
        self._forget_old(now)
        entry = self._sources.pop(source, None)
        failures = 1 if entry is None else entry.failures + 1
        pause = min(self.base * 2 ** min(failures - 1, 30), self.cap)
        self._sources[source] = _Source(failures, now + pause, now)
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)

    def succeeded(self, source: str) -> None:
        self._sources.pop(source, None)

    def __len__(self) -> int:
        return len(self._sources)

    def _forget_old(self, now: float) -> None:
        while self._sources:
            oldest = next(iter(self._sources.values()))
            if now - oldest.last_failure < self.forget_after:
                return
            self._sources.popitem(last=False)


def logout(db: Session, params: RequestParams, cookies: dict[str, str]) -> None:
    key = params.get("sessionkey") or cookies.get(SESSION_COOKIE)
    if key:
        db.execute(delete(LoginSession).where(LoginSession.key_hash == _key_hash(key)))
