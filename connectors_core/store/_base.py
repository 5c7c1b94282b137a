"""The store interface every backend implements."""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager

from ._records import ConnectionSummary, PendingAuthorization, StoredConnection

__all__ = ["Lease", "Store"]


class Lease(abc.ABC):
    """Exclusive use of one connection while its tokens are refreshed.

    Held by one holder at a time across every process sharing the store.
    :attr:`connection` is read after the lease was granted, so it shows what
    the previous holder saved.

    How each backend holds it, and what a holder that dies costs the others:

    * **PostgreSQL** locks the connection's row (``SELECT … FOR UPDATE``) in a
      transaction kept open until the lease ends; other connections stay
      writable. Saves become durable when the lease ends (and are rolled back
      if the holder's block raises). A killed holder's database session ends
      with it and releases the row at once.
    * **SQLite** records the holder in the ``leases`` table for at most
      ``SQLStore.lease_lifetime`` seconds (60 by default), using the database's
      write lock only for the moment it takes to record or release it. A
      waiting holder polls, and takes over a lease whose lifetime ran out. Each
      :meth:`save` is durable when it returns. A holder that dies without
      releasing blocks this connection's refresh, and nothing else, until its
      lease expires.
    * The in-memory store uses an in-process lock.
    """

    connection: StoredConnection | None

    @abc.abstractmethod
    async def save(self, connection: StoredConnection) -> StoredConnection:
        """Write the refreshed connection; return it with its new version.

        :raises IntegrationError: with reason ``lease_lost`` (SQLite) when this
            holder's lease expired and another holder took it over: nothing is
            written, so two holders never both save.
        :raises NotConnectedError: when the connection was deleted (disconnected)
            meanwhile; it is not brought back.
        """


class Store(abc.ABC):
    """Persistence of pending OAuth authorizations and connections, per tenant.

    Every method is a coroutine; backends do their blocking work off the event
    loop. Secrets are encrypted by the backend before they are written.
    """

    @abc.abstractmethod
    async def put_authorization(
        self, pending: PendingAuthorization, *, now: float, max_per_session: int = 10
    ) -> None:
        """Keep a pending authorization, and drop any that expired before ``now``.

        A browser session keeps at most ``max_per_session`` pending
        authorizations: beyond that, its oldest (by ``expires_at``) are dropped.
        """

    @abc.abstractmethod
    async def peek_authorization(self, state: str, *, now: float) -> PendingAuthorization | None:
        """The authorization for ``state``, left in place; None if missing or expired.

        For checking a callback (its session, tenant, connector) before
        :meth:`take_authorization` consumes the state, so a failed callback
        from another browser does not use up the real user's state.
        """

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
    async def list(
        self, *, tenant: str | None = None, connector_id: str | None = None
    ) -> list[ConnectionSummary]:
        """Every connection's summary, of one tenant and/or connector if given.

        Ordered by tenant, then connector id; no secret is decrypted.
        """

    @abc.abstractmethod
    async def put(self, connection: StoredConnection) -> StoredConnection:
        """Create or overwrite a connection; return it with its new version."""

    @abc.abstractmethod
    async def delete(self, tenant: str, connector_id: str) -> bool:
        """Delete a connection and its secrets; False if there was none."""

    @abc.abstractmethod
    def lease(self, tenant: str, connector_id: str) -> AbstractAsyncContextManager[Lease]:
        """Hold the connection for a refresh: other holders wait until it is released.

        A holder that dies (a killed process) releases it: at once on
        PostgreSQL, when its lease expires on SQLite (see :class:`Lease`).
        """

    async def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections and files."""
