"""The libvirt suite's fixtures, for the libvirt variant of the agent-kill scenario (the scenarios
themselves live in ``tests.integration.server.fault_scenarios``)."""

from tests.integration.libvirt.conftest import bridge, guest, libvirt_ok, suffix  # noqa: F401
