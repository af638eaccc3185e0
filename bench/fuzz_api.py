"""Fuzz a real management server process (SQLite) through ``/client/api`` and print the outcomes.

    .venv/bin/python -m bench.fuzz_api [--cases 10000] [--seed 1]

Every case is one registered (or unknown) command with random and mutated parameters, signed with
the admin's or a plain user's keys (see ``tests/fuzz/api_fuzz.py``). Checked for each: the process
is still up, the answer is a CloudStack envelope with no traceback, and a rejected request (or any
list/get/query command) left every table's rows unchanged. Exits 1 if any case failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.fuzz import api_fuzz
from tests.support.server_process import ServerProcess

from hvcloud.server.db.engine import default_sqlite_url, make_engine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        # without the API rate limit: the fuzzer's user would mostly meet 429 instead of the code under test
        server = ServerProcess(data_dir, None, ["--setting", "api.throttling.enabled=false"])
        engine = make_engine(default_sqlite_url(data_dir))
        tally = api_fuzz.Tally()
        started = time.perf_counter()
        try:
            with httpx.Client(timeout=60) as client:
                admin = (server.keys["apikey"], server.keys["secretkey"])
                keys, fx = api_fuzz.set_up(client, server.endpoint, admin)
                for case in api_fuzz.cases(args.seed, args.cases, fx):
                    api_fuzz.settle(engine)
                    before = api_fuzz.db_fingerprint(engine)
                    try:
                        r = api_fuzz.send(client, server.endpoint, case, keys)
                    except httpx.HTTPError as exc:
                        tally.add("transport-error", f"{type(exc).__name__}: {exc}", case)
                        if server.proc.poll() is not None:
                            tally.failures.append("the server process died")
                            break
                        continue
                    api_fuzz.judge(case, r.status_code, r.headers.get("content-type", ""), r.content, before,
                                   api_fuzz.db_fingerprint(engine), tally)
            if server.proc.poll() is not None:
                tally.failures.append("the server process is not running after the run")
        finally:
            elapsed = time.perf_counter() - started
            engine.dispose()
            server.stop()
        log = server.log_path.read_text(errors="replace")
        if "Traceback (most recent call last)" in log:
            tally.failures.append(f"server log holds {log.count('Traceback (most recent call last)')} traceback(s)")
    print(f"API fuzz: {tally.total} cases, seed {args.seed}, {elapsed:.1f} s ({tally.total / elapsed:.0f} cases/s)")
    for outcome, n in sorted(tally.counts.items(), key=lambda kv: -kv[1]):
        print(f"  {outcome:<20} {n}")
    print(f"failures: {len(tally.failures)}")
    for f in tally.failures[:50]:
        print("  " + f[:600])
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
