"""Storage benchmark: VM disk creation from templates, and S3 template download throughput.

Prints, in one run:

* time to create a VM root disk from a 1 GiB and an 8 GiB qcow2 template as a linked clone (median
  of several) and as a full copy (target: linked clone under 50 ms whatever the template size);
* S3 download throughput of hvcloud's template path (download, checksum, image checks) against a
  plain boto3 ``download_file`` of the same object from the same server (target: at least 80 %).

The S3 server is moto's ``moto_server`` in a separate process on 127.0.0.1.

Usage: ``.venv/bin/python -m bench.storage [--dir DIR] [--fill 0.5] [--s3-mib 256]``
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import structlog
from tests.support.ports import free_port

from hvcloud.storage import qemu_img
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, S3Location, StoreRef
from hvcloud.storage.local import LocalStorageBackend

GiB = 1 << 30
MiB = 1 << 20


def write_pattern(path: Path, size: int, fill: float) -> str:
    """A raw image of ``size`` with the first ``fill`` fraction written with non-zero data; returns
    its MD5."""
    block = hashlib.sha256(b"hvcloud").digest() * (MiB // 32)
    h = hashlib.md5()
    written = int(size * fill) // MiB * MiB
    with open(path, "wb") as f:
        for i in range(written // MiB):
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            h.update(chunk)
        f.truncate(size)
    remaining = size - written
    zero = bytes(MiB)
    for _ in range(remaining // MiB):
        h.update(zero)
    return h.hexdigest()


def bench_clones(work: Path, fill: float, repeats: int) -> list[tuple[str, float, float]]:
    backend = LocalStorageBackend(work / "data")
    pool = PoolRef(uuid="bench", pool_type="Filesystem", path=str(work / "pool"))
    backend.attach_pool(pool)
    rows = []
    for size_gib in (1, 8):
        raw = work / f"t{size_gib}.raw"
        write_pattern(raw, size_gib * GiB, fill)
        tmpl = Path(pool.path) / f"t{size_gib}.qcow2"
        qemu_img.convert(str(raw), "raw", str(tmpl), "qcow2")
        raw.unlink()
        os.sync()  # let writeback of the template finish so it does not skew the clone timings
        image = ImageInPool(pool, tmpl.name, "qcow2")
        linked = []
        for i in range(repeats):
            t0 = time.perf_counter()
            backend.volume_from_template(image, pool, f"l{size_gib}-{i}")
            linked.append(time.perf_counter() - t0)
            backend.delete_volume(ImageInPool(pool, f"l{size_gib}-{i}", "qcow2"))
        t0 = time.perf_counter()
        backend.volume_from_template(image, pool, f"f{size_gib}", full_copy=True)
        full = time.perf_counter() - t0
        backend.delete_volume(ImageInPool(pool, f"f{size_gib}", "qcow2"))
        tmpl.unlink()
        rows.append((f"{size_gib} GiB", statistics.median(linked), full))
    return rows


def bench_s3(work: Path, size_mib: int, repeats: int) -> tuple[float, float, float]:
    moto = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if moto is None:
        raise SystemExit("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],  # noqa: S603
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id="AK",
                              aws_secret_access_key="SK", region_name="us-east-1")
        for _ in range(100):
            try:
                client.create_bucket(Bucket="bench")
                break
            except Exception:
                time.sleep(0.1)
        src = work / "obj.raw"
        md5 = write_pattern(src, size_mib * MiB, 1.0)
        client.upload_file(str(src), "bench", "template/t.raw")
        src.unlink()
        store = StoreRef("s3", "s3://bench", S3Location(endpoint=endpoint, bucket="bench", access_key="AK",
                                                        secret_key="SK", https=False))
        backend = LocalStorageBackend(work / "s3data")
        pool = PoolRef(uuid="s3bench", pool_type="Filesystem", path=str(work / "s3pool"))
        plain_times, ours_times, fetch_times = [], [], []
        client.download_file("bench", "template/t.raw", str(work / "warmup"))
        (work / "warmup").unlink()
        for i in range(repeats):
            dest = work / f"plain-{i}"
            t0 = time.perf_counter()
            client.download_file("bench", "template/t.raw", str(dest))
            plain_times.append(time.perf_counter() - t0)
            dest.unlink()

            dest = work / f"fetch-{i}"
            t0 = time.perf_counter()
            backend.stores.fetch(ImageOnStore(store, "template/t.raw", "raw", checksum="{MD5}" + md5), dest)
            fetch_times.append(time.perf_counter() - t0)
            dest.unlink()

            t0 = time.perf_counter()
            res = backend.template_to_pool(ImageOnStore(store, "template/t.raw", "raw", checksum=md5), pool,
                                           f"t-{i}")
            ours_times.append(time.perf_counter() - t0)
            backend.delete_volume(ImageInPool(pool, res.path, "raw"))
        mib = float(size_mib)
        return mib / min(plain_times), mib / min(fetch_times), mib / min(ours_times)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--fill", type=float, default=0.5, help="fraction of each template holding data")
    parser.add_argument("--repeats", type=int, default=10, help="linked clones per template")
    parser.add_argument("--s3-mib", type=int, default=256, help="size of the S3 object")
    parser.add_argument("--s3-repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hvbench-", dir=args.dir))
    try:
        print(f"# disk creation from a qcow2 template ({args.fill:.0%} of it holding data)")
        print(f"{'template':>10} {'linked clone (median)':>22} {'full copy':>12} {'full/linked':>12}")
        for label, linked, full in bench_clones(work, args.fill, args.repeats):
            verdict = "ok" if linked < 0.050 else "OVER 50 ms TARGET"
            print(f"{label:>10} {linked * 1000:>19.1f} ms {full:>10.2f} s {full / linked:>11.0f}x  {verdict}")
        print(f"\n# S3 download of a {args.s3_mib} MiB template from moto_server on 127.0.0.1 (best of "
              f"{args.s3_repeats})")
        plain, fetch, ours = bench_s3(work, args.s3_mib, args.s3_repeats)
        print(f"{'plain boto3 download_file':>40}: {plain:8.1f} MiB/s  (baseline)")
        print(f"{'hvcloud fetch + checksum':>40}: {fetch:8.1f} MiB/s  ({fetch / plain:.0%} of baseline)")
        print(f"{'hvcloud template_to_pool (all checks)':>40}: {ours:8.1f} MiB/s  ({ours / plain:.0%} of baseline)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
