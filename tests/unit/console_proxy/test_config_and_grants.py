"""Where the proxy's key comes from, and the checks a grant passes before any claim."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hvcloud.console_proxy import config
from hvcloud.console_proxy.app import EXTRA_MISMATCH, WRONG_PROTOCOL, check_grant
from hvcloud.console_proxy.tokens import TOKEN_PURPOSE, ConsoleGrant, TokenError, TokenSigner
from hvcloud.server.db.crypto import SecretBox

KEY = bytes(range(32))


def grant(**changes: object) -> ConsoleGrant:
    now = time.time()
    base = {"token_id": "t1", "vm_id": "v", "vm_name": "web", "account_id": "a", "protocol": "vnc",
            "host": "10.0.0.1", "port": 5901, "issued": now, "expires": now + 60}
    return ConsoleGrant(**{**base, **changes})  # type: ignore[arg-type]


def test_the_key_of_a_data_dir_is_the_servers_derived_key(tmp_path: Path) -> None:
    box = SecretBox.from_data_dir(tmp_path)
    assert config.key_from_data_dir(tmp_path) == box.derive_key(TOKEN_PURPOSE)
    with pytest.raises(ValueError, match=r"holds no secret\.key"):
        config.key_from_data_dir(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_the_db_url_of_a_data_dir(tmp_path: Path) -> None:
    assert config.db_url_from_data_dir(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'hvcloud.db'}"
    (tmp_path / "db-url").write_text("postgresql://u@db/hv\n")
    assert config.db_url_from_data_dir(tmp_path) == "postgresql://u@db/hv"


@pytest.mark.parametrize("text", ["", "zz", "00" * 31, "00" * 33, "\x00\x01"])
def test_a_bad_key_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "k"
    path.write_text(text)
    with pytest.raises(ValueError):
        config.key_from_file(path)
    path.write_text(KEY.hex() + "\n")
    assert config.key_from_file(path) == KEY


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        config.ProxyConfig(token_key=b"short", db_url="sqlite://")
    with pytest.raises(ValueError, match="go together"):
        config.ProxyConfig(token_key=KEY, db_url="sqlite://", tls_cert=Path("c"))
    with pytest.raises(ValueError):
        config.ProxyConfig(token_key=KEY, db_url="sqlite://", max_frame_bytes=10)
    cfg = config.ProxyConfig(token_key=KEY, db_url="sqlite://", listen_port=8443, public_url="https://c.example/")
    assert cfg.base_url == "https://c.example"
    with pytest.raises(ValueError, match="cannot load the TLS certificate"):
        config.ProxyConfig(token_key=KEY, db_url="sqlite://", tls_cert=Path("/nonexistent/c"),
                           tls_key=Path("/nonexistent/k")).ssl_context()
    assert config.parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("nohost", ":80", "h:99999", "h:x"):
        with pytest.raises(ValueError):
            config.parse_listen(bad)


def test_grants_are_checked_for_extra_and_protocol() -> None:
    signer = TokenSigner(KEY)
    plain = signer.mint(grant())
    assert check_grant(signer, plain, None, "vnc").token_id == "t1"
    assert check_grant(signer, plain, "anything", "vnc").token_id == "t1"
    with pytest.raises(TokenError) as caught:
        check_grant(signer, plain, None, "rdp")
    assert caught.value.reason == WRONG_PROTOCOL
    extra = signer.mint(grant(extra="e1"))
    for wrong in (None, "", "e2", "e1 "):
        with pytest.raises(TokenError) as caught:
            check_grant(signer, extra, wrong, "vnc")
        assert caught.value.reason == EXTRA_MISMATCH
    assert check_grant(signer, extra, "e1", "vnc").extra == "e1"
    with pytest.raises(TokenError):
        check_grant(TokenSigner(bytes(32)), plain, None, "vnc")
