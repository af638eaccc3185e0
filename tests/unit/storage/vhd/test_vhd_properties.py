"""Random guest writes through the library against a raw oracle, for dynamic disks and for
differencing chains several levels deep; then every whole-disk operation must keep the contents."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvcloud.storage.vhd import (
    Chain,
    DiskType,
    chain_to_raw,
    chain_to_vhd,
    check,
    compact,
    create_differencing,
    create_dynamic,
    merge,
)

SIZE = 3 * 1024 * 1024 + 512 * 3
BLOCK = 512 * 1024

write = st.tuples(
    st.integers(0, SIZE - 1),
    st.integers(1, 40_000),
    st.one_of(st.integers(0, 255).map(lambda b: bytes([b])), st.binary(min_size=1, max_size=7)),
)
layers = st.lists(st.lists(write, max_size=6), min_size=1, max_size=4)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _apply(chain: Chain, oracle: bytearray, writes: list[tuple[int, int, bytes]]) -> None:
    for off, n, pattern in writes:
        n = min(n, SIZE - off)
        data = (pattern * (n // len(pattern) + 1))[:n]
        chain.write(off, data, durable=False)
        oracle[off : off + n] = data


def _build(d: Path, plan: list[list[tuple[int, int, bytes]]]) -> tuple[Path, bytearray]:
    oracle = bytearray(SIZE)
    path = d / "l0.vhd"
    create_dynamic(str(path), SIZE, block_size=BLOCK)
    for level, writes in enumerate(plan):
        if level:
            child = d / f"l{level}.vhd"
            create_differencing(str(child), str(path))
            path = child
        with Chain(str(path), writable=True) as c:
            _apply(c, oracle, writes)
    return path, oracle


def _contents(path: Path) -> bytes:
    with Chain(str(path)) as c:
        return c.read(0, c.size)


@SETTINGS
@given(layers)
def test_chain_reads_match_oracle_and_survive_operations(plan: list[list[tuple[int, int, bytes]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        top, oracle = _build(d, plan)
        assert _contents(top) == oracle
        report = check(str(top))
        assert report.ok, report.errors
        assert len(report.chain) == len(plan)

        chain_to_raw(str(top), str(d / "flat.raw"))
        assert (d / "flat.raw").read_bytes() == oracle
        chain_to_vhd(str(top), str(d / "flat.vhd"), DiskType.DYNAMIC)
        assert _contents(d / "flat.vhd") == oracle
        chain_to_vhd(str(top), str(d / "fixed.vhd"), DiskType.FIXED, sparse=True)
        assert _contents(d / "fixed.vhd") == oracle

        compact(str(top))
        assert _contents(top) == oracle
        assert check(str(top)).ok

        if len(plan) > 1:
            dest = merge(str(top))
            assert not top.exists()
            assert _contents(Path(dest)) == oracle
            assert check(dest).ok


@SETTINGS
@given(layers, st.integers(1, 3))
def test_merge_into_a_higher_ancestor(plan: list[list[tuple[int, int, bytes]]], depth: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        plan = plan + [[(0, 4096, b"\x5a")]] * max(0, depth + 1 - len(plan))
        top, oracle = _build(d, plan)
        into = d / f"l{len(plan) - 1 - depth}.vhd"
        merge(str(top), into=str(into))
        assert _contents(into) == oracle
        assert sorted(os.listdir(d)) == [f"l{i}.vhd" for i in range(len(plan) - depth)]
