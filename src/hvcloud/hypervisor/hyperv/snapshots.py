"""The Hyper-V driver's snapshots (checkpoints): create with or without memory, list, revert,
delete.
"""

from __future__ import annotations

import calendar
import datetime
import json
import time

from hvcloud import logs
from hvcloud.hypervisor.driver import (
    DriverError,
    SnapshotInfo,
    SnapshotNotFound,
    VmState,
)
from hvcloud.hypervisor.hyperv.connection import WmiObject
from hvcloud.hypervisor.hyperv.session import (
    NOTES_MARK,
    RSC_OFF,
    RSC_START,
    Part,
    notes_meta,
)

log = logs.get(__name__)

SNAPSHOT_FULL = 2
#: Msvm_VirtualSystemSettingData.UserSnapshotType: standard checkpoints keep the memory (saved
#: state); production ones (the default since Server 2016) do not, and revert to a VM that is off
USER_SNAPSHOT_PRODUCTION, USER_SNAPSHOT_STANDARD = 3, 5


def _cim_time(value: object) -> float:
    """Seconds since the epoch of a CIM datetime property.

    PyMI hands CIM datetimes back as ``datetime.datetime`` (a naive one is taken as UTC); the DMTF
    text form (``yyyymmddHHMMSS.mmmmmm+UUU``) is what embedded instances and the ``wmi`` module
    carry, so it is still read. Anything else counts as unknown (0).
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    if not isinstance(value, str) or len(value) < 14:
        return 0.0
    try:
        seconds = float(calendar.timegm(time.strptime(value[:14], "%Y%m%d%H%M%S")))
    except ValueError:
        return 0.0
    offset = value[21:25]
    if len(offset) == 4 and offset[0] in "+-" and offset[1:].isdigit():
        seconds -= int(offset) * 60
    return seconds


class SnapshotOps(Part):
    """Checkpoints through Msvm_VirtualSystemSnapshotService (os-win: vmutils' snapshot parts)."""

    def _snapshots(self, vm: WmiObject) -> list[WmiObject]:
        return self._conn.associators(vm, assoc_class="Msvm_SnapshotOfVirtualSystem",
                                      result_class="Msvm_VirtualSystemSettingData")

    def _snapshot(self, vm: WmiObject, snapshot: str) -> WmiObject | None:
        return next((s for s in self._snapshots(vm) if s["ElementName"] == snapshot), None)

    def create_snapshot(self, name: str, snapshot: str, description: str = "",
                        with_memory: bool = False) -> SnapshotInfo:
        vm = self._vm(name)
        if self._snapshot(vm, snapshot) is not None:
            raise DriverError(f"VM {name} already has a snapshot named {snapshot}")
        memory = with_memory and self._state(vm) in (VmState.RUNNING, VmState.PAUSED)
        wanted = USER_SNAPSHOT_STANDARD if memory else USER_SNAPSHOT_PRODUCTION
        previous = self._set_snapshot_type(vm, wanted)
        try:
            out, job = self._call(self._service("Msvm_VirtualSystemSnapshotService"),
                                  "CreateSnapshot", f"snapshot {name}", AffectedSystem=vm.path,
                                  SnapshotSettings="", SnapshotType=SNAPSHOT_FULL)
        finally:
            if previous is not None:
                self._set_snapshot_type(vm, previous)
        snap = self._conn.get(self._resulting(out, "ResultingSnapshot", job,
                                              "Msvm_VirtualSystemSettingData",
                                              lambda: self._current_snapshot_path(vm)))
        snap["ElementName"] = snapshot
        snap["Notes"] = [description, NOTES_MARK + json.dumps({"with_memory": memory})]
        self._call(self._vsms(), "ModifySystemSettings", f"name snapshot {snapshot}",
                   SystemSettings=self._conn.embed(snap))
        return next(s for s in self.list_snapshots(name) if s.name == snapshot)

    def _set_snapshot_type(self, vm: WmiObject, wanted: int) -> int | None:
        """Make the VM take ``wanted`` checkpoints (``UserSnapshotType``); the type it had before,
        or None when it already had that one.

        A memory snapshot needs a standard checkpoint; without memory a production one is asked
        for, so a VM whose owner chose standard checkpoints does not save its memory unasked.
        """
        vssd = self._vssd(vm)
        current = vssd["UserSnapshotType"]
        if current == wanted:
            return None
        vssd["UserSnapshotType"] = wanted
        self._call(self._vsms(), "ModifySystemSettings",
                   f"set checkpoint type {wanted} of {vm['ElementName']}",
                   SystemSettings=self._conn.embed(vssd))
        log.info("snapshot_type_set", vm=vm["ElementName"], type=wanted, previous=current)
        return int(current) if current is not None else USER_SNAPSHOT_PRODUCTION

    def _current_snapshot_path(self, vm: WmiObject) -> str | None:
        """The VM's newest snapshot in its branch: where a just-made snapshot is found."""
        found = self._conn.associators(vm, assoc_class="Msvm_MostCurrentSnapshotInBranch",
                                       result_class="Msvm_VirtualSystemSettingData")
        return found[0].path if found else None

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        vm = self._vm(name)
        snaps = self._snapshots(vm)
        names = {s.path.lower(): str(s["ElementName"]) for s in snaps}
        current = self._conn.associators(vm, assoc_class="Msvm_MostCurrentSnapshotInBranch",
                                         result_class="Msvm_VirtualSystemSettingData")
        current_path = current[0].path.lower() if current else None
        out = []
        for s in snaps:
            notes = list(s["Notes"] or [])
            meta = notes_meta(s)
            description = next((n for n in notes if not str(n).startswith(NOTES_MARK)), "")
            out.append(SnapshotInfo(
                name=str(s["ElementName"]), created_at=_cim_time(s["CreationTime"]),
                description=str(description), parent=names.get(str(s["Parent"] or "").lower()),
                current=s.path.lower() == current_path,
                with_memory=bool(meta.get("with_memory", False))))
        return sorted(out, key=lambda s: (s.created_at, s.name))

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        vm = self._vm(name)
        snap = self._snapshot(vm, snapshot)
        if snap is None:
            raise SnapshotNotFound(f"VM {name} has no snapshot {snapshot}")
        if self._state(vm) not in (VmState.STOPPED, VmState.SAVED):
            self._request(vm, RSC_OFF, f"turn off {name} to revert it")
        self._call(self._service("Msvm_VirtualSystemSnapshotService"), "ApplySnapshot",
                   f"revert {name} to {snapshot}", Snapshot=snap.path)
        if self._state(self._refresh(vm)) == VmState.SAVED:
            self._request(vm, RSC_START, f"resume {name} from {snapshot}")

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        vm = self._vm(name)
        snap = self._snapshot(vm, snapshot)
        if snap is None:
            return
        self._call(self._service("Msvm_VirtualSystemSnapshotService"), "DestroySnapshot",
                   f"delete snapshot {snapshot} of {name}", AffectedSnapshot=snap.path)

