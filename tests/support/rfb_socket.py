"""A minimal blocking RFB (VNC) client over a plain socket, for tests of VNC servers."""

from __future__ import annotations

import socket
import struct

from hvcloud.vnc_auth import vnc_auth_response


class Rfb:
    """A minimal blocking RFB client."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)

    def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError(f"closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def closed(self) -> bool:
        """True when the server has closed the connection (reads to EOF)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True

    def version(self, mine: bytes = b"RFB 003.008\n") -> None:
        assert self.read(12) == b"RFB 003.008\n"
        self.sock.sendall(mine)

    def login(self, password: str) -> int:
        """3.8 security with VNC auth; the SecurityResult."""
        self.version()
        count = self.read(1)[0]
        assert list(self.read(count)) == [2]
        self.sock.sendall(b"\x02")
        challenge = self.read(16)
        self.sock.sendall(vnc_auth_response(password, challenge))
        (result,) = struct.unpack(">I", self.read(4))
        return int(result)

    def init(self) -> tuple[int, int, bytes, str]:
        self.sock.sendall(b"\x01")
        width, height = struct.unpack(">HH", self.read(4))
        pf = self.read(16)
        (n,) = struct.unpack(">I", self.read(4))
        return width, height, pf, self.read(n).decode()

    def request(self, incremental: bool, width: int = 640, height: int = 480) -> None:
        self.sock.sendall(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, width, height))

    def update(self) -> list[tuple[int, int, int, int, bytes]]:
        kind, _pad, count = struct.unpack(">BBH", self.read(4))
        assert kind == 0
        rects = []
        for _ in range(count):
            x, y, w, h, enc = struct.unpack(">HHHHi", self.read(12))
            assert enc == 0
            rects.append((x, y, w, h, self.read(w * h * 4)))
        return rects

    def close(self) -> None:
        self.sock.close()
