"""Small files replaced whole: readers see the old content or the new, never a torn write.

The one helper for the write-to-a-temporary-file-then-rename pattern used by the agent's state
files (identity, pools), the simulator's state and the pool heartbeat files.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: add to ``os.open`` flags: binary mode on Windows, nothing elsewhere
_BINARY = getattr(os, "O_BINARY", 0)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True, private: bool = True) -> None:
    """Give ``path`` the content ``data`` in one rename of a temporary file beside it.

    ``private`` files are readable by their owner only (the temporary file's mode, 0600); other
    files get the process's default mode (0666 less the umask), as a plain ``open`` would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    else:
        tmp = str(path.with_name(f"{path.name}.tmp"))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_json(path: Path, default: Any) -> Any:
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def save_json(path: Path, data: Any, *, fsync: bool = True) -> None:
    """``data`` as compact JSON in ``path``, replaced atomically (owner-only, fsynced by default)."""
    write_atomic(path, json.dumps(data, separators=(",", ":")).encode("utf-8"), fsync=fsync)
