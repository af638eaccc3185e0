"""``hvcloud server``: the management server."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Run the management server (CloudStack-compatible API).", no_args_is_help=True)

DEFAULT_DATA_DIR = Path("/var/lib/hvcloud/server")


@app.command()
def run(
    listen: str = typer.Option("127.0.0.1:8080", help="HOST:PORT to serve /client/api on"),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="secret key, SQLite database"),
    db: str | None = typer.Option(None, "--db", help="database URL (default: SQLite in the data directory)"),
    log_level: str = typer.Option("info", help="log level of the server and of uvicorn"),
    job_workers: int = typer.Option(8, help="jobs each server process runs at once"),
    api_threads: int = typer.Option(40, min=1, max=1024, help="API requests each server process handles at "
                                    "once (the rest wait for a thread)"),
    processes: int = typer.Option(1, min=1, max=64, help="server processes sharing the listen address and "
                                  "the database (one per core uses the machine; each has its own server id)"),
    lease_seconds: float = typer.Option(30.0, help="a server silent this long is dead; its jobs and hosts move"),
    allow_private_downloads: bool = typer.Option(False, help="let templates be fetched from private addresses"),
    allow_loopback_downloads: bool = typer.Option(False, help="let templates be fetched from loopback addresses"),
    max_template_bytes: int = typer.Option(64 * 1024**3, help="largest template download or upload"),
    nfs_mount_root: Path = typer.Option(Path("/var/lib/hvcloud/secondary"),
                                        help="where NFS image stores are mounted (<root>/<host>/<export>)"),
    public_url: str | None = typer.Option(None, help="base URL clients use to reach this server (upload URLs)"),
    plugin: list[str] = typer.Option([], help="module to import that registers extra commands or job handlers"),
    trusted_proxy: list[str] = typer.Option([], help="CIDR of a reverse proxy whose X-Forwarded-For and "
                                            "X-Forwarded-Proto are believed (repeatable; none by default)"),
    header_timeout: float = typer.Option(10.0, help="seconds a client may take to send its request headers"),
    body_timeout: float = typer.Option(60.0, help="seconds a request body may pause before the connection "
                                       "is closed"),
    max_pending_per_source: int = typer.Option(64, help="connections one address may hold while still "
                                               "sending a request"),
    setting: list[str] = typer.Option([], "--setting", help="NAME=VALUE of a CloudStack-named setting: "
                                      "ping.interval, ping.timeout, host.stats.interval, wait, … (repeatable); "
                                      "a value stored with updateConfiguration wins over it"),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="serve HTTPS with this PEM certificate "
                                         "(chain); needs --tls-key"),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="the PEM private key of --tls-cert"),
) -> None:
    """Migrate the database, seed it on first start, run the AgentManager and serve the API."""
    from hvcloud.http_guard import ConnectionLimits, parse_networks
    from hvcloud.server import processes as procs
    from hvcloud.server.config import ServerConfig, check_tls, split_setting
    from hvcloud.server.state import ServerState

    try:
        settings = dict(split_setting(s) for s in setting)
        check_tls(tls_cert, tls_key)
        limits = ConnectionLimits(trusted_proxies=tuple(parse_networks(trusted_proxy, "--trusted-proxy")),
                                  header_timeout=header_timeout, body_idle_timeout=body_timeout,
                                  max_pending_per_source=max_pending_per_source)
        limits.validate()
        config = ServerConfig.build(
            data_dir, db, listen, settings, job_workers=job_workers, api_threads=api_threads,
            lease_seconds=lease_seconds,
            download_allow_private=allow_private_downloads, download_allow_loopback=allow_loopback_downloads,
            template_max_bytes=max_template_bytes, nfs_mount_root=nfs_mount_root, public_url=public_url,
            plugins=tuple(plugin), tls_cert=tls_cert, tls_key=tls_key, connection_limits=limits)
        if processes > 1:
            procs.check_shareable(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if processes == 1:
        procs.serve(config, 0, log_level)
        return
    ServerState.open(config).close()
    try:
        sock = procs.bind(config)
    except OSError as exc:
        typer.echo(f"cannot listen on {listen}: {exc}", err=True)
        raise typer.Exit(1) from None
    scheme = "https" if tls_cert is not None else "http"
    typer.echo(f"hvcloud server: {processes} processes on {scheme}://{listen}/client/api", err=True)
    raise typer.Exit(procs.Supervisor(config, processes, log_level, sock).run())


@app.command("admin-keys")
def admin_keys(
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="the server's data directory"),
    db: str | None = typer.Option(None, "--db", help="database URL (default: the one the server recorded)"),
) -> None:
    """Print the root admin's API keys as JSON."""
    from sqlalchemy import select

    from hvcloud.server.config import ServerConfig
    from hvcloud.server.db.models import User
    from hvcloud.server.db.seed import ADMIN_USERNAME
    from hvcloud.server.state import ServerState

    state = ServerState.open(ServerConfig.build(data_dir, db))
    try:
        with state.sessions() as session:
            admin = session.scalar(select(User).where(User.username == ADMIN_USERNAME))
            if admin is None or admin.api_key is None or admin.secret_key_enc is None:
                typer.echo("the admin user has no API keys", err=True)
                raise typer.Exit(1)
            secret = state.box.decrypt(admin.secret_key_enc)
            typer.echo(json.dumps({"apikey": admin.api_key, "secretkey": secret}))
    finally:
        state.close()


@app.command("console-key")
def console_key(
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="the server's data directory"),
    out: Path = typer.Option(..., "--out", help="file to write the key to (mode 0600)"),
) -> None:
    """Write the console token key (derived from secret.key) as hex, for a console proxy on its own
    machine (``hvcloud console-proxy run --key-file``): it can open console tokens, nothing else."""
    import os

    from hvcloud.console_proxy.config import key_from_data_dir

    try:
        key = key_from_data_dir(data_dir)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    os.chmod(out, 0o600)
    typer.echo(f"console key written to {out}", err=True)
