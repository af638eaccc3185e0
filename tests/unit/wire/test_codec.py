"""The Gson-shape codec against the reference's sample bodies and hostile input."""

from __future__ import annotations

import json

import pytest

from hvcloud.wire import answers as A
from hvcloud.wire import codec
from hvcloud.wire import commands as C
from hvcloud.wire.startup import StartupRoutingCommand
from hvcloud.wire.to import S3TO, NfsTO, PrimaryDataStoreTO, TemplateObjectTO, VolumeObjectTO
from tests.support.wire_samples import DATA, sample


def raw(name: str) -> bytes:
    return (DATA / f"{name}.json").read_bytes()


@pytest.mark.parametrize("name,fqcn", [
    ("StartCommand", C.StartCommand.FQCN),
    ("StopCommand", C.StopCommand.FQCN),
    ("CopyCommand-template-to-primary", C.CopyCommand.FQCN),
    ("CopyCommand-s3-to-primary", C.CopyCommand.FQCN),
    ("CopyCommand-template-to-volume", C.CopyCommand.FQCN),
    ("CreateObjectCommand", C.CreateObjectCommand.FQCN),
    ("PingRoutingCommand", C.PingRoutingCommand.FQCN),
    ("ModifyStoragePoolCommand", C.ModifyStoragePoolCommand.FQCN),
    ("AttachCommand-iso", C.AttachCommand.FQCN),
    ("GetVmStatsCommand", C.GetVmStatsCommand.FQCN),
    ("GetHostStatsCommand", C.GetHostStatsCommand.FQCN),
    ("GetStorageStatsCommand", C.GetStorageStatsCommand.FQCN),
    ("CheckOnHostCommand", C.CheckOnHostCommand.FQCN),
    ("DestroyCommand", C.DestroyCommand.FQCN),
    ("CreateCommand", C.CreateCommand.FQCN),
    ("ResizeVolumeCommand", C.ResizeVolumeCommand.FQCN),
    ("GetVncPortCommand", C.GetVncPortCommand.FQCN),
    ("GetVmThumbnailCommand", C.GetVmThumbnailCommand.FQCN),
])
def test_reference_samples_round_trip_exactly(name: str, fqcn: str) -> None:
    """Every sample decodes and re-encodes to the same JSON: Java names, wrappers, unknown keys."""
    body = codec.decode_json(raw(name))
    cmd = codec.parse_command(fqcn, body)
    assert cmd.to_json_obj() == body


def test_interface_fields_decode_to_their_classes() -> None:
    cmd = codec.parse_command(C.CopyCommand.FQCN, sample("CopyCommand-template-to-primary"))
    assert isinstance(cmd, C.CopyCommand)
    assert isinstance(cmd.srcTO, TemplateObjectTO) and isinstance(cmd.srcTO.imageDataStore, NfsTO)
    assert cmd.srcTO.imageDataStore.url == "cifs://10.1.1.1/secondary"
    assert cmd.srcTO.imageDataStore.role == "Image"
    assert isinstance(cmd.destTO, TemplateObjectTO)
    assert isinstance(cmd.destTO.imageDataStore, PrimaryDataStoreTO)
    assert cmd.destTO.imageDataStore.path == "E:\\Disks"
    assert cmd.wait == 10800


def test_s3_secret_is_kept_for_the_wire_but_not_shown_in_repr() -> None:
    cmd = codec.parse_command(C.CopyCommand.FQCN, sample("CopyCommand-s3-to-primary"))
    store = cmd.srcTO.imageDataStore  # type: ignore[attr-defined]
    assert isinstance(store, S3TO) and store.secretKey == "verysecret"
    assert "verysecret" not in repr(cmd)
    assert store.created == "May 19, 2013 4:17:25 PM"


def test_gson_html_escapes_are_decoded() -> None:
    cmd = codec.parse_command(C.StartCommand.FQCN, codec.decode_json(raw("StartCommand")))
    assert isinstance(cmd, C.StartCommand)
    assert cmd.secondaryStorage == "cifs://10.0.0.2/secondary?user=administrator&password=secret"


def test_iso_8859_1_body_is_accepted() -> None:
    body = '{"vmName":"i-2-17-VM","contextMap":{"note":"café"},"wait":0}'.encode("iso-8859-1")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    cmd = codec.parse_command(C.CheckVirtualMachineCommand.FQCN, codec.decode_json(body))
    assert cmd.contextMap == {"note": "café"}


def test_utf8_body_is_read_as_utf8() -> None:
    body = '{"vmName":"vm-ü","wait":0}'.encode()
    cmd = codec.parse_command(C.CheckVirtualMachineCommand.FQCN, codec.decode_json(body))
    assert isinstance(cmd, C.CheckVirtualMachineCommand) and cmd.vmName == "vm-ü"


def test_answers_are_class_wrapped_arrays_without_nulls() -> None:
    out = json.loads(codec.encode_answer(A.SetupAnswer(details="success - NOP")))
    assert out == [{"com.cloud.agent.api.SetupAnswer": {"result": True, "details": "success - NOP",
                                                        "contextMap": {}, "_reconnect": False}}]
    out = json.loads(codec.encode_answer(A.ReadyAnswer()))
    assert out == [{"com.cloud.agent.api.ReadyAnswer": {"result": True, "contextMap": {}}}]


def test_get_vnc_port_answer_has_no_context_map() -> None:
    out = json.loads(codec.encode_answer(A.GetVncPortAnswer(address="instanceId=abc", port=-9)))
    assert out == [{"com.cloud.agent.api.GetVncPortAnswer": {"result": True, "address": "instanceId=abc",
                                                             "port": -9}}]


def test_copy_answer_wraps_new_data() -> None:
    vol = VolumeObjectTO(uuid="u", path="u", size=10, format="QCOW2")
    out = json.loads(codec.encode_answer(A.CopyCmdAnswer(newData=vol)))
    fields = out[0]["org.apache.cloudstack.storage.command.CopyCmdAnswer"]
    assert fields["newData"] == {"org.apache.cloudstack.storage.to.VolumeObjectTO":
                                 {"uuid": "u", "path": "u", "size": 10, "format": "QCOW2"}}


def test_modify_storage_pool_answer_carries_cluster_children_list() -> None:
    out = json.loads(codec.encode_answer(A.ModifyStoragePoolAnswer()))
    fields = out[0]["com.cloud.agent.api.ModifyStoragePoolAnswer"]
    assert fields["datastoreClusterChildren"] == [] and fields["templateInfo"] == {}


def test_startup_array_keeps_unknown_fields() -> None:
    objs = codec.parse_wrapped_array(sample("StartupCommand"))
    assert isinstance(objs[0], StartupRoutingCommand)
    again = json.loads(codec.encode_wrapped_array(objs))
    assert again == sample("StartupCommand")


def test_vm_state_report_shape() -> None:
    raw_report = codec.encode_vm_state_report({"i-1-VM": "PowerOn", "r-4-VM": "PowerOff"})
    assert json.loads(raw_report) == [{"i-1-VM": "PowerOn"}, {"r-4-VM": "PowerOff"}]
    assert codec.parse_vm_state_report(raw_report) == {"i-1-VM": "PowerOn", "r-4-VM": "PowerOff"}


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("body,needle", [
    (b"", "empty"),
    (b"   ", "empty"),
    (b'{"vmName": "x"', "malformed JSON"),
    (b"{'vmName': 'x'}", "malformed JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"\xff\xfe\x00{", "malformed JSON"),
])
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, needle: str) -> None:
    with pytest.raises(codec.WireError, match=needle):
        codec.decode_json(body)


@pytest.mark.parametrize("body,needle", [
    ({"vmName": {"nested": 1}}, "vmName"),
    ({"vmName": "x", "wait": 2**31}, "wait"),
    ({"vmName": "x", "wait": "soon"}, "wait"),
    ({}, "vmName"),
    ([], "must be a JSON object"),
    ("text", "must be a JSON object"),
])
def test_wrong_types_and_missing_fields_name_the_field(body: object, needle: str) -> None:
    with pytest.raises(codec.WireError, match=needle):
        codec.parse_command(C.CheckVirtualMachineCommand.FQCN, body)


def test_long_fields_refuse_numbers_beyond_java_long() -> None:
    body = sample("CreateObjectCommand")
    body["data"]["org.apache.cloudstack.storage.to.VolumeObjectTO"]["size"] = 2**63
    with pytest.raises(codec.WireError, match="size"):
        codec.parse_command(C.CreateObjectCommand.FQCN, body)


def test_unknown_transfer_object_class_is_refused() -> None:
    body = sample("CreateObjectCommand")
    body["data"] = {"com.example.EvilTO": {"path": "/etc/shadow"}}
    with pytest.raises(codec.WireError, match="unknown transfer object class"):
        codec.parse_command(C.CreateObjectCommand.FQCN, body)


def test_data_store_in_a_data_field_is_refused() -> None:
    body = sample("CreateObjectCommand")
    body["data"] = {PrimaryDataStoreTO.FQCN: {"uuid": "x"}}
    with pytest.raises(codec.WireError, match="is not a DataTO"):
        codec.parse_command(C.CreateObjectCommand.FQCN, body)


def test_unknown_command_class() -> None:
    with pytest.raises(codec.UnknownCommand):
        codec.parse_command("com.cloud.agent.api.NoSuchCommand", {})


@pytest.mark.parametrize("body", [
    {"a": 1},
    [{"a": 1, "b": 2}],
    [{"com.example.Nope": {}}],
    [{"com.cloud.agent.api.StartupRoutingCommand": []}],
    [{"com.cloud.agent.api.StartupRoutingCommand": {"cpus": "many"}}],
])
def test_wrapped_arrays_refuse_bad_elements(body: object) -> None:
    with pytest.raises(codec.WireError):
        codec.parse_wrapped_array(body)


def test_answer_parsing_reads_element_zero() -> None:
    raw_answer = b'[{"com.cloud.agent.api.ReadyAnswer":{"result":false,"details":"no"}},{"x":{}}]'
    ans = codec.parse_answer(raw_answer)
    assert isinstance(ans, A.ReadyAnswer) and ans.result is False and ans.details == "no"
