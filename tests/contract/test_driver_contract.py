"""Issue 8: one contract suite, run unchanged against every driver (see conftest.py for the
``driver`` fixture and the capability table). The check bodies live in
:mod:`hvcloud.hypervisor.contract` so ``deploy/windows/smoke_test.py`` runs the same ones on a real
Hyper-V host."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hvcloud.hypervisor import contract
from hvcloud.hypervisor.contract import CapabilityMissing, ContractEnv


def run(check: Callable[[ContractEnv], None], env: ContractEnv) -> None:
    try:
        check(env)
    except CapabilityMissing as exc:
        pytest.skip(str(exc))


def test_define_reads_back_spec(env: ContractEnv) -> None:
    run(contract.check_define_reads_back_spec, env)


def test_define_twice_fails(env: ContractEnv) -> None:
    run(contract.check_define_twice_fails, env)


def test_missing_vm(env: ContractEnv) -> None:
    run(contract.check_missing_vm, env)


def test_start_stop(env: ContractEnv) -> None:
    run(contract.check_start_stop, env)


def test_power_state_mapping(env: ContractEnv) -> None:
    run(contract.check_power_state_mapping, env)


def test_pause_resume(env: ContractEnv) -> None:
    run(contract.check_pause_resume, env)


def test_list_vms(env: ContractEnv) -> None:
    run(contract.check_list_vms, env)


def test_attach_detach_disk(env: ContractEnv) -> None:
    run(contract.check_attach_detach_disk, env)


def test_resize_disk_of_a_stopped_vm(env: ContractEnv) -> None:
    run(contract.check_resize_disk_of_a_stopped_vm, env)


def test_nic_vlan(env: ContractEnv) -> None:
    run(contract.check_nic_vlan, env)


def test_nic_plug_unplug(env: ContractEnv) -> None:
    run(contract.check_nic_plug_unplug, env)


def test_nic_hotplug(env: ContractEnv) -> None:
    run(contract.check_nic_hotplug, env)


def test_vxlan_nic(env: ContractEnv) -> None:
    run(contract.check_vxlan_nic, env)


def test_console(env: ContractEnv) -> None:
    run(contract.check_console, env)


def test_screenshot(env: ContractEnv) -> None:
    run(contract.check_screenshot, env)


def test_undefine_keeps_disks(env: ContractEnv) -> None:
    run(contract.check_undefine_keeps_disks, env)


def test_every_check_has_a_test() -> None:
    names = {c.__name__.removeprefix("check_") for c in contract.CHECKS}
    assert names == {n.removeprefix("test_") for n in globals() if n.startswith("test_")} - {
        "every_check_has_a_test"}
