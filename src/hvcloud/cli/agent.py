"""``hvcloud agent``: the host agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hvcloud.agent.config import AgentConfig, ConfigError, parse_networks
from hvcloud.hypervisor.driver import HypervisorUnavailable

app = typer.Typer(help="Run the host agent that executes CloudStack commands on this hypervisor.",
                  no_args_is_help=True)


def split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, 8250
    try:
        return host.strip("[]") or "0.0.0.0", int(port)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT") from None


@app.command()
def run(
    driver: Annotated[str, typer.Option(help="simulator, libvirt or hyperv")] = "simulator",
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on")] = "0.0.0.0:8250",
    data_dir: Annotated[Path, typer.Option(help="where the agent keeps its state")] = Path("/var/lib/hvcloud/agent"),
    auth: Annotated[str, typer.Option(help="password, mtls or cloudstack-compat")] = "password",
    allow_from: Annotated[list[str] | None, typer.Option(help="CIDR allowed to send commands (repeatable)")] = None,
    client_ca: Annotated[Path | None, typer.Option(help="CA of client certificates for --auth mtls")] = None,
    no_tls: Annotated[bool, typer.Option("--no-tls", help="plain HTTP (tests only)")] = False,
    max_body: Annotated[int, typer.Option(help="largest accepted request body in bytes")] = 8 * 1024 * 1024,
    body_timeout: Annotated[float, typer.Option(help="seconds a client may take to send a request body")] = 60.0,
    header_timeout: Annotated[float, typer.Option(help="seconds a client may take to send its request headers")] = 10.0,
    max_pending_per_source: Annotated[int, typer.Option(
        help="connections one address may hold while still sending a request")] = 64,
    trusted_proxy: Annotated[list[str] | None, typer.Option(
        help="CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable; none by default)")] = None,
    sim_hosts: Annotated[int, typer.Option(help="simulator: hosts served by this process")] = 1,
    sim_first_address: Annotated[str | None, typer.Option(help="simulator: address of the first host")] = None,
    sim_memory_gib: Annotated[int, typer.Option(help="simulator: memory of each host")] = 128,
    libvirt_uri: Annotated[str, typer.Option(help="libvirt connection URI")] = "qemu:///system",
    libvirt_domain_type: Annotated[str, typer.Option(help="auto, kvm or qemu (software emulation)")] = "auto",
    vnc_listen: Annotated[str, typer.Option(help="address VM consoles (VNC) listen on")] = "127.0.0.1",
    bridge: Annotated[str | None, typer.Option(help="Linux bridge for NICs without a network name")] = None,
    local_pool: Annotated[Path | None, typer.Option(help="directory of the host's local storage pool")] = None,
    pool_root: Annotated[list[Path] | None, typer.Option(
        help="directory Filesystem pools must lie in (repeatable; default: any but system directories)")] = None,
    store_root: Annotated[list[Path] | None, typer.Option(
        help="directory file:// image stores must lie in (repeatable; default: none, file:// stores refused)")] = None,
    nic_rate_limits: Annotated[bool, typer.Option(help="apply CloudStack's NIC rate (needs sch_htb/sch_sfq)")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Serve CloudStack's Hyper-V agent protocol on HTTPS (port 8250 by default)."""
    from hvcloud.agent.service import run_agent

    host, port = split_listen(listen)
    if driver not in ("simulator", "libvirt", "hyperv"):
        raise typer.BadParameter("--driver must be simulator, libvirt or hyperv")
    if auth not in ("password", "mtls", "cloudstack-compat"):
        raise typer.BadParameter("--auth must be password, mtls or cloudstack-compat")
    try:
        config = AgentConfig(
            driver=driver,  # type: ignore[arg-type]
            listen_host=host, listen_port=port, data_dir=data_dir.resolve(),
            auth=auth,  # type: ignore[arg-type]
            allow_from=parse_networks(allow_from or []), client_ca=client_ca, tls=not no_tls,
            max_body_bytes=max_body, body_timeout=body_timeout, header_timeout=header_timeout,
            max_pending_per_source=max_pending_per_source,
            trusted_proxies=parse_networks(trusted_proxy or [], "--trusted-proxy"), sim_hosts=sim_hosts,
            sim_first_address=sim_first_address,
            sim_memory_gib=sim_memory_gib, libvirt_uri=libvirt_uri,
            libvirt_domain_type=libvirt_domain_type,  # type: ignore[arg-type]
            vnc_listen=vnc_listen, default_bridge=bridge, local_pool_dir=local_pool,
            pool_roots=[p.absolute() for p in pool_root or []], store_roots=[p.absolute() for p in store_root or []],
            nic_rate_limits=nic_rate_limits, log_level=log_level)
        run_agent(config)
    except (ConfigError, HypervisorUnavailable) as exc:
        typer.echo(f"hvcloud agent: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command("install-service")
def install_service(
    config: Annotated[Path | None, typer.Option(help="JSON file of agent settings")] = None,
    username: Annotated[str | None, typer.Option(help="Windows account the service runs as (DOMAIN\\user)")] = None,
    password: Annotated[str | None, typer.Option(help="that account's password", hide_input=True)] = None,
) -> None:
    """Register the agent as a Windows service (Hyper-V hosts). On Linux use deploy/systemd."""
    from hvcloud.agent import windows_service
    from hvcloud.hypervisor.driver import NotSupported

    try:
        windows_service.install(str(config) if config else None, username=username, password=password)
    except NotSupported as exc:
        typer.echo(f"hvcloud agent: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("remove-service")
def remove_service() -> None:
    """Unregister the Windows service."""
    from hvcloud.agent import windows_service
    from hvcloud.hypervisor.driver import NotSupported

    try:
        windows_service.remove()
    except NotSupported as exc:
        typer.echo(f"hvcloud agent: {exc}", err=True)
        raise typer.Exit(2) from None
