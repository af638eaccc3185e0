from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

#: the project's external test vectors live in ``shared/testdata`` beside the repository
TESTDATA = Path(os.environ.get("HVCLOUD_TESTDATA", Path(__file__).resolve().parents[4].parent / "shared" / "testdata"))


def digest(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def libvhdi_dir() -> Path:
    d = TESTDATA / "libvhdi"
    if not (d / "file_footer.1").exists():
        pytest.skip(f"libvhdi test vectors not found in {d}")
    return d
