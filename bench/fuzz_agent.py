"""Fuzz a real agent process (simulator driver, HTTPS, signed requests) and print the outcomes.

    .venv/bin/python -m bench.fuzz_agent [--cases 10000] [--seed 1] [--max-body 262144]

Every case is one mutated command body (see ``tests/fuzz/agent_fuzz.py``). Checked for each: the
process is still up, the answer is a well-formed refusal or answer with no traceback, and a rejected
request left the state files byte-identical. Exits 1 if any case failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.fuzz import agent_fuzz
from tests.support.agent_process import PASSWORD, USER, AgentProcess

from hvcloud.wire import codec, signing


def post(client: httpx.Client, url: str, fqcn: str, body: bytes) -> httpx.Response:
    path = f"/api/HypervResource/{fqcn}"
    headers = {"content-type": "application/json", **signing.sign_headers(USER, PASSWORD, "POST", path, body)}
    return client.post(url + path, content=body, headers=headers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-body", type=int, default=256 * 1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-agent-") as tmp:
        data_dir = Path(tmp) / "agent"
        proc = AgentProcess(data_dir, address="127.0.0.1", args=["--max-body", str(args.max_body)])
        proc.start()
        tally = agent_fuzz.Tally.empty()
        started = time.perf_counter()
        try:
            with httpx.Client(verify=False, timeout=60) as client:
                for fqcn, body in agent_fuzz.warm_up_bodies():
                    r = post(client, proc.endpoint(), fqcn, codec.dumps(body))
                    assert r.status_code == 200, r.text
                for case in agent_fuzz.cases(args.seed, args.cases, args.max_body):
                    before = agent_fuzz.snapshot(data_dir)
                    try:
                        r = post(client, proc.endpoint(), case.fqcn, case.body)
                    except httpx.HTTPError as exc:
                        tally.add("transport-error", f"{type(exc).__name__}: {exc}", case)
                        if proc.proc is None or proc.proc.poll() is not None:
                            tally.failures.append("the agent process died")
                            break
                        continue
                    agent_fuzz.judge(case, r.status_code, r.headers.get("content-type", ""), r.content, before,
                                     agent_fuzz.snapshot(data_dir), tally)
                alive = proc.proc is not None and proc.proc.poll() is None
                if not alive:
                    tally.failures.append("the agent process is not running after the run")
        finally:
            elapsed = time.perf_counter() - started
            proc.kill()
        log = proc.log_path.read_text(errors="replace")
        for marker in agent_fuzz.TRACEBACK_MARKERS[:1]:
            if marker in log:
                tally.failures.append(f"agent log holds {log.count(marker)} traceback(s)")
    print(f"agent fuzz: {tally.total} cases, seed {args.seed}, {elapsed:.1f} s "
          f"({tally.total / elapsed:.0f} cases/s), process alive: {not any('process' in f for f in tally.failures)}")
    for outcome, n in sorted(tally.counts.items(), key=lambda kv: -kv[1]):
        print(f"  {outcome:<20} {n}")
    print(f"failures: {len(tally.failures)}")
    for f in tally.failures[:50]:
        print("  " + f[:500])
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
