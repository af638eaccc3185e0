"""The simulated VMs' VNC servers, through real sockets: handshake with the VM's password,
ServerInit, framebuffer updates, and hostile clients closed one by one."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.hypervisor.driver import InvalidVmState, VmSpec
from hvcloud.hypervisor.simulator import screen
from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatorDriver
from hvcloud.hypervisor.simulator.vnc_server import VncHub
from hvcloud.vnc_auth import vnc_auth_response
from tests.support.rfb_socket import Rfb
from tests.support.wait import wait_for

NAME = "i-2-17-VM"


@pytest.fixture
def hub() -> Iterator[VncHub]:
    h = VncHub(update_interval=0.05, refresh_interval=0.2, handshake_timeout=5.0, max_cut_text=1024)
    yield h
    h.shutdown()


@pytest.fixture
def driver(tmp_path: Path, hub: VncHub) -> Iterator[SimulatorDriver]:
    drv = SimulatorDriver(tmp_path, HostProfile(address="127.0.0.1"), fsync=False, vnc=hub)
    drv.define_vm(VmSpec(name=NAME, vcpus=1, memory_mib=256, vnc_password="s3cret-pw"))
    drv.start_vm(NAME)
    yield drv
    drv.close()


def test_console_opens_lazily_and_serves_the_drawn_screen(driver: SimulatorDriver, hub: VncHub) -> None:
    assert hub.open_consoles() == []  # nothing listens before a console is asked for
    ep = driver.console(NAME)
    assert (ep.protocol, ep.host, ep.password) == ("vnc", "127.0.0.1", "s3cret-pw")
    assert driver.console(NAME).port == ep.port  # one listener per VM, kept
    c = Rfb(ep.port)
    assert c.login("s3cret-pw") == 0
    width, height, pf, title = c.init()
    assert (width, height, title) == (640, 480, NAME)
    bpp, depth, big_endian, true_colour = pf[:4]
    assert (bpp, depth, big_endian, true_colour) == (32, 24, 0, 1)
    c.request(incremental=False)
    [(x, y, w, h, pixels)] = c.update()
    assert (x, y, w, h) == (0, 0, 640, 480)
    expected = screen.Frame.of(screen.draw(NAME, "Running"), NAME).pixels
    assert pixels == expected
    assert len(set(pixels[i:i + 3] for i in range(0, len(pixels), 4 * 97))) > 4  # not one flat colour
    c.close()


def test_incremental_requests_are_paced_and_the_frame_comes_again(driver: SimulatorDriver, hub: VncHub) -> None:
    c = Rfb(driver.console(NAME).port)
    assert c.login("s3cret-pw") == 0
    c.init()
    kinds = []
    for _ in range(12):
        c.request(incremental=True)
        kinds.append(len(c.update()))
    assert 0 in kinds and 1 in kinds, kinds  # empty updates, and the whole frame after refresh_interval
    c.close()


def test_pixel_format_in_another_byte_order(driver: SimulatorDriver) -> None:
    c = Rfb(driver.console(NAME).port)
    assert c.login("s3cret-pw") == 0
    c.init()
    # noVNC's format: red at bit 0, green at 8, blue at 16, little-endian
    c.sock.sendall(b"\x00\x00\x00\x00" + struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 0, 8, 16))
    c.sock.sendall(struct.pack(">BxH", 2, 2) + struct.pack(">ii", 0, -223))  # SetEncodings: Raw, DesktopSize
    c.sock.sendall(struct.pack(">BBHI", 4, 1, 0, 0x61) + struct.pack(">BBHH", 5, 0, 10, 10))
    c.sock.sendall(struct.pack(">B3xI", 6, 5) + b"hello")
    c.request(incremental=False)
    [(_x, _y, _w, _h, pixels)] = c.update()
    bgrx = screen.Frame.of(screen.draw(NAME, "Running"), NAME).pixels
    assert pixels[:4] == bytes([bgrx[2], bgrx[1], bgrx[0], 0])
    assert pixels[-4:] == bytes([bgrx[-2], bgrx[-3], bgrx[-4], 0])
    c.close()


def test_wrong_password_is_refused(driver: SimulatorDriver, hub: VncHub) -> None:
    c = Rfb(driver.console(NAME).port)
    assert c.login("wrong") == 1
    (n,) = struct.unpack(">I", c.read(4))
    assert c.read(n) == b"authentication failed"
    assert c.closed()
    assert hub.stats.auth_failures == 1


def test_no_password_offers_security_none(tmp_path: Path, hub: VncHub) -> None:
    drv = SimulatorDriver(tmp_path, HostProfile(address="127.0.0.1"), fsync=False, vnc=hub)
    drv.define_vm(VmSpec(name="i-3-1-VM", vcpus=1, memory_mib=64))
    drv.start_vm("i-3-1-VM")
    c = Rfb(drv.console("i-3-1-VM").port)
    c.version()
    assert c.read(2) == b"\x01\x01"
    c.sock.sendall(b"\x01")
    assert c.read(4) == b"\x00\x00\x00\x00"
    assert c.init()[:2] == (640, 480)
    c.close()
    drv.close()


def test_rfb_33_client(driver: SimulatorDriver) -> None:
    c = Rfb(driver.console(NAME).port)
    c.version(b"RFB 003.003\n")
    assert struct.unpack(">I", c.read(4)) == (2,)
    c.sock.sendall(vnc_auth_response("s3cret-pw", c.read(16)))
    assert c.read(4) == b"\x00\x00\x00\x00"
    assert c.init()[3] == NAME
    c.close()


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\n\r\n",                                     # not RFB at all
    b"RFB 004.000\n",                                                # a version we do not speak
])
def test_garbage_version_closes_only_that_client(driver: SimulatorDriver, hub: VncHub, garbage: bytes) -> None:
    port = driver.console(NAME).port
    good = Rfb(port)
    assert good.login("s3cret-pw") == 0
    good.init()
    bad = Rfb(port)
    bad.read(12)
    bad.sock.sendall(garbage)
    assert bad.closed()
    good.request(incremental=False)
    assert len(good.update()) == 1  # the other client is still served
    good.close()


@pytest.mark.parametrize("message", [
    b"\x09",                                                         # unknown message type
    struct.pack(">B3xI", 6, 10_000_000),                             # oversized cut text
    b"\x00\x00\x00\x00" + struct.pack(">BBBBHHHBBB3x", 16, 16, 0, 1, 31, 63, 31, 11, 5, 0),  # 16 bpp
    b"\x00\x00\x00\x00" + struct.pack(">BBBBHHHBBB3x", 8, 8, 0, 0, 0, 0, 0, 0, 0, 0),         # colour map
    struct.pack(">BxH", 2, 60000),                                   # absurd encoding count
])
def test_hostile_messages_close_only_that_client(driver: SimulatorDriver, hub: VncHub, message: bytes) -> None:
    port = driver.console(NAME).port
    good, bad = Rfb(port), Rfb(port)
    for c in (good, bad):
        assert c.login("s3cret-pw") == 0
        c.init()
    errors = hub.stats.protocol_errors
    bad.sock.sendall(message)
    assert bad.closed()
    assert hub.stats.protocol_errors == errors + 1
    good.request(incremental=False)
    assert len(good.update()) == 1
    good.close()


def test_stop_closes_the_console_and_a_stopped_vm_has_none(driver: SimulatorDriver, hub: VncHub) -> None:
    port = driver.console(NAME).port
    c = Rfb(port)
    assert c.login("s3cret-pw") == 0
    driver.stop_vm(NAME, timeout=1)
    assert hub.open_consoles() == []
    assert c.closed()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(InvalidVmState):
        driver.console(NAME)
    driver.start_vm(NAME)
    assert driver.console(NAME).port > 0
    driver.undefine_vm(NAME)
    assert hub.open_consoles() == []


def test_silent_client_is_dropped_after_the_handshake_timeout(tmp_path: Path) -> None:
    hub = VncHub(handshake_timeout=0.2)
    try:
        drv = SimulatorDriver(tmp_path, HostProfile(address="127.0.0.1"), fsync=False, vnc=hub)
        drv.define_vm(VmSpec(name=NAME, vcpus=1, memory_mib=64, vnc_password="pw"))
        drv.start_vm(NAME)
        c = Rfb(drv.console(NAME).port)
        c.read(12)  # and say nothing
        assert c.closed()
        wait_for("the hub to forget the client", lambda: hub.clients(f"127.0.0.1/{NAME}") == 0, 10)
    finally:
        hub.shutdown()


def test_many_consoles_share_one_loop(tmp_path: Path, hub: VncHub) -> None:
    import threading

    drv = SimulatorDriver(tmp_path, HostProfile(address="127.0.0.1"), fsync=False, vnc=hub)
    before = threading.active_count()
    for i in range(20):
        drv.define_vm(VmSpec(name=f"i-2-{i}-VM", vcpus=1, memory_mib=64))
        drv.start_vm(f"i-2-{i}-VM")
        drv.console(f"i-2-{i}-VM")
    assert len(hub.open_consoles()) == 20
    assert threading.active_count() <= before + 1
    drv.close()
    assert hub.open_consoles() == []
