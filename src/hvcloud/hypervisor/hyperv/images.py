"""Virtual hard disks through ``Msvm_ImageManagementService`` (the Hyper-V role's own VHD/VHDX
code): what the storage backend asks Hyper-V for when a file format is only Hyper-V's to write,
such as differencing and dynamic VHDX disks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from hvcloud import logs
from hvcloud.hypervisor.driver import DriverError, NotSupported
from hvcloud.hypervisor.hyperv import cimxml, jobs
from hvcloud.hypervisor.hyperv.connection import WmiConnection, WmiObject

DiskFormat = Literal["vhd", "vhdx"]
_FORMAT = {"vhd": 2, "vhdx": 3}
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4

log = logs.get(__name__)


class ImageManagement:
    """Creates and resizes disks; every call waits for its job (bounded by the policy)."""

    def __init__(self, conn: WmiConnection, policy: Callable[[], jobs.JobPolicy]) -> None:
        self._conn = conn
        self._policy = policy
        self._ims: WmiObject | None = None

    def _service(self) -> WmiObject:
        if self._ims is None:
            found = self._conn.query("Msvm_ImageManagementService")
            if not found:
                raise DriverError("Msvm_ImageManagementService not found: is the Hyper-V role installed?")
            self._ims = found[0]
        return self._ims

    def _create(self, operation: str, **settings: object) -> None:
        sd = self._conn.new_instance("Msvm_VirtualHardDiskSettingData")
        for key, value in settings.items():
            sd[key] = value
        out = self._conn.invoke(self._service(), "CreateVirtualHardDisk",
                                VirtualDiskSettingData=self._conn.embed(sd))
        jobs.check(self._conn, out, operation, self._policy())

    def create_dynamic(self, path: str, size: int, fmt: DiskFormat = "vhdx") -> None:
        self._create(f"creating {path}", Path=path, Type=DYNAMIC, Format=_FORMAT[fmt],
                     MaxInternalSize=size)

    def create_differencing(self, path: str, parent: str, fmt: DiskFormat = "vhdx") -> None:
        self._create(f"creating {path} as a child of {parent}", Path=path, Type=DIFFERENCING,
                     Format=_FORMAT[fmt], ParentPath=parent)

    def settings(self, path: str) -> dict[str, Any]:
        """The disk's Msvm_VirtualHardDiskSettingData (Type, Format, ParentPath, MaxInternalSize),
        from GetVirtualHardDiskSettingData's embedded-instance out-parameter."""
        out = self._conn.invoke(self._service(), "GetVirtualHardDiskSettingData", Path=path)
        jobs.check(self._conn, out, f"reading {path}", self._policy())
        text = out.get("SettingData")
        if not isinstance(text, str) or not text:
            raise DriverError(f"Hyper-V returned no settings for {path}")
        try:
            class_name, props = cimxml.load(text)
        except cimxml.CimXmlError as exc:
            raise DriverError(f"bad settings for {path} from Hyper-V: {exc}") from exc
        if class_name != "Msvm_VirtualHardDiskSettingData":
            raise DriverError(f"Hyper-V described {path} as a {class_name}")
        return props

    def is_differencing(self, path: str) -> bool:
        props = self.settings(path)
        return str(props.get("Type")) == str(DIFFERENCING) or bool(props.get("ParentPath"))

    def resize(self, path: str, size: int, *, refuse_differencing: bool = True) -> None:
        """Grow the disk. ResizeVirtualHardDisk refuses a differencing disk (resize its parent
        chain's copy instead), so that is refused here with a clear error before asking
        (``refuse_differencing=False`` asks anyway: the smoke test proves the host's refusal)."""
        if refuse_differencing and self.is_differencing(path):
            log.info("disk.resize_refused", path=path, reason="differencing")
            raise NotSupported(f"{path} is a differencing disk, which Hyper-V cannot resize")
        out = self._conn.invoke(self._service(), "ResizeVirtualHardDisk", Path=path,
                                MaxInternalSize=size)
        jobs.check(self._conn, out, f"resizing {path}", self._policy())
