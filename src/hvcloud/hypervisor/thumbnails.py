"""A VM's screen as a thumbnail: one way for every driver to decode a screen, scale it to fit a
requested box (aspect kept) and encode it as PNG, with Pillow."""

from __future__ import annotations

import io

from PIL import Image

from hvcloud.host_errors import InvalidRequest
from hvcloud.hosttypes import THUMBNAIL_MAX_SIDE, THUMBNAIL_MIN_SIDE
from hvcloud.hypervisor.driver import DriverError, Thumbnail

#: the largest screen decoded (pixels): a hypervisor's screenshot of a sane guest is far smaller,
#: and Pillow's own decompression-bomb limit is a warning only
MAX_SCREEN_PIXELS = 8192 * 8192


def check_size(width: int, height: int) -> None:
    """Both sides within ``THUMBNAIL_MIN_SIDE..THUMBNAIL_MAX_SIDE``, else InvalidRequest."""
    for side, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or not THUMBNAIL_MIN_SIDE <= value <= THUMBNAIL_MAX_SIDE:
            raise InvalidRequest(f"thumbnail {side} {value!r} is not within "
                                 f"{THUMBNAIL_MIN_SIDE}..{THUMBNAIL_MAX_SIDE}")


def fit(src_width: int, src_height: int, width: int, height: int) -> tuple[int, int]:
    """The largest size within ``width`` x ``height`` with the aspect of ``src_width`` x
    ``src_height`` (one side equals the box's, neither is below 1)."""
    if src_width < 1 or src_height < 1:
        raise ValueError("a screen has positive dimensions")
    if src_width * height <= src_height * width:  # the height limits
        return max(1, min(width, round(src_width * height / src_height))), height
    return width, max(1, min(height, round(src_height * width / src_width)))


def decode(data: bytes) -> Image.Image:
    """A screen image (PPM, PNG, any format Pillow reads) from hypervisor bytes, checked for size
    before its pixels are read. DriverError when it is not an image."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_SCREEN_PIXELS:
            raise DriverError(f"the screen is {image.width}x{image.height}, more than this host decodes")
        image.load()
    except DriverError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DriverError(f"the hypervisor's screenshot is not an image: {exc}") from None
    return image


def to_thumbnail(image: Image.Image, width: int, height: int) -> Thumbnail:
    """``image`` scaled (down or up, Lanczos) to fit ``width`` x ``height``, as PNG."""
    check_size(width, height)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    size = fit(rgb.width, rgb.height, width, height)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "PNG", compress_level=6)
    return Thumbnail(png=out.getvalue(), width=size[0], height=size[1])
