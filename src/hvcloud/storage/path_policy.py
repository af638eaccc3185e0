"""Which directories an agent's storage may touch at all.

:func:`~hvcloud.storage.pools.confine` keeps a wire path inside its pool or store root; this module
decides which roots are acceptable, since the roots come from the wire too (a ``Filesystem`` pool's
path, a ``file://`` store URL, the mount point of a legacy ``DestroyCommand``):

* a pool is usable only once ``ModifyStoragePoolCommand`` attached it (or it is the host's own local
  pool); anything else is refused before a file is opened;
* attaching is refused for the filesystem root, system directories and any directory holding the
  agent's own data (credentials, TLS key); when the operator names ``--pool-root`` directories, a
  pool must lie inside one of them;
* ``file://`` image stores must lie inside a ``--store-root`` the operator named (none by default:
  then local stores are refused).

Every check compares real paths (symlinks resolved, case folded where the OS folds it), so a
symlinked pool or store directory counts where it leads. The agent always uses a policy; a backend
built without one (library use, tests of the backend itself) is unconfined apart from ``confine``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from hvcloud.storage.errors import PathOutsidePool

#: never a pool, nor anything inside them (Linux hosts)
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/root", "/run",
               "/sbin", "/sys", "/usr")


def real(path: str | Path) -> Path:
    """The real path, case-folded where the OS compares names without case (Windows)."""
    return Path(os.path.normcase(os.path.realpath(path)))


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


class PathPolicy:
    def __init__(self, *, pool_roots: Iterable[str | Path] = (), store_roots: Iterable[str | Path] = (),
                 fixed_pools: Iterable[str | Path] = (), protected: Iterable[str | Path] = ()) -> None:
        self.pool_roots = tuple(real(p) for p in pool_roots)
        self.store_roots = tuple(real(p) for p in store_roots)
        #: always usable without attaching (the host's local pool)
        self.fixed_pools = tuple(real(p) for p in fixed_pools)
        #: never inside a pool (the agent's data directory)
        self.protected = tuple(real(p) for p in protected)
        self._attached: dict[str, Path] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- pools

    def attachable(self, local: str | Path) -> Path:
        """The real directory of a pool about to be attached; PathOutsidePool if it may not be one."""
        path = real(local)
        if path in self.fixed_pools:
            return path
        if self.pool_roots:
            if not _inside(path, self.pool_roots):
                raise PathOutsidePool(f"pool directory {local} is outside the agent's pool roots "
                                      f"({', '.join(map(str, self.pool_roots))})")
        elif path == Path(path.anchor) or _inside(path, map(real, SYSTEM_DIRS)):
            raise PathOutsidePool(f"pool directory {local} is a system directory and cannot be a storage pool")
        if any(p == path or p.is_relative_to(path) for p in self.protected):
            raise PathOutsidePool(f"pool directory {local} holds the agent's own data and cannot be a storage pool")
        return path

    def remember(self, uuid: str, local: str | Path) -> None:
        """``uuid`` is attached at ``local`` (after :meth:`attachable` allowed it)."""
        with self._lock:
            self._attached[uuid] = real(local)

    def forget(self, uuid: str) -> None:
        with self._lock:
            self._attached.pop(uuid, None)

    def pool(self, local: str | Path, uuid: str) -> Path:
        """The real directory of a pool a command names; PathOutsidePool unless it was attached."""
        path = real(local)
        with self._lock:
            attached = path in self._attached.values()
        if attached or path in self.fixed_pools:
            return path
        raise PathOutsidePool(f"storage pool {uuid} at {local} is not attached to this host "
                              "(ModifyStoragePoolCommand attaches a pool)")

    # ---------------------------------------------------------------- stores

    def store(self, local: str | Path) -> Path:
        """The real directory of a local (``file://``) image store; PathOutsidePool unless it lies
        inside a store root."""
        path = real(local)
        if not self.store_roots:
            raise PathOutsidePool(f"local image store {local} refused: this agent accepts file:// image "
                                  "stores only inside directories named with --store-root")
        if not _inside(path, self.store_roots):
            raise PathOutsidePool(f"local image store {local} is outside the agent's store roots "
                                  f"({', '.join(map(str, self.store_roots))})")
        return path
