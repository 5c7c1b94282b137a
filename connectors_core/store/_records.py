"""What the store keeps: pending OAuth authorizations and connections.

Secrets are typed fields with ``repr=False``: a connection printed in a log
or a traceback shows no token or key.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "ConnectionState",
    "ConnectionSummary",
    "PendingAuthorization",
    "StoredConnection",
    "TokenSet",
    "key_hint",
    "new_connection_id",
]


def new_connection_id() -> str:
    """A fresh connection id (``conn_`` and 16 hex digits): opaque, stable for its life."""
    return "conn_" + secrets.token_hex(8)


@attrs.frozen
class TokenSet:
    """OAuth tokens of one connection."""

    access_token: str = attrs.field(repr=False)
    """The bearer token sent to the provider's API."""

    refresh_token: str | None = attrs.field(default=None, repr=False)
    """The token that gets a new access token; rotated by most providers."""

    expires_at: float | None = None
    """When the access token expires (UNIX time), if the provider said."""

    token_type: str = "Bearer"
    """The token type (RFC 6749); connectors-core uses Bearer tokens."""

    scopes: tuple[str, ...] = ()
    """The scopes the provider granted."""

    def expires_within(self, seconds: float, now: float) -> bool:
        """Whether the access token expires within ``seconds`` from ``now``."""
        return self.expires_at is not None and self.expires_at - now <= seconds


class ConnectionState(enum.Enum):
    """Whether a stored connection can be used."""

    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"


@attrs.frozen
class StoredConnection:
    """A tenant's connection to one connector (of possibly several, for ``multiple`` ones)."""

    tenant: str
    connector_id: str
    state: ConnectionState
    tokens: TokenSet | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    account: Mapping[str, str] = attrs.field(factory=dict)
    """Who the connection belongs to at the provider, such as ``organizationId`` and ``userId``."""
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 0
    """Incremented by every write; lets a refresh detect that someone else wrote first."""
    config: Mapping[str, Any] = attrs.field(factory=dict)
    """The connection's non-secret field values (JSON scalars), shown in status."""
    secrets: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """The connection's secret field values, such as a signing key."""
    username: str | None = attrs.field(default=None, repr=False)
    """The HTTP Basic username (secret too: many APIs put a key there)."""
    password: str | None = attrs.field(default=None, repr=False)
    """The HTTP Basic password."""
    verified_at: float | None = None
    """When the credentials were last proven to work (UNIX time), if ever."""
    verify_reason: str | None = None
    """The reason code of the last verification, when it failed (None when it passed)."""
    last_refreshed_at: float | None = None
    """When its tokens were last renewed (UNIX time), if ever."""
    last_error: str | None = None
    """The reason code of the last failed renewal; None once one succeeds."""
    state_reason: str | None = None
    """Why the state is what it is: for ``needs_reauth``, such as ``invalid_grant``."""
    requested_scopes: tuple[str, ...] = ()
    """The scopes asked for when it was connected (empty where unknown)."""
    connection_id: str = attrs.field(factory=new_connection_id)
    """Its id: stable for its life, unique per tenant and connector."""
    account_key: str = ""
    """The value of the connector's ``accountKey`` status field, which tells several
    connections of one connector apart (``""`` for a single-connection connector)."""
    label: str | None = None
    """A name for it, shown beside the connector's."""
    connected_by: str | None = None
    """The id of the user who connected it, if the authenticator named one."""
    connected_by_name: str | None = None
    """That user's display name, if known."""


@attrs.frozen
class PendingAuthorization:
    """An OAuth authorization in progress, keyed by its one-time ``state``."""

    state: str = attrs.field(repr=False)
    tenant: str
    connector_id: str
    session_hash: str = attrs.field(repr=False)
    """A hash of the browser session that started it (the callback must match)."""
    code_verifier: str = attrs.field(repr=False)
    redirect_uri: str
    expires_at: float
    config: Mapping[str, Any] = attrs.field(factory=dict)
    """The non-secret field values typed before authorizing, carried to the callback."""
    secrets: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """The secret field values typed before authorizing, carried to the callback."""
    connection_id: str | None = None
    """The connection being connected again (its account must not change), or None."""


def key_hint(api_key: str) -> str:
    """At most the last four characters of a key, and only of a long one."""
    return "••••" + api_key[-4:] if len(api_key) >= 16 else "••••"


@attrs.frozen
class ConnectionSummary:
    """What a status check or a listing needs, and no secret: read without decrypting."""

    state: ConnectionState
    account: Mapping[str, str]
    scopes: tuple[str, ...]
    key_hint: str | None
    created_at: float
    config: Mapping[str, Any] = attrs.field(factory=dict)
    """The connection's non-secret field values."""
    verified_at: float | None = None
    """When the credentials were last proven to work, if ever."""
    verify_reason: str | None = None
    """Why the last verification failed, if it did."""
    tenant: str = ""
    """The tenant it belongs to."""
    connector_id: str = ""
    """The connector it connects."""
    updated_at: float = 0.0
    """When its credentials were last written."""
    expires_at: float | None = None
    """When its access token expires (UNIX time), if it has one that does."""
    refreshable: bool = False
    """Whether it holds a refresh token."""
    last_refreshed_at: float | None = None
    """When its tokens were last renewed, if ever."""
    last_error: str | None = None
    """The reason code of the last failed renewal, if the last one failed."""
    state_reason: str | None = None
    """Why the state is what it is (for ``needs_reauth``)."""
    requested_scopes: tuple[str, ...] = ()
    """The scopes asked for when it was connected (empty where unknown)."""
    connection_id: str = ""
    """Its id."""
    account_key: str = ""
    """What tells it apart from the connector's other connections (``""``: the only one)."""
    label: str | None = None
    """A name for it."""
    connected_by: str | None = None
    """The id of the user who connected it, if known."""
    connected_by_name: str | None = None
    """That user's display name, if known."""

    @classmethod
    def of(cls, connection: StoredConnection) -> ConnectionSummary:
        """The summary of a full connection."""
        tokens = connection.tokens
        return cls(
            state=connection.state,
            account=connection.account,
            scopes=tokens.scopes if tokens else (),
            key_hint=key_hint(connection.api_key) if connection.api_key else None,
            created_at=connection.created_at,
            config=connection.config,
            verified_at=connection.verified_at,
            verify_reason=connection.verify_reason,
            tenant=connection.tenant,
            connector_id=connection.connector_id,
            updated_at=connection.updated_at,
            expires_at=tokens.expires_at if tokens else None,
            refreshable=bool(tokens and tokens.refresh_token),
            last_refreshed_at=connection.last_refreshed_at,
            last_error=connection.last_error,
            state_reason=connection.state_reason,
            requested_scopes=connection.requested_scopes,
            connection_id=connection.connection_id,
            account_key=connection.account_key,
            label=connection.label,
            connected_by=connection.connected_by,
            connected_by_name=connection.connected_by_name,
        )
