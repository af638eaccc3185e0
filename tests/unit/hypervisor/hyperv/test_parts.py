"""The small pieces: WQL builder, job waiter, state map, PNG, CIM-XML/KVP parsing."""

from __future__ import annotations

import threading

import pytest

from hvcloud.hypervisor.driver import PowerState, VmState, power_state_of
from hvcloud.hypervisor.hyperv import cimxml, jobs, rgb565, wql
from hvcloud.hypervisor.hyperv.errors import (
    HyperVInvalidState,
    HyperVJobCancelled,
    HyperVJobTimeout,
    HyperVNotSupported,
    WmiError,
)
from hvcloud.hypervisor.hyperv.kvp import parse_kvp_items
from hvcloud.hypervisor.hyperv.states import vm_state_of
from tests.support.hyperv_fake import HyperVModel

from .conftest import FakeTime


def test_wql_quotes_values_and_refuses_hostile_ones() -> None:
    assert wql.select("Msvm_ComputerSystem", {"ElementName": "vm", "EnabledState": 2}) == \
        "SELECT * FROM Msvm_ComputerSystem WHERE ElementName = 'vm' AND EnabledState = 2"
    assert wql.select("X", {"A": "it's"}) == "SELECT * FROM X WHERE A = \"it's\""
    assert wql.select("X", {"B": True}) == "SELECT * FROM X WHERE B = TRUE"
    for bad in ("a'\"b", "x\x00", "line\nbreak", "y" * 5000):
        with pytest.raises(wql.WqlError):
            wql.select("X", {"A": bad})
    for name in ("X; DROP", "X WHERE 1=1", "", "1abc"):
        with pytest.raises(wql.WqlError):
            wql.select(name)
    with pytest.raises(wql.WqlError):
        wql.select("X", {"A = 1 OR B": "x"})


def _job_out(model: HyperVModel) -> dict[str, object]:
    conn = model.connection()
    vssd = conn.new_instance("Msvm_VirtualSystemSettingData")
    vssd["ElementName"] = "vm"
    vsms = conn.query("Msvm_VirtualSystemManagementService")[0]
    return conn.invoke(vsms, "DefineSystem", SystemSettings=conn.embed(vssd))


def test_job_wait_is_bounded_and_cancellable(model: HyperVModel) -> None:
    t = FakeTime()
    clock = jobs.Clock(now=t.now, sleep=t.sleep)
    model.hang_next_job("DefineSystem")
    out = _job_out(model)
    with pytest.raises(HyperVJobTimeout, match="after 5 s"):
        jobs.check(model.connection(), out, "define", jobs.JobPolicy(timeout=5, clock=clock))
    assert model.connection().get(str(out["Job"]))["JobState"] == 8
    cancel = threading.Event()
    cancel.set()
    model.hang_next_job("DefineSystem")
    out = _job_out(model)
    with pytest.raises(HyperVJobCancelled):
        jobs.check(model.connection(), out, "define",
                   jobs.JobPolicy(timeout=5, clock=clock, cancel=cancel))


def test_return_codes_become_typed_errors(model: HyperVModel) -> None:
    conn = model.connection()
    policy = jobs.JobPolicy()
    with pytest.raises(HyperVInvalidState, match="Invalid state for this operation"):
        jobs.check(conn, {"ReturnValue": 32775}, "start", policy)
    with pytest.raises(HyperVNotSupported):
        jobs.check(conn, {"ReturnValue": 32770}, "x", policy)
    assert jobs.check(conn, {"ReturnValue": 32775}, "x", policy, success=(0, 32775)) is None
    with pytest.raises(WmiError):
        jobs.check(conn, {"ReturnValue": 4096, "Job": None}, "x", policy)
    with pytest.raises(WmiError):
        jobs.check(conn, {}, "x", policy)


@pytest.mark.parametrize(("value", "state", "power"), [
    (2, VmState.RUNNING, PowerState.POWER_ON), (3, VmState.STOPPED, PowerState.POWER_OFF),
    (6, VmState.SAVED, PowerState.POWER_UNKNOWN), (9, VmState.PAUSED, PowerState.POWER_UNKNOWN),
    (32768, VmState.PAUSED, PowerState.POWER_UNKNOWN),
    (32769, VmState.SAVED, PowerState.POWER_UNKNOWN),
    (32770, VmState.STARTING, PowerState.POWER_ON),
    (32771, VmState.SNAPSHOTTING, PowerState.POWER_UNKNOWN),
    (32773, VmState.SAVING, PowerState.POWER_ON), (32774, VmState.STOPPING, PowerState.POWER_OFF),
    (32776, VmState.PAUSING, PowerState.POWER_UNKNOWN),
    (32777, VmState.RESUMING, PowerState.POWER_ON), (32781, VmState.RUNNING, PowerState.POWER_ON),
    (12345, VmState.UNKNOWN, PowerState.POWER_UNKNOWN), (None, VmState.UNKNOWN,
                                                         PowerState.POWER_UNKNOWN),
])
def test_enabled_state_mapping_follows_the_reference(value: int | None, state: VmState,
                                                     power: PowerState) -> None:
    assert vm_state_of(value) == state
    assert power_state_of(vm_state_of(value)) == power


def test_rgb565_rejects_wrong_sizes() -> None:
    with pytest.raises(ValueError):
        rgb565.to_image(b"\x00" * 7, 2, 2)
    with pytest.raises(ValueError):
        rgb565.to_image(b"", 0, 0)
    assert rgb565.to_image(b"\xff\xff", 1, 1).tobytes() == b"\xff\xff\xff"


def test_kvp_parsing_survives_hostile_guests() -> None:
    good = cimxml.dump("Msvm_KvpExchangeDataItem", {"Name": "k", "Data": "v", "Source": 1},
                       {"Name": "string", "Data": "string", "Source": "uint16"})
    bomb = ('<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            '<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Name" TYPE="string">'
            '<VALUE>&b;</VALUE></PROPERTY></INSTANCE>')
    items = [good, "<not xml", bomb, "x" * (cimxml.MAX_TEXT + 1), 42,
             '<INSTANCE CLASSNAME="Other"><PROPERTY NAME="Name" TYPE="string"><VALUE>z</VALUE>'
             '</PROPERTY></INSTANCE>',
             '<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Source" '
             'TYPE="uint16"><VALUE>nan</VALUE></PROPERTY></INSTANCE>']
    assert parse_kvp_items(items) == {"k": "v"}
    assert parse_kvp_items([good] * 5000) == {"k": "v"}
    assert parse_kvp_items(None) == {}
