"""The SQLAlchemy store: an SQLite file by default, PostgreSQL in production.

Blocking database work runs in a worker thread (``anyio.to_thread``), so the
event loop keeps serving requests. Tokens, API keys and PKCE verifiers are
encrypted by :class:`SecretBox` before they reach SQL; a dump of the database
holds ciphertexts, never a secret. OAuth states are stored as their SHA-256,
so the table does not hold usable states either.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio.to_thread
import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine

from ._base import Lease, Store
from ._crypto import SecretBox
from ._records import (
    ConnectionState,
    ConnectionSummary,
    PendingAuthorization,
    StoredConnection,
    TokenSet,
    key_hint,
)

__all__ = ["SQLStore", "metadata"]


class _SQLLease(Lease):
    """A row lock (PostgreSQL ``SELECT … FOR UPDATE``; SQLite: the write lock)."""

    def __init__(self, store: SQLStore, db: SAConnection, connection: StoredConnection | None):
        self.store = store
        self.db = db
        self.connection = connection

    async def save(self, connection: StoredConnection) -> StoredConnection:
        values = self.store._values(connection)
        key = self.store._key(connection.tenant, connection.connector_id)
        version = (self.connection.version if self.connection else 0) + 1

        def work() -> None:
            self.db.execute(connections.update().where(key).values(version=version, **values))

        await anyio.to_thread.run_sync(work)
        saved = attrs.evolve(connection, version=version)
        self.connection = saved
        return saved


T = TypeVar("T")

metadata = sa.MetaData()

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("tenant", sa.String(255), primary_key=True),
    sa.Column("connector_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("access_token", sa.Text),
    sa.Column("refresh_token", sa.Text),
    sa.Column("api_key", sa.Text),
    sa.Column("token_type", sa.String(32)),
    sa.Column("expires_at", sa.Float),
    sa.Column("scopes", sa.Text, nullable=False, default=""),
    sa.Column("account", sa.Text, nullable=False, default="{}"),
    sa.Column("key_hint", sa.String(16)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(255), nullable=False),
    sa.Column("connector_id", sa.String(64), nullable=False),
    sa.Column("session_hash", sa.String(64), nullable=False),
    sa.Column("code_verifier", sa.Text, nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _context(tenant: str, connector_id: str, field: str) -> str:
    return json.dumps(["connection", tenant, connector_id, field])


def _summary(row: Any) -> ConnectionSummary:
    return ConnectionSummary(
        state=ConnectionState(row.state),
        account=json.loads(row.account),
        scopes=tuple(row.scopes.split()),
        key_hint=row.key_hint,
        created_at=row.created_at,
    )


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and real BEGINs."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin,
            # so that a lease can BEGIN IMMEDIATE (take the write lock up front).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: SAConnection) -> None:
            immediate = connection.get_execution_options().get("sqlite_immediate", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No pre-ping: it costs a round trip on every checkout, on the hottest path
    # (each status check). Connections are recycled instead, and one that the
    # server dropped is discarded by the pool when it fails.
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)


class SQLStore(Store):
    """A :class:`Store` in any database SQLAlchemy speaks (SQLite, PostgreSQL)."""

    def __init__(self, engine: Engine, box: SecretBox, *, auto_upgrade: bool | None = None) -> None:
        from ._schema import prepare

        self.engine = engine
        self.box = box
        if auto_upgrade is None:
            auto_upgrade = engine.dialect.name == "sqlite"
        prepare(engine, auto_upgrade=auto_upgrade)
        # Built once: SQLAlchemy then only looks up its compiled form. These are
        # the hot reads (every status check, every token request).
        key = sa.and_(
            connections.c.tenant == sa.bindparam("tenant"),
            connections.c.connector_id == sa.bindparam("connector_id"),
        )
        self._select_one = sa.select(connections).where(key)
        summary_columns = (
            connections.c.state,
            connections.c.account,
            connections.c.scopes,
            connections.c.key_hint,
            connections.c.created_at,
        )
        self._select_summary = sa.select(*summary_columns).where(key)
        self._select_summaries = sa.select(connections.c.connector_id, *summary_columns).where(
            connections.c.tenant == sa.bindparam("tenant")
        )
        # A read of a local SQLite file (WAL: readers never wait for writers) is
        # cheaper than handing it to a worker thread and back, so reads run on
        # the event loop; a networked database's reads go to a thread.
        self._inline_reads = engine.dialect.name == "sqlite"

    async def _run(self, function: Callable[[SAConnection], T]) -> T:
        def work() -> T:
            with self.engine.begin() as connection:
                return function(connection)

        return await anyio.to_thread.run_sync(work)

    async def _read(self, statement: Any, *, all_rows: bool = False, **params: Any) -> Any:
        if self._inline_reads:
            with self.engine.connect() as connection:
                result = connection.execute(statement, params)
                return result.all() if all_rows else result.first()

        def work() -> Any:
            # One statement, no transaction to open and roll back: one round trip.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                result = db.execute(statement, params)
                return result.all() if all_rows else result.first()

        return await anyio.to_thread.run_sync(work)

    # --- authorizations --------------------------------------------------------

    async def put_authorization(self, pending: PendingAuthorization, *, now: float) -> None:
        state_hash = _hash(pending.state)
        verifier = self.box.encrypt(pending.code_verifier, context=f"state:{state_hash}")

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
                )
            )

        await self._run(work)

    async def take_authorization(self, state: str, *, now: float) -> PendingAuthorization | None:
        state_hash = _hash(state)

        def work(db: SAConnection) -> Any:
            row = db.execute(
                sa.select(oauth_states).where(oauth_states.c.state_hash == state_hash)
            ).first()
            if row is None:
                return None
            # Only the caller whose DELETE removes the row may use it: one-time.
            deleted = db.execute(
                oauth_states.delete().where(oauth_states.c.state_hash == state_hash)
            )
            return row if deleted.rowcount == 1 else None

        row = await self._run(work)
        if row is None or row.expires_at <= now:
            return None
        return PendingAuthorization(
            state=state,
            tenant=row.tenant,
            connector_id=row.connector_id,
            session_hash=row.session_hash,
            code_verifier=self.box.decrypt(row.code_verifier, context=f"state:{state_hash}"),
            redirect_uri=row.redirect_uri,
            expires_at=row.expires_at,
        )

    # --- connections ------------------------------------------------------------

    def _encrypt(self, connection: StoredConnection, field: str, value: str | None) -> str | None:
        if value is None:
            return None
        context = _context(connection.tenant, connection.connector_id, field)
        return self.box.encrypt(value, context=context)

    def _values(self, connection: StoredConnection) -> dict[str, Any]:
        tokens = connection.tokens
        return {
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
            "account": json.dumps(dict(connection.account), sort_keys=True),
            "key_hint": key_hint(connection.api_key) if connection.api_key else None,
            "updated_at": connection.updated_at or time.time(),
        }

    def _connection(self, row: Any) -> StoredConnection:
        def plain(field: str) -> str | None:
            value = getattr(row, field)
            if value is None:
                return None
            context = _context(row.tenant, row.connector_id, field)
            return self.box.decrypt(value, context=context)

        access = plain("access_token")
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
            state=ConnectionState(row.state),
            tokens=tokens,
            api_key=plain("api_key"),
            account=json.loads(row.account),
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
        )

    @staticmethod
    def _key(tenant: str, connector_id: str) -> Any:
        return sa.and_(connections.c.tenant == tenant, connections.c.connector_id == connector_id)

    async def get(self, tenant: str, connector_id: str) -> StoredConnection | None:
        row = await self._read(self._select_one, tenant=tenant, connector_id=connector_id)
        return None if row is None else self._connection(row)

    async def summary(self, tenant: str, connector_id: str) -> ConnectionSummary | None:
        row = await self._read(self._select_summary, tenant=tenant, connector_id=connector_id)
        return None if row is None else _summary(row)

    async def summaries(self, tenant: str) -> dict[str, ConnectionSummary]:
        rows = await self._read(self._select_summaries, all_rows=True, tenant=tenant)
        return {row.connector_id: _summary(row) for row in rows}

    async def put(self, connection: StoredConnection) -> StoredConnection:
        values = self._values(connection)
        key = self._key(connection.tenant, connection.connector_id)

        def work(db: SAConnection) -> int:
            old = db.execute(sa.select(connections.c.version).where(key)).scalar()
            if old is None:
                db.execute(
                    connections.insert().values(
                        tenant=connection.tenant,
                        connector_id=connection.connector_id,
                        created_at=connection.created_at or values["updated_at"],
                        version=1,
                        **values,
                    )
                )
                return 1
            db.execute(connections.update().where(key).values(version=old + 1, **values))
            return int(old) + 1

        version = await self._run(work)
        return attrs.evolve(connection, version=version)

    async def delete(self, tenant: str, connector_id: str) -> bool:
        def work(db: SAConnection) -> bool:
            result = db.execute(connections.delete().where(self._key(tenant, connector_id)))
            return result.rowcount == 1

        return await self._run(work)

    @asynccontextmanager
    async def lease(self, tenant: str, connector_id: str) -> AsyncIterator[Lease]:
        def begin() -> tuple[SAConnection, Any]:
            db = self.engine.connect().execution_options(sqlite_immediate=True)
            transaction = db.begin()
            try:
                statement = self._select_one
                if db.dialect.name == "postgresql":
                    statement = statement.with_for_update()
                row = db.execute(statement, {"tenant": tenant, "connector_id": connector_id})
                return db, row.first()
            except BaseException:
                transaction.rollback()
                db.close()
                raise

        db, row = await anyio.to_thread.run_sync(begin)
        try:
            connection = None if row is None else self._connection(row)
            yield _SQLLease(self, db, connection)
        except BaseException:
            await anyio.to_thread.run_sync(db.rollback)
            raise
        else:
            await anyio.to_thread.run_sync(db.commit)
        finally:
            await anyio.to_thread.run_sync(db.close)

    async def close(self) -> None:
        self.engine.dispose()
