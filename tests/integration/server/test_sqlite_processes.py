"""The server's SQLite engine across processes: writers in other processes, queued on the same lock
file, lose nothing (moved from tests/unit/server/test_sqlite_engine.py: it spawns processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from tests.support.counter_db import counter_engine, counter_value

_OTHER_PROCESS = """
import sys
from sqlalchemy import text
from hvcloud.server.db import engine as db_engine
eng = db_engine.make_engine(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with eng.begin() as conn:
        before = conn.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one()
        conn.execute(text("UPDATE counter SET value = value + 1 WHERE id = 1"))
        conn.execute(text("INSERT INTO log (who) VALUES (:w)"), {"w": f"p:{before}"})
"""


def test_writers_of_several_processes_all_land(tmp_path: Path) -> None:
    engine = counter_engine(tmp_path / "x.db")
    others = [subprocess.Popen([sys.executable, "-c", _OTHER_PROCESS, str(engine.url), "150"])  # noqa: S603
              for _ in range(2)]
    for _ in range(150):
        with engine.begin() as conn:
            conn.execute(text("UPDATE counter SET value = value + 1 WHERE id = 1"))
            conn.execute(text("INSERT INTO log (who) VALUES ('me')"))
    assert [p.wait(timeout=120) for p in others] == [0, 0]
    assert counter_value(engine) == 450
