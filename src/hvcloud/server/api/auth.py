"""Authentication of API calls: API-key signatures and ``login`` sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hvcloud.server.api import errors
from hvcloud.server.api.params import RequestParams
from hvcloud.server.api.signature import parse_expires, signature_matches
from hvcloud.server.db.crypto import SecretBox, SecretDecryptError, verify_password
from hvcloud.server.db.models import Domain, LoginSession, User, utcnow

SESSION_COOKIE = "sessionkey"
JSESSION_COOKIE = "JSESSIONID"


def _usable(user: User | None) -> bool:
    """Enabled, and neither the user nor its account deleted (a removed row is only a tombstone)."""
    return (user is not None and user.state == "enabled" and user.account.state == "enabled"
            and user.removed is None and user.account.removed is None)


def verify_signed_request(db: Session, box: SecretBox, params: RequestParams,
                          now: datetime | None = None) -> User:
    api_key = params.get("apikey")
    signature = params.get("signature")
    if not api_key or not signature:
        raise errors.unauthorized()
    if (params.get("signatureversion") or "").strip() == "3":
        expires_raw = params.get("expires")
        expires = parse_expires(expires_raw) if expires_raw else None
        if expires is None or expires < (now or datetime.now(UTC)):
            raise errors.unauthorized()
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
    row.last_seen = now
    return row.user


@dataclass
class NewSession:
    user: User
    session_id: str
    key: str


def login(db: Session, username: str, password: str, domain_path: str | None,
          domain_id: str | None) -> NewSession:
    failure = errors.ApiError(errors.ACCOUNT_ERROR, "Failed to authenticate user " + username[:64]
                              + " in domain; please provide valid credentials", errors.CS_SERVER_API)
    user = db.scalar(select(User).where(User.username == username, User.removed.is_(None)))
    if user is None or not _usable(user) or not verify_password(password, user.password_hash):
        raise failure
    if domain_id is not None and user.account.domain_id != domain_id:
        raise failure
    if domain_path is not None:
        wanted = domain_path.strip("/")
        domain = db.get(Domain, user.account.domain_id)
        actual = "" if domain is None or domain.path == "ROOT" else domain.path.removeprefix("ROOT/")
        if wanted.lower() not in ("", "root") and wanted != actual:
            raise failure
    key = secrets.token_urlsafe(20)
    row = LoginSession(key_hash=_key_hash(key), user_id=user.id)
    db.add(row)
    db.flush()
    return NewSession(user=user, session_id=row.id, key=key)


def logout(db: Session, params: RequestParams, cookies: dict[str, str]) -> None:
    key = params.get("sessionkey") or cookies.get(SESSION_COOKIE)
    if key:
        db.execute(delete(LoginSession).where(LoginSession.key_hash == _key_hash(key)))
