"""Windows paths for Hyper-V pools and stores: building them from the wire, confining untrusted
names inside them, and mapping them onto the file system this process sees.

Everything here is :class:`~pathlib.PureWindowsPath` logic, so it behaves the same on Linux (tests)
and on Windows. Names from the wire are checked component by component against what Windows would
silently reinterpret: drive letters and UNC prefixes, ``..``, ``:`` (alternate data streams such as
``x.vhd:evil``), reserved device names (``CON``, ``NUL.vhd``, ``COM1``…), and trailing dots or
spaces (``x.vhd.`` opens ``x.vhd``).
"""

from __future__ import annotations

import ntpath
import os
import re
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath
from urllib.parse import unquote, urlsplit

from hvcloud.storage.backend import PoolRef
from hvcloud.storage.errors import PathOutsidePool, StorageError
from hvcloud.storage.pools import confine

MAX_COMPONENT = 255
MAX_PATH = 32000
_FORBIDDEN = set('<>:"|?*')
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|CLOCK\$|(COM|LPT)[0-9\u00b9\u00b2\u00b3])$",
                       re.IGNORECASE)
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$")


def check_component(part: str, what: str = "path") -> str:
    """One file or directory name, as Windows would store it unchanged; raises PathOutsidePool."""
    if not part or part in (".", ".."):
        raise PathOutsidePool(f"{what}: empty, '.' or '..' component")
    if len(part) > MAX_COMPONENT:
        raise PathOutsidePool(f"{what}: component longer than {MAX_COMPONENT} characters")
    bad = [c for c in part if c in _FORBIDDEN or ord(c) < 32]
    if bad:
        raise PathOutsidePool(f"{what}: component {part!r} has forbidden character {bad[0]!r}")
    if part[-1] in ". ":
        raise PathOutsidePool(f"{what}: component {part!r} ends with a dot or space")
    stem = part.split(".", 1)[0].rstrip(" ")
    if _RESERVED.match(stem):
        raise PathOutsidePool(f"{what}: {part!r} is a reserved device name")
    return part


def relative_parts(rel: str, what: str = "path") -> list[str]:
    """The components of a name relative to a pool or store; ``/`` and ``\\`` both separate.
    Absolute paths, drives, UNC and device prefixes are refused."""
    if not rel or len(rel) > MAX_PATH or "\x00" in rel:
        raise PathOutsidePool(f"invalid {what} {rel[:80]!r}")
    pure = PureWindowsPath(rel)
    if pure.drive or pure.root or rel[0] in "/\\":
        raise PathOutsidePool(f"{what} {rel[:80]!r} must be relative")
    parts = re.split(r"[\\/]", rel)
    return [check_component(p, what) for p in parts]


def confine_win(root: PureWindowsPath, rel: str) -> PureWindowsPath:
    """``root\\rel`` with every component of ``rel`` checked."""
    out = root.joinpath(*relative_parts(rel))
    if not out.is_relative_to(root) or out == root:
        raise PathOutsidePool(f"path {rel[:80]!r} leaves {root}")
    return out


def host_name(host: str) -> str:
    """A server name for a UNC path: a DNS name or an IPv4 address, nothing else."""
    if not host or len(host) > 253 or not _HOST.match(host):
        raise StorageError(f"invalid SMB server name {host[:80]!r}")
    return host


def unc(host: str, path: str) -> PureWindowsPath:
    """``\\\\host\\share\\rest`` from a host and a ``/share/rest`` (or ``share\\rest``) path."""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    if not parts:
        raise StorageError(f"SMB path {path[:80]!r} names no share")
    checked = [check_component(p, "SMB path") for p in parts]
    if checked[0].endswith("$") and len(checked[0]) == 2:
        raise StorageError("administrative drive shares (C$) are not accepted as pools or stores")
    return PureWindowsPath(f"\\\\{host_name(host)}\\{checked[0]}\\", *checked[1:])


def unc_from_cifs(url: str) -> PureWindowsPath:
    """``cifs://host/share/dir?user=…&password=…`` → ``\\\\host\\share\\dir``. The query (where
    CloudStack puts credentials) is dropped unread: the share is reached as the service account."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("cifs", "smb"):
        raise StorageError(f"not a cifs:// URL: {parts.scheme or '(no scheme)'}")
    if parts.username or parts.password:
        raise StorageError("credentials in a cifs:// URL's authority are not accepted")
    return unc(parts.hostname or "", unquote(parts.path))


def pool_root(pool: PoolRef) -> PureWindowsPath:
    """Where a pool lives, as Hyper-V names it: a local directory or a UNC path."""
    if pool.pool_type == "Filesystem":
        raw = pool.path.replace("/", "\\")
        pure = PureWindowsPath(raw)
        if not re.fullmatch(r"[A-Za-z]:", pure.drive) or pure.root != "\\":
            raise StorageError(f"Filesystem pool path {pool.path[:80]!r} must be like E:\\Disks")
        for p in pure.parts[1:]:
            check_component(p, "pool path")
        return pure
    if pool.pool_type in ("SMB", "NetworkFilesystem"):
        if pool.path.startswith("\\\\"):
            pure = PureWindowsPath(pool.path)
            server, _, share = pure.drive.lstrip("\\").partition("\\")
            if pool.host and server.lower() != pool.host.lower():
                raise StorageError(f"SMB pool path {pool.path[:80]!r} is not on {pool.host}")
            return unc(server, "\\".join([share, *pure.parts[1:]]))
        return unc(pool.host, pool.path)
    raise StorageError(f"{pool.pool_type} pools are not supported on Hyper-V hosts")


def relpath(target: PureWindowsPath, start: PureWindowsPath) -> str | None:
    """``target`` relative to directory ``start`` (``.\\x`` style, as Hyper-V writes W2ru
    locators), or None when they are on different drives or shares."""
    try:
        rel = ntpath.relpath(str(target), str(start))
    except ValueError:
        return None
    return rel if rel.startswith("..") else ".\\" + rel


class PathMap:
    """Windows paths → paths this process can open.

    On Windows with no mapping the two are the same. Tests (and a Linux host reaching an SMB share
    through a mount) give prefixes, e.g. ``{"E:\\\\": tmp/"e", "\\\\\\\\srv\\\\share": tmp/"share"}``;
    the longest matching prefix wins and names are compared case-insensitively, as Windows does.
    """

    def __init__(self, mapping: Mapping[str, str | Path] | None = None) -> None:
        self._map = [(PureWindowsPath(k), Path(v)) for k, v in (mapping or {}).items()]
        self._map.sort(key=lambda kv: len(kv[0].parts), reverse=True)

    @property
    def identity(self) -> bool:
        return not self._map and os.name == "nt"

    def local(self, win: PureWindowsPath) -> Path:
        if self.identity:
            return Path(str(win))
        low = [p.lower() for p in win.parts]
        for prefix, target in self._map:
            pre = [p.lower() for p in prefix.parts]
            if low[:len(pre)] == pre:
                return target.joinpath(*win.parts[len(pre):])
        raise StorageError(f"{win} is not reachable from this host")

    def local_confined(self, root: PureWindowsPath, rel: str) -> tuple[PureWindowsPath, Path]:
        """The Windows path of ``rel`` under ``root`` and its local file, whose real path
        (symlinks and junctions resolved) must stay inside the root's."""
        win = confine_win(root, rel)
        parts = win.parts[len(root.parts):]
        local = confine(self.local(root), "/".join(parts))
        return win, local
