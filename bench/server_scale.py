"""Deploy throughput of the management server: one simulator agent process serving N hosts, a real
``hvcloud server run --processes K`` (by default one server process per core, sharing one SQLite file
and one listening address), M VMs deployed through the API by 16 concurrent clients.

Prints (or with ``--json`` emits) ``deploy_vms_per_s`` (M / time from the first submission to the
last job's end), ``api_p95_ms`` (deployVirtualMachine submission latency), ``list_vms_p95_ms``
(listVirtualMachines, pagesize 500, after the deploys), ``ping_cpu_fraction`` (the servers' CPU, in
cores, over one whole ping interval while idle with N hosts and no VM: host monitoring plus the little
else an idle server does; ``ping_cpu_fraction_with_vms``: the same after the deploys, with the M VMs
in every host's report), ``steady_api_p50/p99/max_ms`` (a small listVirtualMachines every quarter
second over one more ping interval: how host monitoring stalls the API), the servers' and the agent's
CPU per VM, how busy the whole machine was and, as
the baseline measured in the same run, ``baseline_start_stop_per_s``: one client sending
StartCommand + StopCommand straight to one simulated host back to back. The servers ping at
``--ping-interval`` (60 s, the production default) throughout, deploys included.

With ``--networks N`` (default 0: no guest networking, the VMs deploy without NICs' networks as
before) the zone gets its guest networking as CloudStack's zone wizard builds it (a VXLAN physical
network whose range holds N segments, Guest traffic with the bridge labels, the VirtualRouter element
and provider enabled, the physical network Enabled), then N accounts with one isolated network each
(DefaultIsolatedNetworkOfferingWithSourceNatService), made by a thread pool before the deploy clock
starts; VM i is deployed by the admin for account i % N on that account's network, so each network is
implemented (segment, virtual router on a simulated host) by its first VM and every VM start publishes
its DHCP entry and metadata to its network's router. Extra figures: ``networks``, ``routers_running``
(listRouters after the deploys) and ``failed`` as before; the list calls then carry ``listall`` (the
VMs are the accounts', not the admin's), ``list_vms_count`` says how many VMs they saw
(``list_vms_samples_ms``: each call, in order). Progress goes to stderr.

Usage: ``python -m bench.server_scale [--hosts 200] [--vms 1000] [--networks 0] [--servers N]
[--db sqlite|postgresql|URL] [--ping-interval 60] [--job-workers 64] [--api-threads N] [--json] [--profile out.txt]
[--profile-idle out.txt]``;
``--profile`` samples the first server with py-spy during the deploy phase (``--profile-idle``: the
idle phase) and writes collapsed stacks to the file (threads holding the GIL: where the CPU goes;
with ``HVCLOUD_PROFILE_WALL=1`` every thread, idle ones included: where they wait).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.support.agent_process import AgentProcess
from tests.support.server_process import ServerProcess, spawned_servers

from hvcloud.cli.api_client import ApiClient, ApiError
from hvcloud.storage import qemu_img
from hvcloud.wire import commands as C
from hvcloud.wire.to import VirtualMachineTO

#: how often the client asks for a job's result: a quarter second is a tiny error over a deploy
#: phase of minutes, and a busier poll would bill the server for the client's impatience
POLL_SECONDS = 0.25


#: concurrent API clients deploying (each with its own keep-alive connection)
CLIENTS = 16

#: addHost tries per host (the agent may turn a connection away while the other hosts connect)
ADD_HOST_ATTEMPTS = 5


def idle_cpu(server: ServerProcess, seconds: float) -> float:
    """The servers' CPU, in cores, over ``seconds`` in which nobody calls the API."""
    cpu0, t0 = server_cpu(server), time.monotonic()
    time.sleep(seconds)
    return (server_cpu(server) - cpu0) / (time.monotonic() - t0)


def steady_latencies(api: ApiClient, seconds: float, listall: bool | None = None) -> list[float]:
    """One small listVirtualMachines call every quarter second for ``seconds`` (a whole ping interval
    with the VMs running and nothing else asked of the servers): how host monitoring stalls the API."""
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        api.call("listVirtualMachines", pagesize=20, page=1, listall=listall)
        out.append(1000 * (time.monotonic() - started))
        time.sleep(max(0.25 - (time.monotonic() - started), 0))
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of ``pid`` (with ``children``: plus that of its children it has waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


async def baseline(agent: AgentProcess, seconds: float) -> float:
    async with agent.client(0) as client:
        count, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            vm = VirtualMachineTO(name=f"bench-{count}", cpus=1, maxRam=256 << 20, minRam=256 << 20, type="User",
                                  nics=[], disks=[])
            assert (await client.send(C.StartCommand(vm=vm))).result
            assert (await client.send(C.StopCommand(vmName=vm.name or "", forceStop=True))).result
            count += 1
    return count / seconds


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (not idle or waiting for I/O) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def build(api: ApiClient, agent: AgentProcess, base: Path, hosts: int, image_url: str) -> dict[str, str]:
    zone = api.call("createZone", name="bench", networktype="Advanced", dns1="8.8.8.8",
                    internaldns1="10.0.0.1")["zone"]["id"]
    pod = api.call("createPod", name="p", zoneid=zone, gateway="10.1.0.1", netmask="255.255.255.0")["pod"]["id"]
    cluster = api.call("addCluster", clustername="c", clustertype="CloudManaged", hypervisor="Simulator",
                       podid=pod, zoneid=zone)["cluster"][0]["id"]
    api.call("createStoragePool", name="primary", url=f"file://{base}/primary", zoneid=zone, podid=pod,
             clusterid=cluster)
    (base / "secondary").mkdir()
    api.call("addImageStore", provider="NFS", name="images", url=f"file://{base}/secondary", zoneid=zone)

    def add_host(i: int) -> None:
        for attempt in range(ADD_HOST_ATTEMPTS):
            try:
                api.call("addHost", hypervisor="Simulator", url=agent.url(i), username=agent.username,
                         password=agent.password, zoneid=zone, podid=pod, clusterid=cluster)
                return
            except ApiError as exc:
                # the agent's connection guard turns connections away while 1,000 hosts connect at once
                if "too many pending connections" not in exc.text or attempt == ADD_HOST_ATTEMPTS - 1:
                    raise
                progress(f"addHost {i} refused ({exc.text[-60:]}); trying again")
                time.sleep(1.0)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(add_host, range(hosts)))
    api.call("updateZone", id=zone, allocationstate="Enabled")
    os_type = api.call("listOsTypes")["ostype"][0]["id"]
    template = api.call("registerTemplate", name="t", displaytext="t", format="QCOW2", hypervisor="Simulator",
                        url=image_url, zoneid=zone, ostypeid=os_type)["template"][0]["id"]
    while not api.call("listTemplates", templatefilter="all", id=template)["template"][0]["isready"]:
        time.sleep(0.2)
    offering = api.call("createServiceOffering", name="bench", displaytext="bench", cpunumber=1, cpuspeed=100,
                        memory=128)["serviceoffering"]["id"]
    return {"zone": zone, "template": template, "offering": offering}


#: the first VXLAN segment id of the bench's physical network (its range holds one id per network)
FIRST_VNI = 10000


def wait_job(api: ApiClient, answer: dict[str, Any]) -> dict[str, Any]:
    """An async command's job result (``answer`` itself for a synchronous one)."""
    return api.wait(str(answer["jobid"])) if "jobid" in answer else answer


def guest_networking(api: ApiClient, zone: str, networks: int) -> None:
    """The zone wizard's guest networking: a VXLAN physical network with ``networks`` segment ids,
    Guest traffic, the virtual router provider enabled, the physical network Enabled."""
    pn = wait_job(api, api.call("createPhysicalNetwork", zoneid=zone, name="bench-physical",
                                isolationmethods="VXLAN",
                                vlan=f"{FIRST_VNI}-{FIRST_VNI + networks - 1}"))["physicalnetwork"]
    wait_job(api, api.call("addTrafficType", physicalnetworkid=pn["id"], traffictype="Guest",
                           kvmnetworklabel="cloudbr0", simulatorlabel="cloudbr0"))
    provider = api.call("listNetworkServiceProviders", physicalnetworkid=pn["id"],
                        name="VirtualRouter")["networkserviceprovider"][0]
    element = api.call("listVirtualRouterElements", nspid=provider["id"])["virtualrouterelement"][0]
    wait_job(api, api.call("configureVirtualRouterElement", id=element["id"], enabled=True))
    wait_job(api, api.call("updateNetworkServiceProvider", id=provider["id"], state="Enabled"))
    wait_job(api, api.call("updatePhysicalNetwork", id=pn["id"], state="Enabled"))


def account_networks(apis: list[ApiClient], zone: str, networks: int) -> list[dict[str, str]]:
    """``networks`` accounts, each with one isolated network (a thread pool of the API clients):
    ``[{"account", "domainid", "network"}]`` in account order."""
    api = apis[0]
    offering = api.call("listNetworkOfferings", name="DefaultIsolatedNetworkOfferingWithSourceNatService"
                        )["networkoffering"][0]["id"]
    done = [0]

    def make(i: int) -> dict[str, str]:
        client = apis[i % len(apis)]
        account = client.call("createAccount", username=f"bench-{i}", password=f"bench-pw-{i}-x",
                              firstname="Bench", lastname=str(i), email=f"bench-{i}@example.org",
                              accounttype=0)["account"]
        network = wait_job(client, client.call(
            "createNetwork", name=f"bench-net-{i}", displaytext=f"bench network {i}", networkofferingid=offering,
            zoneid=zone, account=account["name"], domainid=account["domainid"]))["network"]
        done[0] += 1
        if done[0] % 100 == 0:
            progress(f"{done[0]}/{networks} accounts with a network")
        return {"account": str(account["name"]), "domainid": str(account["domainid"]), "network": str(network["id"])}

    with ThreadPoolExecutor(len(apis)) as pool:
        return list(pool.map(make, range(networks)))


def running_routers(api: ApiClient) -> int:
    """How many virtual routers listRouters shows Running (every page)."""
    count, page = 0, 1
    while True:
        found = api.call("listRouters", listall=True, state="Running", pagesize=500, page=page).get("router", [])
        count += len(found)
        if len(found) < 500:
            return count
        page += 1


def progress(message: str) -> None:
    print(f"[server_scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on the server: only the thread holding the GIL (where the CPU goes), or with
    HVCLOUD_PROFILE_WALL=1 every thread including idle ones (where the threads wait)."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    mode = ["--idle", "--threads"] if os.environ.get("HVCLOUD_PROFILE_WALL") else ["--gil"]
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", *mode, "--nonblocking",  # noqa: S603
                             "--rate", "50", "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


def start_server(base: Path, count: int, db_url: str | None, ping_seconds: float,
                 job_workers: int = 64, api_threads: int | None = None) -> ServerProcess:
    """``hvcloud server run --processes count``: the supervisor and its server processes, one address."""
    data = base / "server" / "data"
    data.mkdir(parents=True)
    threads = ["--api-threads", str(api_threads)] if api_threads is not None else []
    return ServerProcess(data, db_url, [
        *threads, "--allow-loopback-downloads", "--job-workers", str(job_workers), "--processes", str(count),
        "--setting", f"ping.interval={ping_seconds}", "--setting", "host.stats.interval=600",
        "--setting", "ping.timeout=100"])


def keep_logs(base: Path, server: ServerProcess | None, agent: AgentProcess) -> None:
    """A failed run's server and agent logs, copied out of its temporary directory (which goes)."""
    kept = Path(tempfile.mkdtemp(prefix="server_scale-failed-"))
    for log in [agent.log_path, *([server.log_path] if server is not None else [])]:
        with contextlib.suppress(OSError):
            shutil.copy(log, kept / log.name)
    progress(f"the run failed; its server and agent logs are in {kept}")


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren …, oldest first."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                out += [int(child), *descendants(int(child))]
    return sorted(out)


def server_cpu(server: ServerProcess) -> float:
    """CPU seconds of the supervisor and every process under it (dead children's included)."""
    assert server.proc.pid is not None
    total = cpu_seconds(server.proc.pid, children=True)
    for pid in descendants(server.proc.pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid, children=True)
    return total


def first_server_pid(server: ServerProcess) -> int:
    """The process serving as server 0 (the supervisor itself with ``--processes 1``)."""
    spawned = spawned_servers(server.proc.pid)
    return spawned[0] if spawned else server.proc.pid


@contextlib.contextmanager
def database(db: str, base: Path) -> Iterator[str | None]:
    """``sqlite`` (the default): the server's own file for one server, else one file in ``base`` that
    the server processes share (their writers queue on its lock file); ``postgresql``: a fresh
    database on the local PostgreSQL, dropped afterwards; or a database URL."""
    if db == "sqlite":
        yield f"sqlite:///{base / 'shared.db'}"
    elif db == "postgresql":
        from tests.support.postgres import fresh_pg_database

        with fresh_pg_database() as url:
            yield url
    else:
        yield db


def run(hosts: int, vms: int, ping_seconds: float, profile: Path | None = None, servers: int = 1,
        db: str = "sqlite", job_workers: int = 64, profile_idle: Path | None = None,
        networks: int = 0, api_threads: int | None = None) -> dict[str, Any]:
    from tests.support.image_server import serve_images

    with tempfile.TemporaryDirectory() as tmp, database(db, Path(tmp)) as url:
        base = Path(tmp)
        for sub in ("agent", "images"):
            (base / sub).mkdir(parents=True)
        qemu_img.create(str(base / "images" / "t.qcow2"), "qcow2", 64 << 20)
        agent = AgentProcess(base / "agent" / "data", hosts=hosts).start()
        server: ServerProcess | None = None
        try:
            single = asyncio.run(baseline(agent, 5.0))
            with serve_images(base / "images") as images:
                server = start_server(base, servers, url, ping_seconds, job_workers, api_threads)
                apis = [ApiClient(server.endpoint, server.keys["apikey"], server.keys["secretkey"], timeout=300)
                        for _ in range(CLIENTS)]
                api = apis[0]
                progress(f"building the zone: {hosts} hosts")
                ids = build(api, agent, base, hosts, images.url("t.qcow2"))
            owners: list[dict[str, str]] = []
            if networks:
                progress(f"guest networking, {networks} accounts with an isolated network each")
                guest_networking(api, ids["zone"], networks)
                owners = account_networks(apis, ids["zone"], networks)
            progress(f"idle for one ping interval ({ping_seconds:g} s)")
            idle_profiler = start_profiler(first_server_pid(server), profile_idle) if profile_idle is not None else None
            ping_cpu_fraction = idle_cpu(server, ping_seconds)
            if idle_profiler is not None:
                stop_profiler(idle_profiler)

            latencies: list[float] = []

            def submit(i: int) -> str:
                owner = ({"account": owners[i % networks]["account"], "domainid": owners[i % networks]["domainid"],
                          "networkids": owners[i % networks]["network"]} if networks else {})
                started = time.monotonic()
                out = apis[i % len(apis)].call("deployVirtualMachine", serviceofferingid=ids["offering"],
                                               templateid=ids["template"], zoneid=ids["zone"], **owner)
                latencies.append(1000 * (time.monotonic() - started))
                if (i + 1) % 1000 == 0:
                    progress(f"{i + 1}/{vms} deploys submitted")
                return str(out["jobid"])

            profiler = start_profiler(first_server_pid(server), profile) if profile is not None else None
            first, deploy_cpu0 = time.monotonic(), server_cpu(server)
            assert agent.proc is not None
            agent_cpu0, machine0 = cpu_seconds(agent.proc.pid), machine_busy_seconds()
            progress(f"deploying {vms} VMs")
            with ThreadPoolExecutor(CLIENTS) as pool:
                jobs = list(pool.map(submit, range(vms)))
            failed = 0
            first_error = ""
            for n, jobid in enumerate(jobs, 1):
                while True:
                    job = api.call("queryAsyncJobResult", jobid=jobid)
                    if job["jobstatus"] != 0:
                        if job["jobstatus"] == 2:
                            failed += 1
                            first_error = first_error or str((job.get("jobresult") or {}).get("errortext"))
                        break
                    time.sleep(POLL_SECONDS)
                if n % 1000 == 0:
                    progress(f"{n}/{vms} deploys done ({failed} failed)")
            if first_error:
                progress(f"first failed deploy: {first_error}")
            deploy_seconds = time.monotonic() - first
            deploy_cpu = (server_cpu(server) - deploy_cpu0) / deploy_seconds
            agent_cpu = cpu_seconds(agent.proc.pid) - agent_cpu0
            machine_cores = (machine_busy_seconds() - machine0) / deploy_seconds
            if profiler is not None:
                stop_profiler(profiler)
            routers_running = running_routers(api) if networks else 0
            progress(f"deploys done; {routers_running} routers running; idle and steady-API phases")
            # the VMs are the accounts' with networks: the admin lists them all (listall), as the
            # baseline's admin lists its own
            listall = True if networks else None
            list_ms: list[float] = []
            listed = 0
            pages = max(1, (vms + 499) // 500)
            for i in range(20):
                started = time.monotonic()
                page = apis[i % len(apis)].call("listVirtualMachines", page=i % pages + 1, pagesize=500,
                                                listall=listall)
                list_ms.append(1000 * (time.monotonic() - started))
                listed = max(listed, int(page.get("count", 0)))
            ping_cpu_with_vms = idle_cpu(server, ping_seconds)
            steady_ms = steady_latencies(api, ping_seconds, listall)
            for client in apis:
                client.close()
        except BaseException:
            keep_logs(base, server, agent)
            raise
        finally:
            if server is not None:
                server.stop()
            agent.stop()
    db_name = url.split(":", 1)[0].split("+", 1)[0] if url else "sqlite"
    return {"hosts": hosts, "vms": vms, "networks": networks, "routers_running": routers_running,
            "servers": servers, "database": db_name,
            "ping_interval_s": ping_seconds, "job_workers": job_workers, "api_threads": api_threads or 40,
            "failed": failed,
            "deploy_seconds": round(deploy_seconds, 2),
            "deploy_vms_per_s": round(vms / deploy_seconds, 2), "api_p95_ms": round(p95(latencies), 1),
            "list_vms_p95_ms": round(p95(list_ms), 1), "list_vms_count": listed,
            "list_vms_samples_ms": [round(ms, 1) for ms in list_ms],
            "ping_cpu_fraction": round(ping_cpu_fraction, 4),
            "ping_cpu_fraction_with_vms": round(ping_cpu_with_vms, 4),
            "steady_api_p50_ms": round(statistics.median(steady_ms), 1),
            "steady_api_p99_ms": round(statistics.quantiles(steady_ms, n=100, method="inclusive")[-1], 1),
            "steady_api_max_ms": round(max(steady_ms), 1),
            "baseline_start_stop_per_s": round(single, 1), "server_cpu_cores_during_deploy": round(deploy_cpu, 2),
            "server_cpu_ms_per_vm": round(1000 * deploy_cpu * deploy_seconds / vms, 1),
            "agent_cpu_ms_per_vm": round(1000 * agent_cpu / vms, 1),
            "machine_cpu_cores_during_deploy": round(machine_cores, 2),
            "deploy_vs_baseline": round(vms / deploy_seconds / single, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--networks", type=int, default=0,
                        help="accounts with an isolated network each; VM i goes on network i %% N (0: none)")
    parser.add_argument("--ping-interval", type=float, default=60.0, help="the server's ping.interval (s)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=Path, help="write py-spy collapsed stacks of the deploy phase here "
                                                     "(of the first server)")
    parser.add_argument("--servers", type=int, default=os.cpu_count() or 1,
                        help="server processes sharing the work (default: one per core)")
    parser.add_argument("--db", default="sqlite", help="sqlite (one file, shared by the servers), postgresql "
                                                       "(a fresh database on the local PostgreSQL) or a URL")
    parser.add_argument("--job-workers", type=int, default=64, help="jobs each server runs at once")
    parser.add_argument("--api-threads", type=int, help="API requests each server handles at once "
                        "(default: the server's)")
    parser.add_argument("--profile-idle", type=Path, help="the same for the idle (ping) phase")
    args = parser.parse_args()
    if args.servers < 1:
        parser.error("--servers must be at least 1")
    if args.networks < 0:
        parser.error("--networks must not be negative")
    result = run(args.hosts, args.vms, args.ping_interval, args.profile, args.servers, args.db, args.job_workers,
                 args.profile_idle, args.networks, args.api_threads)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['hosts']} simulated hosts, {result['vms']} VMs ({result['failed']} failed), "
          f"{result['servers']} server process(es) on {result['database']}")
    if result["networks"]:
        print(f"{result['networks']} isolated networks (one per account); {result['routers_running']} routers "
              f"running after the deploys")
    print(f"deploy: {result['deploy_vms_per_s']} VMs/s ({result['deploy_seconds']} s); submission p95 "
          f"{result['api_p95_ms']} ms")
    print(f"server CPU while deploying: {result['server_cpu_cores_during_deploy']} cores, "
          f"{result['server_cpu_ms_per_vm']} ms per VM")
    print(f"agent CPU per VM: {result['agent_cpu_ms_per_vm']} ms; the whole machine was busy "
          f"{result['machine_cpu_cores_during_deploy']} cores of {os.cpu_count()}")
    print(f"listVirtualMachines pagesize 500: p95 {result['list_vms_p95_ms']} ms")
    print(f"idle server, {result['hosts']} hosts pinged every {result['ping_interval_s']:g} s: "
          f"{100 * result['ping_cpu_fraction']:.2f}% of a core before the deploys, "
          f"{100 * result['ping_cpu_fraction_with_vms']:.2f}% with the {result['vms']} VMs running")
    print(f"steady API (listVirtualMachines pagesize 20 every 0.25 s for one ping interval): p50 "
          f"{result['steady_api_p50_ms']} ms, p99 {result['steady_api_p99_ms']} ms, "
          f"max {result['steady_api_max_ms']} ms")
    print(f"baseline: raw Start+Stop on one simulated host: {result['baseline_start_stop_per_s']}/s; "
          f"deploy rate = {result['deploy_vs_baseline']}x baseline")


if __name__ == "__main__":
    main()
