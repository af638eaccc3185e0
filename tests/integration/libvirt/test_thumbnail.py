"""A booted test guest's screen through the libvirt driver (virDomainScreenshot on QEMU/TCG): a PNG
of the requested size showing the box the guest writes on its VGA console at boot."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from hvcloud.hypervisor.driver import InvalidVmState, NicSpec
from hvcloud.storage import guest_image
from tests.support.guest_vm import guest_on_driver
from tests.support.wait import wait_for

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("libvirt_ok")]

BOOT_TIMEOUT = 180.0
#: VGA text mode as QEMU renders it: 80x25 cells of 9x16 pixels
TEXT_COLUMNS, TEXT_ROWS = 80, 25


def _light(pixel: tuple[int, int, int]) -> bool:
    return sum(pixel) >= 3 * 128


def box_shows(png: bytes) -> tuple[float, float] | None:
    """(light share inside the box's region, light share below it) when the guest's box is on
    the screen: the box region (its rows, its columns) mostly lit by ``#`` and text, the cleared
    screen below it dark; None otherwise."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    box_w = w * guest_image.CONSOLE_BOX_COLUMNS // TEXT_COLUMNS
    box_h = h * guest_image.CONSOLE_BOX_ROWS // TEXT_ROWS
    inside = [_light(image.getpixel((x, y))) for x in range(0, box_w, 2) for y in range(0, box_h, 2)]
    below = [_light(image.getpixel((x, y))) for x in range(0, w, 2) for y in range(box_h + 8, h, 2)]
    share_in, share_below = sum(inside) / len(inside), sum(below) / max(1, len(below))
    return (share_in, share_below) if share_in > 0.08 and share_below < 0.01 else None


def test_a_booted_guest_shows_its_console_line(tmp_path: Path, guest: guest_image.GuestImage, bridge: str,
                                                vm_prefix: str) -> None:
    name = vm_prefix + "screen"
    nic = NicSpec(device_id=0, mac="02:00:11:22:33:66", network=bridge)
    with guest_on_driver(tmp_path, guest, nic, name) as (driver, log):
        wait_for("the guest's boot marker",
                 lambda: log.exists() and guest_image.BOOT_MARKER in log.read_text(errors="replace"),
                 BOOT_TIMEOUT, interval=0.5)
        shares = wait_for("the console box on the screen", lambda: box_shows(driver.screenshot(name, 640, 480).png),
                          60, interval=0.5)
        assert shares[0] > 0.08
        thumb = driver.screenshot(name, 640, 480)
        image = Image.open(io.BytesIO(thumb.png))
        assert image.format == "PNG" and image.size == (thumb.width, thumb.height)
        # QEMU's text screen is 720x400: fitted into 640x480 it keeps its 9:5 aspect
        assert (thumb.width, thumb.height) == (640, 356)
        assert len(set(image.convert("RGB").getdata())) > 1  # not one flat colour
        small = driver.screenshot(name, 160, 160)
        assert (small.width, small.height) == (160, 89)
        assert Image.open(io.BytesIO(small.png)).size == (160, 89)
        driver.stop_vm(name, timeout=0, force=True)
        with pytest.raises(InvalidVmState):
            driver.screenshot(name, 640, 480)
