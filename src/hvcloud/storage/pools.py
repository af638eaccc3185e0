"""Primary storage pools on this host, and confinement of untrusted paths to a root.

``Filesystem`` pools are local directories. ``NetworkFilesystem`` pools are NFS exports the agent
mounts itself under ``<data dir>/pools/<pool uuid>``. Every path from the wire is resolved with
:func:`confine`, which refuses absolute paths, ``..`` and symlinks that lead out of the root.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from hvcloud import logs
from hvcloud.hosttypes import PoolStats
from hvcloud.storage.backend import PoolRef
from hvcloud.storage.errors import PathOutsidePool, StorageError
from hvcloud.storage.path_policy import PathPolicy

log = logs.get(__name__)

_UUID_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_PATH = 4096

#: runs a command (argument list) and returns stdout, raising StorageError on failure
CommandRunner = Callable[[Sequence[str]], str]


def run_command(args: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
    except FileNotFoundError:
        raise StorageError(f"{args[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise StorageError(f"{args[0]} timed out") from None
    if proc.returncode != 0:
        raise StorageError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def confine(root: str | Path, rel: str) -> Path:
    """``root/rel`` with every component checked; raises PathOutsidePool.

    The result is the real path (symlinks resolved) and lies inside the real root; it need not
    exist yet.
    """
    if not rel or len(rel) > MAX_PATH or "\x00" in rel:
        raise PathOutsidePool(f"invalid path {rel!r}")
    if rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel) or "\\" in rel:
        raise PathOutsidePool(f"path {rel!r} must be relative to the pool, with / separators")
    parts = rel.split("/")
    if any(p == ".." for p in parts):
        raise PathOutsidePool(f"path {rel!r} leaves the pool")
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root / rel))
    if real == real_root or not real.is_relative_to(real_root):
        raise PathOutsidePool(f"path {rel!r} resolves outside the pool")
    return real


def safe_name(text: str, what: str = "name") -> str:
    if not _UUID_SAFE.match(text) or text in (".", ".."):
        raise PathOutsidePool(f"invalid {what} {text!r}")
    return text


def is_mounted(mountpoint: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    target = os.path.realpath(mountpoint)
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return False
    return any(len(f) > 4 and f[4].replace("\\040", " ") == target for f in (ln.split() for ln in lines))


class Pools:
    """Where each pool lives on this host, mounting network pools as needed."""

    def __init__(self, data_dir: Path, runner: CommandRunner = run_command,
                 nfs_options: str = "vers=4.1,soft,timeo=600,retrans=2", policy: PathPolicy | None = None) -> None:
        self.data_dir = data_dir
        self._run = runner
        self.nfs_options = nfs_options
        self.policy = policy

    def mountpoint(self, pool: PoolRef) -> Path:
        return self.data_dir / "pools" / safe_name(pool.uuid, "pool uuid")

    def root(self, pool: PoolRef) -> Path:
        """The pool's directory; with a policy, only a pool this host attached (its real path)."""
        path = self._where(pool)
        return path if self.policy is None else self.policy.pool(path, pool.uuid)

    def _where(self, pool: PoolRef) -> Path:
        if pool.pool_type == "Filesystem":
            if not pool.path.startswith("/"):
                raise StorageError(f"Filesystem pool path {pool.path!r} must be absolute")
            return Path(pool.path)
        if pool.pool_type == "NetworkFilesystem":
            return self.mountpoint(pool)
        raise StorageError(f"{pool.pool_type} pools are not supported on Linux hosts")

    def nfs_source(self, pool: PoolRef) -> str:
        if not pool.host or not re.match(r"^[A-Za-z0-9.:\[\]-]+$", pool.host):
            raise StorageError(f"invalid NFS host {pool.host!r}")
        if not pool.path.startswith("/") or "\x00" in pool.path:
            raise StorageError(f"invalid NFS export path {pool.path!r}")
        return f"{pool.host}:{pool.path}"

    def adopt(self, pool: PoolRef) -> Path:
        """Record an attached pool with the policy (refused pools raise PathOutsidePool) without
        touching it; return its directory."""
        root = self._where(pool)
        if self.policy is not None:
            if pool.pool_type == "Filesystem":
                root = self.policy.attachable(root)
            self.policy.remember(pool.uuid, root)
        return root

    def attach(self, pool: PoolRef) -> PoolStats:
        root = self._where(pool)
        if self.policy is not None and pool.pool_type == "Filesystem":
            root = self.policy.attachable(root)
        if pool.pool_type == "NetworkFilesystem":
            root.mkdir(parents=True, exist_ok=True)
            if not is_mounted(root):
                opts = self.nfs_options + (f",port={pool.port}" if pool.port else "")
                self._run(["mount", "-t", "nfs", "-o", opts, self.nfs_source(pool), str(root)])
                log.info("pool.mounted", pool=pool.uuid, source=self.nfs_source(pool))
        else:
            root.mkdir(parents=True, exist_ok=True)
        self.adopt(pool)
        return self.stats(pool)

    def detach(self, pool: PoolRef) -> None:
        if self.policy is not None:
            self.policy.forget(pool.uuid)
        if pool.pool_type == "NetworkFilesystem":
            root = self.mountpoint(pool)
            if is_mounted(root):
                self._run(["umount", str(root)])
                log.info("pool.unmounted", pool=pool.uuid)

    def stats(self, pool: PoolRef) -> PoolStats:
        root = self.root(pool)
        try:
            st = os.statvfs(root)
        except OSError as exc:
            raise StorageError(f"pool {pool.uuid} at {root} is not usable: {exc.strerror}") from None
        return PoolStats(path=str(root), capacity_bytes=st.f_blocks * st.f_frsize,
                         available_bytes=st.f_bavail * st.f_frsize)
