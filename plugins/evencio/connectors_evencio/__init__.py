"""The official Evencio connector for connectors-core.

This module is the plugin: the ``connectors_core`` entry point of the
``connectors-evencio`` distribution names it, and connectors-core registers it
with pluggy during :func:`connectors_core.discover`. It uses only the public
API of connectors-core, as any third-party connector would.
"""

from __future__ import annotations

from typing import Any

from connectors_core import Connector, hookimpl

from ._manifest import API_BASE_URL, EVENCIO

__version__ = "0.1.0"

__all__ = ["API_BASE_URL", "EVENCIO", "__version__", "connection_account", "provide_connector"]


@hookimpl
def provide_connector() -> Connector:
    """Provide the Evencio manifest."""
    return EVENCIO


@hookimpl
async def connection_account(
    connector: Connector, access_token: str, http: Any, settings: Any
) -> dict[str, str] | None:
    """Ask Evencio which organization and user a new connection belongs to.

    ``GET <api>/oauth/status`` with the new access token answers
    ``{"userId", "organizationId", "clientId", "scopes"}``. The API base is
    ``CONNECTORS_EVENCIO_API_URL`` (default: the production API).
    """
    if connector.id != EVENCIO.id:
        return None
    base = settings.connector_setting(EVENCIO.id, "api_url") or API_BASE_URL
    response = await http.get(
        f"{base.rstrip('/')}/oauth/status", headers={"Authorization": f"Bearer {access_token}"}
    )
    response.raise_for_status()
    status = response.json()
    return {"organizationId": str(status["organizationId"]), "userId": str(status["userId"])}
