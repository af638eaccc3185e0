"""Parent locator data: encoding what we write and finding the parent from what others wrote."""

from __future__ import annotations

import os
import urllib.parse

from hvcloud.storage.vhd.structs import MACX, W2KU, W2RU, WI2K, WI2R, DynamicHeader

#: bytes reserved per locator, as Hyper-V does, so re-parenting can rewrite in place
LOCATOR_SPACE = 4096


def relative_windows_path(parent: str, child_dir: str) -> str:
    rel = os.path.relpath(parent, child_dir).replace("/", "\\")
    return rel if rel.startswith("..") else ".\\" + rel


def encode_locators(parent: str, child: str) -> list[tuple[bytes, bytes]]:
    """(platform, data) for W2ru (relative), W2ku (absolute) and MacX (file URL) locators."""
    parent_abs = os.path.abspath(parent)
    child_dir = os.path.dirname(os.path.abspath(child))
    url = "file://localhost" + urllib.parse.quote(parent_abs)
    return [
        (W2RU, relative_windows_path(parent_abs, child_dir).encode("utf-16-le")),
        (W2KU, parent_abs.replace("/", "\\").encode("utf-16-le")),
        (MACX, url.encode("utf-8")),
    ]


def decode_locator(platform: bytes, data: bytes) -> str | None:
    """The path a locator names, in its own syntax; None for platforms we cannot decode."""
    try:
        if platform in (W2RU, W2KU):
            text = data.decode("utf-16-le")
        elif platform in (WI2R, WI2K):
            text = data.decode("latin-1")
        elif platform == MACX:
            text = urllib.parse.unquote(data.decode("utf-8"))
            parsed = urllib.parse.urlparse(text)
            if parsed.scheme != "file":
                return None
            return parsed.path
        else:
            return None
    except (UnicodeDecodeError, ValueError):
        return None
    return text.rstrip("\0") or None


def candidate_paths(child: str, header: DynamicHeader, locator_data: dict[int, bytes]) -> list[str]:
    """Where the parent may be, best first: relative locators, URLs, absolute ones, then the
    header's parent name beside the child. Windows paths are mapped onto this host's syntax."""
    child_dir = os.path.dirname(os.path.abspath(child))
    rel: list[str] = []
    absolute: list[str] = []
    for i, loc in enumerate(header.locators):
        if not loc.used or i not in locator_data:
            continue
        text = decode_locator(loc.platform, locator_data[i])
        if not text:
            continue
        posix = text.replace("\\", "/")
        if loc.platform in (W2RU, WI2R):
            rel.append(os.path.normpath(os.path.join(child_dir, posix)))
        elif loc.platform == MACX:
            absolute.append(posix)
        else:
            if len(posix) > 1 and posix[1] == ":":
                absolute.append(os.path.join(child_dir, os.path.basename(posix)))
            else:
                absolute.append(posix)
    names = []
    if header.parent_name:
        names.append(os.path.join(child_dir, os.path.basename(header.parent_name.replace("\\", "/"))))
    out: list[str] = []
    for p in rel + absolute + names:
        if p not in out:
            out.append(p)
    return out
