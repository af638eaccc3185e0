"""The virtual router's commands, NIC hot-plug and a router's StartCommand on the wire: Gson-shaped
samples round-trip exactly, answers have CloudStack's shape, hostile bodies are refused by field."""

from __future__ import annotations

import json

import pytest

from hvcloud.wire import answers as A
from hvcloud.wire import codec
from hvcloud.wire import commands as C
from hvcloud.wire import routing as R
from tests.support.wire_samples import DATA, sample


@pytest.mark.parametrize("name,cls", [
    ("DhcpEntryCommand", R.DhcpEntryCommand),
    ("VmDataCommand", R.VmDataCommand),
    ("SavePasswordCommand", R.SavePasswordCommand),
    ("DnsMasqConfigCommand", R.DnsMasqConfigCommand),
    ("IpAssocCommand", R.IpAssocCommand),
    ("PlugNicCommand", C.PlugNicCommand),
    ("UnPlugNicCommand", C.UnPlugNicCommand),
    ("StartCommand-router", C.StartCommand),
])
def test_samples_round_trip_exactly(name: str, cls: type) -> None:
    body = codec.decode_json((DATA / f"{name}.json").read_bytes())
    cmd = codec.parse_command(cls.FQCN, body)
    assert isinstance(cmd, cls)
    assert cmd.to_json_obj() == body


def test_router_name_and_fields_are_read() -> None:
    dhcp = codec.parse_command(R.DhcpEntryCommand.FQCN, sample("DhcpEntryCommand"))
    assert isinstance(dhcp, R.DhcpEntryCommand)
    assert dhcp.router_name() == "r-12-VM" and dhcp.vmMac == "02:00:3a:5e:00:07" and dhcp.isDefault is True
    data = codec.parse_command(R.VmDataCommand.FQCN, sample("VmDataCommand"))
    assert isinstance(data, R.VmDataCommand) and data.vmData is not None
    assert ["metadata", "public-hostname", None] in data.vmData
    unplug = codec.parse_command(C.UnPlugNicCommand.FQCN, sample("UnPlugNicCommand"))
    assert isinstance(unplug, C.UnPlugNicCommand)
    assert unplug.instanceName == "i-2-17-VM" and unplug.nic is not None and unplug.nic.mac == "02:00:2b:44:00:05"
    assert unplug.vlanToPersistenceMap == {"5001": True}


def test_command_without_access_details_has_no_router() -> None:
    body = sample("SavePasswordCommand")
    del body["accessDetails"]
    cmd = codec.parse_command(R.SavePasswordCommand.FQCN, body)
    assert isinstance(cmd, R.SavePasswordCommand) and cmd.router_name() is None


def test_answers_have_cloudstack_shape() -> None:
    out = json.loads(codec.encode_answer(R.IpAssocAnswer(result=False, results=["Failed", "Failed"],
                                                          details="no")))
    assert out == [{"com.cloud.agent.api.routing.IpAssocAnswer": {
        "result": False, "details": "no", "contextMap": {}, "results": ["Failed", "Failed"]}}]
    out = json.loads(codec.encode_answer(A.UnPlugNicAnswer(details="gone")))
    assert out == [{"com.cloud.agent.api.UnPlugNicAnswer": {"result": True, "details": "gone", "contextMap": {}}}]
    back = codec.parse_answer(codec.encode_answer(A.UnPlugNicAnswer(result=False, details="x")))
    assert isinstance(back, A.UnPlugNicAnswer) and back.result is False


@pytest.mark.parametrize("name,mutate,needle", [
    ("VmDataCommand", lambda b: b.update(vmData="userdata"), "vmData"),
    ("VmDataCommand", lambda b: b.update(vmData=[["a", "b", {"x": 1}]]), "vmData"),
    ("DhcpEntryCommand", lambda b: b.update(accessDetails=["router.name", "r-1-VM"]), "accessDetails"),
    ("DhcpEntryCommand", lambda b: b.update(isDefault="maybe"), "isDefault"),
    ("DnsMasqConfigCommand", lambda b: b.update(dhcpTOs={"routerIp": "10.1.1.1"}), "dhcpTOs"),
    ("IpAssocCommand", lambda b: b["ipAddresses"][0].update(accountId=2**63), "accountId"),
    ("UnPlugNicCommand", lambda b: b.update(nic="02:00:2b:44:00:05"), "nic"),
    ("UnPlugNicCommand", lambda b: b.update(vlanToPersistenceMap={"5001": {"a": 1}}), "vlanToPersistenceMap"),
    ("PlugNicCommand", lambda b: b["nic"].update(deviceId=2**31), "deviceId"),
])
def test_hostile_bodies_name_the_field(name: str, mutate: object, needle: str) -> None:
    body = sample(name)
    mutate(body)  # type: ignore[operator]
    cls = {"VmDataCommand": R.VmDataCommand, "DhcpEntryCommand": R.DhcpEntryCommand,
           "DnsMasqConfigCommand": R.DnsMasqConfigCommand, "IpAssocCommand": R.IpAssocCommand,
           "UnPlugNicCommand": C.UnPlugNicCommand, "PlugNicCommand": C.PlugNicCommand}[name]
    with pytest.raises(codec.WireError, match=needle):
        codec.parse_command(cls.FQCN, body)


def test_fields_out_of_order_and_unknown_fields_are_kept() -> None:
    body = sample("DhcpEntryCommand")
    shuffled = dict(reversed(list(body.items())))
    shuffled["futureField"] = {"nested": [1, 2]}
    cmd = codec.parse_command(R.DhcpEntryCommand.FQCN, shuffled)
    assert cmd.to_json_obj() == shuffled
