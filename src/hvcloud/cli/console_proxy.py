"""``hvcloud console-proxy``: the console proxy (noVNC page, VNC WebSocket bridge, ``.rdp`` files)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Run a console proxy (browser consoles of VMs).", no_args_is_help=True)


@app.command()
def run(
    listen: str = typer.Option("0.0.0.0:8443", help="HOST:PORT to serve the console on"),
    public_url: str | None = typer.Option(None, help="base URL browsers use to reach this proxy "
                                          "(default: from the listen address)"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="a management server's data directory "
                                         "(token key and database URL from there)"),
    key_file: Path | None = typer.Option(None, "--key-file", help="the console key written by "
                                         "`hvcloud server console-key` (a proxy on its own machine)"),
    db_url: str | None = typer.Option(None, "--db-url", help="the management server's database URL"),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="serve HTTPS/WSS with this PEM certificate"),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="the PEM private key of --tls-cert"),
    name: str | None = typer.Option(None, help="this proxy's name (default HOSTNAME:PORT)"),
    novnc_dir: Path = typer.Option(Path("/usr/share/novnc"), "--novnc-dir", help="noVNC's files"),
    max_sessions: int = typer.Option(500, min=1, help="consoles served at once"),
    max_frame_bytes: int = typer.Option(256 * 1024, min=1024, help="largest WebSocket message from a client"),
    idle_timeout: float = typer.Option(3600.0, min=1.0, help="seconds without traffic before a console closes"),
    send_timeout: float = typer.Option(10.0, min=0.1, help="seconds a client may take to read a frame"),
    heartbeat: float = typer.Option(15.0, min=0.1, help="seconds between WebSocket pings and database beats"),
    log_level: str = typer.Option("info", help="log level"),
) -> None:
    """Serve consoles until SIGTERM (which closes them with "proxy shutting down")."""
    import asyncio

    from hvcloud import logs
    from hvcloud.console_proxy import config as cfg
    from hvcloud.console_proxy.service import serve

    try:
        if (data_dir is None) == (key_file is None):
            raise ValueError("give either --data-dir, or --key-file with --db-url")
        if data_dir is not None:
            key = cfg.key_from_data_dir(data_dir)
            url = db_url or cfg.db_url_from_data_dir(data_dir)
        else:
            assert key_file is not None
            if not db_url:
                raise ValueError("--key-file needs --db-url")
            key, url = cfg.key_from_file(key_file), db_url
        host, port = cfg.parse_listen(listen)
        config = cfg.ProxyConfig(token_key=key, db_url=url, listen_host=host, listen_port=port,
                                 public_url=public_url or "", name=name or "", novnc_dir=novnc_dir,
                                 tls_cert=tls_cert, tls_key=tls_key, max_sessions=max_sessions,
                                 max_frame_bytes=max_frame_bytes, idle_timeout_seconds=idle_timeout,
                                 send_timeout_seconds=send_timeout, heartbeat_seconds=heartbeat)
        config.ssl_context()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    from sqlalchemy.exc import SQLAlchemyError

    logs.configure(log_level)
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        typer.echo(f"cannot serve the console proxy on {listen}: {exc}", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.echo(f"cannot register the console proxy in the database: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
