"""Server-rendered pages of the routes: the connect form, "disconnect?", "sign in first".

Rendered from Jinja templates (``templates/connect.html``, with the inputs
macro the Integrations page shares), never from HTML strings. A secret input
is never filled in: after a failed submit the form keeps the non-secret
values only, and shows each message beside its input.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from .._manifest import Connector
from ..flows import flow_for

__all__ = ["Forms", "templates"]

HERE = Path(__file__).parent


def day(timestamp: float | None) -> str:
    """A UNIX time as the day it fell on (UTC, ``2026-12-07``); empty for None."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


@functools.cache
def templates() -> Environment:
    """The Jinja environment of the built-in templates (autoescaped)."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["day"] = day
    return environment


def connection_title(connector: Connector, status: Mapping[str, Any]) -> str:
    """How the page names one connection: its label, else its account, else its id."""
    details = status.get("status") or {}
    if status.get("error") == "needs_reauth":
        details = {**status.get("account", {}), "label": status.get("label")}
    if details.get("label"):
        return str(details["label"])
    key = connector.connection.account_key if connector.connection else None
    for name in (key, "accountName", "organizationId", "userId", "keyHint"):
        if name and details.get(name):
            return str(details[name])
    return str(details.get("connectionId") or status.get("connectionId") or connector.name)


class Forms:
    """Renders the connect form and the signed-out page."""

    def connect_page(
        self,
        connector: Connector,
        *,
        action: str,
        return_path: str,
        csrf_token: str,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        again: bool = False,
        status_code: int = 200,
    ) -> HTMLResponse:
        """The connect form of ``connector``, posting to ``action``; ``values`` and ``errors``
        by input name (``again``: of an existing connection)."""
        flow = flow_for(connector)
        inputs = flow.inputs(connector)
        known = {i.name for i in inputs}
        html = (
            templates()
            .get_template("connect.html")
            .render(
                connector=connector,
                action=action,
                again=again,
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

    def confirm_disconnect_page(
        self,
        connector: Connector,
        status: Mapping[str, Any],
        *,
        action: str,
        return_path: str,
        csrf_token: str,
    ) -> HTMLResponse:
        """The page asking whether to disconnect one connection (its status JSON): a form
        posting to ``action``, and a way back."""
        details = status.get("status") or {}
        html = (
            templates()
            .get_template("confirm.html")
            .render(
                connector=connector,
                title=connection_title(connector, status),
                connected_by=(details.get("connectedBy") or {}),
                connected_at=details.get("connectedAt"),
                action=action,
                return_path=return_path,
                csrf_token=csrf_token,
            )
        )
        return HTMLResponse(html)

    def signed_out(self, connector: Connector | None, return_path: str) -> HTMLResponse:
        """A page for a browser without a signed-in user (a 401)."""
        html = (
            templates()
            .get_template("signed_out.html")
            .render(connector=connector, return_path=return_path)
        )
        return HTMLResponse(html, status_code=401)
