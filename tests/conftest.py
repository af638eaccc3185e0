from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent_harness import AgentHarness
from tests.support.browser import Browser, browser_missing, chrome


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


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Debian's chromium, headless, through Selenium; screenshots go to ``<basetemp>/artifacts``
    (or ``$HVCLOUD_TEST_ARTIFACTS``). Skips where chromium or chromedriver is missing."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    with chrome(tmp_path_factory.getbasetemp() / "artifacts") as b:
        yield b
