"""CloudStack's password server protocol: the state machine, in memory and on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcloud.router.passwords import (
    BAD_REQUEST,
    SAVED_PASSWORD,
    SEND_MY_PASSWORD,
    FilePasswords,
    MemoryPasswords,
    PasswordStore,
    answer,
)


@pytest.fixture(params=["memory", "files"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PasswordStore:
    return MemoryPasswords() if request.param == "memory" else FilePasswords(tmp_path / "pw")


def test_password_is_handed_until_confirmed_then_never_again(store: PasswordStore) -> None:
    ip = "10.1.1.10"
    assert answer(store, ip, SEND_MY_PASSWORD) == SAVED_PASSWORD
    store.save(ip, "p4ss")
    assert answer(store, "10.1.1.11", SEND_MY_PASSWORD) == SAVED_PASSWORD
    assert answer(store, ip, SEND_MY_PASSWORD) == "p4ss"
    assert answer(store, ip, SEND_MY_PASSWORD) == "p4ss"
    assert answer(store, ip, SAVED_PASSWORD) == SAVED_PASSWORD
    assert answer(store, ip, SEND_MY_PASSWORD) == SAVED_PASSWORD
    store.save(ip, "n3w")
    assert answer(store, ip, SEND_MY_PASSWORD) == "n3w"


@pytest.mark.parametrize("request_", [None, "", "send_my_password ", "SEND_MY_PASSWORD", "x" * 10000, "saved"])
def test_anything_else_is_a_bad_request(store: PasswordStore, request_: str | None) -> None:
    store.save("10.1.1.10", "p4ss")
    assert answer(store, "10.1.1.10", request_) == BAD_REQUEST
    assert store.pending("10.1.1.10") == "p4ss"


def test_confirmation_before_any_password_is_harmless(store: PasswordStore) -> None:
    assert answer(store, "10.1.1.10", SAVED_PASSWORD) == SAVED_PASSWORD
    store.save("10.1.1.10", "p4ss")
    assert answer(store, "10.1.1.10", SEND_MY_PASSWORD) == "p4ss"


def test_files_survive_a_restart_and_forget_a_delivered_password(tmp_path: Path) -> None:
    FilePasswords(tmp_path).save("10.1.1.10", "p4ss")
    assert FilePasswords(tmp_path).pending("10.1.1.10") == "p4ss"
    assert (tmp_path / "10.1.1.10.json").stat().st_mode & 0o077 == 0
    FilePasswords(tmp_path).delivered("10.1.1.10")
    assert "p4ss" not in (tmp_path / "10.1.1.10.json").read_text()
    assert FilePasswords(tmp_path).pending("10.1.1.10") is None
    (tmp_path / "10.1.1.11.json").write_text("{not json")
    assert FilePasswords(tmp_path).pending("10.1.1.11") is None
