"""The flow of API-key connectors (``auth.type = "api-key"``).

The key is checked for what can travel in an HTTP header or a query string,
stored encrypted, shown only as a hint (its last four characters, for a long
key), and sent in the manifest's header or query parameter, after its
``valuePrefix`` (``Bearer ``) if any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .._manifest import ApiKeyAuth, Connector
from ._base import Flow, FlowContext, Input, Submission
from ._store import store_new

if TYPE_CHECKING:
    import httpx2

    from ..store import ConnectionSummary, StoredConnection

__all__ = ["API_KEY_MAX", "API_KEY_MIN", "ApiKeyFlow"]

API_KEY_MIN = 8
API_KEY_MAX = 512


def _auth(connector: Connector) -> ApiKeyAuth:
    auth = connector.auth
    assert isinstance(auth, ApiKeyAuth), "the flow table gives this flow API-key connectors only"
    return auth


class ApiKeyFlow(Flow):
    """The user pastes a key; the server stores it and sends it with every API request."""

    auth_type: ClassVar[str] = "api-key"
    label: ClassVar[str] = "API key"
    credential_reason: ClassVar[str] = "invalid_api_key"

    def credential_inputs(self, connector: Connector) -> tuple[Input, ...]:
        return (
            Input(
                name="api_key",
                json_name="apiKey",
                label="API key",
                html_type="password",
                secret=True,
                help=_auth(connector).description,
                min_length=API_KEY_MIN,
                max_length=API_KEY_MAX,
            ),
        )

    def check_credentials(self, connector: Connector, values: Mapping[str, str]) -> dict[str, str]:
        """The message for the key when it cannot be used, by input name."""
        key = values.get("api_key", "").strip()
        # Visible ASCII only: anything else cannot travel in an HTTP header.
        if not API_KEY_MIN <= len(key) <= API_KEY_MAX or not all("!" <= c <= "~" for c in key):
            return {
                "api_key": f"an API key is {API_KEY_MIN} to {API_KEY_MAX} visible ASCII "
                "characters, without spaces"
            }
        return {}

    def describe(self, connector: Connector) -> list[tuple[str, str]]:
        auth = _auth(connector)
        lines = [("header", auth.header_name)] if auth.header_name else []
        if auth.query_param:
            lines.append(("query", auth.query_param))
        if auth.value_prefix:
            lines.append(("prefix", repr(auth.value_prefix)))
        return [*lines, ("", auth.description)]

    def scaffold(self, connector_id: str, name: str) -> tuple[dict[str, Any], str]:
        auth = {
            "type": "api-key",
            "description": f"Your {name} API key, from your account settings.",
            "headerName": "X-Api-Key",
        }
        return auth, f"Create an API key in your {name} account settings."

    async def connect(
        self, ctx: FlowContext, connector: Connector, tenant: str, submission: Submission
    ) -> StoredConnection:
        key = submission.credentials.get("api_key", "").strip()
        return await store_new(ctx, connector, tenant, submission, api_key=key)

    def query_credential(self, connector: Connector) -> str | None:
        return _auth(connector).query_param

    def status_details(self, connector: Connector, summary: ConnectionSummary) -> dict[str, Any]:
        return {} if summary.key_hint is None else {"keyHint": summary.key_hint}

    def authenticate(
        self, connector: Connector, connection: StoredConnection, request: httpx2.Request
    ) -> None:
        auth = _auth(connector)
        if connection.api_key is None:
            return
        value = (auth.value_prefix or "") + connection.api_key
        if auth.header_name is not None:
            request.headers[auth.header_name] = value
        elif auth.query_param is not None:
            request.url = request.url.copy_set_param(auth.query_param, value)
