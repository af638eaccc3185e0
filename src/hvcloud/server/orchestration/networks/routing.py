"""What a VM's life asks of its networks' virtual routers.

The VM manager calls these around its own steps; they implement a network the first time one of
its VMs starts (segment id taken, router started on a host) and keep the router's entries (lease,
DNS name, metadata, password) in step with the VM.

CONTRACT ONLY in this commit: the router orchestration (issue 15) fills these in. Until then they do
nothing, and VMs on zones without guest networks are unaffected either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hvcloud.server.orchestration.vm.steps import Steps


async def prepare_vm_start(steps: Steps, vm_id: str, host_id: str) -> None:
    """Before the VM's StartCommand goes to ``host_id``: implement each network of the VM's NICs that
    is not implemented yet (segment id, router running) and publish the VM's entries on each
    network's router. Raises ``StepFailed`` when a router cannot be reached or refuses."""


async def withdraw_vm(steps: Steps, vm_id: str, nic_ids: Sequence[str] | None = None) -> None:
    """After the VM (or the NICs ``nic_ids``) left its networks: withdraw their entries from the
    routers. Best effort: a router that cannot be reached is corrected on its next restart."""


async def refresh_vm_data(steps: Steps, vm_id: str) -> None:
    """The VM's user data, SSH keys or password changed: push its metadata (and password) again to
    the routers of its networks, if they run."""


async def shutdown_network(steps: Steps, network_id: str, *, destroy: bool) -> None:
    """Stop the network's router and give its segment id back (the network returns to Allocated);
    ``destroy``: the router is destroyed too (deleteNetwork, network garbage collection)."""
