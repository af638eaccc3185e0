"""The proxy's RFB handshakes against scripted peers: servers of each version, hostile servers,
and browsers that break the handshake. No process, no socket."""

from __future__ import annotations

import asyncio
import struct

import pytest

from hvcloud.console_proxy import rfb
from hvcloud.vnc_auth import vnc_auth_response


class Scripted:
    """A peer that has sent ``incoming`` and records what it is sent."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = bytearray(incoming)
        self.sent = bytearray()

    async def readexactly(self, n: int) -> bytes:
        if len(self.incoming) < n:
            raise asyncio.IncompleteReadError(bytes(self.incoming), n)
        data = bytes(self.incoming[:n])
        del self.incoming[:n]
        return data

    async def write(self, data: bytes) -> None:
        self.sent += data


CHALLENGE = bytes(range(16))


def run_server(incoming: bytes, password: str | None) -> tuple[rfb.Version, bytes]:
    peer = Scripted(incoming)
    version = asyncio.run(rfb.server_handshake(peer, password))
    return version, bytes(peer.sent)


def refused(incoming: bytes, password: str | None) -> str:
    with pytest.raises(rfb.RfbError) as caught:
        asyncio.run(rfb.server_handshake(Scripted(incoming), password))
    return caught.value.reason


def test_vnc_auth_on_a_38_server() -> None:
    version, sent = run_server(b"RFB 003.008\n\x02\x01\x02" + CHALLENGE + b"\0\0\0\0", "pw")
    assert version == (3, 8)
    assert sent == b"RFB 003.008\n\x02" + vnc_auth_response("pw", CHALLENGE)


def test_security_none_when_there_is_no_password() -> None:
    assert run_server(b"RFB 003.008\n\x01\x01\0\0\0\0", None) == ((3, 8), b"RFB 003.008\n\x01")
    # 3.7 sends no SecurityResult for None
    assert run_server(b"RFB 003.007\n\x01\x01", None) == ((3, 7), b"RFB 003.007\n\x01")


def test_a_33_server_chooses_and_a_newer_one_is_spoken_to_in_38() -> None:
    version, sent = run_server(b"RFB 003.003\n\0\0\0\x02" + CHALLENGE + b"\0\0\0\0", "pw")
    assert version == (3, 3) and sent.startswith(b"RFB 003.003\n")
    assert run_server(b"RFB 003.889\n\x01\x01\0\0\0\0", None)[0] == (3, 8)
    assert run_server(b"RFB 004.001\n\x01\x01\0\0\0\0", None)[0] == (3, 8)
    assert run_server(b"RFB 003.005\n\0\0\0\x01", None)[0] == (3, 3)


@pytest.mark.parametrize(("incoming", "password", "reason"), [
    (b"SSH-2.0-OpenSSH_9\r\n", "pw", rfb.NOT_VNC),
    (b"RFB 002.000\n", "pw", rfb.NOT_VNC),
    (b"RFB 003.00x\n", "pw", rfb.NOT_VNC),
    (b"RFB 003.008\n\x02\x01\x02" + CHALLENGE + b"\0\0\0\x01\0\0\0\x06failed", "pw", rfb.AUTH_FAILED),
    (b"RFB 003.008\n\x01\x02", None, rfb.AUTH_FAILED),
    (b"RFB 003.008\n\x02\x10\x13", "pw", rfb.NO_SECURITY_TYPE),
    (b"RFB 003.008\n\x00\0\0\0\x07go away", "pw", rfb.NO_SECURITY_TYPE),
    (b"RFB 003.003\n\0\0\0\x00\0\0\0\x03bad", "pw", rfb.NO_SECURITY_TYPE),
    (b"RFB 003.003\n\0\0\0\x13", "pw", rfb.NO_SECURITY_TYPE),
], ids=["ssh", "rfb-2", "garbage-version", "auth-failed", "wants-password", "unknown-types",
        "no-types", "33-failure", "33-unknown"])
def test_hostile_or_refusing_servers_give_a_short_reason(incoming: bytes, password: str | None,
                                                          reason: str) -> None:
    assert refused(incoming, password) == reason


def test_a_server_announcing_a_4_gib_reason_is_read_no_further_than_the_cap() -> None:
    peer = Scripted(b"RFB 003.008\n\x00" + struct.pack(">I", 2**32 - 1) + b"x" * (rfb.MAX_REASON_BYTES + 10))
    with pytest.raises(rfb.RfbError):
        asyncio.run(rfb.server_handshake(peer, None))
    assert len(peer.incoming) == 10


def test_a_server_that_hangs_up_mid_handshake() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(rfb.server_handshake(Scripted(b"RFB 003.008\n\x01"), None))


def test_the_browser_is_offered_none_only_and_its_client_init_returned() -> None:
    browser = Scripted(b"RFB 003.008\n\x01\x01")
    version = asyncio.run(rfb.client_version(browser))
    init = asyncio.run(rfb.client_accept(browser, version))
    assert init == b"\x01"
    assert bytes(browser.sent) == b"RFB 003.008\n" + b"\x01\x01" + b"\0\0\0\0"
    old = Scripted(b"RFB 003.003\n\x00")
    v33 = asyncio.run(rfb.client_version(old))
    assert asyncio.run(rfb.client_accept(old, v33)) == b"\x00"
    assert bytes(old.sent) == b"RFB 003.008\n\0\0\0\x01"


@pytest.mark.parametrize("incoming", [b"GET / HTTP/1.1\n", b"RFB 003.008\n\x02", b"RFB 003.008\n\x00"])
def test_a_browser_that_breaks_the_handshake(incoming: bytes) -> None:
    async def go() -> None:
        browser = Scripted(incoming)
        await rfb.client_accept(browser, await rfb.client_version(browser))

    with pytest.raises(rfb.RfbError) as caught:
        asyncio.run(go())
    assert caught.value.reason == rfb.BAD_CLIENT


def test_a_refusal_carries_its_reason_in_the_clients_version() -> None:
    for version, head in (((3, 8), b"\x00"), ((3, 3), b"\0\0\0\0")):
        browser = Scripted(b"")
        asyncio.run(rfb.client_refuse(browser, version, "expired token"))
        assert bytes(browser.sent) == head + b"\0\0\0\x0dexpired token"
