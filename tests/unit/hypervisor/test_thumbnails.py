"""Thumbnails: RGB565 widening, fitting a box with the aspect kept, decoding hostile bytes, and the
simulator's drawn screen."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hvcloud.host_errors import InvalidRequest
from hvcloud.hosttypes import THUMBNAIL_MAX_SIDE, THUMBNAIL_MIN_SIDE
from hvcloud.hypervisor import thumbnails
from hvcloud.hypervisor.driver import DriverError, InvalidVmState, VmSpec
from hvcloud.hypervisor.hyperv import rgb565
from hvcloud.hypervisor.simulator import screen
from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatorDriver


def test_every_rgb565_value_widens_by_bit_replication() -> None:
    values = list(range(65536))
    data = struct.pack(f"<{len(values)}H", *values)
    image = rgb565.to_image(data, 256, 256)
    pixels = image.tobytes()
    for v in values:
        r5, g6, b5 = v >> 11, (v >> 5) & 63, v & 31
        expected = bytes([(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)])
        assert pixels[3 * v:3 * v + 3] == expected, hex(v)


def test_rgb565_pure_colours_and_row_order() -> None:
    # 2x2: red, green / blue, white (top row first)
    data = struct.pack("<4H", 0xF800, 0x07E0, 0x001F, 0xFFFF)
    image = rgb565.to_image(data, 2, 2)
    assert [image.getpixel(p) for p in ((0, 0), (1, 0), (0, 1), (1, 1))] == \
        [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]


@pytest.mark.parametrize("data,w,h", [(b"\x00" * 7, 2, 2), (b"\x00" * 9, 2, 2), (b"", 0, 0), (b"\x00\x00", 1, -1)])
def test_rgb565_refuses_a_length_that_does_not_match(data: bytes, w: int, h: int) -> None:
    with pytest.raises(ValueError):
        rgb565.to_image(data, w, h)


@given(st.integers(1, 4000), st.integers(1, 4000), st.integers(THUMBNAIL_MIN_SIDE, THUMBNAIL_MAX_SIDE),
       st.integers(THUMBNAIL_MIN_SIDE, THUMBNAIL_MAX_SIDE))
def test_fit_stays_in_the_box_touches_it_and_keeps_the_aspect(sw: int, sh: int, w: int, h: int) -> None:
    fw, fh = thumbnails.fit(sw, sh, w, h)
    assert 1 <= fw <= w and 1 <= fh <= h
    assert fw == w or fh == h
    # the aspect within rounding: one pixel on the shorter side
    assert abs(fw * sh - fh * sw) <= max(sw, sh)


def test_to_thumbnail_scales_down_and_up() -> None:
    image = screen.draw("i-2-17-VM", "Running")
    small = thumbnails.to_thumbnail(image, 160, 160)
    assert (small.width, small.height) == (160, 120)
    assert Image.open(io.BytesIO(small.png)).size == (160, 120)
    big = thumbnails.to_thumbnail(image, 1920, 1080)
    assert (big.width, big.height) == (1440, 1080)
    with Image.open(io.BytesIO(big.png)) as decoded:
        assert decoded.format == "PNG" and decoded.size == (1440, 1080)


@pytest.mark.parametrize("w,h", [(0, 100), (100, 15), (THUMBNAIL_MAX_SIDE + 1, 100), (100, -3)])
def test_sizes_out_of_bounds_are_refused(w: int, h: int) -> None:
    with pytest.raises(InvalidRequest):
        thumbnails.to_thumbnail(Image.new("RGB", (10, 10)), w, h)


@pytest.mark.parametrize("data", [
    b"",
    b"P6\n",                                       # a PPM header cut short
    b"P6\n640 480\n255\n" + b"\x00" * 100,         # pixels cut short
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,           # a broken PNG
    b"P6\n60000 60000\n255\n",                     # a screen larger than any host decodes
    b"<html>no</html>",
])
def test_decode_refuses_what_is_not_a_sane_screen(data: bytes) -> None:
    with pytest.raises(DriverError):
        thumbnails.decode(data)


def test_decode_reads_a_ppm_as_qemu_writes_it() -> None:
    ppm = b"P6\n4 2\n255\n" + bytes([255, 0, 0]) * 4 + bytes([0, 0, 255]) * 4
    image = thumbnails.decode(ppm)
    assert image.size == (4, 2) and image.getpixel((0, 0)) == (255, 0, 0) and image.getpixel((3, 1)) == (0, 0, 255)


def test_simulator_screenshot_is_the_drawn_screen(tmp_path: Path) -> None:
    drv = SimulatorDriver(tmp_path, HostProfile(address="127.0.0.1"), fsync=False)
    drv.define_vm(VmSpec(name="i-2-17-VM", vcpus=1, memory_mib=64))
    with pytest.raises(InvalidVmState):
        drv.screenshot("i-2-17-VM", 320, 240)
    drv.start_vm("i-2-17-VM")
    thumb = drv.screenshot("i-2-17-VM", 320, 200)
    assert (thumb.width, thumb.height) == (267, 200)
    image = Image.open(io.BytesIO(thumb.png)).convert("RGB")
    assert image.size == (267, 200)
    assert len(set(image.getdata())) > 16  # text and colours, not a flat screen
    assert drv.screenshot("i-2-17-VM", 320, 200).png == thumb.png  # deterministic per VM
    drv.define_vm(VmSpec(name="i-2-18-VM", vcpus=1, memory_mib=64))
    drv.start_vm("i-2-18-VM")
    assert drv.screenshot("i-2-18-VM", 320, 200).png != thumb.png
    with pytest.raises(InvalidRequest):
        drv.screenshot("i-2-17-VM", 5000, 200)
