"""Login abuse, sessions and signature expiry (issue 13, items 3 and 7): CloudStack's
``incorrect.login.attempts.allowed`` lockout, the per-address pause, one hash verification on every
login path, sessions ending with a password change, and ``api.signature.version3.required``."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hvcloud.server.api import auth, endpoint, errors
from hvcloud.server.config import parse_settings
from hvcloud.server.db.models import User
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller

PASSWORD = "s3cret-pw"  # alice's, as the user_caller fixture creates her


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The per-address pauses logins waited, recorded instead of slept."""
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(endpoint, "_pause", record, raising=False)
    return waited


def login(http: Any, username: str, password: str, **extra: str) -> tuple[int, dict[str, Any]]:
    resp = http.post("/client/api", data={"command": "login", "username": username, "password": password,
                                          "response": "json", **extra})
    body = resp.json()
    return resp.status_code, next(iter(body.values()))


def user_row(state: ServerState, username: str) -> User:
    with state.sessions() as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None
        db.expunge(user)
        return user


def admin_password(state: ServerState) -> str:
    return (state.config.data_dir / "admin-password").read_text().strip()


# --- lockout -------------------------------------------------------------------------------------


def test_thirty_wrong_passwords_then_the_right_one_is_refused_until_an_admin_enables(
        admin: Caller, user_caller: Caller, state: ServerState, pauses: list[float]) -> None:
    for i in range(30):
        status, body = login(admin.http, "alice", f"guess-{i}")
        assert status == 531 and body["errortext"].startswith("Failed to authenticate user alice"), (i, body)
    status, right = login(admin.http, "alice", PASSWORD)
    # the same answer as to a wrong password: no way to learn the password of a disabled user
    assert status == 531 and right == body
    alice = user_row(state, "alice")
    assert (alice.state, alice.login_attempts) == ("disabled", 5)
    assert user_caller.call("listZones")[0] == 401  # her API keys stop too, as for any disabled user
    assert admin.ok("listUsers", username="alice")["user"][0]["state"] == "disabled"

    admin.ok("enableUser", id=alice.id)
    assert user_row(state, "alice").login_attempts == 0
    assert login(admin.http, "alice", PASSWORD)[0] == 200
    assert pauses, "the failed logins from this address were paused"


def test_the_fifth_consecutive_failure_disables_and_a_success_resets_the_count(
        admin: Caller, user_caller: Caller, state: ServerState, pauses: list[float]) -> None:
    for _ in range(4):
        assert login(admin.http, "alice", "wrong")[0] == 531
    assert user_row(state, "alice").login_attempts == 4
    assert login(admin.http, "alice", PASSWORD)[0] == 200
    assert user_row(state, "alice").login_attempts == 0
    for _ in range(4):
        assert login(admin.http, "alice", "wrong")[0] == 531
    assert user_row(state, "alice").state == "enabled"
    assert login(admin.http, "alice", "wrong")[0] == 531
    assert user_row(state, "alice").state == "disabled"


def test_the_setting_sets_the_threshold_and_zero_turns_the_lockout_off(
        admin: Caller, user_caller: Caller, state: ServerState, pauses: list[float]) -> None:
    assert parse_settings({"incorrect.login.attempts.allowed": "2"}) == {"incorrect_login_attempts_allowed": 2}
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(ValueError, match=r"incorrect\.login\.attempts\.allowed"):
            parse_settings({"incorrect.login.attempts.allowed": bad})
    state.config = replace(state.config, incorrect_login_attempts_allowed=0)
    for _ in range(8):
        assert login(admin.http, "alice", "wrong")[0] == 531
    assert user_row(state, "alice").state == "enabled"
    assert login(admin.http, "alice", PASSWORD)[0] == 200
    state.config = replace(state.config, incorrect_login_attempts_allowed=2)
    for _ in range(2):
        assert login(admin.http, "alice", "wrong")[0] == 531
    assert user_row(state, "alice").state == "disabled"


def test_the_root_admin_is_not_locked_out_as_in_cloudstack(admin: Caller, state: ServerState,
                                                           pauses: list[float]) -> None:
    for _ in range(7):
        assert login(admin.http, "admin", "wrong")[0] == 531
    assert user_row(state, "admin").state == "enabled"
    assert login(admin.http, "admin", admin_password(state))[0] == 200


def test_a_locked_or_disabled_user_gains_no_count_and_keeps_its_state(
        admin: Caller, user_caller: Caller, state: ServerState, pauses: list[float]) -> None:
    alice = user_row(state, "alice")
    admin.ok("lockUser", id=alice.id)
    for _ in range(6):
        assert login(admin.http, "alice", "wrong")[0] == 531
    assert (user_row(state, "alice").state, user_row(state, "alice").login_attempts) == ("locked", 0)


def test_failures_counted_by_concurrent_servers_are_all_counted(user_caller: Caller, state: ServerState) -> None:
    """Each thread stands for a server process with its own database connection: the count is one
    UPDATE in the database, so no failure is lost between a read and a write."""
    threads, per_thread, allowed = 4, 5, 1000

    def fail(n: int) -> None:
        for _ in range(n):
            with state.sessions() as db:
                with pytest.raises(errors.ApiError):
                    auth.login(db, "alice", "wrong", None, None, allowed)
                db.commit()

    workers = [threading.Thread(target=fail, args=(per_thread,)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert user_row(state, "alice").login_attempts == threads * per_thread


# --- the same cost for every failure --------------------------------------------------------------


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored hashes each login verified a password against."""
    seen: list[str] = []
    real = auth.verify_password

    def counting(password: str, stored: str) -> bool:
        seen.append(stored)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting)
    return seen


FAILURES: list[tuple[str, dict[str, str]]] = [
    ("unknown user", {"username": "nobody", "password": "x"}),
    ("wrong password", {"username": "alice", "password": "wrong"}),
    ("wrong domain id", {"username": "alice", "password": PASSWORD,
                        "domainid": "00000000-0000-0000-0000-000000000000"}),
    ("wrong domain path", {"username": "alice", "password": PASSWORD, "domain": "/nowhere"}),
    ("overlong username", {"username": "a" * 20000, "password": "x"}),
    ("unicode username", {"username": "\u0430lice\u202e\U0001f600", "password": "p\u00e4ss"}),
    ("empty password", {"username": "alice", "password": ""}),
    ("disabled user, right password", {"username": "bob", "password": "bob-pw"}),
    ("disabled user, wrong password", {"username": "bob", "password": "wrong"}),
]


@pytest.mark.parametrize(("case", "form"), FAILURES, ids=[c for c, _ in FAILURES])
def test_every_failed_login_verifies_exactly_one_hash(admin: Caller, user_caller: Caller, state: ServerState,
                                                      verifications: list[str], pauses: list[float], case: str,
                                                      form: dict[str, str]) -> None:
    bob = admin.ok("createAccount", username="bob", password="bob-pw", firstname="B", lastname="B")["account"]
    admin.job("disableUser", id=bob["user"][0]["id"])
    verifications.clear()
    status, body = login(admin.http, **form)
    assert status == 531, body
    # one answer for every failure: nothing tells an unknown user from a wrong or a disabled one
    assert body["errortext"] == (f"Failed to authenticate user {form['username'][:64]} in domain; please "
                                 "provide valid credentials")
    assert len(verifications) == 1, (case, len(verifications))
    assert all(part.startswith("scrypt$16384$") for part in verifications)
    assert "Traceback" not in body["errortext"] and "SELECT" not in body["errortext"]
    assert len(body["errortext"]) < 300


def test_a_successful_login_also_verifies_one_hash(admin: Caller, user_caller: Caller,
                                                   verifications: list[str]) -> None:
    assert login(admin.http, "alice", PASSWORD)[0] == 200
    assert len(verifications) == 1


@pytest.mark.parametrize(("form", "status"), [
    ({"username": "alice"}, 431),
    ({"password": "x"}, 431),
    ({"username": "", "password": "x"}, 431),
    ({"username": "alice", "password": "x\x00y"}, 531),
])
def test_malformed_logins_get_clear_errors(admin: Caller, user_caller: Caller, pauses: list[float],
                                           form: dict[str, str], status: int) -> None:
    resp = admin.http.post("/client/api", data={"command": "login", "response": "json", **form})
    assert resp.status_code == status, resp.text
    assert "errortext" in next(iter(resp.json().values()))


# --- the per-address pause -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pause_doubles_per_failure_up_to_the_cap_and_a_success_ends_it() -> None:
    clock = Clock()
    throttle = auth.LoginThrottle(0.25, 1.0, clock=clock)
    assert throttle.wait("10.0.0.1") == 0
    expected = [0.25, 0.5, 1.0, 1.0]
    for pause in expected:
        throttle.failed("10.0.0.1")
        assert throttle.wait("10.0.0.1") == pytest.approx(pause)
    assert throttle.wait("10.0.0.2") == 0  # per address
    clock.now += 0.4
    assert throttle.wait("10.0.0.1") == pytest.approx(0.6)
    throttle.succeeded("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 0


@pytest.mark.parametrize(("host", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ("testclient", "testclient"),
    ("x" * 5000, "x" * 64),
    ("", ""),
])
def test_the_pause_applies_to_an_address_or_an_ipv6_64(host: str, key: str) -> None:
    assert auth.LoginThrottle.source_key(host) == key


def test_the_pause_memory_is_bounded() -> None:
    clock = Clock()
    throttle = auth.LoginThrottle(0.25, 4.0, max_sources=100, forget_after=60.0, clock=clock)
    for i in range(10_000):
        throttle.failed(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(throttle) == 100
    assert throttle.wait("10.0.39.15") > 0 and throttle.wait("10.0.0.0") == 0  # the newest are kept
    clock.now += 61
    throttle.failed("192.0.2.1")
    assert len(throttle) == 1


def test_failed_logins_from_an_address_pause_its_next_logins_without_blocking(
        admin: Caller, user_caller: Caller, state: ServerState, pauses: list[float]) -> None:
    assert endpoint._pause is not None
    login(admin.http, "alice", "wrong")
    assert pauses == []
    login(admin.http, "nobody", "wrong")  # unknown users count for the address too
    login(admin.http, "alice", "wrong")
    assert len(pauses) == 2 and 0 < pauses[0] <= 0.25 and 0.25 < pauses[1] <= 0.5
    assert login(admin.http, "alice", PASSWORD)[0] == 200
    assert len(pauses) == 3
    assert login(admin.http, "alice", PASSWORD)[0] == 200
    assert len(pauses) == 3  # a success ended the pause
    assert user_caller.call("listZones")[0] == 200  # other calls are never paused
    assert len(pauses) == 3


def test_a_paused_login_does_not_hold_up_other_requests(admin: Caller, user_caller: Caller,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause is awaited in the event loop (``asyncio.sleep`` in production): other requests are
    answered while a login waits. Here the pause lasts until the test releases it."""
    import asyncio

    assert endpoint._pause is asyncio.sleep
    entered, release = threading.Event(), threading.Event()

    async def hold(_seconds: float) -> None:
        entered.set()
        await asyncio.to_thread(release.wait, 60)

    monkeypatch.setattr(endpoint, "_pause", hold)
    assert login(admin.http, "alice", "wrong")[0] == 531
    results: dict[str, int] = {}
    paused = threading.Thread(target=lambda: results.setdefault("login", login(admin.http, "alice", PASSWORD)[0]))
    paused.start()
    try:
        assert entered.wait(30)
        other = threading.Thread(target=lambda: results.setdefault("list", user_caller.call("listZones")[0]))
        other.start()
        other.join(30)
        assert results == {"list": 200}, "listZones waited for the paused login"
    finally:
        release.set()
        paused.join(30)
    assert results == {"list": 200, "login": 200}


# --- sessions and password changes --------------------------------------------------------------------


def session_works(http: Any, key: str) -> bool:
    http.cookies.set("sessionkey", key)
    resp = http.get("/client/api", params={"command": "listZones", "response": "json", "sessionkey": key})
    return bool(resp.status_code == 200)


def test_a_password_change_ends_all_the_users_sessions(admin: Caller, user_caller: Caller,
                                                       state: ServerState) -> None:
    keys = [login(admin.http, "alice", PASSWORD)[1]["sessionkey"] for _ in range(2)]
    other = login(admin.http, "admin", admin_password(state))[1]["sessionkey"]
    assert all(session_works(admin.http, k) for k in keys)
    alice = user_row(state, "alice")
    admin.ok("updateUser", id=alice.id, password="new-pw-1")
    assert not any(session_works(admin.http, k) for k in keys)
    assert session_works(admin.http, other)  # other users' sessions stay
    assert user_caller.call("listZones")[0] == 200  # keys stay unless the operator asks otherwise
    assert login(admin.http, "alice", PASSWORD)[0] == 531
    assert login(admin.http, "alice", "new-pw-1")[0] == 200


def test_a_user_changing_its_own_password_ends_its_sessions_too(admin: Caller, user_caller: Caller,
                                                                state: ServerState) -> None:
    key = login(admin.http, "alice", PASSWORD)[1]["sessionkey"]
    alice = user_row(state, "alice")
    bad = user_caller.call("updateUser", id=alice.id, password="n3w", currentpassword="wrong")
    assert bad[0] == 431 and session_works(admin.http, key)
    admin.http.cookies.set("sessionkey", key)
    resp = admin.http.get("/client/api", params={"command": "updateUser", "id": alice.id, "password": "n3w",
                                                 "currentpassword": PASSWORD, "response": "json",
                                                 "sessionkey": key})
    assert resp.status_code == 200, resp.text
    assert not session_works(admin.http, key)


def test_the_operator_may_have_a_password_change_regenerate_the_keys(admin: Caller, user_caller: Caller,
                                                                    state: ServerState) -> None:
    assert parse_settings({"user.password.change.regenerate.keys": "TRUE"}) == {
        "regenerate_keys_on_password_change": True}
    with pytest.raises(ValueError, match="true or false"):
        parse_settings({"user.password.change.regenerate.keys": "yes"})
    state.config = replace(state.config, regenerate_keys_on_password_change=True)
    alice = user_row(state, "alice")
    admin.ok("updateUser", id=alice.id, firstname="Al")  # no password: keys stay
    assert user_caller.call("listZones")[0] == 200
    admin.ok("updateUser", id=alice.id, password="new-pw-2")
    assert user_caller.call("listZones")[0] == 401
    fresh = admin.ok("getUserKeys", id=alice.id)["userkeys"]
    assert fresh["apikey"] != user_caller.apikey
    assert Caller(admin.http, fresh["apikey"], fresh["secretkey"]).call("listZones")[0] == 200


# --- signature version 3 -----------------------------------------------------------------------------


def expires_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S+0000")


def test_signature_version3_settings() -> None:
    assert parse_settings({"api.signature.version3.required": "true", "api.signature.expires.window": "120"}) == {
        "signature_v3_required": True, "signature_expires_window_seconds": 120.0}
    for name, bad in (("api.signature.version3.required", "1"), ("api.signature.expires.window", "0"),
                      ("api.signature.expires.window", "inf"), ("api.signature.expires.window", "nan")):
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            parse_settings({name: bad})


def test_old_signatures_still_pass_by_default(user_caller: Caller) -> None:
    assert user_caller.call("listZones")[0] == 200
    assert user_caller.call("listZones", signatureversion=3, expires=expires_in(10 * 86400))[0] == 200
    assert user_caller.call("listZones", signatureversion=3, expires=expires_in(-60))[0] == 401


@pytest.mark.parametrize(("params", "status"), [
    ({}, 401),  # no signatureversion: it would never expire
    ({"signatureversion": "2", "expires": "+300"}, 401),
    ({"signatureversion": "3"}, 401),  # no expires
    ({"signatureversion": "3", "expires": "+3600"}, 401),  # further ahead than the window
    ({"signatureversion": "3", "expires": "+86400000"}, 401),
    ({"signatureversion": "3", "expires": "-5"}, 401),  # expired
    ({"signatureversion": "3", "expires": "tomorrow"}, 401),
    ({"signatureversion": "3", "expires": "9999-12-31T23:59:59+0000"}, 401),
    ({"signatureversion": "3", "expires": "\u0662\u0660\u0662\u0666-01-01T00:00:00+0000"}, 401),
    ({"signatureversion": "3", "expires": "2026-01-01T00:00:00" + "0" * 5000}, 401),
    ({"signatureversion": "3", "expires": "+300"}, 200),
    ({"signatureversion": " 3 ", "expires": "+590"}, 200),
])
def test_signature_version3_required(user_caller: Caller, state: ServerState, params: dict[str, str],
                                     status: int) -> None:
    state.config = replace(state.config, signature_v3_required=True, signature_expires_window_seconds=600)
    if params.get("expires", "").lstrip("+-").isdigit():
        params = {**params, "expires": expires_in(float(params["expires"]))}
    got, body = user_caller.call("listZones", **params)
    assert got == status, body
    if status == 401:
        assert body["errortext"] == errors.CREDENTIALS_TEXT


def test_over_plain_http_the_session_cookies_are_not_secure(admin: Caller, user_caller: Caller) -> None:
    """A browser would not send a ``Secure`` cookie back over HTTP: the flag is set only when the
    server itself serves HTTPS (``tests/integration/server/test_server_tls.py``)."""
    resp = admin.http.post("/client/api", data={"command": "login", "username": "alice", "password": PASSWORD,
                                                "response": "json"})
    cookies = resp.headers.get_list("set-cookie")
    assert len(cookies) == 2 and not any("secure" in c.lower() for c in cookies), cookies


# --- sessions' last_seen ---------------------------------------------------------------------------

def test_a_session_call_runs_its_command_outside_the_touch_of_last_seen(
        admin: Caller, user_caller: Caller, state: ServerState, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session's call writes last_seen in its own transaction (and only once it is stale): the web
    UI's first deploy for a new account takes the account's number from ``db.sequences`` on another
    connection, which waited out SQLite's write lock on its own request (a 530) before."""
    from hvcloud.server.api.registry import REGISTRY
    from hvcloud.server.db.models import LoginSession

    key = login(admin.http, "alice", PASSWORD)[1]["sessionkey"]
    with state.sessions.begin() as db:
        row = db.scalar(select(LoginSession).where(LoginSession.key_hash == auth._key_hash(key)))
        assert row is not None
        row.last_seen -= timedelta(minutes=2)
        stale = row.last_seen
    taken: list[int] = []
    original = REGISTRY.get("listZones")
    assert original is not None

    def handler(ctx: Any, args: Any) -> Any:
        ctx.db.scalar(select(User).limit(1))  # a query first (it flushes what the session has pending)
        taken.append(ctx.state.sequences.next("account"))  # another connection's write
        return original.handler(ctx, args)

    monkeypatch.setitem(REGISTRY._commands, "listZones", replace(original, handler=handler))
    monkeypatch.setattr("hvcloud.server.db.engine.SQLITE_BUSY_SECONDS", 1.0)
    assert session_works(admin.http, key)
    assert len(taken) == 1
    with state.sessions() as db:
        touched = db.scalar(select(LoginSession.last_seen).where(LoginSession.key_hash == auth._key_hash(key)))
    assert touched is not None and touched > stale
    # fresh: the next call does not write it again
    assert session_works(admin.http, key)
    with state.sessions() as db:
        assert db.scalar(select(LoginSession.last_seen).where(LoginSession.key_hash == auth._key_hash(key))) == touched
