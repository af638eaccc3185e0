"""RGB565 (Hyper-V thumbnails) → PNG, with only the standard library."""

from __future__ import annotations

import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def rgb565_to_rgb888(data: bytes, width: int, height: int) -> bytes:
    if width <= 0 or height <= 0:
        raise ValueError("image dimensions must be positive")
    if len(data) != width * height * 2:
        raise ValueError(f"expected {width * height * 2} bytes of RGB565, got {len(data)}")
    out = bytearray(width * height * 3)
    for i, (pixel,) in enumerate(struct.iter_unpack("<H", data)):
        r, g, b = pixel >> 11, (pixel >> 5) & 0x3F, pixel & 0x1F
        out[3 * i] = (r << 3) | (r >> 2)
        out[3 * i + 1] = (g << 2) | (g >> 4)
        out[3 * i + 2] = (b << 3) | (b >> 2)
    return bytes(out)


def encode_rgb(rgb: bytes, width: int, height: int) -> bytes:
    """8-bit truecolour PNG, filter type 0 on every row."""
    stride = width * 3
    if len(rgb) != stride * height:
        raise ValueError("RGB buffer does not match the dimensions")
    raw = b"".join(b"\x00" + rgb[y * stride:(y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6))
            + _chunk(b"IEND", b""))


def rgb565_to_png(data: bytes, width: int, height: int) -> bytes:
    return encode_rgb(rgb565_to_rgb888(data, width, height), width, height)
