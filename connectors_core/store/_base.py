"""The store interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import attrs

from .._events import ConnectionEvent
from .._exceptions import ConnectionRequiredError
from ._records import ConnectionSummary, PendingAuthorization, StoredConnection

__all__ = ["EventRecord", "Lease", "Outbox", "Store", "Stream"]

_T = TypeVar("_T")


def only_one(found: Sequence[_T], connector_id: str) -> _T | None:
    """The connection of ``found`` when a connector's only one was asked for (None for
    none); each store reads at most two to tell.

    :raises ConnectionRequiredError: when there are several.
    """
    if len(found) > 1:
        raise ConnectionRequiredError(
            f"{connector_id} has several connections: name one by its id",
            connector_id=connector_id,
        )
    return found[0] if found else None


class Lease(abc.ABC):
    """Exclusive use of one connection while its tokens are renewed (or its state changes).

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
      releasing blocks this connection's renewal, and nothing else, until its
      lease expires.
    * The in-memory store uses an in-process lock.
    """

    connection: StoredConnection | None

    @abc.abstractmethod
    async def save(
        self, connection: StoredConnection, *, event: ConnectionEvent | None = None
    ) -> StoredConnection:
        """Write the connection (and ``event``, in the same transaction); return it versioned.

        :raises IntegrationError: with reason ``lease_lost`` (SQLite) when this
            holder's lease expired and another holder took it over: nothing is
            written, so two holders never both save.
        :raises NotConnectedError: when the connection was deleted (disconnected)
            meanwhile; it is not brought back.
        """


@attrs.frozen
class Stream:
    """One connection's events on their way to one destination, claimed by a deliverer."""

    destination: str
    tenant: str
    connector_id: str
    connection_id: str
    delivered_seq: int
    """The last event delivered (the next one has a greater sequence number)."""
    attempts: int
    """Failed attempts at the next event so far."""


@attrs.frozen
class EventRecord:
    """An event as stored, with how its delivery went, for ``connectors connections events``."""

    seq: int
    event: ConnectionEvent
    deliveries: dict[str, str]
    """Per destination: ``delivered``, or ``pending`` (with the last error, if any)."""


class Outbox(abc.ABC):
    """The delivery side of the events the store writes with the changes they report.

    Delivery is by stream (one connection, one destination), so each
    destination gets a connection's events in order; a stream is claimed by
    one deliverer at a time for a while, and a deliverer that dies lets its
    claim run out.
    """

    @abc.abstractmethod
    async def register_destinations(self, names: Sequence[str]) -> None:
        """Make sure each destination exists; a new one gets the events written from now on."""

    @abc.abstractmethod
    async def claim(
        self, destinations: Sequence[str], holder: str, *, now: float, limit: int, hold: float
    ) -> list[Stream]:
        """Claim up to ``limit`` streams of ``destinations`` with events due, ``hold`` seconds."""

    @abc.abstractmethod
    async def events(self, stream: Stream, *, limit: int) -> list[tuple[int, ConnectionEvent]]:
        """The stream's next events to deliver, in order, with their sequence numbers."""

    @abc.abstractmethod
    async def delivered(self, stream: Stream, holder: str, seq: int, *, until: float) -> bool:
        """Record that the stream's events up to ``seq`` were delivered, and keep the claim
        until ``until``; False if the claim was lost (another deliverer took the stream)."""

    @abc.abstractmethod
    async def release(
        self,
        stream: Stream,
        holder: str,
        *,
        now: float,
        retry_at: float | None = None,
        error: str | None = None,
        skip_to: int | None = None,
    ) -> None:
        """Give the stream back: done for now, or failed (``retry_at``, ``error``).

        ``skip_to`` gives an event up (a delivery that kept failing): the stream
        goes on after it.
        """

    @abc.abstractmethod
    async def recent(
        self, *, tenant: str | None = None, connector_id: str | None = None, limit: int = 50
    ) -> list[EventRecord]:
        """The most recent events, newest first, with their deliveries."""

    @abc.abstractmethod
    async def prune(self, before: float, *, waiting: bool = False) -> int:
        """Delete the events written before ``before`` that every destination has had
        (``waiting``: those still waited for too); how many went."""


class Store(abc.ABC):
    """Persistence of pending OAuth authorizations, connections and their events, per tenant.

    Every method is a coroutine; backends do their blocking work off the event
    loop. Secrets are encrypted by the backend before they are written. A
    method given an ``event`` writes it in the same transaction as the change
    it reports (the outbox, :attr:`outbox`).
    """

    outbox: Outbox
    """Delivery of the events written with the changes."""

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
    async def get(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> StoredConnection | None:
        """The tenant's connection to ``connector_id`` with that id, or None.

        Without an id: the connector's only connection.

        :raises ConnectionRequiredError: without an id, when there are several.
        """

    @abc.abstractmethod
    async def by_account(
        self, tenant: str, connector_id: str, account_key: str
    ) -> StoredConnection | None:
        """The tenant's connection to ``connector_id`` of that account, or None."""

    @abc.abstractmethod
    async def summary(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> ConnectionSummary | None:
        """What a status check shows of a connection, without decrypting any secret.

        :raises ConnectionRequiredError: without an id, when there are several.
        """

    @abc.abstractmethod
    async def summaries(self, tenant: str) -> list[ConnectionSummary]:
        """The summaries of all of a tenant's connections (one read), by connector, oldest
        first."""

    @abc.abstractmethod
    async def list(
        self, *, tenant: str | None = None, connector_id: str | None = None
    ) -> list[ConnectionSummary]:
        """Every connection's summary, of one tenant and/or connector if given.

        Ordered by tenant, connector id, then when each was connected; no
        secret is decrypted.
        """

    @abc.abstractmethod
    async def put(
        self, connection: StoredConnection, *, event: ConnectionEvent | None = None
    ) -> StoredConnection:
        """Create or overwrite a connection (by its id); return it with its new version.

        :raises AccountTakenError: another connection of the tenant and
            connector holds the same ``account_key``; nothing is written.
        """

    @abc.abstractmethod
    async def delete(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str,
        *,
        event: ConnectionEvent | None = None,
    ) -> bool:
        """Delete a connection and its secrets; False if there was none (and no event)."""

    @abc.abstractmethod
    def lease(
        self, tenant: str, connector_id: str, connection_id: str
    ) -> AbstractAsyncContextManager[Lease]:
        """Hold the connection: other holders wait until it is released.

        A holder that dies (a killed process) releases it: at once on
        PostgreSQL, when its lease expires on SQLite (see :class:`Lease`).
        """

    async def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections and files."""
