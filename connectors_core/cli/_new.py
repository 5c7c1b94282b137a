"""``connectors new``: scaffold a connector package."""

from __future__ import annotations

from pathlib import Path

import click

from .. import _discovery
from .._exceptions import ConnectorsError
from .._scaffold import scaffold
from .._version import __version__
from ..flows import FLOWS


@click.command()
@click.argument("connector_id", metavar="ID")
@click.option(
    "--auth",
    type=click.Choice(list(FLOWS)),
    default="api-key",
    show_default=True,
    help="How the connector authenticates.",
)
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Where to create the ID folder.",
)
@click.option(
    "--pkce/--no-pkce",
    default=True,
    show_default=True,
    help="OAuth: use PKCE (turn it off only for a provider that cannot take it).",
)
def new(connector_id: str, auth: str, parent: Path, pkce: bool) -> None:
    """Create a pip-installable connector package in a new folder named ID."""
    registry = _discovery.discover()
    if connector_id in registry:
        raise ConnectorsError(
            f"a connector with id {connector_id!r} is already installed, "
            f"provided by {registry.provider(connector_id)}; choose another id"
        )
    folder = scaffold(connector_id, auth, parent, __version__.rsplit(".", 1)[0], pkce=pkce)
    click.echo(f"created {folder}")
    click.echo("next:")
    click.echo(f"  pip install -e '{folder}[test]'")
    click.echo(f"  connectors list            # {connector_id} is there")
    click.echo(f"  cd {folder} && pytest      # the connector contract")
