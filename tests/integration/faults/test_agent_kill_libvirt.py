"""The agent SIGKILLed during concurrent deploys on a real libvirt host (QEMU/TCG guests), issue 7.

Same four checks as the simulator variant, from the hypervisor's side: every domain libvirt runs for
this run is a VM the server knows (and lists Running), every job finished or failed with a reason, the
pool directory holds no disk without a live volume, capacity equals a recount. The fixtures remove
every domain of the run afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcloud.storage import guest_image
from tests.integration.server.fault_scenarios import LibvirtHost, cloud_stack, libvirt_agent_killed_mid_deploy
from tests.support.postgres import fresh_pg_database

pytestmark = [pytest.mark.libvirt, pytest.mark.postgres]

#: 20 small TCG guests fit this 2-core machine: they run only for the seconds the scenario needs
DEPLOYS = 20


def test_libvirt_agent_killed_during_deploys(tmp_path: Path, libvirt_ok: None, guest: guest_image.GuestImage,
                                             bridge: str, suffix: str) -> None:
    host = LibvirtHost(bridge=bridge, image=guest.qcow2, suffix=suffix)
    with fresh_pg_database() as url, cloud_stack(tmp_path, url, libvirt=host) as cloud:
        result = libvirt_agent_killed_mid_deploy(cloud, suffix, DEPLOYS)
    print(result.figures(), result.notes)
    assert result.succeeded + result.rolled_back == DEPLOYS
    assert all(reason for reason in result.notes["failure reasons"])
    assert result.violations == []
