"""Building and running an agent process from an AgentConfig."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import uvicorn

from hvcloud import http_guard, logs
from hvcloud.agent import drivers
from hvcloud.agent.app import AgentApp
from hvcloud.agent.auth import Authenticator
from hvcloud.agent.config import AgentConfig, ConfigError
from hvcloud.agent.context import HostContext, HostRegistry
from hvcloud.agent.credentials import Credentials, load_or_create
from hvcloud.agent.handlers.router import recover_routers
from hvcloud.agent.tls import ensure_self_signed, fingerprint
from hvcloud.hypervisor.driver import DriverError, HypervisorUnavailable

log = logs.get("hvcloud.agent")


def build_hosts(config: AgentConfig) -> list[HostContext]:
    """One HostContext per served host, with its driver and storage backend."""
    return drivers.build_hosts(config)


def build_app(config: AgentConfig, hosts: list[HostContext],
              credentials: Credentials | None) -> AgentApp:
    auth = Authenticator(config.auth, credentials, config.allow_from)
    return AgentApp(HostRegistry(hosts), auth, max_body=config.max_body_bytes, body_timeout=config.body_timeout,
                    heartbeat_interval=config.heartbeat_interval,
                    control=drivers.control_endpoints(config))


def bind_sockets(config: AgentConfig, hosts: list[HostContext]) -> list[socket.socket]:
    """One listening socket, or one per simulated host address (multi-host mode)."""
    addresses = [h.address for h in hosts] if len(hosts) > 1 else [config.listen_host]
    socks = []
    try:
        for addr in addresses:
            family = socket.AF_INET6 if ":" in addr else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((addr, config.listen_port))
            except OSError as exc:
                s.close()
                raise ConfigError(f"cannot listen on {addr}:{config.listen_port}: {exc.strerror}") from None
            s.listen(1024)
            s.setblocking(False)
            socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def run_agent(config: AgentConfig) -> None:
    """Run the agent until interrupted. Raises ConfigError or HypervisorUnavailable on start."""
    config.validate()
    logs.configure(config.log_level)
    credentials = None
    if config.auth == "password":
        credentials, created = load_or_create(config.data_dir)
        if created:
            log.info("generated agent credentials", file=str(config.data_dir / "agent-credentials.json"),
                     username=credentials.username)
    try:
        hosts = build_hosts(config)
    except HypervisorUnavailable:
        raise
    except DriverError as exc:
        raise HypervisorUnavailable(str(exc)) from None
    recovered = sum(len(recover_routers(h)) for h in hosts)
    if recovered:
        log.info("routers back", count=recovered)
    for h in hosts[:3]:
        vms = h.driver.list_vms()
        lacks = {cap: why for cap, why in h.driver.host_capabilities().items() if why is not None}
        log.info("host ready", host=h.address, driver=h.driver.name, vms=len(vms), pools=len(h.pools),
                 lacks=lacks or None)
    if len(hosts) > 3:
        log.info("more hosts ready", count=len(hosts))
    agent = build_app(config, hosts, credentials)
    socks = bind_sockets(config, hosts)
    ssl_kwargs: dict[str, object] = {}
    if config.tls:
        cert, key = (config.certfile, config.keyfile) if config.certfile and config.keyfile else \
            ensure_self_signed(config.data_dir, [h.address for h in hosts[:16]])
        ssl_kwargs = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        if config.auth == "mtls":
            ssl_kwargs.update(ssl_cert_reqs=ssl.CERT_REQUIRED, ssl_ca_certs=str(config.client_ca))
        log.info("tls", certificate=str(cert), sha256=fingerprint(Path(cert)))
    uv = uvicorn.Config(agent.app, log_level="warning", access_log=False,
                        lifespan="on", server_header=False,
                        **http_guard.uvicorn_options(config.connection_limits()),
                        **ssl_kwargs)  # type: ignore[arg-type]
    server = uvicorn.Server(uv)
    log.info("agent listening", addresses=len(socks), port=config.listen_port, auth=config.auth,
             tls=config.tls, trusted_proxies=[str(n) for n in config.trusted_proxies])
    try:
        asyncio.run(server.serve(sockets=socks))
    finally:
        HostRegistry(hosts).close()
