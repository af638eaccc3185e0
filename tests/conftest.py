from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent_harness import AgentHarness


@pytest.fixture
def agent(tmp_path: Path) -> AgentHarness:
    return AgentHarness(tmp_path / "agent")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 server (moto) on 127.0.0.1 for the whole run, as ``host:port``; tests make their own
    buckets."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()
