import libvirt
import pytest

from hvcloud.hypervisor.driver import VmState
from hvcloud.hypervisor.libvirt.driver import _state_of


class Dom:
    """Just the two calls the state mapping makes on a virDomain."""

    def __init__(self, state: int, reason: int = 0, saved: bool = False) -> None:
        self._state, self._reason, self._saved = state, reason, saved

    def state(self) -> list[int]:
        return [self._state, self._reason]

    def hasManagedSaveImage(self, flags: int) -> int:
        return int(self._saved)


@pytest.mark.parametrize(("dom", "expected"), [
    (Dom(libvirt.VIR_DOMAIN_RUNNING), VmState.RUNNING),
    (Dom(libvirt.VIR_DOMAIN_BLOCKED), VmState.RUNNING),
    (Dom(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER), VmState.PAUSED),
    (Dom(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SAVE), VmState.SAVING),
    (Dom(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT), VmState.SNAPSHOTTING),
    (Dom(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION), VmState.RUNNING),
    (Dom(libvirt.VIR_DOMAIN_SHUTDOWN), VmState.STOPPING),
    (Dom(libvirt.VIR_DOMAIN_SHUTOFF), VmState.STOPPED),
    (Dom(libvirt.VIR_DOMAIN_SHUTOFF, saved=True), VmState.SAVED),
    (Dom(libvirt.VIR_DOMAIN_CRASHED), VmState.STOPPED),
    (Dom(libvirt.VIR_DOMAIN_PMSUSPENDED), VmState.PAUSED),
    (Dom(libvirt.VIR_DOMAIN_NOSTATE), VmState.UNKNOWN),
])
def test_libvirt_states_map_like_the_reference(dom: Dom, expected: VmState) -> None:
    assert _state_of(dom) == expected
