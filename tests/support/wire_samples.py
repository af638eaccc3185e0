"""The recorded CloudStack wire bodies in tests/data/wire, one JSON file per command or answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parents[1] / "data" / "wire"


def sample(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
