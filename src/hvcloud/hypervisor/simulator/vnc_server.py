"""Real (small) VNC servers for simulated VMs: RFB 3.8 (3.3 and 3.7 too) serving a still screen.

One :class:`VncHub` per process runs one asyncio loop on one daemon thread, however many simulated
hosts and VMs it serves, and it starts nothing until the first console is opened: thousands of
simulated hosts cost nothing until someone asks for a console. Each open console is a listening
socket on its host's address with a port from the OS.

What a client gets: security type 2 (VNC authentication against the VM's password, checked with
:func:`hvcloud.vnc_auth.vnc_auth_response`) or 1 (None) when the VM has no password; ServerInit with
32 bpp true colour; Raw rectangles. A non-incremental FramebufferUpdateRequest gets the whole frame
at once; an incremental one (the screen never changes) is answered after ``update_interval`` seconds
since the previous update, with the whole frame every ``refresh_interval`` seconds and an empty
update otherwise, so a client that asks in a loop is paced, not served as fast as it can ask.
SetPixelFormat is honoured for 32 bpp true colour with 8-bit channels in any byte order and refused
(the client is closed) otherwise; SetEncodings, KeyEvent and PointerEvent are read and counted;
ClientCutText up to ``max_cut_text`` bytes. Anything else (an unknown message, a garbage version,
oversized cut text, a silent client during the handshake) closes that client only.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from PIL import Image

from hvcloud import logs
from hvcloud.hypervisor.driver import DriverError
from hvcloud.hypervisor.simulator.screen import Frame
from hvcloud.vnc_auth import CHALLENGE_BYTES, vnc_auth_response

log = logs.get(__name__)
T = TypeVar("T")

#: ServerInit's pixel format: 32 bpp, depth 24, little-endian, true colour, 8-bit channels with red
#: at bit 16, green at 8, blue at 0 (the layout of :attr:`Frame.pixels`)
SERVER_PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
_VERSIONS = {b"RFB 003.003\n": 3, b"RFB 003.007\n": 7, b"RFB 003.008\n": 8}
_VERSION_SHAPE = re.compile(rb"RFB \d{3}\.\d{3}\n")
SEC_NONE, SEC_VNC = 1, 2
MSG_SET_PIXEL_FORMAT, MSG_SET_ENCODINGS, MSG_UPDATE_REQUEST = 0, 2, 3
MSG_KEY, MSG_POINTER, MSG_CUT_TEXT = 4, 5, 6
MAX_ENCODINGS = 256


class ClientError(Exception):
    """The client broke the protocol: it is closed (and only it)."""


@dataclass
class HubStats:
    """Counters for tests and benches (the hub's loop thread writes them)."""

    connections: int = 0
    authenticated: int = 0
    auth_failures: int = 0
    protocol_errors: int = 0
    full_updates: int = 0
    empty_updates: int = 0
    key_events: int = 0
    pointer_events: int = 0
    closed: int = 0


@dataclass
class _Console:
    host: str
    password: str | None
    frame: Frame
    server: asyncio.Server
    port: int
    clients: set[asyncio.StreamWriter] = field(default_factory=set)
    #: the frame's pixels in each client byte order asked for, by layout (see _layout)
    encoded: dict[str, bytes] = field(default_factory=dict)


def _layout(pf: bytes) -> str:
    """The byte order of a 32 bpp, 8-bit-channel true-colour pixel format as four letters from R, G,
    B and X (the bytes on the wire, first to last); ClientError for any other format."""
    bpp, depth, big_endian, true_colour, rmax, gmax, bmax, rs, gs, bs = struct.unpack(">BBBBHHHBBB3x", pf)
    if bpp != 32 or not true_colour or (rmax, gmax, bmax) != (255, 255, 255) or depth not in (24, 32):
        raise ClientError(f"unsupported pixel format: {bpp} bpp, depth {depth}, true colour {true_colour}, "
                          f"max {rmax}/{gmax}/{bmax}")
    shifts = {rs: "R", gs: "G", bs: "B"}
    if len(shifts) != 3 or any(s not in (0, 8, 16, 24) for s in shifts):
        raise ClientError(f"unsupported channel shifts {rs}/{gs}/{bs}")
    order = "".join(shifts.get(8 * i, "X") for i in range(4))  # least significant byte first
    return order[::-1] if big_endian else order


def _encode(frame: Frame, layout: str) -> bytes:
    if layout == "BGRX":
        return frame.pixels
    image = Image.frombytes("RGB", (frame.width, frame.height), frame.pixels, "raw", "BGRX")
    bands = dict(zip("RGB", image.split(), strict=True))
    zero = Image.new("L", image.size, 0)
    return Image.merge("RGBA", [bands.get(c, zero) for c in layout]).tobytes()


class VncHub:
    """The VNC consoles of every simulated VM of a process, on one event loop thread."""

    def __init__(self, *, update_interval: float = 0.2, refresh_interval: float = 5.0,
                 handshake_timeout: float = 10.0, max_cut_text: int = 64 * 1024,
                 max_clients: int = 16) -> None:
        self.update_interval = update_interval
        self.refresh_interval = refresh_interval
        self.handshake_timeout = handshake_timeout
        self.max_cut_text = max_cut_text
        self.max_clients = max_clients
        self.stats = HubStats()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._consoles: dict[str, _Console] = {}

    # ---------------------------------------------------------------- from any thread

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="simulated-vnc", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def open(self, key: str, host: str, password: str | None, frame: Callable[[], Frame]) -> int:
        """Listen for the console ``key`` (unique in the process: host and VM) on ``host`` and
        return its port; an open console keeps its port (and takes the new password). ``frame`` is
        called once, when the console is first opened. DriverError if ``host`` cannot be bound."""
        with self._lock:
            current = self._consoles.get(key)
            if current is not None:
                current.password = password
                return current.port
        return self._call(self._open(key, host, password, frame))

    def close(self, key: str) -> None:
        """Stop listening for console ``key`` and drop its clients; an unknown key is no error."""
        with self._lock:
            if key not in self._consoles or self._loop is None:
                return
        self._call(self._close(key))

    def port(self, key: str) -> int | None:
        with self._lock:
            console = self._consoles.get(key)
            return console.port if console else None

    def open_consoles(self) -> list[str]:
        with self._lock:
            return sorted(self._consoles)

    def clients(self, key: str) -> int:
        with self._lock:
            console = self._consoles.get(key)
            return len(console.clients) if console else 0

    def shutdown(self) -> None:
        """Close every console and stop the loop thread (tests; a process's hub lives with it)."""
        with self._lock:
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        for key in self.open_consoles():
            self.close(key)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        with self._lock:
            self._loop = self._thread = None

    # ---------------------------------------------------------------- on the loop

    async def _open(self, key: str, host: str, password: str | None, frame: Callable[[], Frame]) -> int:
        with self._lock:
            current = self._consoles.get(key)
        if current is not None:
            return current.port
        picture = frame()
        holder: list[_Console] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(holder[0], reader, writer)

        try:
            server = await asyncio.start_server(serve, host=host, port=0, reuse_address=True,
                                                family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:
            raise DriverError(f"cannot open a console listener on {host}: {exc.strerror or exc}") from None
        port = int(server.sockets[0].getsockname()[1])
        console = _Console(host=host, password=password, frame=picture, server=server, port=port)
        holder.append(console)
        with self._lock:
            self._consoles[key] = console
        log.info("simulator.console_opened", console=key, host=host, port=port)
        return port

    async def _close(self, key: str) -> None:
        with self._lock:
            console = self._consoles.pop(key, None)
        if console is None:
            return
        console.server.close()
        for writer in list(console.clients):
            writer.close()
        await console.server.wait_closed()
        log.info("simulator.console_closed", console=key, port=console.port)

    async def _serve(self, console: _Console, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if len(console.clients) >= self.max_clients:
            self.stats.protocol_errors += 1
            writer.close()
            return
        console.clients.add(writer)
        try:
            layout = await asyncio.wait_for(self._handshake(console, reader, writer), self.handshake_timeout)
            if layout is not None:
                await self._messages(console, reader, writer, layout)
        except ClientError as exc:
            self.stats.protocol_errors += 1
            log.info("simulator.console_client_refused", port=console.port, reason=str(exc))
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            console.clients.discard(writer)
            self.stats.closed += 1
            writer.close()

    async def _handshake(self, console: _Console, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> str | None:
        """Version, security and init; the client's byte layout, or None when auth failed."""
        writer.write(b"RFB 003.008\n")
        await writer.drain()
        raw = await reader.readexactly(12)
        version = _VERSIONS.get(raw)
        if version is None:
            shape = "a version we do not speak" if _VERSION_SHAPE.fullmatch(raw) else "not an RFB version"
            raise ClientError(f"client version {raw!r}: {shape}")
        kind = SEC_VNC if console.password else SEC_NONE
        if version == 3:
            writer.write(struct.pack(">I", kind))
        else:
            writer.write(bytes([1, kind]))
            await writer.drain()
            chosen = (await reader.readexactly(1))[0]
            if chosen != kind:
                if version == 8:
                    self._fail(writer, "security type not offered")
                raise ClientError(f"client chose security type {chosen}, offered {kind}")
        if kind == SEC_VNC:
            challenge = os.urandom(CHALLENGE_BYTES)
            writer.write(challenge)
            await writer.drain()
            answer = await reader.readexactly(CHALLENGE_BYTES)
            expected = vnc_auth_response(console.password or "", challenge)
            if not hmac.compare_digest(answer, expected):
                self.stats.auth_failures += 1
                if version == 8:
                    self._fail(writer, "authentication failed")
                else:
                    writer.write(struct.pack(">I", 1))
                await writer.drain()
                return None
            writer.write(struct.pack(">I", 0))
        elif version == 8:
            writer.write(struct.pack(">I", 0))
        await reader.readexactly(1)  # ClientInit: shared or not, all clients share one still screen
        title = console.frame.title.encode()
        writer.write(struct.pack(">HH", console.frame.width, console.frame.height) + SERVER_PIXEL_FORMAT
                     + struct.pack(">I", len(title)) + title)
        await writer.drain()
        self.stats.authenticated += 1
        return "BGRX"

    @staticmethod
    def _fail(writer: asyncio.StreamWriter, reason: str) -> None:
        text = reason.encode()
        writer.write(struct.pack(">II", 1, len(text)) + text)

    async def _messages(self, console: _Console, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        layout: str) -> None:
        last_update = last_full = time.monotonic()
        pending = False  # an incremental request is waiting for its turn
        while True:
            if pending:
                due = last_update + self.update_interval
                try:
                    head = await asyncio.wait_for(reader.readexactly(1), max(0.0, due - time.monotonic()))
                except TimeoutError:
                    now = time.monotonic()
                    full = now - last_full >= self.refresh_interval
                    await self._update(console, writer, layout, full)
                    last_update, pending = now, False
                    if full:
                        last_full = now
                    continue
            else:
                head = await reader.readexactly(1)
            kind = head[0]
            if kind == MSG_SET_PIXEL_FORMAT:
                body = await reader.readexactly(19)
                layout = _layout(body[3:])
            elif kind == MSG_SET_ENCODINGS:
                _pad, count = struct.unpack(">BH", await reader.readexactly(3))
                if count > MAX_ENCODINGS:
                    raise ClientError(f"{count} encodings")
                await reader.readexactly(4 * count)
            elif kind == MSG_UPDATE_REQUEST:
                incremental, _x, _y, _w, _h = struct.unpack(">BHHHH", await reader.readexactly(9))
                if incremental:
                    pending = True
                else:
                    await self._update(console, writer, layout, True)
                    last_update = last_full = time.monotonic()
                    pending = False
            elif kind == MSG_KEY:
                await reader.readexactly(7)
                self.stats.key_events += 1
            elif kind == MSG_POINTER:
                await reader.readexactly(5)
                self.stats.pointer_events += 1
            elif kind == MSG_CUT_TEXT:
                (length,) = struct.unpack(">3xI", await reader.readexactly(7))
                if length > self.max_cut_text:
                    raise ClientError(f"cut text of {length} bytes (at most {self.max_cut_text})")
                await reader.readexactly(length)
            else:
                raise ClientError(f"unknown message type {kind}")

    async def _update(self, console: _Console, writer: asyncio.StreamWriter, layout: str, full: bool) -> None:
        if not full:
            writer.write(struct.pack(">BxH", 0, 0))
            self.stats.empty_updates += 1
        else:
            pixels = console.encoded.get(layout)
            if pixels is None:
                pixels = console.encoded[layout] = _encode(console.frame, layout)
            f = console.frame
            writer.write(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, f.width, f.height, 0))
            writer.write(pixels)
            self.stats.full_updates += 1
        await writer.drain()


_shared: VncHub | None = None
_shared_lock = threading.Lock()


def shared_hub() -> VncHub:
    """The process's hub (created, not started, on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = VncHub()
        return _shared
