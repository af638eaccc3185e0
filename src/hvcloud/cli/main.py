"""Entry point of the ``hvcloud`` command: one sub-command group per area."""

from __future__ import annotations

import typer

from hvcloud import __version__
from hvcloud.cli import agent as agent_cli
from hvcloud.cli import console_proxy as console_proxy_cli
from hvcloud.cli import demo as demo_cli
from hvcloud.cli import disk as disk_cli
from hvcloud.cli import guest as guest_cli
from hvcloud.cli import server as server_cli

app = typer.Typer(
    name="hvcloud",
    help="hvcloud: a cloud control plane and a CloudStack-compatible hypervisor host agent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(agent_cli.app, name="agent")
app.add_typer(console_proxy_cli.app, name="console-proxy")
app.add_typer(disk_cli.app, name="disk")
app.add_typer(guest_cli.app, name="guest")
app.add_typer(server_cli.app, name="server")
app.command("demo")(demo_cli.demo)


@app.command()
def version() -> None:
    """Print hvcloud's version."""
    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
