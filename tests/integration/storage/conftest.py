"""Fixtures for storage tests: small real images, an S3 server and HTTP servers on loopback."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import boto3
import pytest

from hvcloud.storage import qemu_img
from hvcloud.storage.backend import PoolRef, S3Location, StoreRef
from hvcloud.storage.local import LocalStorageBackend

MiB = 1 << 20

pytestmark = pytest.mark.skipif(not qemu_img.available(), reason="qemu-img is not installed")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A store directory with a 16 MiB qcow2, the same as raw and VHD, and a patterned raw."""
    store = tmp_path / "store"
    store.mkdir()
    raw = store / "tmpl.raw"
    with open(raw, "wb") as f:
        f.truncate(16 * MiB)
        for i in range(0, 16, 3):
            f.seek(i * MiB)
            f.write(f"hvcloud block {i}".encode() * 100)
    qemu_img.convert(str(raw), "raw", str(store / "tmpl.qcow2"), "qcow2")
    qemu_img.convert(str(raw), "raw", str(store / "tmpl.vhd"), "vhd")
    return store


@pytest.fixture
def backend(tmp_path: Path) -> LocalStorageBackend:
    return LocalStorageBackend(tmp_path / "data")


@pytest.fixture
def pool(tmp_path: Path) -> PoolRef:
    return PoolRef(uuid="pool-1", pool_type="Filesystem", path=str(tmp_path / "primary"))


@pytest.fixture
def local_store(images: Path) -> StoreRef:
    return StoreRef(kind="local", url=str(images))


@pytest.fixture
def s3_store(s3_endpoint: str, request: pytest.FixtureRequest) -> StoreRef:
    bucket = "hvtest-" + request.node.name.lower().replace("_", "-")[:40]
    loc = S3Location(endpoint=s3_endpoint, bucket=bucket, access_key="AK", secret_key="SK", https=False)
    boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="AK",
                 aws_secret_access_key="SK", region_name="us-east-1").create_bucket(Bucket=bucket)
    return StoreRef(kind="s3", url=f"s3://{bucket}", s3=loc)


class _Handler(http.server.SimpleHTTPRequestHandler):
    redirects: dict[str, str] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        target = self.redirects.get(self.path)
        if target is not None:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/stream/"):
            data = (Path(self.directory) / self.path.removeprefix("/stream/")).read_bytes()
            self.send_response(200)
            self.end_headers()  # no Content-Length: the body ends when the connection closes
            self.wfile.write(data)
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def http_server() -> Iterator[Callable[[Path, dict[str, str]], str]]:
    """Starts HTTP servers on 127.0.0.1 serving a directory; returns their base URLs."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path, redirects: dict[str, str] | None = None) -> str:
        handler = type("H", (_Handler,), {"redirects": redirects if redirects is not None else {}})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()
