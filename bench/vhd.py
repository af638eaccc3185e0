"""VHD throughput and memory, against qemu-img on the same data in the same run.

A 2 GiB dynamic VHD holds 1 GiB (every other 2 MiB block, incompressible); a differencing child
holds the other 1 GiB. Each round times the steps below, every one after reading its input into
the page cache and a ``sync`` (both untimed), so that no step pays for the previous one's
write-back; round N starts with step N, so no step always runs first or after the same one:

* ``qemu-img convert -f vpc -O raw`` of the parent — the issue's baseline for every operation.
  qemu-img's default cache mode for the target is ``unsafe``: it never flushes, so its data is
  still in the page cache when it exits;
* the same with ``-t writeback`` (one flush at the end) — like-for-like for ``convert``, which
  fsyncs its result once before renaming it into place;
* hvcloud ``convert`` (parent -> raw), ``flatten`` (child + parent -> new dynamic VHD, 2 GiB of
  data) and ``merge`` (child -> parent, in place, crash-consistent per 32 MiB batch);
* ``qemu-img convert -f raw -O vpc -o subformat=dynamic`` of the same 2 GiB of guest data —
  like-for-like for ``flatten`` (same output format and amount; qemu cannot read differencing
  VHDs correctly, so its input is the flattened raw image);
* ``qemu-img commit`` of a qcow2 overlay holding the child's 1 GiB into a qcow2 base holding the
  parent's — like-for-like for ``merge``.

Rates are bytes of guest data per second; each figure is the median over the rounds (the host is
shared, so single runs vary by a factor of several), and ratios are medians against medians. Also
printed: the peak resident memory of this process and the time to create a 2040 GiB dynamic VHD.

Usage: ``python -m bench.vhd [--rounds N] [DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

from hvcloud.storage.vhd import (
    DiskType,
    chain_to_raw,
    chain_to_vhd,
    create_differencing,
    create_dynamic,
    merge,
)
from hvcloud.storage.vhd.builder import DynamicBuilder
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.structs import new_footer

GiB = 1024**3
MiB = 1024**2
SIZE = 2 * GiB
BLOCK = 2 * MiB
HALF = SIZE // 2


def _run(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True)  # noqa: S603


def _warm(*paths: str) -> None:
    """Read ``paths`` so every step starts with its input in the page cache (the host reclaims
    idle pages, which would otherwise penalise whichever step runs first)."""
    buf = memoryview(bytearray(8 * MiB))
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def _timed(fn: Callable[[], object], *inputs: str, setup: Callable[[], object] | None = None) -> float:
    if setup:
        setup()
    _warm(*inputs)
    _run("sync")
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _drop(*paths: str) -> None:
    for path in paths:
        if os.path.exists(path):
            os.unlink(path)


def _half_full(path: str) -> None:
    """Every other 2 MiB block written with incompressible data: 1 GiB of 2 GiB."""
    chunk = os.urandom(BLOCK)
    with DynamicBuilder(path, new_footer(DiskType.DYNAMIC, SIZE), block_size=BLOCK) as db:
        for b in range(0, SIZE // BLOCK, 2):
            db.add_block(b, b.to_bytes(4, "big") + chunk[4:])


def _child_half(child: str) -> None:
    """Write the other half of the blocks into a differencing child, 32 MiB per transaction."""
    chunk = os.urandom(BLOCK)
    with VhdFile(child, writable=True) as vf:
        batch: list[tuple[int, bytes]] = []
        for b in range(1, SIZE // BLOCK, 2):
            batch.append((b * BLOCK // 512, chunk))
            if len(batch) == 16:
                vf.write_sectors(batch)
                batch = []
        if batch:
            vf.write_sectors(batch)


def _qcow2_pair(d: str, base: str) -> str:
    """A qcow2 base with the parent's data and an overlay holding the child's 1 GiB."""
    qbase, qtop = os.path.join(d, "q-base.qcow2"), os.path.join(d, "q-top.qcow2")
    _drop(qbase, qtop)
    _run("qemu-img", "convert", "-f", "vpc", "-O", "qcow2", base, qbase)
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", qbase, "-F", "qcow2", qtop)
    writes = [a for b in range(1, SIZE // BLOCK, 2) for a in ("-c", f"write -q -P 90 {b * BLOCK} {BLOCK}")]
    _run("qemu-io", "-f", "qcow2", *writes, qtop)
    return qtop


class Results:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    def add(self, name: str, seconds: float) -> None:
        self.times.setdefault(name, []).append(seconds)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="where to put the 2 GiB test disks (default: the temp dir)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every measurement (median is reported)")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="hvcloud-bench-", dir=args.dir)
    try:
        base, child = os.path.join(d, "base.vhd"), os.path.join(d, "child.vhd")
        _half_full(base)
        create_differencing(child, base)
        _child_half(child)
        full_raw = os.path.join(d, "full.raw")
        chain_to_raw(child, full_raw)
        mdir = os.path.join(d, "m")
        os.mkdir(mdir)
        mbase, mchild = os.path.join(mdir, "base.vhd"), os.path.join(mdir, "child.vhd")
        print(
            f"disk: 2 GiB dynamic VHD with {HALF // MiB} MiB allocated, a child holding the other "
            f"{HALF // MiB} MiB; {args.rounds} rounds in {d}",
            flush=True,
        )

        def fresh_merge_pair() -> None:
            _drop(mbase, mchild)
            shutil.copy2(base, mbase)
            shutil.copy2(child, mchild)

        qbase, qtop = os.path.join(d, "q-base.qcow2"), os.path.join(d, "q-top.qcow2")
        q_raw, n_raw, flat, q_vhd = (os.path.join(d, n) for n in ("q.raw", "n.raw", "flat.vhd", "q.vhd"))
        qemu_raw = ["qemu-img", "convert", "-f", "vpc", "-O", "raw", base, q_raw]
        qemu_vpc = ["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", full_raw, q_vhd]
        # name, step, its inputs (read into the page cache first), setup (untimed), output to delete
        steps: list[tuple[str, Callable[[], object], tuple[str, ...], Callable[[], object] | None, str | None]] = [
            ("qemu raw", lambda: _run(*qemu_raw), (base,), None, q_raw),
            ("qemu raw wb", lambda: _run(*qemu_raw[:2], "-t", "writeback", *qemu_raw[2:]), (base,), None, q_raw),
            ("convert", lambda: chain_to_raw(base, n_raw), (base,), None, n_raw),
            ("flatten", lambda: chain_to_vhd(child, flat, DiskType.DYNAMIC), (child, base), None, flat),
            ("qemu vpc", lambda: _run(*qemu_vpc), (full_raw,), None, q_vhd),
            ("merge", lambda: merge(mchild), (mchild, mbase), fresh_merge_pair, None),
            (
                "qemu commit",
                lambda: _run("qemu-img", "commit", "-q", qtop),
                (qtop, qbase),
                lambda: _qcow2_pair(d, base),
                None,
            ),
        ]
        res = Results()
        for r in range(args.rounds):
            # each round starts at a different step, so no step always follows the same one
            for name, step, inputs, setup, output in steps[r:] + steps[:r]:
                res.add(name, _timed(step, *inputs, setup=setup))
                if output:
                    _drop(output)
            print(f"round {r + 1}: " + ", ".join(f"{k} {res.times[k][-1]:.2f} s" for k, *_ in steps), flush=True)

        amount = {"qemu vpc": SIZE, "flatten": SIZE}

        def rate(key: str) -> float:
            return amount.get(key, HALF) / res.median(key)

        rows = [
            ("qemu-img convert -f vpc -O raw (no flush)", "qemu raw", None),
            ("qemu-img convert -t writeback -O raw", "qemu raw wb", None),
            ("hvcloud convert dynamic -> raw", "convert", "qemu raw wb"),
            ("qemu-img convert raw -> vpc dynamic", "qemu vpc", None),
            ("hvcloud flatten child+parent -> dynamic", "flatten", "qemu vpc"),
            ("qemu-img commit qcow2 overlay -> base", "qemu commit", None),
            ("hvcloud merge child -> parent", "merge", "qemu commit"),
        ]
        print(f"\n{f'median of {args.rounds} rounds':<42} {'time':>7}  {'MiB/s':>6}  vs -O raw  like-for-like")
        for label, key, peer in rows:
            line = f"{label:<42} {res.median(key):6.2f}s  {rate(key) / MiB:6.0f}"
            if peer is None:
                print(line)
            else:
                print(f"{line}  {rate(key) / rate('qemu raw'):8.2f}x  {rate(key) / rate(peer):6.2f}x ({peer})")

        big = os.path.join(d, "big.vhd")
        creates = []
        for _ in range(5):
            t = time.perf_counter()
            create_dynamic(big, 2040 * GiB)
            creates.append(time.perf_counter() - t)
            _drop(big)
        print(
            f"\n{'create 2040 GiB dynamic VHD':<42} best {min(creates) * 1000:.1f} ms, "
            f"median {statistics.median(creates) * 1000:.1f} ms of 5"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'peak resident memory of this process':<42} {peak:.0f} MiB")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
