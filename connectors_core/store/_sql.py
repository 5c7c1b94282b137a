"""The SQLAlchemy store: an SQLite file by default, PostgreSQL in production.

Blocking database work runs in a worker thread (``anyio.to_thread``), so the
event loop keeps serving requests; SQLite reads, cheaper than the hand-off,
run on the loop. The hot reads (a status check, the page's summaries) go
below SQLAlchemy, one round trip each, on PostgreSQL through psycopg's
asyncio connections (:mod:`._reads`).

Tokens, API keys, secret field values, HTTP Basic credentials and PKCE
verifiers are encrypted by :class:`SecretBox` before they reach SQL; a dump
of the database holds ciphertexts, never a secret. OAuth states are stored
as their SHA-256, so the table does not hold usable states either.

How writes avoid SQLite's "database is locked" is in :mod:`._engine`; the
refresh lease is in :mod:`._lease`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine

from .._events import ConnectionEvent
from .._exceptions import AccountTakenError
from ._base import Lease, Store, only_one
from ._crypto import SecretBox, connection_context, state_context
from ._engine import RETRY_DELAYS, create_engine, is_busy, jittered, write
from ._keys import check_keys
from ._lease import row_lease, table_lease
from ._outbox import SQLOutbox, write_event
from ._reads import Reader
from ._records import (
    ConnectionState,
    ConnectionSummary,
    PendingAuthorization,
    StoredConnection,
    TokenSet,
    key_hint,
)
from ._tables import connections, metadata, oauth_states

__all__ = ["SQLStore", "create_engine", "metadata"]

T = TypeVar("T")

DEFAULT_LEASE_LIFETIME = 60.0
"""Seconds an SQLite refresh lease lasts unless released: well above any HTTP timeout."""


DEFAULT_THREADS = 10
"""Worker threads at once for a PostgreSQL pool that does not say its size."""


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _summary(row: Mapping[str, Any]) -> ConnectionSummary:
    """The summary of a row of the summary columns (by column name)."""
    return ConnectionSummary(
        connection_id=row["connection_id"],
        account_key=row["account_key"],
        label=row["label"],
        connected_by=row["connected_by"],
        connected_by_name=row["connected_by_name"],
        state=ConnectionState(row["state"]),
        account=json.loads(row["account"]),
        scopes=tuple(row["scopes"].split()),
        key_hint=row["key_hint"],
        created_at=row["created_at"],
        config=json.loads(row["config"]),
        verified_at=row["verified_at"],
        verify_reason=row["verify_reason"],
        tenant=row["tenant"],
        connector_id=row["connector_id"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
        refreshable=bool(row["refreshable"]),
        last_refreshed_at=row["last_refreshed_at"],
        last_error=row["last_error"],
        state_reason=row["state_reason"],
        requested_scopes=tuple(row["requested_scopes"].split()),
    )


def _json(mapping: Mapping[str, Any]) -> str:
    return json.dumps(dict(mapping), sort_keys=True)


class SQLStore(Store):
    """A :class:`Store` in any database SQLAlchemy speaks (SQLite, PostgreSQL).

    :param engine: from :func:`create_engine`.
    :param box: the encryption keys.
    :param auto_upgrade: migrate an older schema on start (default: on SQLite only).
    :param lease_lifetime: seconds an SQLite refresh lease lasts if its holder
        neither releases it nor saves before then (a dead holder blocks its
        connection's refresh this long); keep it well above the HTTP timeout.
    """

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        *,
        auto_upgrade: bool | None = None,
        lease_lifetime: float = DEFAULT_LEASE_LIFETIME,
    ) -> None:
        from ._schema import prepare

        if lease_lifetime <= 0:
            raise ValueError("lease_lifetime must be positive")
        self.engine = engine
        self.box = box
        self.lease_lifetime = lease_lifetime
        """Seconds an SQLite refresh lease lasts unless released."""
        self._sqlite = engine.dialect.name == "sqlite"
        # Reads of single statements: no BEGIN/ROLLBACK around them on SQLite.
        self._reader = engine.execution_options(sqlite_single_read=True)
        if auto_upgrade is None:
            auto_upgrade = self._sqlite
        prepare(engine, auto_upgrade=auto_upgrade)
        # Built once: SQLAlchemy then only looks up its compiled form. These are
        # the hot reads (every status check, every token request).
        key = sa.and_(
            connections.c.tenant == sa.bindparam("tenant"),
            connections.c.connector_id == sa.bindparam("connector_id"),
        )
        one = sa.and_(key, connections.c.connection_id == sa.bindparam("connection_id"))
        first = (connections.c.created_at, connections.c.connection_id)
        # Without an id, "the only one": two rows are read to tell when there are several.
        self._select_by_id = sa.select(connections).where(one)
        self._select_only = sa.select(connections).where(key).order_by(*first).limit(2)
        self._select_account = sa.select(connections).where(
            key, connections.c.account_key == sa.bindparam("account_key")
        )
        summary_columns = (
            connections.c.tenant,
            connections.c.connector_id,
            connections.c.connection_id,
            connections.c.account_key,
            connections.c.label,
            connections.c.connected_by,
            connections.c.connected_by_name,
            connections.c.verified_at,
            connections.c.verify_reason,
            connections.c.state,
            connections.c.account,
            connections.c.scopes,
            connections.c.key_hint,
            connections.c.created_at,
            connections.c.updated_at,
            connections.c.config,
            connections.c.expires_at,
            # Whether a refresh token is held, read without decrypting it.
            connections.c.refresh_token.is_not(None).label("refreshable"),
            connections.c.last_refreshed_at,
            connections.c.last_error,
            connections.c.state_reason,
            connections.c.requested_scopes,
        )
        self._summary_columns = summary_columns
        self._order = (connections.c.tenant, connections.c.connector_id, *first)
        # Status checks and the page read below SQLAlchemy, one round trip (._reads).
        self._reads = Reader(engine)
        self._summary_by_id = self._reads.compile_keyed(
            sa.select(*summary_columns).where(one), ("tenant", "connector_id", "connection_id")
        )
        self._summary_only = self._reads.compile_keyed(
            sa.select(*summary_columns).where(key).order_by(*first).limit(2),
            ("tenant", "connector_id"),
            first,
        )
        self._select_summaries = self._reads.compile(
            sa.select(*summary_columns)
            .where(connections.c.tenant == sa.bindparam("tenant"))
            .order_by(*self._order)
        )
        self._select_state = sa.select(oauth_states).where(
            oauth_states.c.state_hash == sa.bindparam("state_hash")
        )
        # One writer thread at a time per event loop: the others wait here, on
        # the loop, instead of each holding a worker thread while they queue.
        self._writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # PostgreSQL work in worker threads, at most as many at once as the pool keeps
        # connections: anyio's default of 40 threads, most of them queueing for a
        # connection and all contending for the GIL with the event loop, made the
        # slowest requests under load ten times slower than the median.
        self._threads: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()
        self.outbox = SQLOutbox(self)

    def check_keys(self) -> dict[str, int]:
        """Check that the configured keys can open every stored secret (blocking).

        Counts the ciphertexts per key id in every encrypted column, without
        decrypting any. :func:`open_store` runs it before handing out a store.

        :returns: the number of stored secrets per key id.
        :raises ConfigurationError: when a key id in use is not configured; the
            message names the key ids in use (with counts) and the configured ones.
        """
        return check_keys(self.engine, self.box)

    # --- running statements -------------------------------------------------------

    def _writer(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._writers.get(loop)
        if lock is None:
            lock = self._writers[loop] = asyncio.Lock()
        return lock

    def _limiter(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._threads.get(loop)
        if limiter is None:
            size = getattr(self.engine.pool, "size", lambda: DEFAULT_THREADS)()
            limiter = self._threads[loop] = anyio.CapacityLimiter(size)
        return limiter

    async def _write(self, function: Callable[[SAConnection], T]) -> T:
        """Run ``function`` in one write transaction in a worker thread (see :mod:`._engine`)."""
        if not self._sqlite:
            return await anyio.to_thread.run_sync(
                write, self.engine, function, limiter=self._limiter()
            )
        async with self._writer():
            return await anyio.to_thread.run_sync(write, self.engine, function)

    async def _read(self, statement: Any, *, all_rows: bool = False, **params: Any) -> Any:
        if self._sqlite:
            # A read of a local SQLite file (WAL: readers never wait for writers)
            # is cheaper than a trip to a worker thread and back.
            for delay in (*RETRY_DELAYS, None):
                try:
                    with self._reader.connect() as connection:
                        result = connection.execute(statement, params)
                        return result.all() if all_rows else result.first()
                except sa.exc.OperationalError as exc:
                    if delay is None or not is_busy(exc):
                        raise
                await anyio.sleep(jittered(delay))

        def work() -> Any:
            # One statement, no transaction to open and roll back: one round trip.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                result = db.execute(statement, params)
                return result.all() if all_rows else result.first()

        return await anyio.to_thread.run_sync(work, limiter=self._limiter())

    # --- authorizations --------------------------------------------------------

    async def put_authorization(
        self, pending: PendingAuthorization, *, now: float, max_per_session: int = 10
    ) -> None:
        if max_per_session < 1:
            raise ValueError("max_per_session must be at least 1")
        state_hash = _hash(pending.state)
        verifier = self.box.encrypt(pending.code_verifier, context=state_context(state_hash))
        secrets = None
        if pending.secrets:
            context = state_context(state_hash, "secrets")
            secrets = self.box.encrypt(_json(pending.secrets), context=context)
        session = oauth_states.c.session_hash == pending.session_hash

        def work(db: SAConnection) -> None:
            db.execute(oauth_states.delete().where(oauth_states.c.expires_at <= now))
            db.execute(
                oauth_states.insert().values(
                    state_hash=state_hash,
                    tenant=pending.tenant,
                    connector_id=pending.connector_id,
                    session_hash=pending.session_hash,
                    code_verifier=verifier,
                    redirect_uri=pending.redirect_uri,
                    expires_at=pending.expires_at,
                    config=_json(pending.config),
                    secrets=secrets,
                    connection_id=pending.connection_id,
                )
            )
            # The new one first, then the newest: the oldest beyond the cap go.
            surplus = db.execute(
                sa.select(oauth_states.c.state_hash)
                .where(session)
                .order_by(
                    sa.case((oauth_states.c.state_hash == state_hash, 0), else_=1),
                    oauth_states.c.expires_at.desc(),
                )
                .offset(max_per_session)
            )
            dropped = list(surplus.scalars())
            if dropped:
                db.execute(oauth_states.delete().where(oauth_states.c.state_hash.in_(dropped)))

        await self._write(work)

    def _pending(self, state: str, row: Any, now: float) -> PendingAuthorization | None:
        if row is None or row.expires_at <= now:
            return None
        return PendingAuthorization(
            state=state,
            tenant=row.tenant,
            connector_id=row.connector_id,
            session_hash=row.session_hash,
            code_verifier=self.box.decrypt(
                row.code_verifier, context=state_context(row.state_hash)
            ),
            redirect_uri=row.redirect_uri,
            expires_at=row.expires_at,
            config=json.loads(row.config),
            connection_id=row.connection_id,
            secrets=(
                {}
                if row.secrets is None
                else json.loads(
                    self.box.decrypt(row.secrets, context=state_context(row.state_hash, "secrets"))
                )
            ),
        )

    async def peek_authorization(self, state: str, *, now: float) -> PendingAuthorization | None:
        row = await self._read(self._select_state, state_hash=_hash(state))
        return self._pending(state, row, now)

    async def take_authorization(self, state: str, *, now: float) -> PendingAuthorization | None:
        state_hash = _hash(state)

        def work(db: SAConnection) -> Any:
            row = db.execute(self._select_state, {"state_hash": state_hash}).first()
            if row is None:
                return None
            # Only the caller whose DELETE removes the row may use it: one-time.
            deleted = db.execute(
                oauth_states.delete().where(oauth_states.c.state_hash == state_hash)
            )
            return row if deleted.rowcount == 1 else None

        return self._pending(state, await self._write(work), now)

    # --- connections ------------------------------------------------------------

    def _encrypt(self, connection: StoredConnection, field: str, value: str | None) -> str | None:
        if value is None:
            return None
        context = connection_context(
            connection.tenant, connection.connector_id, connection.connection_id, field
        )
        return self.box.encrypt(value, context=context)

    def _values(self, connection: StoredConnection) -> dict[str, Any]:
        """The columns of ``connection`` but its key, created_at and version; sealed anew."""
        tokens = connection.tokens
        return {
            "account_key": connection.account_key,
            "label": connection.label,
            "connected_by": connection.connected_by,
            "connected_by_name": connection.connected_by_name,
            "legacy_seal": False,
            "state": connection.state.value,
            "access_token": self._encrypt(
                connection, "access_token", tokens.access_token if tokens else None
            ),
            "refresh_token": self._encrypt(
                connection, "refresh_token", tokens.refresh_token if tokens else None
            ),
            "api_key": self._encrypt(connection, "api_key", connection.api_key),
            "token_type": tokens.token_type if tokens else None,
            "expires_at": tokens.expires_at if tokens else None,
            "scopes": " ".join(tokens.scopes) if tokens else "",
            "account": _json(connection.account),
            "key_hint": key_hint(connection.api_key) if connection.api_key else None,
            "config": _json(connection.config),
            "secrets": self._encrypt(
                connection, "secrets", _json(connection.secrets) if connection.secrets else None
            ),
            "username": self._encrypt(connection, "username", connection.username),
            "password": self._encrypt(connection, "password", connection.password),
            "updated_at": connection.updated_at or time.time(),
            "verified_at": connection.verified_at,
            "verify_reason": connection.verify_reason,
            "last_refreshed_at": connection.last_refreshed_at,
            "last_error": connection.last_error,
            "state_reason": connection.state_reason,
            "requested_scopes": " ".join(connection.requested_scopes),
        }

    def _connection(self, row: Any) -> StoredConnection:
        sealed_to = None if row.legacy_seal else row.connection_id

        def plain(field: str) -> str | None:
            value = getattr(row, field)
            if value is None:
                return None
            context = connection_context(row.tenant, row.connector_id, sealed_to, field)
            return self.box.decrypt(value, context=context)

        access = plain("access_token")
        secrets = plain("secrets")
        tokens = None
        if access is not None:
            tokens = TokenSet(
                access_token=access,
                refresh_token=plain("refresh_token"),
                expires_at=row.expires_at,
                token_type=row.token_type or "Bearer",
                scopes=tuple(row.scopes.split()),
            )
        return StoredConnection(
            tenant=row.tenant,
            connector_id=row.connector_id,
            connection_id=row.connection_id,
            account_key=row.account_key,
            label=row.label,
            connected_by=row.connected_by,
            connected_by_name=row.connected_by_name,
            state=ConnectionState(row.state),
            tokens=tokens,
            api_key=plain("api_key"),
            account=json.loads(row.account),
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
            verified_at=row.verified_at,
            verify_reason=row.verify_reason,
            last_refreshed_at=row.last_refreshed_at,
            last_error=row.last_error,
            state_reason=row.state_reason,
            requested_scopes=tuple(row.requested_scopes.split()),
            config=json.loads(row.config),
            secrets=json.loads(secrets) if secrets is not None else {},
            username=plain("username"),
            password=plain("password"),
        )

    async def get(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> StoredConnection | None:
        if connection_id is None:
            rows = await self._read(
                self._select_only, all_rows=True, tenant=tenant, connector_id=connector_id
            )
            row = only_one(rows, connector_id)
        else:
            row = await self._read(
                self._select_by_id,
                tenant=tenant,
                connector_id=connector_id,
                connection_id=connection_id,
            )
        return None if row is None else self._connection(row)

    async def by_account(
        self, tenant: str, connector_id: str, account_key: str
    ) -> StoredConnection | None:
        row = await self._read(
            self._select_account, tenant=tenant, connector_id=connector_id, account_key=account_key
        )
        return None if row is None else self._connection(row)

    async def summary(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> ConnectionSummary | None:
        if connection_id is None:
            rows = await self._reads.fetch_keyed(
                self._summary_only, tenant=tenant, connector_id=connector_id
            )
        else:
            rows = await self._reads.fetch_keyed(
                self._summary_by_id,
                tenant=tenant,
                connector_id=connector_id,
                connection_id=connection_id,
            )
        row = only_one(rows, connector_id)
        return None if row is None else _summary(row)

    async def summaries(self, tenant: str) -> list[ConnectionSummary]:
        rows = await self._reads.fetch(self._select_summaries, tenant=tenant)
        return [_summary(row) for row in rows]

    async def list(
        self, *, tenant: str | None = None, connector_id: str | None = None
    ) -> list[ConnectionSummary]:
        statement = sa.select(*self._summary_columns).order_by(*self._order)
        if tenant is not None:
            statement = statement.where(connections.c.tenant == tenant)
        if connector_id is not None:
            statement = statement.where(connections.c.connector_id == connector_id)
        rows = await self._read(statement, all_rows=True)
        return [_summary(row._mapping) for row in rows]

    @staticmethod
    def _key(connection: StoredConnection) -> Any:
        return sa.and_(
            connections.c.tenant == connection.tenant,
            connections.c.connector_id == connection.connector_id,
            connections.c.connection_id == connection.connection_id,
        )

    async def put(
        self, connection: StoredConnection, *, event: ConnectionEvent | None = None
    ) -> StoredConnection:
        values = self._values(connection)
        key = self._key(connection)
        taken = sa.and_(
            connections.c.tenant == connection.tenant,
            connections.c.connector_id == connection.connector_id,
            connections.c.account_key == connection.account_key,
            connections.c.connection_id != connection.connection_id,
        )

        def work(db: SAConnection) -> int | None:
            old = db.execute(sa.select(connections.c.version).where(key)).scalar()
            if db.execute(sa.select(connections.c.connection_id).where(taken)).first():
                return None
            if old is None:
                db.execute(
                    connections.insert().values(
                        tenant=connection.tenant,
                        connector_id=connection.connector_id,
                        connection_id=connection.connection_id,
                        created_at=connection.created_at or values["updated_at"],
                        version=1,
                        **values,
                    )
                )
                version = 1
            else:
                db.execute(connections.update().where(key).values(version=old + 1, **values))
                version = int(old) + 1
            if event is not None:
                write_event(db, event)
            return version

        try:
            version = await self._write(work)
        except sa.exc.IntegrityError:
            # Two first saves at once (PostgreSQL, where a reader sees no row until
            # the other commits): the loser finds the row (or the account) now.
            version = await self._write(work)
        if version is None:
            raise AccountTakenError(
                f"another connection of {connection.connector_id} holds that account",
                connector_id=connection.connector_id,
            )
        return attrs.evolve(connection, version=version)

    async def delete(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str,
        *,
        event: ConnectionEvent | None = None,
    ) -> bool:
        key = sa.and_(
            connections.c.tenant == tenant,
            connections.c.connector_id == connector_id,
            connections.c.connection_id == connection_id,
        )

        def work(db: SAConnection) -> bool:
            deleted = db.execute(connections.delete().where(key)).rowcount == 1
            if deleted and event is not None:
                write_event(db, event)
            return deleted

        return await self._write(work)

    def lease(
        self, tenant: str, connector_id: str, connection_id: str
    ) -> AbstractAsyncContextManager[Lease]:
        """Hold the connection (see :class:`Lease` for each backend's terms)."""
        if self._sqlite:
            return table_lease(self, tenant, connector_id, connection_id)
        return row_lease(self, tenant, connector_id, connection_id)

    async def close(self) -> None:
        self._reads.close()
        self.engine.dispose()
