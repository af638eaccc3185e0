"""``Msvm_ComputerSystem.EnabledState`` → neutral VM state (and from there CloudStack's PowerState).

Both the V2 documented values (2, 3, 4, 6, 9, 10) and the vendor range Hyper-V still reports
(32768…32792) are mapped; critical variants map to their base state.
"""

from __future__ import annotations

from hvcloud.hypervisor.driver import VmState

ENABLED, DISABLED, SHUTTING_DOWN, OFFLINE, QUIESCE, STARTING_V2 = 2, 3, 4, 6, 9, 10

_BASE: dict[int, VmState] = {
    0: VmState.UNKNOWN,
    2: VmState.RUNNING,
    3: VmState.STOPPED,
    4: VmState.STOPPING,
    6: VmState.SAVED,
    9: VmState.PAUSED,
    10: VmState.STARTING,
    32768: VmState.PAUSED,
    32769: VmState.SAVED,
    32770: VmState.STARTING,
    32771: VmState.SNAPSHOTTING,
    32773: VmState.SAVING,
    32774: VmState.STOPPING,
    32776: VmState.PAUSING,
    32777: VmState.RESUMING,
    32779: VmState.SAVED,
    32780: VmState.SAVING,
}

# RunningCritical … FastSavingCritical, in the documented order
_CRITICAL = [VmState.RUNNING, VmState.STOPPED, VmState.STOPPING, VmState.SAVED, VmState.PAUSED,
             VmState.STARTING, VmState.RUNNING, VmState.SAVING, VmState.PAUSING,
             VmState.RESUMING, VmState.SAVED, VmState.SAVING]
for _offset, _state in enumerate(_CRITICAL):
    _BASE[32781 + _offset] = _state


def vm_state_of(enabled_state: int | None) -> VmState:
    if enabled_state is None:
        return VmState.UNKNOWN
    return _BASE.get(int(enabled_state), VmState.UNKNOWN)
