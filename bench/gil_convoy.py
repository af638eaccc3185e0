"""How long a SQLite write transaction takes beside busy threads, per thread switch interval.

A thread gives up the GIL inside every SQLite statement and then waits for it until the running
thread's switch interval ends. A server's writer holds the database's write lock (which every writer
of every server process queues on) through that wait, so the interval sets how long the lock is held
when API and job threads are busy. This runs one writer (six UPDATEs and a commit, as a deploy's
placement) beside ``--busy`` threads of pure Python, under each interval, and prints the mean and
p95 wall time of a transaction and the busy threads' work rate (what a shorter interval costs them).

Usage: ``python -m bench.gil_convoy [--busy 3] [--transactions 300] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

INTERVALS = (0.005, 0.002, 0.001, 0.0005)


def _busy(stop: threading.Event, done: list[int]) -> None:
    while not stop.is_set():
        total = 0
        for i in range(1000):
            total += i * i
        done[0] += 1


def _writer(db: sqlite3.Connection, transactions: int) -> list[float]:
    out: list[float] = []
    for k in range(transactions):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for j in range(6):
            db.execute("UPDATE t SET a = a + 1 WHERE id = ?", ((k * 7 + j) % 1000,))
        db.execute("COMMIT")
        out.append(1000 * (time.perf_counter() - started))
        time.sleep(0.002)  # the writer's other work, which lets the busy threads run
    return out


def run(busy: int, transactions: int) -> dict[str, Any]:
    before = sys.getswitchinterval()
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "convoy.db", check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i, "x" * 50) for i in range(1000)])
        rows = []
        try:
            for interval in INTERVALS:
                sys.setswitchinterval(interval)
                stop, done = threading.Event(), [0]
                threads = [threading.Thread(target=_busy, args=(stop, done)) for _ in range(busy)]
                started = time.perf_counter()
                for t in threads:
                    t.start()
                times = _writer(db, transactions)
                stop.set()
                for t in threads:
                    t.join()
                elapsed = time.perf_counter() - started
                rows.append({"switch_interval_ms": interval * 1000, "tx_mean_ms": round(statistics.mean(times), 2),
                             "tx_p95_ms": round(statistics.quantiles(times, n=20)[-1], 2),
                             "busy_work_per_s": round(done[0] / elapsed)})
        finally:
            sys.setswitchinterval(before)
            db.close()
    return {"busy_threads": busy, "transactions": transactions, "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--busy", type=int, default=3)
    parser.add_argument("--transactions", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.busy < 0 or args.transactions < 1:
        parser.error("--busy must be >= 0 and --transactions >= 1")
    result = run(args.busy, args.transactions)
    if args.json:
        print(json.dumps(result))
        return
    print(f"one writer (6 UPDATEs + COMMIT) beside {result['busy_threads']} busy threads:")
    for row in result["runs"]:
        print(f"  switch interval {row['switch_interval_ms']:4.1f} ms: transaction mean {row['tx_mean_ms']:6.2f} ms, "
              f"p95 {row['tx_p95_ms']:6.2f} ms; busy threads {row['busy_work_per_s']} units/s")


if __name__ == "__main__":
    main()
