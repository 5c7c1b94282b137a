"""The ``connectors`` command: list, show, validate, doctor.

Domain errors (:class:`ConnectorsError`) become a one-line ``error:`` message
on stderr and exit status 1, here and nowhere else; usage mistakes exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .. import _discovery
from .._converter import to_wire
from .._exceptions import ConnectorsError, ManifestError
from .._manifest import Category, Status
from .._records import PluginState
from .._registry import Registry
from .._sources import load_manifests
from .._version import __version__
from . import _doctor, _render


class _Group(click.Group):
    """Turns domain errors into clean messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConnectorsError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _discover(ctx: click.Context) -> Registry:
    return _discovery.discover(strict=ctx.obj.get("strict"))


def _warn_failures(registry: Registry) -> None:
    failed = registry.failures
    if failed:
        names = ", ".join(r.name for r in failed)
        click.echo(
            f"warning: {len(failed)} plugin(s) failed to load ({names}); "
            "run `connectors doctor` for details",
            err=True,
        )


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connectors")
@click.option(
    "--strict",
    is_flag=True,
    default=None,
    help=f"Fail if any plugin fails to load (default: ${_discovery.ENV_STRICT}).",
)
@click.pass_context
def cli(ctx: click.Context, strict: bool | None) -> None:
    """Discover, inspect and check installed connectors."""
    ctx.obj = {"strict": strict}


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the manifests as JSON (wire format).")
@click.option("--category", type=click.Choice([c.value for c in Category]), help="Only this one.")
@click.option("--status", type=click.Choice([s.value for s in Status]), help="Only this status.")
@click.option("--tag", help="Only connectors with this tag.")
@click.pass_context
def list_command(
    ctx: click.Context,
    as_json: bool,
    category: str | None,
    status: str | None,
    tag: str | None,
) -> None:
    """List every installed connector."""
    registry = _discover(ctx)
    connectors = registry.filter(category=category, status=status, tag=tag)
    if as_json:
        _echo_json([to_wire(c) for c in connectors])
    elif connectors:
        rows = _render.connector_rows((c, registry.provider(c.id)) for c in connectors)
        headers = ["ID", "NAME", "CATEGORY", "STATUS", "AUTH", "PROVIDED BY"]
        click.echo(_render.table(headers, rows))
    else:
        click.echo("No connectors found." if len(registry) else "No connectors are installed.")
    _warn_failures(registry)


@cli.command()
@click.argument("connector_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON (wire format).")
@click.pass_context
def show(ctx: click.Context, connector_id: str, as_json: bool) -> None:
    """Show one connector's manifest."""
    registry = _discover(ctx)
    connector = registry.get(connector_id)
    if as_json:
        _echo_json(to_wire(connector))
    else:
        click.echo(_render.connector_details(connector, registry.provider(connector_id)))


@cli.command()
@click.argument("target")
def validate(target: str) -> None:
    """Validate a manifest without installing it.

    TARGET is a JSON or TOML manifest file; an importable MODULE:ATTRIBUTE
    (a Connector, a mapping, or a function returning them) or MODULE (its
    provide_connector); or a folder: a plugin project (its pyproject.toml
    declares connectors_core entry points) or a Python package. Every problem
    is printed with its field path; the exit status is 1 when any is found.
    """
    try:
        connectors = load_manifests(target)
    except ManifestError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for connector in connectors:
        click.echo(f"valid: {connector.id} ({connector.name})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Report every plugin: loaded, disabled or failed (and why).

    Run inside a plugin's project folder, it speaks about that plugin first.
    Warns about hook-like functions without @hookimpl (failures under
    --strict), entry points named unlike their connector, and missing docs.
    Exits with status 1 when any plugin failed.
    """
    registry = _discovery.survey(strict=ctx.obj.get("strict"))
    failed = registry.failures
    warnings = _doctor.plugin_warnings(registry) + _doctor.docs_warnings(registry)
    here = _doctor.project_report(registry, Path.cwd())
    if as_json:
        report: dict[str, object] = {
            "ok": not failed,
            "connectors": registry.ids(),
            "plugins": [record.to_json() for record in registry.plugins],
            "warnings": warnings,
        }
        if here is not None:
            report["project"] = here
        _echo_json(report)
        if failed:
            ctx.exit(1)
        return
    if here is not None:
        click.echo("\n".join(_doctor.project_lines(here)))
        click.echo("")
    if not registry.plugins:
        click.echo("No connector plugins are installed.")
    else:
        headers = ["PLUGIN", "DISTRIBUTION", "VERSION", "STATE", "DETAIL"]
        click.echo(_render.table(headers, _render.plugin_rows(registry.plugins)))
        for record in failed:
            click.echo("")
            phase = record.phase.value if record.phase else "?"
            click.echo(f"{record.name} failed during {phase}:")
            for line in (record.error or "").splitlines():
                click.echo(f"  {line}")
        loaded = sum(r.state is PluginState.LOADED for r in registry.plugins)
        disabled = sum(r.state is PluginState.DISABLED for r in registry.plugins)
        click.echo("")
        for warning in warnings:
            click.echo(f"warning: {warning}")
        click.echo(
            f"{len(registry)} connector(s) from {loaded} plugin(s); "
            f"{disabled} disabled, {len(failed)} failed."
        )
    if failed:
        ctx.exit(1)


@cli.command()
def schema() -> None:
    """Print the manifest's JSON Schema (draft 2020-12).

    Point an editor at it to validate connector.json files as you type.
    """
    from .._jsonschema import manifest_schema

    _echo_json(manifest_schema())


@cli.command()
@click.option(
    "--webhook",
    is_flag=True,
    help="Print a webhook signing secret (whsec_...) for CONNECTORS_WEBHOOK_SECRET instead.",
)
def keygen(webhook: bool) -> None:
    """Print a new key for CONNECTORS_SECRET_KEYS.

    To rotate, put the new key first and keep the old ones after it:
    CONNECTORS_SECRET_KEYS=<new>,<old>. With --webhook, a Standard Webhooks
    signing secret for CONNECTORS_WEBHOOK_SECRET: give the receiver the same one.
    """
    if webhook:
        import base64
        import secrets

        click.echo("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
        return
    try:
        from ..store import generate_key
    except ImportError:
        raise ConnectorsError(
            "this command needs the server extra: pip install 'connectors-core[server]'"
        ) from None
    click.echo(generate_key())


def _register_serve() -> None:
    from ._connections import connections
    from ._db import db, rotate_keys
    from ._new import new
    from ._serve import serve

    cli.add_command(new)
    cli.add_command(serve)
    cli.add_command(db)
    cli.add_command(rotate_keys)
    cli.add_command(connections)


_register_serve()


def main() -> None:
    """Entry point of the ``connectors`` console script."""
    cli(prog_name="connectors")
