"""What every image store (a directory or an S3 bucket) must refuse, shared by their tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hvcloud.storage.errors import PathOutsidePool
from hvcloud.storage.store_io import StoreIO

HOSTILE_PATHS = ("", "../x", "a/../../x", "/etc/passwd", "a\\b", "x\x00y", "k" * 5000)


def assert_hostile_paths_refused(store: StoreIO, scratch: Path, extra: tuple[str, ...] = ()) -> None:
    """Every operation refuses every hostile path with PathOutsidePool."""
    operations: tuple[Callable[[str], object], ...] = (
        lambda rel: store.put_bytes(b"evil", rel), lambda rel: store.put(scratch, rel),
        lambda rel: store.get(rel, scratch / "got"), store.delete)
    for rel in (*HOSTILE_PATHS, *extra):
        for operation in operations:
            with pytest.raises(PathOutsidePool):
                operation(rel)
