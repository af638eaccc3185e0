from hvcloud.hypervisor.driver import PowerState, VmState, power_state_of


def test_every_vm_state_maps_to_a_cloudstack_power_state() -> None:
    for state in VmState:
        assert power_state_of(state) in set(PowerState)


def test_power_mapping_follows_the_hyperv_agent() -> None:
    assert power_state_of(VmState.RUNNING) == "PowerOn"
    assert power_state_of(VmState.STOPPED) == "PowerOff"
    assert power_state_of(VmState.PAUSED) == "PowerUnknown"
    assert power_state_of(VmState.STOPPING) == "PowerOff"
