"""The simulated VNC server under hostile bytes: whatever a client sends (before or after the
handshake), the server answers only that client or closes it, and keeps serving the others."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvcloud.hypervisor.driver import VmSpec
from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatorDriver
from hvcloud.hypervisor.simulator.vnc_server import VncHub
from hvcloud.vnc_auth import vnc_auth_response

NAME, PASSWORD = "i-2-17-VM", "fuzz-pw"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VncHub, int]]:
    hub = VncHub(update_interval=0.01, refresh_interval=0.05, handshake_timeout=2.0, max_cut_text=4096)
    drv = SimulatorDriver(Path(tmp_path_factory.mktemp("vnc")), HostProfile(address="127.0.0.1"), fsync=False,
                          vnc=hub)
    drv.define_vm(VmSpec(name=NAME, vcpus=1, memory_mib=64, vnc_password=PASSWORD))
    drv.start_vm(NAME)
    yield hub, drv.console(NAME).port
    drv.close()
    hub.shutdown()


def _read(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def _logged_in(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    _read(s, 12)
    s.sendall(b"RFB 003.008\n")
    _read(s, 2)
    s.sendall(b"\x02")
    s.sendall(vnc_auth_response(PASSWORD, _read(s, 16)))
    assert _read(s, 4) == b"\x00\x00\x00\x00"
    s.sendall(b"\x01")
    _read(s, 20)  # ServerInit: size and pixel format, then the name
    (n,) = struct.unpack(">I", _read(s, 4))
    _read(s, n)
    return s


def _drain(sock: socket.socket) -> None:
    """Read until the server closes or goes quiet (the socket's timeout)."""
    sock.settimeout(0.3)
    try:
        while sock.recv(1 << 20):
            pass
    except (TimeoutError, ConnectionResetError):
        pass


def _still_serves(port: int) -> None:
    s = _logged_in(port)
    s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, 640, 480))
    assert _read(s, 4) == b"\x00\x00\x00\x01"
    _read(s, 12 + 640 * 480 * 4)
    s.close()


MESSAGE = st.one_of(
    st.binary(max_size=64),
    st.tuples(st.integers(0, 255), st.binary(max_size=40)).map(lambda t: bytes([t[0]]) + t[1]),
    st.tuples(st.sampled_from([0, 2, 3, 4, 5, 6]), st.binary(max_size=24)).map(lambda t: bytes([t[0]]) + t[1]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.booleans(), messages=st.lists(MESSAGE, min_size=1, max_size=6))
def test_hostile_bytes_touch_only_their_client(console: tuple[VncHub, int], before: bool,
                                               messages: list[bytes]) -> None:
    hub, port = console
    if before:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        _read(s, 12)
    else:
        s = _logged_in(port)
    try:
        for m in messages:
            s.sendall(m)
    except (BrokenPipeError, ConnectionResetError):
        pass
    _drain(s)
    s.close()
    _still_serves(port)
    assert hub.clients(f"127.0.0.1/{NAME}") <= hub.max_clients
