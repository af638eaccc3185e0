"""HTTP image download benchmark: the shared download (``hvcloud.storage.http_fetch``, used by the
management server for registerTemplate and by agents for HTTP image stores) against a plain httpx
stream of the same file from the same loopback server into the same directory.

The baseline is the least any verified download does: stream to a file and SHA-256 the bytes.
hvcloud's path adds the URL/address checks, the pinned connection, per-read deadline checks, the
size cap and progress reporting (target: at least 90 % of the baseline). The plain stream without
a checksum is printed too, to show what hashing itself costs on this machine.

Usage: ``.venv/bin/python -m bench.http_download [--mib 256] [--repeats 3] [--dir DIR]``
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import structlog

from hvcloud.storage.http_fetch import download
from hvcloud.storage.limits import DownloadLimits
from hvcloud.storage.transfer import parse_checksum
from hvcloud.storage.url_rules import UrlPolicy

MiB = 1 << 20


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def plain_stream(url: str, dest: Path, algorithm: str | None = None) -> None:
    digest = hashlib.new(algorithm) if algorithm else None
    with httpx.Client(trust_env=False) as client, client.stream("GET", url) as resp, open(dest, "wb") as out:
        resp.raise_for_status()
        for chunk in resp.iter_raw():
            out.write(chunk)
            if digest is not None:
                digest.update(chunk)


def best_mib_per_s(run: Callable[[Path], object], work: Path, size: int, repeats: int) -> float:
    best = float("inf")
    for i in range(repeats):
        dest = work / f"out-{i}"
        start = time.perf_counter()
        run(dest)
        best = min(best, time.perf_counter() - start)
        assert dest.stat().st_size == size
        dest.unlink()
    return size / MiB / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the image served")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        served = work / "served"
        served.mkdir()
        data = bytes(range(256)) * (args.mib * MiB // 256)
        (served / "image.raw").write_bytes(data)
        checksum = parse_checksum("{SHA-256}" + hashlib.sha256(data).hexdigest())
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/image.raw"
        limits = DownloadLimits(max_bytes=len(data))
        done: list[int] = []
        try:
            unhashed = best_mib_per_s(lambda d: plain_stream(url, d), work, len(data), args.repeats)
            plain = best_mib_per_s(lambda d: plain_stream(url, d, "sha256"), work, len(data), args.repeats)
            ours = best_mib_per_s(
                lambda d: download(url, d, UrlPolicy(allow_loopback=True), limits, checksum=checksum,
                                   progress=lambda n, _t: done.append(n)),
                work, len(data), args.repeats)
        finally:
            httpd.shutdown()
            httpd.server_close()
    print(f"# HTTP download of a {args.mib} MiB image from 127.0.0.1 (best of {args.repeats})")
    print(f"{'plain httpx stream, no checksum':>44}: {unhashed:8.1f} MiB/s  (reference)")
    print(f"{'plain httpx stream + SHA-256':>44}: {plain:8.1f} MiB/s  (baseline)")
    print(f"{'hvcloud download (checks, SHA-256, progress)':>44}: {ours:8.1f} MiB/s  "
          f"({ours / plain:.0%} of baseline; target >= 90 %)")


if __name__ == "__main__":
    main()
