"""The VM manager: everything the server knows about running a VM, in one package.

* :mod:`.states` — CloudStack's VM and volume states and which operation each allows.
* :mod:`.manager` — the VM jobs (deploy/start, stop, reboot, destroy, expunge, attach/detach ISO)
  and the power state the hosts report, applied to the VMs.
* :mod:`.steps` — the agent commands one job step sends, with the database writes around them.
* :mod:`.wire` — a VM's rows as the agent wire's TOs (VirtualMachineTO, DiskTO …).
* :mod:`.power_sync` — reading the hosts' power reports (``PingRoutingCommand``'s VM states).

Other layers use the names re-exported here; the modules' other names are the package's own.
"""

from hvcloud.server.orchestration.vm.manager import (
    JOB_DESTROY,
    JOB_EXPUNGE,
    JOB_ISO,
    JOB_REBOOT,
    JOB_START,
    JOB_STOP,
    destroy_vm,
    expunge_vm,
    job_in_flight,
    power_listener,
    power_sweep_loop,
    stop_vm,
)
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps

__all__ = ["JOB_DESTROY", "JOB_EXPUNGE", "JOB_ISO", "JOB_REBOOT", "JOB_START", "JOB_STOP", "StepFailed", "Steps",
           "destroy_vm", "expunge_vm", "job_in_flight", "power_listener", "power_sweep_loop", "stop_vm"]
