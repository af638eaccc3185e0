"""The supervisor's listening socket and its checks (``hvcloud.server.processes``)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from hvcloud.server import processes
from hvcloud.server.config import ServerConfig


def test_connections_accepted_from_the_shared_socket_have_nagle_off(tmp_path: Path) -> None:
    """asyncio sets TCP_NODELAY only on connections accepted from an IPPROTO_TCP socket; without it
    every API response waits for the client's delayed ACK."""
    config = ServerConfig.build(tmp_path, listen="127.0.0.1:0")
    sock = processes.bind(config)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted = writer.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0


def test_the_listen_address_in_use_is_an_os_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            processes.bind(ServerConfig.build(tmp_path, listen=f"127.0.0.1:{port}"))


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?cache=shared"])
def test_several_processes_refuse_an_in_memory_database(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="in-memory"):
        processes.check_shareable(ServerConfig.build(tmp_path, url))


@pytest.mark.parametrize("url", [None, "postgresql://u@127.0.0.1/x"])
def test_several_processes_accept_a_file_or_a_server(tmp_path: Path, url: str | None) -> None:
    processes.check_shareable(ServerConfig.build(tmp_path, url))


def test_switch_interval_defaults_short_and_refuses_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HVCLOUD_SWITCH_INTERVAL", raising=False)
    assert processes.switch_interval() == processes.SWITCH_INTERVAL < 0.005  # below CPython's default
    monkeypatch.setenv("HVCLOUD_SWITCH_INTERVAL", "0.005")
    assert processes.switch_interval() == 0.005
    for bad in ("fast", "0", "-1", "nan", "1e9", "0.00001"):
        monkeypatch.setenv("HVCLOUD_SWITCH_INTERVAL", bad)
        with pytest.raises(ValueError, match="HVCLOUD_SWITCH_INTERVAL"):
            processes.switch_interval()
