"""What the store keeps: pending OAuth authorizations and connections.

Secrets are typed fields with ``repr=False``: a connection printed in a log
or a traceback shows no token or key.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

__all__ = ["ConnectionState", "PendingAuthorization", "StoredConnection", "TokenSet"]


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
    """A tenant's connection to one connector."""

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
