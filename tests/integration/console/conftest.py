"""Fixtures of the console proxy suite: a server database (SQLite, migrated and seeded), real QEMU
VNC servers, and a proxy in a thread of the test process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.console_proxy import ProxyThread, proxy_config
from tests.support.console_world import ConsoleWorld
from tests.support.vnc_servers import VncServer, qemu_missing, vnc_servers

VNC_PASSWORD = "s3cr3tpw"


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    w = ConsoleWorld(tmp_path_factory.mktemp("console") / "server")
    yield w
    w.close()


@pytest.fixture(scope="package")
def vnc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VncServer]:
    reason = qemu_missing()
    if reason:
        pytest.skip(reason)
    with vnc_servers(1, VNC_PASSWORD, workdir=tmp_path_factory.mktemp("vnc")) as (server,):
        yield server


@pytest.fixture(scope="package")
def proxy(world: ConsoleWorld) -> Iterator[ProxyThread]:
    with ProxyThread(proxy_config(world.key, world.db_url, max_frame_bytes=64 * 1024)) as p:
        yield p


@pytest.fixture
def vm(world: ConsoleWorld) -> str:
    return world.add_vm()
