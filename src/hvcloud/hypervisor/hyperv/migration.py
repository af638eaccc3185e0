"""The Hyper-V driver's migration part: live (or saved) migration to another host, export and
import of a VM with its snapshots.
"""

from __future__ import annotations

import ntpath

from hvcloud import logs
from hvcloud.hypervisor.driver import (
    VmAlreadyExists,
    VmInfo,
    VmState,
)
from hvcloud.hypervisor.hyperv.session import (
    RSC_SAVE,
    Part,
    WmiSession,
    path_of,
)
from hvcloud.hypervisor.hyperv.vmops import VmOps

log = logs.get(__name__)

MIGRATE_VM, MIGRATE_VM_AND_STORAGE = 32768, 32771
TRANSPORT_TCP = 5


def _export_snapshots(config_file: str) -> str:
    """``<export>\\Snapshots`` for ``<export>\\Virtual Machines\\<id>.vmcx``."""
    return ntpath.join(ntpath.dirname(ntpath.dirname(config_file)), "Snapshots")


class MigrationOps(Part):
    """Migration, export and import (os-win: migrationutils and vmutils' import/export)."""

    def __init__(self, session: WmiSession, *, vms: VmOps, migration_timeout: float) -> None:
        super().__init__(session)
        self._vms = vms
        self._migration_timeout = migration_timeout

    def migrate_vm(self, name: str, destination: str, *, with_storage: bool = False,
                   live: bool = True) -> None:
        vm = self._vm(name)
        if not live and self._state(vm) in (VmState.RUNNING, VmState.PAUSED):
            self._request(vm, RSC_SAVE, f"save {name} before moving it")
        msd = self._conn.new_instance("Msvm_VirtualSystemMigrationSettingData")
        msd["MigrationType"] = MIGRATE_VM_AND_STORAGE if with_storage else MIGRATE_VM
        msd["TransportType"] = TRANSPORT_TCP
        self._call(self._service("Msvm_VirtualSystemMigrationService"),
                   "MigrateVirtualSystemToHost", f"migrate {name} to {destination}",
                   timeout=self._migration_timeout, ComputerSystem=vm.path,
                   DestinationHost=destination, MigrationSettingData=self._conn.embed(msd))

    def export_vm(self, name: str, directory: str, *, copy_storage: bool = True) -> str:
        """Hyper-V extra: export the VM (with snapshots) under ``directory\\name``."""
        vm = self._vm(name)
        opts = self._conn.new_instance("Msvm_VirtualSystemExportSettingData")
        opts["CopySnapshotConfiguration"] = 0
        opts["CopyVmRuntimeInformation"] = True
        opts["CopyVmStorage"] = copy_storage
        opts["CreateVmExportSubdirectory"] = True
        self._call(self._vsms(), "ExportSystemDefinition", f"export {name}",
                   timeout=self._migration_timeout, ComputerSystem=vm.path,
                   ExportDirectory=directory, ExportSettingData=self._conn.embed(opts))
        return f"{directory.rstrip(chr(92))}\\{name}\\Virtual Machines\\{vm['Name']}.vmcx"

    def import_vm(self, config_file: str, *, new_identity: bool = True,
                  snapshot_folder: str | None = None) -> VmInfo:
        """Hyper-V extra: import an exported VM (planned VM, validated, then realized).

        The snapshots' configurations are read from ``SnapshotFolder``, so an export that has
        snapshots imports only with its folder: by default the ``Snapshots`` folder beside the
        export's ``Virtual Machines`` folder (os-win passes it the same way).
        """
        folder = snapshot_folder if snapshot_folder is not None else _export_snapshots(config_file)
        before = self._planned_names()
        out, job = self._call(self._vsms(), "ImportSystemDefinition", f"import {config_file}",
                              SystemDefinitionFile=config_file, SnapshotFolder=folder,
                              GenerateNewSystemIdentifier=new_identity)
        planned = self._conn.get(self._resulting(out, "ImportedSystem", job,
                                                 "Msvm_PlannedComputerSystem",
                                                 lambda: self._new_planned(before)))
        if self._find_vssd(str(planned["ElementName"])) is not None:
            raise VmAlreadyExists(str(planned["ElementName"]))
        self._call(self._vsms(), "ValidatePlannedSystem", f"validate {config_file}",
                   PlannedSystem=planned.path)
        out, job = self._call(self._vsms(), "RealizePlannedSystem", f"realize {config_file}",
                              PlannedSystem=planned.path)
        guid = str(planned["Name"])
        vm = self._conn.get(self._resulting(
            out, "ResultingSystem", job, "Msvm_ComputerSystem",
            lambda: path_of(next(iter(self._conn.query("Msvm_ComputerSystem",
                                                       {"Name": guid})), None))))
        return self._vms.info(vm, self._vssd(vm))

    def _planned_names(self) -> set[str]:
        return {str(p["Name"]).lower() for p in self._conn.query("Msvm_PlannedComputerSystem")}

    def _new_planned(self, before: set[str]) -> str | None:
        """The one planned VM that appeared since ``before`` (the import's result)."""
        new = [p for p in self._conn.query("Msvm_PlannedComputerSystem")
               if str(p["Name"]).lower() not in before]
        return new[0].path if len(new) == 1 else None

