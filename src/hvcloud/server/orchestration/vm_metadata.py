"""What a VM's router serves it: CloudStack's ``VmDataCommand.vmData`` and the password to save.

:func:`vm_data` is a pure function of plain values, so the router orchestration builds the
``VmDataCommand`` from it without reading anything here. The entries, their order and contents are
CloudStack's (``CommandSetupHelper.generateVmDataCommand``):

``userdata/user-data`` (base64 as stored; the router decodes it), ``metadata/service-offering``,
``availability-zone``, ``local-ipv4``, ``local-hostname``, one ``metadata/<key>`` per user data
detail, ``public-ipv4`` and ``public-hostname`` (in a shared network the VM's own address and host
name; in an isolated one the public address, given, or else the router's), ``instance-id`` and
``vm-id`` (both the VM's UUID), ``public-keys``, ``cloud-identifier`` (``CloudStack-{<id>}`` or
empty) and ``hypervisor-host-name``. Text names go through CloudStack's ``unicodeEscape``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import VMInstance
from hvcloud.server.orchestration.user_data import load_details

USERDATA_DIR = "userdata"
METADATA_DIR = "metadata"

Entry = tuple[str, str, str | None]


@dataclass(frozen=True)
class VmDataInput:
    """Everything :func:`vm_data` needs, as plain values (see :func:`input_for`)."""

    vm_id: str
    hostname: str
    service_offering: str
    zone_name: str
    guest_ip: str
    #: a shared network (or a basic zone): the VM's public address is its guest address
    shared_network: bool = True
    public_ip: str | None = None
    router_public_ip: str | None = None
    public_keys: str | None = None
    user_data: str | None = None
    user_data_details: Mapping[str, str] = field(default_factory=dict)
    cloud_identifier: str | None = None
    hypervisor_host_name: str | None = None


def unicode_escape(text: str) -> str:
    """CloudStack's ``StringUtils.unicodeEscape``: every character above 0x7f as ``\\uXXXX``."""
    out = []
    for char in text:
        code = ord(char)
        if code <= 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:  # a UTF-16 surrogate pair, as a Java string holds it
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


def vm_data(vm: VmDataInput) -> list[Entry]:
    """The ``[folder, file, contents]`` entries of one VM, in CloudStack's order."""
    entries: list[Entry] = [
        (USERDATA_DIR, "user-data", vm.user_data),
        (METADATA_DIR, "service-offering", unicode_escape(vm.service_offering)),
        (METADATA_DIR, "availability-zone", unicode_escape(vm.zone_name)),
        (METADATA_DIR, "local-ipv4", vm.guest_ip),
        (METADATA_DIR, "local-hostname", unicode_escape(vm.hostname)),
    ]
    entries += [(METADATA_DIR, key, value) for key, value in vm.user_data_details.items()]
    if vm.shared_network:
        entries += [(METADATA_DIR, "public-ipv4", vm.guest_ip),
                    (METADATA_DIR, "public-hostname", unicode_escape(vm.hostname))]
    else:
        public = vm.public_ip or vm.router_public_ip
        if public is not None:
            entries += [(METADATA_DIR, "public-ipv4", public), (METADATA_DIR, "public-hostname", public)]
    entries += [
        (METADATA_DIR, "instance-id", vm.vm_id),
        (METADATA_DIR, "vm-id", vm.vm_id),
        (METADATA_DIR, "public-keys", vm.public_keys),
        (METADATA_DIR, "cloud-identifier", f"CloudStack-{{{vm.cloud_identifier}}}" if vm.cloud_identifier else ""),
        (METADATA_DIR, "hypervisor-host-name", vm.hypervisor_host_name),
    ]
    return entries


def input_for(vm: VMInstance, *, guest_ip: str, zone_name: str, service_offering: str,
              shared_network: bool = True, public_ip: str | None = None, router_public_ip: str | None = None,
              cloud_identifier: str | None = None, hypervisor_host_name: str | None = None) -> VmDataInput:
    """The :class:`VmDataInput` of a VM row plus what the caller knows about its network."""
    return VmDataInput(vm_id=vm.id, hostname=vm.name, service_offering=service_offering, zone_name=zone_name,
                       guest_ip=guest_ip, shared_network=shared_network, public_ip=public_ip,
                       router_public_ip=router_public_ip, public_keys=vm.ssh_public_keys or None,
                       user_data=vm.user_data or None, user_data_details=load_details(vm.user_data_details),
                       cloud_identifier=cloud_identifier, hypervisor_host_name=hypervisor_host_name)


def password_for_router(vm: VMInstance, box: SecretBox) -> str | None:
    """The password to push with ``SavePasswordCommand``: set at deploy or by
    ``resetPasswordForVirtualMachine`` on a password-enabled template and not handed to the routers
    yet; None otherwise (a guest that changed its password is not reset at each boot). Once every
    router of the VM took it, call :func:`password_saved` in the same transaction as the success."""
    if not vm.password_enc or not vm.password_pending:
        return None
    return box.decrypt(vm.password_enc)


def password_saved(vm: VMInstance) -> None:
    """The routers have the VM's password: it is not pushed again until it changes. ``getVMPassword``
    still answers it (encrypted with the VM's key)."""
    vm.password_pending = False
