"""The refresh lease of the SQL store: one holder per connection, across processes.

PostgreSQL: the connection's row, locked (``SELECT … FOR UPDATE``) in a
transaction held for the lease. Other rows stay writable; the lock goes with
the holder's database session, so a killed holder releases it at once.

SQLite has one write lock for the whole file, so a lease there must not be a
transaction held open while its holder talks to the provider (every other
write, in every process, would wait). It is a row in the ``leases`` table
instead, taken and released in short immediate transactions:

* free, or expired (its holder did not release it within the lifetime): it
  is taken, and the connection is read in the same transaction;
* held by a live holder: the caller polls, with backoff, on the event loop;
* :meth:`Lease.save` writes only while the row still names this holder, so a
  holder whose lease expired and was taken over is refused: two holders
  never both save.

A holder that dies without releasing blocks the connection's refresh for
the rest of its lease lifetime (:attr:`SQLStore.lease_lifetime`), never longer.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._events import ConnectionEvent
from .._exceptions import LeaseLostError, NotConnectedError
from ._base import Lease
from ._engine import jittered
from ._outbox import write_event
from ._records import StoredConnection
from ._tables import connections, leases

if TYPE_CHECKING:
    from ._sql import SQLStore

__all__ = ["row_lease", "table_lease"]

log = logging.getLogger("connectors_core.store")

_FIRST_PAUSE = 0.02
_LONGEST_PAUSE = 0.5


def _connection_key(tenant: str, connector_id: str, connection_id: str) -> Any:
    return sa.and_(
        connections.c.tenant == tenant,
        connections.c.connector_id == connector_id,
        connections.c.connection_id == connection_id,
    )


def _lease_key(tenant: str, connector_id: str, connection_id: str) -> Any:
    return sa.and_(
        leases.c.tenant == tenant,
        leases.c.connector_id == connector_id,
        leases.c.connection_id == connection_id,
    )


def _same_connection(
    tenant: str, connector_id: str, connection_id: str, other: StoredConnection
) -> None:
    if (other.tenant, other.connector_id, other.connection_id) != (
        tenant,
        connector_id,
        connection_id,
    ):
        raise ValueError(
            f"a lease of {connector_id} {connection_id} for tenant {tenant!r} cannot save "
            f"{other.connector_id} {other.connection_id} for tenant {other.tenant!r}"
        )


def _disconnected(connector_id: str) -> NotConnectedError:
    return NotConnectedError(
        f"{connector_id} was disconnected while its tokens were refreshed; nothing was saved",
        connector_id=connector_id,
    )


class _RowLease(Lease):
    """A row locked by ``SELECT … FOR UPDATE``; saves commit when the lease ends."""

    def __init__(
        self,
        store: SQLStore,
        db: Connection,
        key: tuple[str, str, str],
        connection: StoredConnection | None,
    ) -> None:
        self.store = store
        self.db = db
        self.key = key
        self.connection = connection

    async def save(
        self, connection: StoredConnection, *, event: ConnectionEvent | None = None
    ) -> StoredConnection:
        _same_connection(*self.key, connection)
        values = self.store._values(connection)
        version = (self.connection.version if self.connection else 0) + 1
        key = _connection_key(*self.key)

        def work() -> int:
            statement = connections.update().where(key).values(version=version, **values)
            updated = int(self.db.execute(statement).rowcount)
            if updated == 1 and event is not None:
                write_event(self.db, event)  # committed (or not) with the save
            return updated

        if await anyio.to_thread.run_sync(work) != 1:
            raise _disconnected(self.key[1])
        saved = attrs.evolve(connection, version=version)
        self.connection = saved
        return saved


@asynccontextmanager
async def row_lease(
    store: SQLStore, tenant: str, connector_id: str, connection_id: str
) -> AsyncIterator[Lease]:
    """The PostgreSQL lease: the connection's row, locked for as long as it is held."""
    params = {"tenant": tenant, "connector_id": connector_id, "connection_id": connection_id}

    def begin() -> tuple[Connection, Any]:
        db = store.engine.connect()
        transaction = db.begin()
        try:
            row = db.execute(store._select_by_id.with_for_update(), params)
            return db, row.first()
        except BaseException:
            transaction.rollback()
            db.close()
            raise

    db, row = await anyio.to_thread.run_sync(begin)
    try:
        connection = None if row is None else store._connection(row)
        yield _RowLease(store, db, (tenant, connector_id, connection_id), connection)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(db.rollback)
        raise
    else:
        # Shielded: what the holder saved (a rotated refresh token) must not be
        # rolled back because its caller was cancelled a moment later.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(db.commit)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(db.close)


class _TableLease(Lease):
    """A row in the ``leases`` table naming this holder; each save is its own transaction."""

    def __init__(
        self,
        store: SQLStore,
        key: tuple[str, str, str],
        holder: str,
        connection: StoredConnection | None,
    ) -> None:
        self.store = store
        self.key = key
        self.holder = holder
        self.connection = connection

    async def save(
        self, connection: StoredConnection, *, event: ConnectionEvent | None = None
    ) -> StoredConnection:
        _same_connection(*self.key, connection)
        values = self.store._values(connection)
        lease_key = _lease_key(*self.key)
        key = _connection_key(*self.key)

        def work(db: Connection) -> int | None:
            holder = db.execute(sa.select(leases.c.holder).where(lease_key)).scalar()
            if holder != self.holder:
                return None
            old = db.execute(sa.select(connections.c.version).where(key)).scalar()
            if old is None:
                return 0
            read = self.connection.version if self.connection else None
            if old != read:
                # Disconnected and connected again (or reconnected) meanwhile: the
                # tokens of this refresh belong to a grant that is gone.
                return None
            db.execute(connections.update().where(key).values(version=old + 1, **values))
            if event is not None:
                write_event(db, event)
            return int(old) + 1

        version = await self.store._write(work)
        tenant, connector_id, _connection_id = self.key
        if version is None:
            raise LeaseLostError(
                f"the lease of {connector_id} for tenant {tenant!r} expired and another holder "
                "took it over, or the connection was replaced meanwhile; this result was not "
                "saved",
                connector_id=connector_id,
            )
        if version == 0:
            raise _disconnected(connector_id)
        saved = attrs.evolve(connection, version=version)
        self.connection = saved
        return saved


@asynccontextmanager
async def table_lease(
    store: SQLStore, tenant: str, connector_id: str, connection_id: str
) -> AsyncIterator[Lease]:
    """The SQLite lease: a row in ``leases``, waited for by polling, released on exit."""
    holder = secrets.token_hex(16)
    key = _lease_key(tenant, connector_id, connection_id)
    lifetime = store.lease_lifetime
    params = {"tenant": tenant, "connector_id": connector_id, "connection_id": connection_id}

    def acquire(db: Connection) -> tuple[bool, float, Any]:
        now = time.time()
        current = db.execute(sa.select(leases.c.holder, leases.c.expires_at).where(key)).first()
        if current is not None and current.expires_at > now:
            return False, current.expires_at, None
        if current is None:
            db.execute(leases.insert().values(**params, holder=holder, expires_at=now + lifetime))
        else:
            db.execute(leases.update().where(key).values(holder=holder, expires_at=now + lifetime))
            log.warning(
                "took over the expired lease of %s for tenant %s "
                "(its holder neither released it nor finished in time)",
                connector_id,
                tenant,
            )
        row = db.execute(store._select_by_id, params)
        return True, now + lifetime, row.first()

    def release(db: Connection) -> None:
        db.execute(leases.delete().where(key, leases.c.holder == holder))

    pause = _FIRST_PAUSE
    while True:
        acquired, until, row = await store._write(acquire)
        if acquired:
            break
        # Wake up no later than the holder's lease expires, to take it over then.
        await anyio.sleep(min(jittered(pause), max(until - time.time(), 0.0) + 0.01))
        pause = min(pause * 2, _LONGEST_PAUSE)
    try:
        connection = None if row is None else store._connection(row)
        yield _TableLease(store, (tenant, connector_id, connection_id), holder, connection)
    finally:
        # Shielded: a cancelled holder still releases, rather than block until expiry.
        with anyio.CancelScope(shield=True):
            try:
                await store._write(release)
            except sa.exc.OperationalError:
                log.warning(
                    "could not release the lease of %s for tenant %s; it expires within %g s",
                    connector_id,
                    tenant,
                    lifetime,
                    exc_info=True,
                )
