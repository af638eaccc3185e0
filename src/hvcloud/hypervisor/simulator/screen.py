"""The simulated VM's screen: a 640x480 text console drawn with Pillow, the same for the thumbnail
(``SimulatorDriver.screenshot``) and the simulated VNC server (:mod:`.vnc_server`).

The picture depends only on the VM's name, its state and the line of text, so two drivers (or two
runs) draw the same screen for the same VM: the background hue comes from the name's hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 640, 480
#: the line a simulated guest shows under its name (what the test guest writes on its VGA console)
CONSOLE_LINE = "HVCLOUD-CONSOLE"


@dataclass(frozen=True)
class Frame:
    """A screen ready for RFB: ``pixels`` are ``width * height`` 32-bit little-endian values with
    red at bit 16, green at 8 and blue at 0 (bytes B, G, R, 0), row after row from the top."""

    width: int
    height: int
    pixels: bytes
    title: str

    @classmethod
    def of(cls, image: Image.Image, title: str) -> Frame:
        return cls(image.width, image.height, image.convert("RGB").tobytes("raw", "BGRX"), title)


def _hue(name: str) -> tuple[int, int, int]:
    h = hashlib.sha256(name.encode()).digest()
    return 32 + h[0] % 96, 32 + h[1] % 96, 64 + h[2] % 128


def draw(name: str, state: str, line: str | None = None) -> Image.Image:
    """The console of VM ``name`` in ``state``: a title bar in the VM's colour, the console line
    in a box (``HVCLOUD-CONSOLE <name>`` unless ``line`` is given) and a login prompt."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (8, 8, 16))
    pen = ImageDraw.Draw(image)
    big, small = ImageFont.load_default(size=22), ImageFont.load_default(size=16)
    hue = _hue(name)
    pen.rectangle((0, 0, WIDTH - 1, 47), fill=hue)
    pen.text((16, 12), f"hvcloud simulator  {name}", fill=(255, 255, 255), font=big)
    text = line if line is not None else f"{CONSOLE_LINE} {name}"
    pen.rectangle((24, 80, WIDTH - 25, 140), outline=(220, 220, 220), width=2)
    pen.text((40, 98), text[:60], fill=(235, 235, 235), font=big)
    rows = (f"state: {state}", "", f"{name} login: _")
    for i, row in enumerate(rows):
        pen.text((32, 176 + 28 * i), row, fill=(190, 190, 190), font=small)
    # a strip of the VM's colours along the bottom, so that scaled thumbnails tell VMs apart
    for i in range(8):
        shade = tuple(min(255, c + 16 * i) for c in hue)
        pen.rectangle((i * WIDTH // 8, HEIGHT - 24, (i + 1) * WIDTH // 8 - 1, HEIGHT - 1),
                      fill=(shade[0], shade[1], shade[2]))
    return image
