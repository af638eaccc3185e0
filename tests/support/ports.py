"""Free loopback ports and addresses, so suites running side by side do not collide."""

from __future__ import annotations

import ipaddress
import random
import socket


def free_port(addresses: list[str] | str = "127.0.0.1") -> int:
    """A TCP port that is free on every one of ``addresses`` (one address or a list)."""
    addresses = [addresses] if isinstance(addresses, str) else addresses
    for _ in range(200):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = int(s.getsockname()[1])
        ok = True
        for addr in addresses[1:]:
            with socket.socket() as s:
                try:
                    s.bind((addr, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no common free port")


def loopback_block(count: int) -> list[str]:
    """``count`` consecutive loopback addresses from a random 127.X.Y.1, as the agent's multi-host mode
    numbers them from the first (past .255 into the next /24: a thousand hosts span four)."""
    first = ipaddress.ip_address(f"127.{random.randint(2, 250)}.{random.randint(2, 200)}.1")
    return [str(first + i) for i in range(count)]
