"""End-to-end fault scenarios with real processes: a server (``hvcloud server run``), simulator agents
serving several hosts, the real ``cs`` client. Shared by ``test_faults_e2e.py`` (asserts) and
``bench/faults.py`` (prints the figures).

* :func:`agent_killed_mid_deploy`: SIGKILL the agent while concurrent deploys wait on a slow
  StartCommand, restart it.
* :func:`server_killed_mid_deploy`: SIGKILL the server while concurrent deploys are in flight,
  restart it.
* :func:`hung_and_dropped_hosts`: one host's agent hangs on every command, another host's agent
  process dies; both must go Disconnected then Down while the rest of the cloud keeps working.

After the first two, :func:`invariants` checks the four properties issue 7 asks for: every VM a
hypervisor runs is known to the server, no job is left in progress and every failed job has a
reason, no disk is orphaned (the simulator's ``storage.json`` against the live volumes), and
capacity equals a recount.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cs import CloudStack

from hvcloud.server.db.models import Host, TemplatePoolRef
from hvcloud.server.orchestration.vm import power_sync
from hvcloud.storage import qemu_img
from tests.support.agent_process import AgentProcess
from tests.support.image_server import serve_images
from tests.support.server_process import ServerProcess
from tests.support.vm_stack import SETTINGS, TEMPLATE_BYTES, Cloud, build
from tests.support.wait import wait_for

#: a StartCommand this slow keeps deploys in flight long enough to kill something under them
START_DELAY_SECONDS = 3.0


@dataclass
class FaultResult:
    scenario: str
    deploys: int
    detect_seconds: float = 0.0
    recover_seconds: float = 0.0
    succeeded: int = 0
    rolled_back: int = 0
    #: disks the rollbacks could not delete (no host answered), and how long the cleanup then took
    deferred_disks: int = 0
    cleanup_seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> list[tuple[str, str]]:
        return [("deploys", str(self.deploys)), ("detect", f"{self.detect_seconds:.2f} s"),
                ("recover", f"{self.recover_seconds:.2f} s"), ("jobs succeeded", str(self.succeeded)),
                ("rolled back", str(self.rolled_back)),
                ("disks left to the cleanup", f"{self.deferred_disks}, all deleted {self.cleanup_seconds:.2f} s "
                                              "after recovery"),
                ("invariant violations", str(len(self.violations)))]


@dataclass(frozen=True)
class LibvirtHost:
    """What a libvirt agent needs: the guest bridge, the template to boot, and the ``instance.name``
    that marks this run's domains (``i-<account>-<number>-<suffix>``)."""

    bridge: str
    image: Path
    suffix: str


def libvirt_agent(data_dir: Path, bridge: str, local_pool: Path, store_root: Path) -> AgentProcess:
    """A real ``hvcloud agent run --driver libvirt`` (QEMU/TCG) process, as one host for ``build``;
    ``store_root`` holds the file:// image store ``build`` adds."""
    return AgentProcess(data_dir, driver="libvirt", address="127.0.0.1", args=[
        "--libvirt-domain-type", "qemu", "--bridge", bridge, "--local-pool", str(local_pool),
        "--store-root", str(store_root), "--no-nic-rate-limits"]).start()


@contextmanager
def cloud_stack(base: Path, db_url: str | None, hosts: int = 3, settings: tuple[str, ...] = (),
                libvirt: LibvirtHost | None = None) -> Iterator[Cloud]:
    """A zone with ``hosts`` simulated hosts on one agent process and a ready template; ``settings``
    are extra ``NAME=VALUE`` server settings. With ``libvirt``: one real libvirt host instead, and
    the bootable guest as the template."""
    (base / "server" / "data").mkdir(parents=True)
    (base / "agent").mkdir()
    (base / "images").mkdir()
    if libvirt is None:
        qemu_img.create(str(base / "images" / "tiny.qcow2"), "qcow2", TEMPLATE_BYTES)
    else:
        shutil.copyfile(libvirt.image, base / "images" / "tiny.qcow2")
        settings = (*settings, f"instance.name={libvirt.suffix}")
    with serve_images(base / "images") as images:
        agent = AgentProcess(base / "agent" / "data", hosts=hosts).start() if libvirt is None \
            else libvirt_agent(base / "agent" / "data", libvirt.bridge, base / "local", base / "secondary")
        extra = [arg for setting in settings for arg in ("--setting", setting)]
        server = ServerProcess(base / "server" / "data", db_url, SETTINGS + extra)
        stack = None
        try:
            if libvirt is None:
                stack = build(server, agent, base, db_url, images.url("tiny.qcow2"))
            else:
                stack = build(server, agent, base, db_url, images.url("tiny.qcow2"), hypervisor="KVM",
                              guest_label=libvirt.bridge)
            yield stack
        finally:
            (stack.server if stack else server).stop()
            agent.stop()


def offering(cs: CloudStack) -> str:
    found = cs.listServiceOfferings(name="tiny-vm").get("serviceoffering")
    if found:
        return str(found[0]["id"])
    return str(cs.createServiceOffering(name="tiny-vm", displaytext="tiny-vm", cpunumber=1, cpuspeed=500,
                                        memory=256)["serviceoffering"]["id"])


def submit_deploys(cloud: Cloud, count: int, **extra: Any) -> list[str]:
    """``count`` deployVirtualMachine calls from as many threads; their job ids."""
    cs = cloud.cs
    params = {"serviceofferingid": offering(cs), "templateid": cloud.template["id"], "zoneid": cloud.zone["id"],
              **extra}
    jobs: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def submit() -> None:
        own = CloudStack(endpoint=cs.endpoint, key=cs.key, secret=cs.secret, timeout=120)
        try:
            job = own.deployVirtualMachine(**params)
        except Exception as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            jobs.append(job["jobid"])

    threads = [threading.Thread(target=submit) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise AssertionError(f"{len(errors)} deploy submissions failed: {errors[0]!r}")
    return jobs


def finished_jobs(cs: CloudStack, jobs: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait for every job to leave ``jobstatus 0``; jobs still pending at ``timeout`` are returned as they are."""
    deadline = time.monotonic() + timeout
    out: dict[str, dict[str, Any]] = {}
    while True:
        for j in jobs:
            if j not in out or out[j]["jobstatus"] == 0:
                out[j] = dict(cs.queryAsyncJobResult(jobid=j, fetch_result=False))
        if all(r["jobstatus"] != 0 for r in out.values()) or time.monotonic() > deadline:
            return out
        time.sleep(0.3)


def host_states(cloud: Cloud) -> dict[str, str]:
    return {h["id"]: h["state"] for h in cloud.cs.listHosts(type="Routing", fetch_list=True)}


def pending_cleanup(cloud: Cloud) -> list[str]:
    """Volumes whose disk a rollback could not delete yet (``Expunging``: the storage cleanup's work)."""
    return [v.id for v in cloud.live_volumes() if v.state == "Expunging"]


def await_cleanup(cloud: Cloud, result: FaultResult, timeout: float = 60) -> None:
    """Count the disks rollbacks left to the storage cleanup (the server logs each) and time how long
    the cleanup still needs once the jobs are done and the hosts are back."""
    log_text = cloud.server.log_path.read_text(errors="replace")
    result.deferred_disks = log_text.count("is left to the storage cleanup")
    started = time.monotonic()
    try:
        wait_for("the storage cleanup", lambda: not pending_cleanup(cloud), timeout)
    except AssertionError:
        result.violations.append(f"disks still waiting for the cleanup: {pending_cleanup(cloud)}")
    result.cleanup_seconds = time.monotonic() - started


def invariants(cloud: Cloud, results: dict[str, dict[str, Any]], running: set[str] | None = None,
               pool_files: set[str] | None = None) -> list[str]:
    """Issue 7's four checks; a list of what is wrong (empty when all hold). ``running`` (the VMs the
    hypervisor runs) and ``pool_files`` (the files on the primary pool) default to what the simulator
    agent reports."""
    bad: list[str] = []
    known = {v["instancename"] for v in cloud.cs.listVirtualMachines(listall=True, fetch_list=True)}
    unknown = (cloud.running_on_agent() if running is None else running) - known
    if unknown:
        bad.append(f"running on a hypervisor but unknown to the server: {sorted(unknown)}")
    for jobid, r in results.items():
        if r["jobstatus"] == 0:
            bad.append(f"job {jobid} still in progress")
        elif r["jobstatus"] == 2 and not r.get("jobresult", {}).get("errortext"):
            bad.append(f"job {jobid} failed without a reason")
    vms = [v for v in cloud.vm_rows() if v.removed is None]
    stuck = sorted((v.instance_name, v.state) for v in vms if v.state in ("Starting", "Stopping"))
    if stuck:
        bad.append(f"VMs left in a transitional state with every job done: {stuck}")
    live = {v.path or v.id for v in cloud.live_volumes() if v.state == "Ready"}
    files = cloud.agent_files().get(cloud.pool["id"], set()) if pool_files is None else pool_files
    files -= {v.template_id for v in vms if v.template_id}
    with cloud.sessions()() as db:
        files -= {r.install_path for r in db.query(TemplatePoolRef)}
    if files - live:
        bad.append(f"orphaned disks on the pool: {sorted(files - live)}")
    if live - files:
        bad.append(f"Ready volumes without a file: {sorted(live - files)}")
    try:
        cloud.capacity_matches_recount()
    except AssertionError as exc:
        bad.append(f"capacity differs from a recount: {exc}")
    tracebacks = cloud.server.log_path.read_text(errors="replace").count("Traceback (most recent call last)")
    if tracebacks:
        bad.append(f"the server logged {tracebacks} unexpected exception(s): see {cloud.server.log_path}")
    return bad


def _tally(result: FaultResult, results: dict[str, dict[str, Any]]) -> None:
    result.succeeded = sum(1 for r in results.values() if r["jobstatus"] == 1)
    result.rolled_back = sum(1 for r in results.values() if r["jobstatus"] == 2)
    result.notes["failure reasons"] = sorted({str(r.get("jobresult", {}).get("errortext", ""))[:120]
                                              for r in results.values() if r["jobstatus"] == 2})


def _wait_in_flight(cloud: Cloud, at_least: int) -> None:
    wait_for("deploys to reach StartCommand",
             lambda: sum(1 for v in cloud.vm_rows() if v.state == "Starting" and v.removed is None) >= at_least, 120)


def _set_faults(cloud: Cloud, plan: dict[str, object]) -> None:
    for i in range(len(cloud.agent.addresses)):
        cloud.agent.faults(i, plan)


def agent_killed_mid_deploy(cloud: Cloud, deploys: int = 20) -> FaultResult:
    """SIGKILL the agent (every host at once) while ``deploys`` deploys are in flight, restart it.
    detect: kill → no host listed Up; recover: restart → every host Up and every job finished."""
    result = FaultResult("agent SIGKILL mid-deploy", deploys)
    _set_faults(cloud, {"StartCommand": {"mode": "delay", "seconds": START_DELAY_SECONDS}})
    jobs = submit_deploys(cloud, deploys)
    _wait_in_flight(cloud, min(deploys, max(3, deploys // 4)))
    killed = time.monotonic()
    cloud.agent.kill()
    wait_for("the hosts to leave Up", lambda: all(s != "Up" for s in host_states(cloud).values()), 120)
    result.detect_seconds = time.monotonic() - killed
    result.notes["host states after the kill"] = sorted(set(host_states(cloud).values()))
    cloud.agent.start()
    restarted = time.monotonic()
    _set_faults(cloud, {})
    results = finished_jobs(cloud.cs, jobs, 240)
    wait_for("the hosts to come back Up", lambda: all(s == "Up" for s in host_states(cloud).values()), 120)
    result.recover_seconds = time.monotonic() - restarted
    _tally(result, results)
    await_cleanup(cloud, result)
    result.violations += invariants(cloud, results)
    return result


#: guest size for the libvirt scenario: the tiny test guest boots in this, and 20 of them fit
LIBVIRT_VM_MIB = 128


def pool_files(pool_dir: Path) -> set[str]:
    """Every file on a local-directory primary pool (relative paths, as volumes record them), hidden
    partial copies included; the agent's lock files and the hosts' heartbeats (``hb-<ip>``) are not
    disks."""
    return {str(p.relative_to(pool_dir)) for p in pool_dir.rglob("*")
            if p.is_file() and ".hvcloud-locks" not in p.relative_to(pool_dir).parts and not p.name.startswith("hb-")}


def libvirt_agent_killed_mid_deploy(cloud: Cloud, suffix: str, deploys: int) -> FaultResult:
    """The agent-SIGKILL scenario on a real libvirt host: ``deploys`` small deploys at once, the agent
    killed once QEMU runs a quarter of them, restarted. The four checks use libvirt itself (the
    active domains of this run) and the pool directory."""
    from tests.integration.libvirt.conftest import running_domains

    def mine(name: str) -> bool:
        return name.endswith(f"-{suffix}")

    result = FaultResult(f"libvirt agent SIGKILL mid-deploy ({LIBVIRT_VM_MIB} MiB TCG guests)", deploys)
    cs = cloud.cs
    small = cs.createServiceOffering(name="lv-small", displaytext="lv-small", cpunumber=1, cpuspeed=100,
                                     memory=LIBVIRT_VM_MIB)["serviceoffering"]["id"]
    jobs = submit_deploys(cloud, deploys, serviceofferingid=small)
    wait_for("QEMU to run a quarter of the VMs", lambda: len(running_domains(mine)) >= max(1, deploys // 4), 600)
    result.notes["VMs Starting at the kill"] = sum(1 for v in cloud.vm_rows() if v.state == "Starting")
    killed = time.monotonic()
    cloud.agent.kill()
    wait_for("the host to leave Up", lambda: all(s != "Up" for s in host_states(cloud).values()), 120)
    result.detect_seconds = time.monotonic() - killed
    cloud.agent.start()
    restarted = time.monotonic()
    results = finished_jobs(cs, jobs, 900)
    wait_for("the host to come back Up", lambda: all(s == "Up" for s in host_states(cloud).values()), 300)
    result.recover_seconds = time.monotonic() - restarted
    _tally(result, results)
    await_cleanup(cloud, result, timeout=300)

    def listed_running() -> set[str]:
        return {v["instancename"] for v in cs.listVirtualMachines(listall=True, state="Running", fetch_list=True)}
    try:  # a VM whose start ran although its job gave up is stopped by the cleanup
        wait_for("libvirt to run exactly the VMs listed Running",
                 lambda: listed_running() == running_domains(mine), 120)
    except AssertionError:
        states = {v.instance_name: (v.state, v.state_reason, v.host_id) for v in cloud.vm_rows()
                  if v.instance_name in running_domains(mine)}
        result.violations.append(f"VMs listed Running {sorted(listed_running())} but libvirt runs "
                                 f"{sorted(running_domains(mine))}; their rows: {states}; "
                                 f"hosts: {host_states(cloud)}")
    running = running_domains(mine)
    result.notes["domains running"] = len(running)
    result.violations += invariants(cloud, results, running=running, pool_files=pool_files(cloud.base / "primary"))
    return result


def server_killed_mid_deploy(cloud: Cloud, deploys: int = 100) -> FaultResult:
    """SIGKILL the server while ``deploys`` deploys are in flight, restart it. detect: kill → the
    restarted server answers; recover: from then until every job has finished."""
    result = FaultResult("server SIGKILL mid-deploy", deploys)
    _set_faults(cloud, {"StartCommand": {"mode": "delay", "seconds": START_DELAY_SECONDS}})
    jobs = submit_deploys(cloud, deploys)
    _wait_in_flight(cloud, min(deploys, max(3, deploys // 4)))
    killed = time.monotonic()
    cloud.server.kill()
    _set_faults(cloud, {})
    cloud.restart_server()
    result.detect_seconds = time.monotonic() - killed
    restarted = time.monotonic()
    results = finished_jobs(cloud.cs, jobs, 300)
    result.recover_seconds = time.monotonic() - restarted
    _tally(result, results)
    await_cleanup(cloud, result)
    result.violations += invariants(cloud, results)
    vms = [v for v in cloud.vm_rows() if v.removed is None]
    odd = [(v.instance_name, v.state, v.state_reason) for v in vms if v.state not in ("Running", "Error")]
    if odd:
        result.violations.append(f"VMs neither Running nor Error: {odd}")
    if result.succeeded != sum(v.state == "Running" for v in vms):
        result.violations.append(f"{result.succeeded} deploy jobs succeeded but "
                                 f"{sum(v.state == 'Running' for v in vms)} VMs are Running")
    return result


@dataclass
class Traffic:
    """What the rest of the cloud got done while a host was in trouble."""

    deploys_ok: int = 0
    deploy_errors: list[str] = field(default_factory=list)
    api_calls_ok: int = 0
    api_errors: list[str] = field(default_factory=list)
    slowest_api_seconds: float = 0.0

    def traffic_figures(self) -> list[tuple[str, str]]:
        return [("deploys elsewhere meanwhile", f"{self.deploys_ok} ok, {len(self.deploy_errors)} failed"),
                ("API calls meanwhile", f"{self.api_calls_ok} ok, {len(self.api_errors)} failed, "
                                        f"slowest {self.slowest_api_seconds:.2f} s")]


@dataclass
class HostFaultResult(Traffic):
    states_seen: dict[str, list[str]] = field(default_factory=dict)
    down_seconds: dict[str, float] = field(default_factory=dict)
    #: listed state and recorded power state of each VM on the lost hosts, while they are Down
    vm_states: dict[str, str] = field(default_factory=dict)
    power_states: dict[str, str | None] = field(default_factory=dict)
    #: which of them listVirtualMachines returns for state=Unknown and for state=Running
    listed_unknown: set[str] = field(default_factory=set)
    listed_running: set[str] = field(default_factory=set)
    stop_on_down_host: dict[str, Any] = field(default_factory=dict)
    #: a stop sent to the hung host before it went Down: it must fail once the host is Down, not
    #: wait out the StopCommand's own 600 s
    stop_in_flight: dict[str, Any] = field(default_factory=dict)
    #: the VM powered off while its host was away (the rest kept running)
    powered_off_away: str = ""
    #: after both hosts are back: seconds until Up, and the VMs' listed and power states then
    back_seconds: float = 0.0
    vm_states_back: dict[str, str] = field(default_factory=dict)
    power_states_back: dict[str, str | None] = field(default_factory=dict)

    def figures(self) -> list[tuple[str, str]]:
        return [("Down after", ", ".join(f"{s:.2f} s" for s in self.down_seconds.values())),
                ("states seen", "; ".join(" > ".join(v) for v in self.states_seen.values())),
                ("stop in flight when the host went Down", str(self.stop_in_flight)),
                *self.traffic_figures(),
                ("VM states on the lost hosts", ", ".join(f"{k}={v}" for k, v in self.vm_states.items())),
                ("power states recorded", ", ".join(f"{k}={v}" for k, v in self.power_states.items())),
                ("hosts back and VMs settled", f"{self.back_seconds:.2f} s"),
                ("VM states once back", ", ".join(f"{k}={v}" for k, v in self.vm_states_back.items())),
                ("power states once back", ", ".join(f"{k}={v}" for k, v in self.power_states_back.items()))]


def _vm_states(cloud: Cloud, vms: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str | None]]:
    listed: dict[str, str] = {}
    power: dict[str, str | None] = {}
    for vm in vms:
        found = cloud.cs.listVirtualMachines(id=vm["id"], fetch_list=True)
        listed[vm["instancename"]] = found[0]["state"] if found else "gone"
        with cloud.sessions()() as db:
            report = power_sync.power_state_of(db, vm["instancename"])
        power[vm["instancename"]] = report[1] if report else None
    return listed, power


def _power_off_while_away(agent_dir: Path, instance_name: str) -> None:
    """What a host that rebooted while unreachable looks like to the simulator: the VM is off."""
    state_file = agent_dir / "vms.json"
    state = json.loads(state_file.read_text())
    state["vms"][instance_name]["state"] = "Stopped"
    state_file.write_text(json.dumps(state))


def hung_and_dropped_hosts(cloud: Cloud, lone_agent_dir: Path) -> HostFaultResult:
    """Host 0 of ``cloud.agent`` hangs on every command; a host served by a separate agent process
    (started here) loses that process. Both must go Disconnected then Down while deploys to the other
    hosts and API calls keep succeeding, and their VMs must be listed Unknown. Then both come back
    (one VM of the dropped host was powered off meanwhile) and every VM must show its real state."""
    cs = cloud.cs
    lone_agent_dir.parent.mkdir(parents=True, exist_ok=True)
    lone = AgentProcess(lone_agent_dir, hosts=1).start()
    try:
        extra = cs.addHost(hypervisor="Simulator", url=lone.url(0), username=lone.username, password=lone.password,
                           method="post", zoneid=cloud.zone["id"], podid=cloud.hosts[0]["podid"],
                           clusterid=cloud.cluster["id"])["host"][0]
        hung, dropped = cloud.hosts[0]["id"], extra["id"]
        healthy = [h["id"] for h in cloud.hosts[1:]]
        params = {"serviceofferingid": offering(cs), "templateid": cloud.template["id"], "zoneid": cloud.zone["id"]}
        on_lost = [cs.deployVirtualMachine(hostid=h, **params)["virtualmachine"] for h in (hung, dropped, dropped)]
        result = HostFaultResult(states_seen={hung: [], dropped: []})
        cloud.agent.faults(0, {"*": {"mode": "hang"}})
        lone.kill()
        lost_at = time.monotonic()
        in_flight = threading.Thread(target=_stop_and_time, args=(cloud, on_lost[0]["id"], result.stop_in_flight),
                                     daemon=True)
        in_flight.start()
        stop = threading.Event()
        background = threading.Thread(target=_keep_busy, args=(cloud, params, healthy, result, stop))
        background.start()
        try:
            deadline = time.monotonic() + 120
            while set(result.down_seconds) != {hung, dropped} and time.monotonic() < deadline:
                for host_id, state in host_states(cloud).items():
                    seen = result.states_seen.get(host_id)
                    if seen is not None and (not seen or seen[-1] != state):
                        seen.append(state)
                    if seen is not None and state == "Down" and host_id not in result.down_seconds:
                        result.down_seconds[host_id] = time.monotonic() - lost_at
                time.sleep(0.1)
            vm = on_lost[1]
            started = time.monotonic()
            try:
                cs.stopVirtualMachine(id=vm["id"])
                result.stop_on_down_host = {"outcome": "stopped"}
            except Exception as exc:
                result.stop_on_down_host = {"outcome": "failed", "error": str(exc)[:200]}
            result.stop_on_down_host["seconds"] = round(time.monotonic() - started, 2)
            in_flight.join(timeout=60)
        finally:
            stop.set()
            background.join()
        result.vm_states, result.power_states = _vm_states(cloud, on_lost)
        result.listed_unknown = {v["instancename"] for v in cs.listVirtualMachines(state="Unknown", listall=True,
                                                                                   fetch_list=True)}
        result.listed_running = {v["instancename"] for v in cs.listVirtualMachines(state="Running", listall=True,
                                                                                   fetch_list=True)}

        result.powered_off_away = on_lost[2]["instancename"]
        _power_off_while_away(lone_agent_dir, result.powered_off_away)
        cloud.agent.faults(0, {})
        lone.start()
        back = time.monotonic()
        expected = {v["instancename"]: "Running" for v in on_lost} | {result.powered_off_away: "Stopped"}

        def settled() -> bool:
            listed, power = _vm_states(cloud, on_lost)
            return listed == expected and power_sync.POWER_UNKNOWN not in power.values()
        with contextlib.suppress(AssertionError):  # the states below show what is wrong
            wait_for("the hosts and their VMs to be back", lambda: set(host_states(cloud).values()) == {"Up"}
                     and settled(), 120)
        result.back_seconds = time.monotonic() - back
        result.vm_states_back, result.power_states_back = _vm_states(cloud, on_lost)
        return result
    finally:
        if cloud.agent.proc is not None and cloud.agent.proc.poll() is None:
            cloud.agent.faults(0, {})
        lone.stop()


def _stop_and_time(cloud: Cloud, vm_id: str, into: dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        cloud.cs.stopVirtualMachine(id=vm_id)
        into["outcome"] = "stopped"
    except Exception as exc:
        into["outcome"] = "failed"
        into["error"] = str(exc)[:300]
    into["seconds"] = round(time.monotonic() - started, 2)


def _keep_busy(cloud: Cloud, params: dict[str, Any], healthy: list[str], result: Traffic,
               stop: threading.Event) -> None:
    """Deploy to the healthy hosts and call the API in a loop until told to stop."""
    cs = cloud.cs
    i = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            cs.listHosts(fetch_list=True)
            cs.listVirtualMachines(listall=True, fetch_list=True)
            result.api_calls_ok += 2
        except Exception as exc:
            result.api_errors.append(str(exc)[:200])
        result.slowest_api_seconds = max(result.slowest_api_seconds, time.monotonic() - started)
        try:
            vm = cs.deployVirtualMachine(hostid=healthy[i % len(healthy)], **params)["virtualmachine"]
            if vm["state"] == "Running":
                result.deploys_ok += 1
            else:
                result.deploy_errors.append(f"{vm['name']} is {vm['state']}")
        except Exception as exc:
            result.deploy_errors.append(str(exc)[:200])
        i += 1


@dataclass
class HungCommandResult(Traffic):
    wait_seconds: float = 0.0
    error: str = ""
    failed_after: float = 0.0
    #: the hung host's states while its command hung (it answers pings: Up throughout)
    host_states: list[str] = field(default_factory=list)
    capacity_before: tuple[int, int] = (0, 0)
    capacity_after: tuple[int, int] = (0, 0)
    recount_error: str | None = None
    vm_state: str = ""
    vm_reason: str | None = None
    #: the agent ran the StartCommand once its hang ended (its host reported the VM), and how long
    #: after the hang's end the VM was no longer running (the cleanup stopped it)
    ran_late: bool = False
    leftover_stopped_after: float | None = None

    def figures(self) -> list[tuple[str, str]]:
        return [("configured wait", f"{self.wait_seconds:g} s"),
                ("job failed after", f"{self.failed_after:.2f} s"),
                ("host states meanwhile", " > ".join(self.host_states)), *self.traffic_figures(),
                ("leftover VM stopped after", "n/a" if self.leftover_stopped_after is None
                 else f"{self.leftover_stopped_after:.2f} s")]


def _hung_host_row(cloud: Cloud, host_id: str) -> tuple[str, int, int]:
    with cloud.sessions()() as db:
        host = db.get(Host, host_id)
        assert host is not None
        return host.status, host.cpu_allocated, host.memory_allocated


def hung_command_on_up_host(cloud: Cloud, wait_seconds: float, hang_seconds: float) -> HungCommandResult:
    """Host 0's agent keeps answering pings but hangs on one StartCommand for ``hang_seconds`` (longer
    than the server's ``wait``, which the cloud must have been built with). A deploy there must fail
    cleanly after ``wait``, give its capacity back, and not slow the other hosts; when the hang ends
    and the agent starts the VM after all, the storage cleanup must stop it."""
    cs = cloud.cs
    host = cloud.hosts[0]["id"]
    healthy = [h["id"] for h in cloud.hosts[1:]]
    params = {"serviceofferingid": offering(cs), "templateid": cloud.template["id"], "zoneid": cloud.zone["id"]}
    result = HungCommandResult(wait_seconds=wait_seconds)
    _, cpu, mem = _hung_host_row(cloud, host)
    result.capacity_before = (cpu, mem)
    cloud.agent.faults(0, {"StartCommand": {"mode": "hang", "seconds": hang_seconds, "count": 1}})
    stop = threading.Event()
    background = threading.Thread(target=_keep_busy, args=(cloud, params, healthy, result, stop))
    background.start()
    try:
        started = time.monotonic()
        job = cs.deployVirtualMachine(hostid=host, fetch_result=False, **params)
        while True:
            status, _, _ = _hung_host_row(cloud, host)
            if not result.host_states or result.host_states[-1] != status:
                result.host_states.append(status)
            done = cs.queryAsyncJobResult(jobid=job["jobid"], fetch_result=False)
            if done["jobstatus"] != 0 or time.monotonic() - started > wait_seconds + 120:
                break
            time.sleep(0.1)
        result.failed_after = time.monotonic() - started
        result.error = str(done.get("jobresult", {}).get("errortext", "")) if done["jobstatus"] == 2 else ""
    finally:
        stop.set()
        background.join()
    _, cpu, mem = _hung_host_row(cloud, host)
    result.capacity_after = (cpu, mem)
    try:
        cloud.capacity_matches_recount()
    except AssertionError as exc:
        result.recount_error = str(exc)
    vm = next(v for v in cloud.vm_rows() if v.id == job["id"])
    result.vm_state, result.vm_reason = vm.state, vm.state_reason

    def reported() -> bool:
        with cloud.sessions()() as db:
            return power_sync.power_state_of(db, vm.instance_name) is not None

    hang_ends = started + hang_seconds
    time.sleep(max(0.0, hang_ends - time.monotonic()))
    with contextlib.suppress(AssertionError):
        wait_for("the late VM to be reported and stopped",
                 lambda: reported() and vm.instance_name not in cloud.running_on_agent(), 60)
        result.leftover_stopped_after = time.monotonic() - hang_ends
    result.ran_late = reported()
    return result
