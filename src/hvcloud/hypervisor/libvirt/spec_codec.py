"""VmSpec ⇄ JSON, for the hvcloud metadata element kept inside each libvirt domain.

The metadata is the driver's only memory: a fresh driver rebuilds every VmSpec from it. The VNC
password is never written here (it lives in the domain's ``<graphics passwd>``, which libvirt only
shows with the secure flag), so dumping the metadata cannot leak it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any, get_args

from hvcloud.hypervisor.driver import DiskDevice, DiskFormat, DiskSpec, DriverError, NicModel, NicSpec, VmSpec

SPEC_VERSION = 1
MAX_SPEC_JSON = 1 << 20


class CorruptMetadata(DriverError):
    """A domain's hvcloud metadata is not a VmSpec this driver wrote."""


def spec_to_json(spec: VmSpec) -> str:
    data = asdict(replace(spec, vnc_password=None))
    data["metadata"] = dict(spec.metadata)
    return json.dumps({"v": SPEC_VERSION, "spec": data}, sort_keys=True, separators=(",", ":"))


def _typed(obj: dict[str, Any], key: str, typ: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in obj:
        if default is ...:
            raise CorruptMetadata(f"metadata lacks {key!r}")
        return default
    val = obj[key]
    if val is None and default is None:
        return None
    if isinstance(val, bool) and typ is int:
        raise CorruptMetadata(f"metadata field {key!r} has the wrong type")
    if not isinstance(val, typ):
        raise CorruptMetadata(f"metadata field {key!r} has the wrong type")
    return val


def _choice(obj: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> Any:
    val = _typed(obj, key, str, default)
    if val not in allowed:
        raise CorruptMetadata(f"metadata field {key!r} has unknown value {val!r}")
    return val


def _disk(obj: Any) -> DiskSpec:
    if not isinstance(obj, dict):
        raise CorruptMetadata("a disk entry is not an object")
    return DiskSpec(
        slot=_typed(obj, "slot", int),
        device=_choice(obj, "device", get_args(DiskDevice), "disk"),
        path=_typed(obj, "path", str, None),
        format=_choice(obj, "format", get_args(DiskFormat), "qcow2"),
        read_only=_typed(obj, "read_only", bool, False),
        serial=_typed(obj, "serial", str, None),
        boot=_typed(obj, "boot", bool, False),
    )


def _nic(obj: Any) -> NicSpec:
    if not isinstance(obj, dict):
        raise CorruptMetadata("a NIC entry is not an object")
    return NicSpec(
        device_id=_typed(obj, "device_id", int),
        mac=_typed(obj, "mac", str),
        network=_typed(obj, "network", str, None),
        vlan=_typed(obj, "vlan", int, None),
        rate_mbps=_typed(obj, "rate_mbps", int, None),
        model=_choice(obj, "model", get_args(NicModel), "synthetic"),
        enabled=_typed(obj, "enabled", bool, True),
        vxlan=_typed(obj, "vxlan", int, None),
        security_groups=_typed(obj, "security_groups", bool, False),
        ips=_ips(_typed(obj, "ips", list, [])),
    )


def _ips(items: list[Any]) -> tuple[str, ...]:
    if len(items) > 64 or not all(isinstance(i, str) and len(i) <= 45 for i in items):
        raise CorruptMetadata("metadata field 'ips' must be a short list of addresses")
    return tuple(items)


def spec_from_json(text: str, vnc_password: str | None = None) -> VmSpec:
    if len(text) > MAX_SPEC_JSON:
        raise CorruptMetadata("metadata is too large")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CorruptMetadata(f"metadata is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != SPEC_VERSION or not isinstance(doc.get("spec"), dict):
        raise CorruptMetadata("metadata has an unknown version or shape")
    s: dict[str, Any] = doc["spec"]
    meta = _typed(s, "metadata", dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CorruptMetadata("metadata map must hold strings")
    return VmSpec(
        name=_typed(s, "name", str),
        vcpus=_typed(s, "vcpus", int),
        memory_mib=_typed(s, "memory_mib", int),
        uuid=_typed(s, "uuid", str, None),
        cpu_mhz=_typed(s, "cpu_mhz", int, None),
        disks=tuple(_disk(d) for d in _typed(s, "disks", list, [])),
        nics=tuple(_nic(n) for n in _typed(s, "nics", list, [])),
        boot_args=_typed(s, "boot_args", str, ""),
        vnc_password=vnc_password,
        os_type=_typed(s, "os_type", str, None),
        user_data=_typed(s, "user_data", str, None),
        metadata=meta,
    )
