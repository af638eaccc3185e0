"""A small RFB client for tests and benches, over the console proxy's WebSocket or straight TCP.

``open_ws(url)`` connects to a proxy's ``/websockify`` and does the client side of the handshake
(security None, as the proxy offers); ``open_tcp(host, port, password)`` talks to a VNC server
directly (VNC authentication). Both give an :class:`RfbClient` past ServerInit: ask for updates
with :meth:`RfbClient.request_update` and read them with :meth:`RfbClient.read_update` (Raw encoding
only, so a rectangle's bytes are width x height x bytes-per-pixel). A refusal raises
:class:`ConsoleRefused` with the RFB reason and the WebSocket close code and reason.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from hvcloud.vnc_auth import vnc_auth_response

RAW_ENCODING = 0


class ConsoleRefused(Exception):
    def __init__(self, rfb_reason: str | None, close_code: int | None, close_reason: str | None) -> None:
        super().__init__(f"refused: {rfb_reason!r} (close {close_code} {close_reason!r})")
        self.rfb_reason = rfb_reason
        self.close_code = close_code
        self.close_reason = close_reason


class ConsoleClosed(Exception):
    def __init__(self, close_code: int | None, close_reason: str | None) -> None:
        super().__init__(f"closed: {close_code} {close_reason!r}")
        self.close_code = close_code
        self.close_reason = close_reason


@dataclass(frozen=True)
class ServerInit:
    width: int
    height: int
    bits_per_pixel: int
    name: str


@dataclass
class Update:
    rectangles: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    pixel_bytes: bytes = b""

    @property
    def covered(self) -> int:
        return sum(w * h for _x, _y, w, h, _e in self.rectangles)


class _WsChannel:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession) -> None:
        self.ws = ws
        self.session = session
        self.buffer = bytearray()
        self.received = 0

    async def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            msg = await self.ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY:
                self.buffer += msg.data
                self.received += len(msg.data)
            else:
                code = self.ws.close_code if msg.type is not aiohttp.WSMsgType.CLOSE else msg.data
                reason = msg.extra if msg.type is aiohttp.WSMsgType.CLOSE else None
                raise ConsoleClosed(code, reason)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class _TcpChannel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = 0

    async def read(self, n: int) -> bytes:
        try:
            data = await self.reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise ConsoleClosed(None, "connection closed") from None
        self.received += n
        return data

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()


class RfbClient:
    def __init__(self, channel: _WsChannel | _TcpChannel, init: ServerInit) -> None:
        self.channel = channel
        self.init = init

    @property
    def bytes_received(self) -> int:
        return self.channel.received

    async def request_update(self, incremental: bool = False) -> None:
        w, h = self.init.width, self.init.height
        await self.channel.write(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, w, h))

    async def read_update(self) -> Update:
        """The next FramebufferUpdate (Bell and ServerCutText messages are skipped)."""
        bpp = self.init.bits_per_pixel // 8
        while True:
            (kind,) = await self.channel.read(1)
            if kind == 2:  # Bell
                continue
            if kind == 3:  # ServerCutText
                _pad, length = struct.unpack(">3sI", await self.channel.read(7))
                await self.channel.read(length)
                continue
            if kind != 0:
                raise AssertionError(f"unexpected server message {kind}")
            _pad, count = struct.unpack(">BH", await self.channel.read(3))
            update = Update()
            chunks = []
            for _ in range(count):
                x, y, w, h, enc = struct.unpack(">HHHHi", await self.channel.read(12))
                update.rectangles.append((x, y, w, h, enc))
                if enc != RAW_ENCODING:
                    raise AssertionError(f"unexpected encoding {enc}")
                chunks.append(await self.channel.read(w * h * bpp))
            update.pixel_bytes = b"".join(chunks)
            return update

    async def close(self) -> None:
        await self.channel.close()


async def _handshake(channel: _WsChannel | _TcpChannel, password: str | None) -> ServerInit:
    version = await channel.read(12)
    if not version.startswith(b"RFB 003."):
        raise AssertionError(f"not RFB: {version!r}")
    await channel.write(b"RFB 003.008\n")
    (count,) = await channel.read(1)
    if count == 0:
        (length,) = struct.unpack(">I", await channel.read(4))
        reason = (await channel.read(length)).decode()
        raise ConsoleRefused(reason, None, None)
    types = set(await channel.read(count))
    sec = 2 if password is not None and 2 in types else 1
    if sec not in types:
        raise AssertionError(f"no usable security type in {types}")
    await channel.write(bytes([sec]))
    if sec == 2:
        assert password is not None
        await channel.write(vnc_auth_response(password, await channel.read(16)))
    (result,) = struct.unpack(">I", await channel.read(4))
    if result != 0:
        (length,) = struct.unpack(">I", await channel.read(4))
        raise ConsoleRefused((await channel.read(length)).decode(), None, None)
    await channel.write(b"\x01")  # ClientInit: shared
    width, height, pixel_format, name_len = struct.unpack(">HH16sI", await channel.read(24))
    name = (await channel.read(name_len)).decode("utf-8", "replace")
    # Raw only: every rectangle's size is known from its header
    await channel.write(struct.pack(">BBHi", 2, 0, 1, RAW_ENCODING))
    return ServerInit(width, height, pixel_format[0], name)


async def open_ws(url: str, ssl_context: ssl.SSLContext | bool | None = None,
                  headers: dict[str, str] | None = None, handshake_seconds: float = 30.0) -> RfbClient:
    """Connect to a proxy's ``/websockify?token=…`` URL; raises ConsoleRefused with both reasons."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=handshake_seconds))
    try:
        kwargs: dict[str, Any] = {"protocols": ("binary",), "max_msg_size": 0, "headers": headers or {}}
        if ssl_context is not None:
            kwargs["ssl"] = ssl_context
        ws = await session.ws_connect(url, **kwargs)
    except BaseException:
        await session.close()
        raise
    channel = _WsChannel(ws, session)
    try:
        async with asyncio.timeout(handshake_seconds):
            return RfbClient(channel, await _handshake(channel, None))
    except ConsoleRefused as exc:
        code, reason = await _close_of(channel)
        await channel.close()
        raise ConsoleRefused(exc.rfb_reason, code, reason) from None
    except ConsoleClosed as exc:
        await channel.close()
        raise ConsoleRefused(None, exc.close_code, exc.close_reason) from None
    except BaseException:
        await channel.close()
        raise


async def _close_of(channel: _WsChannel) -> tuple[int | None, str | None]:
    try:
        async with asyncio.timeout(10):
            await channel.read(1 << 30)
    except ConsoleClosed as exc:
        return exc.close_code, exc.close_reason
    except TimeoutError:
        pass
    return None, None


async def open_tcp(host: str, port: int, password: str | None, handshake_seconds: float = 30.0) -> RfbClient:
    """Straight to a VNC server (the benches' baseline)."""
    reader, writer = await asyncio.open_connection(host, port)
    channel = _TcpChannel(reader, writer)
    try:
        async with asyncio.timeout(handshake_seconds):
            return RfbClient(channel, await _handshake(channel, password))
    except BaseException:
        await channel.close()
        raise


async def first_update(url: str, ssl_context: ssl.SSLContext | bool | None = None) -> tuple[ServerInit, Update]:
    """Handshake through the proxy, ask for the whole screen, return ServerInit and the update."""
    client = await open_ws(url, ssl_context)
    try:
        await client.request_update(incremental=False)
        async with asyncio.timeout(30):
            return client.init, await client.read_update()
    finally:
        await client.close()


async def until_closed(client: RfbClient) -> ConsoleClosed:
    """Read (and drop) what the proxy sends until it closes the console (30 s at most); how it
    closed it."""
    try:
        async with asyncio.timeout(30):
            while True:
                await client.channel.read(1 << 20)
    except ConsoleClosed as exc:
        return exc
    finally:
        await client.close()
