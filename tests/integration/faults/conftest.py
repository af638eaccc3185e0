"""Fault scenarios reuse the server tests' process helpers (``tests/integration/server``)."""

import sys
from pathlib import Path

SERVER_TESTS = str(Path(__file__).resolve().parent.parent / "server")
if SERVER_TESTS not in sys.path:
    sys.path.insert(0, SERVER_TESTS)

# the libvirt suite's fixtures, for the libvirt variant of the agent-kill scenario
from tests.integration.libvirt.conftest import bridge, guest, libvirt_ok, suffix  # noqa: E402, F401
