"""Settings of the libvirt driver and the choice between KVM and software emulation (TCG)."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass

from hvcloud.hypervisor.libvirt.domain_xml import XmlSettings

_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01
_KVM_CREATE_VCPU = 0xAE41


def kvm_usable(dev: str = "/dev/kvm") -> bool:
    """True when /dev/kvm opens and a VM with one vCPU can be created in it."""
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, _KVM_GET_API_VERSION) != 12:
            return False
        vm_fd = fcntl.ioctl(fd, _KVM_CREATE_VM, 0)
        try:
            os.close(fcntl.ioctl(vm_fd, _KVM_CREATE_VCPU, 0))
        finally:
            os.close(vm_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def default_domain_type() -> str:
    """``HVCLOUD_LIBVIRT_DOMAIN_TYPE`` if set, else ``kvm`` when usable, else ``qemu``."""
    forced = os.environ.get("HVCLOUD_LIBVIRT_DOMAIN_TYPE", "").strip()
    if forced in ("kvm", "qemu"):
        return forced
    return "kvm" if kvm_usable() else "qemu"


def unusable_reason(uri: str = "qemu:///system", domain_type: str = "qemu", arch: str = "x86_64") -> str | None:
    """Why libvirt at ``uri`` cannot run ``domain_type`` guests of ``arch``, or None when it can: the
    daemon answers and its QEMU driver reports domain capabilities for that type (which needs the
    emulator binary)."""
    try:
        import libvirt
    except ImportError as exc:
        return f"libvirt-python is not installed ({exc})"
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        return f"libvirtd does not answer at {uri}: {exc.get_error_message()}"
    try:
        conn.getDomainCapabilities(None, arch, None, domain_type, 0)
    except libvirt.libvirtError as exc:
        return f"libvirt at {uri} cannot run {domain_type} guests of {arch}: {exc.get_error_message()}"
    finally:
        conn.close()
    return None


@dataclass(frozen=True)
class LibvirtConfig:
    uri: str = "qemu:///system"
    domain_type: str | None = None
    vnc_listen: str = "127.0.0.1"
    console_log_dir: str = "/var/log/hvcloud/console"
    default_bridge: str | None = None
    local_pool_dir: str | None = None
    machine: str = "pc"
    #: extra seconds to wait for a hot-unplugged disk to leave a running guest
    detach_timeout: float = 15.0
    nic_rate_limits: bool = True

    def xml_settings(self) -> XmlSettings:
        return XmlSettings(
            domain_type=self.domain_type or default_domain_type(),
            vnc_listen=self.vnc_listen,
            console_log_dir=self.console_log_dir,
            machine=self.machine,
            default_bridge=self.default_bridge,
            nic_rate_limits=self.nic_rate_limits,
        )
