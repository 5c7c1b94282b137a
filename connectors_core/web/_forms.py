"""Server-rendered pages of the connect step: the connect form and "sign in first".

Rendered from Jinja templates (``templates/connect.html``, with the inputs
macro the Integrations page shares), never from HTML strings. A secret input
is never filled in: after a failed submit the form keeps the non-secret
values only, and shows each message beside its input.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from .._manifest import Connector
from ..flows import flow_for

__all__ = ["Forms", "templates"]

HERE = Path(__file__).parent


@functools.cache
def templates() -> Environment:
    """The Jinja environment of the built-in templates (autoescaped)."""
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Forms:
    """Renders the connect form and the signed-out page."""

    def connect_page(
        self,
        connector: Connector,
        *,
        return_path: str,
        csrf_token: str,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        status_code: int = 200,
    ) -> HTMLResponse:
        """The connect form of ``connector``; ``values`` and ``errors`` by input name."""
        flow = flow_for(connector)
        inputs = flow.inputs(connector)
        known = {i.name for i in inputs}
        html = (
            templates()
            .get_template("connect.html")
            .render(
                connector=connector,
                return_path=return_path,
                inputs=inputs,
                values=values,
                errors={name: message for name, message in errors.items() if name in known},
                other_errors=[message for name, message in errors.items() if name not in known],
                csrf_token=csrf_token,
                continues=flow.continues_at_provider(connector),
                sign_in=flow.label,
            )
        )
        return HTMLResponse(html, status_code=status_code)

    def signed_out(self, connector: Connector | None, return_path: str) -> HTMLResponse:
        """A page for a browser without a signed-in user (a 401)."""
        html = (
            templates()
            .get_template("signed_out.html")
            .render(connector=connector, return_path=return_path)
        )
        return HTMLResponse(html, status_code=401)
