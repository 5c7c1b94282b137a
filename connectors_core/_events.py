"""What happens to a connection, as events a host application and plugins learn about.

A :class:`ConnectionEvent` is written in the same transaction as the change
that causes it (an outbox in the store), so none is lost and none is
reported for a change that rolled back; it is then delivered, at least once
and in order per connection, to the host's listeners, to plugins' hooks and
to an optional webhook. It never carries a secret.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Actor", "ConnectionEvent", "EventType", "new_event_id"]


@attrs.frozen
class Actor:
    """The user who does something to a connection, as the host's authenticator names them."""

    id: str
    """The user's id in the host application (recorded with the connection and its events)."""

    name: str | None = None
    """How the page shows them ("connected by Ada Lovelace"); the id if None."""


class EventType(enum.Enum):
    """What happened to a connection."""

    CONNECTED = "connected"
    """A new connection was made."""

    RECONNECTED = "reconnected"
    """The user connected an account again: its credentials were replaced."""

    NEEDS_REAUTH = "needs_reauth"
    """The credentials stopped working for good; the user must connect again (``reason``)."""

    RECOVERED = "recovered"
    """A connection that needed the user again, or whose last check failed, passed a check
    without being connected again."""

    VERIFICATION_FAILED = "verification_failed"
    """A check of the stored credentials failed (``reason``); the connection is kept."""

    DISCONNECTED = "disconnected"
    """The connection was removed, its credentials revoked where the provider allows."""


def new_event_id() -> str:
    """A fresh, unique event id (``evt_`` and 32 hex digits)."""
    return "evt_" + secrets.token_hex(16)


def _account(value: Mapping[str, str]) -> Mapping[str, str]:
    return dict(value)


@attrs.frozen(kw_only=True)
class ConnectionEvent:
    """Something that happened to one connection. Never carries a secret."""

    id: str = attrs.field(factory=new_event_id)
    """Unique and stable: a listener that sees an id twice (delivery is at least once)
    has seen that event before; the webhook sends it as ``webhook-id``."""

    type: EventType
    """What happened."""

    tenant: str
    """Whose connection it is."""

    connector_id: str
    """The connector."""

    connection_id: str
    """The connection (stable for its life; a connector may hold several per tenant)."""

    account: Mapping[str, str] = attrs.field(factory=dict, converter=_account, hash=False)
    """Who the connection belongs to at the provider (``organizationId``, ...)."""

    reason: str | None = None
    """Why, for ``needs_reauth`` (``invalid_grant``, ``revoked``, ...) and
    ``verification_failed`` (``invalid_credentials``, ...)."""

    actor: str | None = None
    """The user who caused it, as the authenticator named them; None for the system
    (a renewal, a job)."""

    at: float
    """When it happened (UNIX time)."""

    @classmethod
    def about(
        cls,
        connection: Any,
        type: EventType,
        *,
        at: float,
        reason: str | None = None,
        actor: Actor | None = None,
    ) -> ConnectionEvent:
        """An event about ``connection`` (a stored connection: its tenant, connector, id
        and account)."""
        return cls(
            type=type,
            tenant=connection.tenant,
            connector_id=connection.connector_id,
            connection_id=connection.connection_id,
            account=connection.account,
            reason=reason,
            actor=None if actor is None else actor.id,
            at=at,
        )

    def to_json(self) -> dict[str, Any]:
        """The event as JSON: ``{"id", "type", "tenant", "connectorId", ...}``."""
        return {
            "id": self.id,
            "type": self.type.value,
            "tenant": self.tenant,
            "connectorId": self.connector_id,
            "connectionId": self.connection_id,
            "account": dict(self.account),
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionEvent:
        """The event :meth:`to_json` wrote."""
        return cls(
            id=str(data["id"]),
            type=EventType(data["type"]),
            tenant=str(data["tenant"]),
            connector_id=str(data["connectorId"]),
            connection_id=str(data["connectionId"]),
            account={str(k): str(v) for k, v in dict(data.get("account") or {}).items()},
            reason=data.get("reason"),
            actor=data.get("actor"),
            at=float(data["at"]),
        )
