"""The RFB (VNC) handshakes the proxy does on both sides of a console.

Toward the VM's VNC server the proxy is the client: it agrees a version (3.8, or 3.7/3.3 for older
servers), answers VNC authentication with the grant's password and checks the SecurityResult.
Toward the browser it is a server offering security type None only, so the VNC password never
reaches the browser. After both handshakes it forwards the browser's ClientInit to the VNC server,
and from then on relays bytes both ways unchanged (the server's ServerInit first).
"""

from __future__ import annotations

import asyncio
import re
import struct
from typing import Protocol

from hvcloud.vnc_auth import CHALLENGE_BYTES, vnc_auth_response

HOST_DOWN = "the VM's host does not answer"
AUTH_FAILED = "VNC authentication failed"
NOT_VNC = "not a VNC server"
VNC_CLOSED = "the VNC server closed the connection"
NO_SECURITY_TYPE = "the VNC server offers no security type the proxy supports"
BAD_CLIENT = "the client broke the RFB handshake"

SEC_INVALID, SEC_NONE, SEC_VNC = 0, 1, 2
PROXY_VERSION = b"RFB 003.008\n"
_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")
#: reason strings longer than this are cut (a hostile server could announce 4 GiB)
MAX_REASON_BYTES = 1024
Version = tuple[int, int]


class RfbError(Exception):
    """A handshake that failed; ``reason`` is short and safe to show the client and the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ByteStream(Protocol):
    """Both ends of a console look like this to the handshakes."""

    async def readexactly(self, n: int) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


class TcpStream:
    """A ``ByteStream`` over an asyncio TCP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def readexactly(self, n: int) -> bytes:
        return await self.reader.readexactly(n)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


def parse_version(data: bytes) -> Version:
    """The version of a ProtocolVersion message, as the one this side should speak: 3.8 for 3.8 and
    later, 3.7, and 3.3 for anything else (what RFB asks of unknown 3.x versions)."""
    match = _VERSION.fullmatch(data)
    if match is None:
        raise ValueError("not an RFB version")
    major, minor = int(match.group(1)), int(match.group(2))
    if major < 3:
        raise ValueError("RFB before 3.3")
    if (major, minor) >= (3, 8):
        return (3, 8)
    if (major, minor) == (3, 7):
        return (3, 7)
    return (3, 3)


async def _reason(stream: ByteStream) -> str:
    (length,) = struct.unpack(">I", await stream.readexactly(4))
    text = await stream.readexactly(min(length, MAX_REASON_BYTES))
    return text.decode("utf-8", "replace")


# -- the VNC server's side ---------------------------------------------------------------------------
async def connect_vnc(host: str, port: int, password: str | None, connect_seconds: float) -> TcpStream:
    """A TCP connection to ``host:port`` past the RFB security handshake (ClientInit not yet sent);
    raises :class:`RfbError` with a short reason."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_seconds)
    except (OSError, TimeoutError):
        raise RfbError(HOST_DOWN) from None
    stream = TcpStream(reader, writer)
    try:
        await asyncio.wait_for(server_handshake(stream, password), connect_seconds)
    except TimeoutError:
        stream.close()
        raise RfbError(NOT_VNC) from None
    except (asyncio.IncompleteReadError, ConnectionError):
        stream.close()
        raise RfbError(VNC_CLOSED) from None
    except RfbError:
        stream.close()
        raise
    return stream


async def server_handshake(stream: ByteStream, password: str | None) -> Version:
    """The client side of RFB up to (not including) ClientInit."""
    try:
        version = parse_version(await stream.readexactly(12))
    except ValueError:
        raise RfbError(NOT_VNC) from None
    await stream.write(b"RFB 003.%03d\n" % version[1])
    if version == (3, 3):
        (sec,) = struct.unpack(">I", await stream.readexactly(4))
        if sec == SEC_INVALID:
            await _reason(stream)
            raise RfbError(NO_SECURITY_TYPE)
        if sec not in (SEC_NONE, SEC_VNC):
            raise RfbError(NO_SECURITY_TYPE)
    else:
        (count,) = await stream.readexactly(1)
        if count == 0:
            await _reason(stream)
            raise RfbError(NO_SECURITY_TYPE)
        offered = set(await stream.readexactly(count))
        if password is not None and SEC_VNC in offered:
            sec = SEC_VNC
        elif SEC_NONE in offered:
            sec = SEC_NONE
        elif SEC_VNC in offered:
            raise RfbError(AUTH_FAILED)  # it wants a password and the grant has none
        else:
            raise RfbError(NO_SECURITY_TYPE)
        await stream.write(bytes([sec]))
    if sec == SEC_VNC:
        if password is None:
            raise RfbError(AUTH_FAILED)
        challenge = await stream.readexactly(CHALLENGE_BYTES)
        await stream.write(vnc_auth_response(password, challenge))
    if sec == SEC_VNC or version == (3, 8):
        (result,) = struct.unpack(">I", await stream.readexactly(4))
        if result != 0:
            raise RfbError(AUTH_FAILED)
    return version


# -- the browser's side ------------------------------------------------------------------------------
async def client_version(stream: ByteStream) -> Version:
    """Send the proxy's ProtocolVersion and read the client's."""
    await stream.write(PROXY_VERSION)
    try:
        return parse_version(await stream.readexactly(12))
    except ValueError:
        raise RfbError(BAD_CLIENT) from None


async def client_refuse(stream: ByteStream, version: Version, reason: str) -> None:
    """Fail the client's security handshake with ``reason`` (noVNC shows it: ``securityfailure``)."""
    text = reason.encode()[:MAX_REASON_BYTES]
    head = struct.pack(">I", SEC_INVALID) if version == (3, 3) else bytes([0])
    await stream.write(head + struct.pack(">I", len(text)) + text)


async def client_accept(stream: ByteStream, version: Version) -> bytes:
    """Offer security type None, take the client's choice, and return its ClientInit message."""
    if version == (3, 3):
        await stream.write(struct.pack(">I", SEC_NONE))
    else:
        await stream.write(bytes([1, SEC_NONE]))
        (choice,) = await stream.readexactly(1)
        if choice != SEC_NONE:
            raise RfbError(BAD_CLIENT)
        if version == (3, 8):
            await stream.write(struct.pack(">I", 0))
    return await stream.readexactly(1)
