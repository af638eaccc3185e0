"""CloudStack's VM and volume states and the transitions the VM manager allows.

The names are CloudStack's (``VirtualMachine.State``, ``Volume.State``) because clients key on them
(Ansible compares the lower-cased state). :func:`check` refuses an operation on a VM in a state that
does not allow it, with the 431 CloudStack answers.
"""

from __future__ import annotations

from hvcloud.server.errors import CS_INVALID_PARAMETER, PARAM_ERROR, CloudError

STARTING = "Starting"
RUNNING = "Running"
STOPPING = "Stopping"
STOPPED = "Stopped"
DESTROYED = "Destroyed"
EXPUNGING = "Expunging"
MIGRATING = "Migrating"
ERROR = "Error"
UNKNOWN = "Unknown"
VM_STATES = (STARTING, RUNNING, STOPPING, STOPPED, DESTROYED, EXPUNGING, MIGRATING, ERROR, UNKNOWN)

#: states in which a VM holds CPU and memory on a host
HOLDS_CAPACITY = (STARTING, RUNNING, STOPPING, MIGRATING)
#: states in which a VM may be running on its host: shown ``Unknown`` while that host is not Up
ON_HOST = (RUNNING, STOPPING, MIGRATING)

VOL_ALLOCATED = "Allocated"
VOL_CREATING = "Creating"
VOL_READY = "Ready"
VOL_RESIZING = "Resizing"
VOL_DESTROY = "Destroy"
#: its disk must be deleted: a failed job could not reach a host, the storage cleanup retries
VOL_EXPUNGING = "Expunging"
VOL_EXPUNGED = "Expunged"

#: which states each operation may start from
ALLOWED: dict[str, tuple[str, ...]] = {
    "start": (STOPPED,),
    "stop": (RUNNING, STARTING, STOPPING, STOPPED, ERROR, UNKNOWN),
    "reboot": (RUNNING,),
    "destroy": (STOPPED, RUNNING, ERROR, STARTING, STOPPING, UNKNOWN),
    "recover": (DESTROYED,),
    "expunge": (DESTROYED, ERROR, STOPPED, EXPUNGING),
    "scale": (STOPPED,),
    "update": (STOPPED, RUNNING, STARTING, STOPPING, ERROR, DESTROYED),
    "attach": (STOPPED, RUNNING),
}


def shown(state: str, host_up: bool | None) -> str:
    """The state the API reports. A VM on a host that stopped answering is ``Unknown`` (its power
    state is PowerUnknown); the stored state is kept, so the VM is itself again when the host is back
    and its report confirms or corrects it. ``host_up`` is None when the VM has no host."""
    return UNKNOWN if state in ON_HOST and host_up is False else state


class InvalidState(CloudError):
    """The operation is not allowed in the VM's state: CloudStack's 431 (InvalidParameterValue)."""

    def __init__(self, text: str) -> None:
        super().__init__(PARAM_ERROR, text, CS_INVALID_PARAMETER)


def check(operation: str, state: str, name: str) -> None:
    allowed = ALLOWED[operation]
    if state not in allowed:
        raise InvalidState(f"Unable to {operation} VM {name}: it is {state}; {operation} needs the VM to be "
                           f"{' or '.join(allowed)}")
