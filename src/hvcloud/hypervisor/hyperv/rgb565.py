"""Hyper-V thumbnails: ``GetVirtualSystemThumbnailImage`` returns RGB565 pixels (16 bits,
little-endian, red in the top 5 bits, green in the middle 6, blue in the low 5), row after row
from the top. Each channel is widened to 8 bits by bit replication (``r5 << 3 | r5 >> 2``), so that
full intensity stays 255 and black stays 0, with Pillow's per-band lookup tables (no pixel loop in
Python)."""

from __future__ import annotations

from PIL import Image, ImageChops

_EXPAND5 = [((v & 31) << 3) | ((v & 31) >> 2) for v in range(256)]
_RED = [_EXPAND5[v >> 3] for v in range(256)]     # red: the high byte's top 5 bits
_GREEN_HIGH = [(v & 7) << 3 for v in range(256)]  # green bits 5..3 from the high byte
_GREEN_LOW = [v >> 5 for v in range(256)]         # green bits 2..0 from the low byte
_EXPAND6 = [((v & 63) << 2) | ((v & 63) >> 4) for v in range(256)]


def to_image(data: bytes, width: int, height: int) -> Image.Image:
    """RGB565 bytes of a ``width`` x ``height`` screen as an RGB image; ValueError when the
    length does not match."""
    if width <= 0 or height <= 0:
        raise ValueError("image dimensions must be positive")
    if len(data) != width * height * 2:
        raise ValueError(f"expected {width * height * 2} bytes of RGB565, got {len(data)}")
    # "LA" reads the byte pairs as two 8-bit bands: the low byte, then the high byte
    low, high = Image.frombytes("LA", (width, height), data).split()
    red = high.point(_RED)
    green = ImageChops.add(high.point(_GREEN_HIGH), low.point(_GREEN_LOW)).point(_EXPAND6)
    blue = low.point(_EXPAND5)
    return Image.merge("RGB", (red, green, blue))
