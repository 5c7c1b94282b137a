"""The store interface every backend implements."""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager

from ._records import ConnectionSummary, PendingAuthorization, StoredConnection

__all__ = ["Lease", "Store"]


class Lease(abc.ABC):
    """Exclusive use of one connection while its tokens are refreshed.

    Held by one caller at a time across every process sharing the store;
    :attr:`connection` is read after the lease was granted, so it shows what
    the previous holder saved.
    """

    connection: StoredConnection | None

    @abc.abstractmethod
    async def save(self, connection: StoredConnection) -> StoredConnection:
        """Write the refreshed connection; it is durable when the lease ends."""


class Store(abc.ABC):
    """Persistence of pending OAuth authorizations and connections, per tenant.

    Every method is a coroutine; backends do their blocking work off the event
    loop. Secrets are encrypted by the backend before they are written.
    """

    @abc.abstractmethod
    async def put_authorization(self, pending: PendingAuthorization, *, now: float) -> None:
        """Keep a pending authorization (and drop any that expired before ``now``)."""

    @abc.abstractmethod
    async def take_authorization(self, state: str, *, now: float) -> PendingAuthorization | None:
        """Remove and return the authorization for ``state``, atomically.

        Returns None when there is none, it expired, or another caller took it
        first: a state is usable exactly once.
        """

    @abc.abstractmethod
    async def get(self, tenant: str, connector_id: str) -> StoredConnection | None:
        """The tenant's connection to ``connector_id``, or None."""

    @abc.abstractmethod
    async def summary(self, tenant: str, connector_id: str) -> ConnectionSummary | None:
        """What a status check shows of a connection, without decrypting any secret."""

    @abc.abstractmethod
    async def summaries(self, tenant: str) -> dict[str, ConnectionSummary]:
        """The summaries of all of a tenant's connections, by connector id (one read)."""

    @abc.abstractmethod
    async def put(self, connection: StoredConnection) -> StoredConnection:
        """Create or overwrite a connection; return it with its new version."""

    @abc.abstractmethod
    async def delete(self, tenant: str, connector_id: str) -> bool:
        """Delete a connection and its secrets; False if there was none."""

    @abc.abstractmethod
    def lease(self, tenant: str, connector_id: str) -> AbstractAsyncContextManager[Lease]:
        """Hold the connection for a refresh: other holders wait until it is released.

        A holder that dies (a killed process) releases it; what it saved
        before dying is kept, what it had not saved is not.
        """

    async def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections and files."""
