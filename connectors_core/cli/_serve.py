"""``connectors serve``: the Integrations page and routes, with uvicorn."""

from __future__ import annotations

import logging
from typing import Any

import click

from .._exceptions import ConnectorsError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--demo",
    is_flag=True,
    help="Serve a sandbox OAuth provider at /sandbox for the OAuth connectors without a "
    "configured client (loopback only; create_app(sandbox=True)).",
)
@click.option(
    "--authenticator",
    metavar="MODULE:FUNCTION",
    envvar="CONNECTORS_AUTHENTICATOR",
    help="Resolves a request's tenant (required beyond loopback).",
)
def serve(host: str, port: int, demo: bool, authenticator: str | None) -> None:
    """Serve the Integrations page and the connection routes.

    On loopback this needs no set-up: an SQLite file in the current folder, a
    local encryption key, one local tenant. Beyond loopback it refuses to
    start without --authenticator and CONNECTORS_SECRET_KEYS.
    """
    try:
        import uvicorn

        from ..web._heap import freeze_after_startup
        from ..web._server import AccessLogFilter, create_server, public_url_for
    except ImportError:
        raise ConnectorsError(
            "`connectors serve` needs the server extra: pip install 'connectors-core[server]'"
        ) from None
    resolve: Any = None
    if authenticator:
        from .._loading import load_object

        try:
            resolve = load_object(authenticator)
        except Exception as exc:  # noqa: BLE001 - reported as a usage error
            raise ConnectorsError(
                f"cannot load the authenticator {authenticator!r}: {type(exc).__name__}: {exc}"
            ) from None
        if not callable(resolve):
            raise ConnectorsError(f"the authenticator {authenticator!r} is not callable")
    app = create_server(host=host, port=port, demo=demo, authenticator=resolve)
    origin = app.state.settings.base_url or public_url_for(host, port)
    click.echo(f"Integrations: {origin}/integrations")
    sandbox = app.state.sandbox
    if sandbox is not None:
        click.echo(
            f"Sandbox: {', '.join(sorted(sandbox.connector_ids))} connect through the sandbox "
            f"OAuth provider at {sandbox.base_url} (fake tokens, not the real services)."
        )
    elif demo:
        click.echo("Sandbox: every OAuth connector has a client; nothing to stand in for.")
    logging.getLogger("uvicorn.access").addFilter(AccessLogFilter())
    server = freeze_after_startup(app)  # full collections skip start-up's objects
    uvicorn.run(server, host=host, port=port, log_level="info", proxy_headers=False)
