"""The flow of HTTP Basic connectors (``auth.type = "basic"``).

Both the username and the password are stored encrypted (many APIs take a key
as the username), and sent as ``Authorization: Basic`` (RFC 7617, UTF-8).
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .._manifest import BasicAuth, Connector
from ._base import Flow, FlowContext, Input, Submission
from ._store import store_new

if TYPE_CHECKING:
    import httpx2

    from ..store import StoredConnection

__all__ = ["BasicFlow"]

CREDENTIAL_MAX = 512


def _auth(connector: Connector) -> BasicAuth:
    auth = connector.auth
    assert isinstance(auth, BasicAuth), "the flow table gives this flow Basic connectors only"
    return auth


def _unusable(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in value)


class BasicFlow(Flow):
    """The user enters a username and a password; both are kept encrypted."""

    auth_type: ClassVar[str] = "basic"
    label: ClassVar[str] = "Username and password"
    credential_reason: ClassVar[str] = "invalid_credentials"

    def credential_inputs(self, connector: Connector) -> tuple[Input, ...]:
        auth = _auth(connector)
        return (
            Input(
                name="username",
                json_name="username",
                label=auth.username_label,
                html_type="text",
                secret=True,
                help=auth.description,
                max_length=CREDENTIAL_MAX,
            ),
            Input(
                name="password",
                json_name="password",
                label=auth.password_label,
                html_type="password",
                secret=True,
                required=auth.password_required,
                max_length=CREDENTIAL_MAX,
            ),
        )

    def check_credentials(self, connector: Connector, values: Mapping[str, str]) -> dict[str, str]:
        """The message for each credential that cannot be used, by input name."""
        auth = _auth(connector)
        errors: dict[str, str] = {}
        username = values.get("username", "").strip()
        password = values.get("password", "")
        if not username:
            errors["username"] = "is required"
        elif len(username) > CREDENTIAL_MAX or _unusable(username):
            errors["username"] = (
                f"must be at most {CREDENTIAL_MAX} characters, without control characters"
            )
        elif ":" in username:
            errors["username"] = "must not contain ':' (HTTP Basic cannot carry it)"
        if not password and auth.password_required:
            errors["password"] = "is required"
        elif len(password) > CREDENTIAL_MAX or _unusable(password):
            errors["password"] = (
                f"must be at most {CREDENTIAL_MAX} characters, without control characters"
            )
        return errors

    def describe(self, connector: Connector) -> list[tuple[str, str]]:
        auth = _auth(connector)
        return [
            ("username", auth.username_label),
            ("password", auth.password_label + ("" if auth.password_required else " (optional)")),
            ("", auth.description),
        ]

    def scaffold(self, connector_id: str, name: str) -> tuple[dict[str, Any], str]:
        auth = {
            "type": "basic",
            "description": f"The username and password of your {name} API user.",
        }
        return auth, f"Create an API user in your {name} account settings."

    async def connect(
        self, ctx: FlowContext, connector: Connector, tenant: str, submission: Submission
    ) -> StoredConnection:
        return await store_new(
            ctx,
            connector,
            tenant,
            submission,
            username=submission.credentials.get("username", "").strip(),
            password=submission.credentials.get("password", ""),
        )

    def authenticate(
        self, connector: Connector, connection: StoredConnection, request: httpx2.Request
    ) -> None:
        if connection.username is None:
            return
        pair = f"{connection.username}:{connection.password or ''}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
