"""``hvcloud guest``: the tiny bootable test guest used by tests and demos."""

from __future__ import annotations

from pathlib import Path

import typer

from hvcloud.storage import guest_image

app = typer.Typer(help="Build the tiny test guest template (raw, qcow2, VHD).", no_args_is_help=True)


@app.command()
def build(
    out: Path | None = typer.Option(None, "--out", help="copy the images into this directory"),
    cache: Path | None = typer.Option(None, "--cache", help="cache directory for packages and images"),
) -> None:
    """Build the guest from Debian packages (cached by content) and print the image paths."""
    try:
        image = guest_image.build(cache_dir=cache, out_dir=out)
    except guest_image.GuestBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"kernel: {image.kernel_package}")
    for path in (image.raw, image.qcow2, image.vhd):
        typer.echo(str(path))
