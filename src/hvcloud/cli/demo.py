"""``hvcloud demo``: a whole cloud on one machine, from nothing, in one command.

Starts a management server (SQLite under ``--data-dir``) and a host agent: one libvirt host booting
the real tiny test guest where libvirtd runs QEMU guests, or ``--hosts`` simulated hosts on 127.0.0.x
otherwise (``--driver auto``, the default, probes and says why it fell back; see ``demo_host``). It
builds a zone, pod, cluster, primary pool and ``file://`` image store, registers the template from a
loopback HTTP server, adds the hosts, deploys ``--vms`` VMs (waiting for a libvirt guest's boot
marker) and prints how to drive the cloud with ``cs`` or CloudMonkey. It keeps running until Ctrl-C
(or stops at once with ``--exit``); libvirt VMs are stopped before the agent. Child processes are
stopped by their PID.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from hvcloud.cli import demo_host
from hvcloud.cli.api_client import ApiClient, ApiError

DEFAULT_DATA_DIR = Path("var/demo")
console = Console()


def _free_port(addresses: list[str]) -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = int(s.getsockname()[1])
        try:
            for addr in addresses[1:]:
                with socket.socket() as s:
                    s.bind((addr, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


class Child:
    """A child process, stopped by its PID."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                         env={**os.environ, **(env or {})})

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the {self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def _serve_directory(root: Path) -> Iterator[int]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def _wait_http(url: str, child: Child, timeout: float = 60.0, *, verify: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while True:
        child.check()
        try:
            httpx.get(url, timeout=1, verify=verify)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not answer on {url}") from None
            time.sleep(0.1)


BOOT_TIMEOUT = 300.0


def _saved_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_CHOICES: dict[str, demo_host.DriverChoice] = {"auto": "auto", "simulator": "simulator", "libvirt": "libvirt"}


def _resolve_driver(requested: str, saved: object) -> demo_host.DriverChoice:
    """A data directory keeps the kind of cloud it was built with: ``auto`` reuses it, an explicit
    other driver is refused (its zone, cluster and hosts belong to the first one)."""
    choice = _CHOICES.get(requested)
    if choice is None:
        raise typer.BadParameter("driver must be auto, simulator or libvirt")
    built = _CHOICES.get(str(saved))
    if built is None or built == "auto":
        return choice
    if choice == "auto":
        console.print(f"this data directory holds a {built} cloud; reusing it (another --data-dir starts afresh)")
        return built
    if choice != built:
        raise typer.BadParameter(f"this data directory holds a {built} cloud; use --driver {built} or another "
                                 "--data-dir")
    return choice


def demo(
    driver: str = typer.Option("auto", help="auto (libvirt where libvirtd runs QEMU guests, else the simulator), "
                                            "simulator or libvirt"),
    hosts: int = typer.Option(3, min=1, max=200, help="simulated hosts (the libvirt driver serves one)"),
    vms: int | None = typer.Option(None, min=0, max=1000,
                                   help="VMs to deploy (default 3 simulated, 1 on libvirt)"),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="server, agent and image state"),
    listen: str = typer.Option("127.0.0.1:8080", help="HOST:PORT of the management server's API"),
    console_listen: str = typer.Option("127.0.0.1:6080", help="HOST:PORT of the console proxy (noVNC in the "
                                                              "browser)"),
    bridge: str | None = typer.Option(None, help="libvirt: the Linux bridge guest NICs join (default virbr0, "
                                                 "else an isolated hvdemo0 made for the demo)"),
    libvirt_uri: str = typer.Option("qemu:///system", help="libvirt: the daemon to use"),
    instance_suffix: str = typer.Option("VM", help="the last part of VM instance names (i-2-1-VM)"),
    exit_after: bool = typer.Option(False, "--exit", help="stop everything once the demo is done"),
) -> None:
    """Run a server and an agent, build a zone, deploy VMs, and keep the cloud running."""
    data_dir = data_dir.resolve()
    for sub in ("server", "agent", "images", "primary", "secondary", "logs"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    # the hosts an earlier run added keep their addresses and port, so a second run finds them again
    saved_file = data_dir / "agent" / "demo-agent.json"
    saved = _saved_state(saved_file)
    requested = _resolve_driver(driver, saved.get("driver"))
    try:
        with console.status("probing libvirt" if requested != "simulator" else "preparing the template"):
            host = demo_host.choose(requested, uri=libvirt_uri, bridge=bridge, images=data_dir / "images")
    except demo_host.DemoHostError as exc:
        console.print(f"[red]demo failed:[/red] the libvirt driver cannot run here: {exc}")
        raise typer.Exit(1) from None
    if host.fallback_reason is not None:
        console.print(f"[yellow]libvirt is not usable here ({host.fallback_reason}); falling back to the "
                      "simulator[/yellow]")
    if host.driver == "libvirt":
        hosts = 1
        console.print(f"driver: [bold]libvirt[/bold] at {libvirt_uri}, QEMU (TCG) guests on bridge {host.bridge}")
    else:
        console.print(f"driver: [bold]simulator[/bold], {hosts} simulated host(s)")
    count = vms if vms is not None else (1 if host.driver == "libvirt" else 3)
    block = str(saved.get("block", "")) or f"127.{random.randint(2, 250)}.{random.randint(2, 250)}"
    addresses = [f"{block}.{i + 1}" for i in range(hosts)]
    agent_port = int(saved.get("port", 0)) or _free_port(addresses)
    user, password = "demo", str(saved.get("password", "")) or secrets.token_urlsafe(12)
    fd = os.open(saved_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"block": block, "port": agent_port, "password": password, "driver": host.driver}, fh)
    children: list[Child] = []
    api: ApiClient | None = None
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with _serve_directory(data_dir / "images") as image_port:
            agent_args = [sys.executable, "-m", "hvcloud.cli.main", "agent", "run", "--driver", host.driver,
                          "--listen", f"{addresses[0]}:{agent_port}", "--data-dir", str(data_dir / "agent"),
                          "--log-level", "warning", "--pool-root", str(data_dir / "primary"),
                          "--store-root", str(data_dir / "secondary")]
            if host.driver == "simulator":
                agent_args += ["--sim-hosts", str(hosts), "--sim-first-address", addresses[0]]
            else:
                agent_args += ["--libvirt-uri", libvirt_uri, "--libvirt-domain-type", "qemu", "--no-nic-rate-limits",
                               "--bridge", host.bridge, "--local-pool", str(data_dir / "agent" / "local")]
            agent = Child("agent", agent_args, data_dir / "logs" / "agent.log",
                          {"HVCLOUD_AGENT_USERNAME": user, "HVCLOUD_AGENT_PASSWORD": password})
            children.append(agent)
            server = Child("server", [sys.executable, "-m", "hvcloud.cli.main", "server", "run", "--listen", listen,
                                      "--data-dir", str(data_dir / "server"), "--log-level", "warning",
                                      "--allow-loopback-downloads", "--setting", "ping.interval=5",
                                      "--setting", f"instance.name={instance_suffix}"],
                           data_dir / "logs" / "server.log")
            children.append(server)
            endpoint = f"http://{listen}/client/api"
            with console.status("starting the management server and the agent"):
                _wait_http(endpoint, server)
                for addr in addresses:
                    _wait_http(f"https://{addr}:{agent_port}/api/HypervResource", agent, verify=False)
            # the console proxy reads the server's database (migrated once the server answers)
            proxy = Child("console-proxy", [sys.executable, "-m", "hvcloud.cli.main", "console-proxy", "run",
                                            "--listen", console_listen, "--public-url", f"http://{console_listen}",
                                            "--data-dir", str(data_dir / "server"), "--log-level", "warning"],
                          data_dir / "logs" / "console-proxy.log")
            children.append(proxy)
            with console.status("starting the console proxy"):
                _wait_http(f"http://{console_listen}/healthz", proxy)
            keys = json.loads(subprocess.check_output(  # noqa: S603
                [sys.executable, "-m", "hvcloud.cli.main", "server", "admin-keys", "--data-dir",
                 str(data_dir / "server")]))
            api = ApiClient(endpoint, keys["apikey"], keys["secretkey"])
            deployed = _build(api, host.driver, addresses, agent_port, user, password, data_dir,
                              f"http://127.0.0.1:{image_port}/{host.template.name}", count, host.bridge)
            _report(endpoint, keys, deployed, data_dir)
            _report_console(api, deployed)
            if host.driver == "libvirt":
                _watch_boot(deployed, data_dir / "agent" / "console", children)
            if exit_after:
                return
            console.print("[bold]The cloud keeps running; press Ctrl-C to stop it.[/bold]")
            while True:
                for child in children:
                    child.check()
                time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")
    except (RuntimeError, ApiError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        if api is not None:
            if host.driver == "libvirt":
                _stop_vms(api)
            api.close()
        for child in reversed(children):
            child.stop()
        first, last = (int(x) for x in DEMO_VNI_RANGE.split("-"))
        demo_host.remove_bridge(host, range(first, last + 1))


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM ends the demo as Ctrl-C does: VMs, processes and the bridge are cleaned up."""
    raise KeyboardInterrupt


def _watch_boot(deployed: list[dict[str, Any]], console_dir: Path, children: list[Child]) -> None:
    """Wait for each libvirt guest's boot marker on its serial console (logged by libvirt)."""
    from hvcloud.storage.guest_image import BOOT_MARKER

    for vm in deployed:
        log = console_dir / f"{vm['instancename']}.log"
        deadline = time.monotonic() + BOOT_TIMEOUT
        with console.status(f"waiting for {vm['instancename']} to boot (software emulation: a minute or two)"):
            while BOOT_MARKER not in (log.read_text(errors="replace") if log.exists() else ""):
                for child in children:
                    child.check()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the guest of {vm['instancename']} printed no {BOOT_MARKER} on its serial "
                                       f"console within {BOOT_TIMEOUT:.0f} s (see {log})")
                time.sleep(1)
        console.print(f"guest [bold]{vm['instancename']}[/bold] booted: {BOOT_MARKER} on its serial console ({log})")
        listed = vm["nic"][0].get("ipaddress")
        if listed:
            lease = _wait_lease(log, children)
            verdict = "as listed" if lease == listed else f"but the API lists {listed}"
            console.print(f"guest [bold]{vm['instancename']}[/bold] got [bold]{lease or 'no address'}[/bold] by DHCP "
                          f"from its network's router, {verdict}")


def _wait_lease(log: Path, children: list[Child], timeout: float = 120.0) -> str | None:
    """The address the guest reports it leased (``HVCLOUD-LEASE ip=…``), or None if it gave up."""
    from hvcloud.storage.guest_image import LEASE_MARKER

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in (log.read_text(errors="replace") if log.exists() else "").splitlines():
            if line.startswith(LEASE_MARKER + " "):
                fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
                return fields.get("ip")
        for child in children:
            child.check()
        time.sleep(1)
    return None


def _stop_vms(api: ApiClient) -> None:
    """Real guests must not outlive the demo: stop every running VM before the agent goes."""
    try:
        running = api.call("listVirtualMachines", listall=True, state="Running").get("virtualmachine", [])
        jobs = [api.call("stopVirtualMachine", id=vm["id"], forced=True)["jobid"] for vm in running]
        with console.status(f"stopping {len(jobs)} VM(s)"):
            for jobid in jobs:
                api.wait(str(jobid), timeout=120)
        if jobs:
            console.print(f"stopped {len(jobs)} VM(s)")
        # routers are network namespaces and processes on this host: stopped, they keep their state
        # for the next run
        routers = api.call("listRouters", listall=True, state="Running").get("router", [])
        for jobid in [api.call("stopRouter", id=r["id"])["jobid"] for r in routers]:
            api.wait(str(jobid), timeout=120)
    except (ApiError, httpx.HTTPError) as exc:
        console.print(f"[yellow]could not stop the VMs ({exc}); stop them with virsh[/yellow]")


def _build(api: ApiClient, driver: str, addresses: list[str], port: int, user: str, password: str,
           data_dir: Path, image_url: str, count: int, bridge: str) -> list[dict[str, Any]]:
    hypervisor = "Simulator" if driver == "simulator" else "KVM"
    with console.status("building the zone"):
        zones = api.call("listZones", name="demo").get("zone")
        zone = zones[0] if zones else api.call("createZone", name="demo", networktype="Advanced", dns1="8.8.8.8",
                                                internaldns1="10.0.0.1")["zone"]
        console.print(f"zone [bold]{zone['name']}[/bold] {zone['id']}")
        pods = api.call("listPods", zoneid=zone["id"]).get("pod")
        pod = pods[0] if pods else api.call("createPod", name="pod1", zoneid=zone["id"], gateway="10.1.0.1",
                                            netmask="255.255.255.0", startip="10.1.0.10", endip="10.1.0.200")["pod"]
        clusters = api.call("listClusters", podid=pod["id"]).get("cluster")
        cluster = clusters[0] if clusters else api.call("addCluster", clustername="cluster1",
                                                        clustertype="CloudManaged", hypervisor=hypervisor,
                                                        podid=pod["id"], zoneid=zone["id"])["cluster"][0]
        if not api.call("listStoragePools", zoneid=zone["id"]).get("storagepool"):
            api.call("createStoragePool", name="primary", url=f"file://{data_dir / 'primary'}",
                     zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"])
        if not api.call("listImageStores", zoneid=zone["id"]).get("imagestore"):
            api.call("addImageStore", provider="NFS", name="images", url=f"file://{data_dir / 'secondary'}",
                     zoneid=zone["id"])
        details = {"details[0].key": "guest.network.label", "details[0].value": bridge}
        api.call("updateZone", id=zone["id"], allocationstate="Enabled", **details)
        network = _guest_network(api, zone["id"], bridge)
    known = {h["ipaddress"] for h in api.call("listHosts", zoneid=zone["id"]).get("host", [])}
    with console.status(f"adding {len(addresses)} host(s)"):
        for addr in addresses:
            if addr not in known:
                host = api.call("addHost", hypervisor=hypervisor, url=f"http://{addr}:{port}", username=user,
                                password=password, zoneid=zone["id"], podid=pod["id"],
                                clusterid=cluster["id"])["host"][0]
                console.print(f"host [bold]{host['name']}[/bold] {host['state']}")
    with console.status("waiting for the hosts to be Up"):
        deadline = time.monotonic() + 120
        while True:
            listed = api.call("listHosts", zoneid=zone["id"]).get("host", [])
            up = [h for h in listed if h["ipaddress"] in addresses and h["state"] == "Up"]
            if len(up) == len(addresses):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(up)} of {len(addresses)} hosts are Up")
            time.sleep(0.5)
    with console.status("registering the template"):
        os_type = api.call("listOsTypes")["ostype"][0]["id"]
        template = api.call("registerTemplate", name="demo-template", displaytext="hvcloud demo template",
                            format="QCOW2", hypervisor=hypervisor, url=image_url, zoneid=zone["id"],
                            ostypeid=os_type)["template"][0]
        deadline = time.monotonic() + 600
        while not api.call("listTemplates", templatefilter="all", id=template["id"])["template"][0]["isready"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the template did not download")
            time.sleep(0.3)
    console.print(f"template [bold]demo-template[/bold] {template['id']} ready")
    offering = api.call("listServiceOfferings", name="Small Instance")["serviceoffering"][0]
    deployed: list[dict[str, Any]] = []
    with console.status(f"deploying {count} VM(s)"):
        jobs = [api.call("deployVirtualMachine", serviceofferingid=offering["id"], templateid=template["id"],
                         zoneid=zone["id"], networkids=network["id"])["jobid"] for _ in range(count)]
        for jobid in jobs:
            try:
                deployed.append(api.wait(str(jobid))["virtualmachine"])
            except ApiError as exc:
                console.print(f"[red]a deploy failed:[/red] {exc.text}")
    return deployed


#: the VXLAN ids the demo's physical network hands its isolated networks (bridges brvx-<id> on the host)
DEMO_VNI_RANGE = "7000-7099"


def _guest_network(api: ApiClient, zone_id: str, bridge: str) -> dict[str, Any]:
    """The zone's guest networking as CloudStack's zone wizard sets it up (a physical network isolating
    segments by VXLAN over ``bridge``, the virtual router provider enabled) and the demo's isolated
    network, whose router (DHCP, DNS, metadata) starts with its first VM."""
    physical = api.call("listPhysicalNetworks", zoneid=zone_id).get("physicalnetwork")
    if not physical:
        pn = api.call("createPhysicalNetwork", zoneid=zone_id, name="physical", isolationmethods="VXLAN",
                      vlan=DEMO_VNI_RANGE)
        pn = api.wait(str(pn["jobid"]))["physicalnetwork"] if "jobid" in pn else pn["physicalnetwork"]
        _wait_job(api, api.call("addTrafficType", physicalnetworkid=pn["id"], traffictype="Guest",
                                kvmnetworklabel=bridge, simulatorlabel=bridge))
        provider = api.call("listNetworkServiceProviders", physicalnetworkid=pn["id"],
                            name="VirtualRouter")["networkserviceprovider"][0]
        element = api.call("listVirtualRouterElements", nspid=provider["id"])["virtualrouterelement"][0]
        _wait_job(api, api.call("configureVirtualRouterElement", id=element["id"], enabled=True))
        _wait_job(api, api.call("updateNetworkServiceProvider", id=provider["id"], state="Enabled"))
        _wait_job(api, api.call("updatePhysicalNetwork", id=pn["id"], state="Enabled"))
    networks = api.call("listNetworks", zoneid=zone_id, name="demo-net").get("network")
    if networks:
        return dict(networks[0])
    offering = api.call("listNetworkOfferings",
                        name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]
    network = api.call("createNetwork", name="demo-net", displaytext="the demo's isolated network",
                       networkofferingid=offering["id"], zoneid=zone_id)["network"]
    console.print(f"network [bold]demo-net[/bold] {network['cidr']} (isolated, VXLAN) {network['id']}")
    return dict(network)


def _wait_job(api: ApiClient, answer: dict[str, Any]) -> dict[str, Any]:
    return api.wait(str(answer["jobid"])) if "jobid" in answer else answer


def _report(endpoint: str, keys: dict[str, str], deployed: list[dict[str, Any]], data_dir: Path) -> None:
    table = Table(title="Virtual machines")
    for column in ("name", "state", "host", "address", "network", "MAC", "id"):
        table.add_column(column, no_wrap=True)
    for vm in deployed:
        nic = vm["nic"][0]
        table.add_row(vm["name"], vm["state"], vm.get("hostname", "-"), nic.get("ipaddress", "-"),
                      nic.get("networkname", "-"), nic["macaddress"], vm["id"])
    if not console.is_terminal:
        console.width = max(console.width, 120)
    console.print(table)
    key, secret = keys["apikey"], keys["secretkey"]
    ui = endpoint.rsplit("/client/api", 1)[0] + "/"
    lines = [f"Web UI:     [bold]{ui}[/bold] (user admin, password in {data_dir / 'server' / 'admin-password'})",
             f"API:        [bold]{endpoint}[/bold]", f"API key:    {key}", f"Secret key: {secret}",
             f"Logs:       {data_dir / 'logs'}",
             "With cs (pip install cs):",
             f"  [cyan]export CLOUDSTACK_ENDPOINT={endpoint} CLOUDSTACK_KEY={key} CLOUDSTACK_SECRET={secret}[/cyan]",
             "  [cyan]cs listVirtualMachines[/cyan]",
             "With CloudMonkey:",
             f"  [cyan]cmk set url {endpoint}; cmk set apikey {key}; cmk set secretkey {secret}; cmk sync[/cyan]"]
    for line in lines:
        console.print(line, soft_wrap=True)


def _report_console(api: ApiClient, deployed: list[dict[str, Any]]) -> None:
    """A console URL for the first VM (one use, short-lived: createConsoleEndpoint gives more)."""
    if not deployed:
        return
    vm = deployed[0]
    found = api.call("createConsoleEndpoint", virtualmachineid=vm["id"]).get("consoleendpoint", {})
    if found.get("success"):
        console.print(f"Console of {vm['name']} (open within a minute, once): [bold]{found['url']}[/bold]",
                      soft_wrap=True)
        console.print(f"  more: [cyan]cs createConsoleEndpoint virtualmachineid={vm['id']}[/cyan]", soft_wrap=True)
    else:
        console.print(f"[yellow]no console for {vm['name']}: {found.get('details', 'no answer')}[/yellow]")
