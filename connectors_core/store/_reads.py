"""The store's hot reads (status checks, the page's summaries) in one round trip each.

SQLAlchemy's per-statement work (compiled-cache lookup, parameter and result
processing, pool events) and, on PostgreSQL, the hand-off to a worker thread
cost several times the database's own round trip. These reads are few and
fixed, so :class:`Query` compiles each to the dialect's SQL once, and they
run on the driver directly:

* **SQLite**: on the event loop, on a connection of the engine's pool (a read
  of a local WAL file never waits for a writer, and is cheaper than a trip to
  a worker thread).
* **PostgreSQL**: on psycopg's asyncio connections, from a small pool of
  :data:`READ_POOL_SIZE` per event loop (an asyncio connection belongs to the
  loop that opened it), in autocommit mode, each statement prepared on the
  server the first time a connection runs it. No worker thread is involved,
  so a burst of status checks queues on the loop, not on anyio's 40 threads
  and SQLAlchemy's pool behind them.

Writes, migrations and every other read stay on SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from ._engine import RETRY_DELAYS, is_busy, jittered

if TYPE_CHECKING:
    import psycopg

__all__ = ["APPLICATION_NAME", "READ_POOL_SIZE", "Query", "Reader"]

READ_POOL_SIZE = 10
"""PostgreSQL connections the hot reads hold open per event loop, at most."""

APPLICATION_NAME = "connectors-core reads"
"""How the hot reads' PostgreSQL sessions name themselves (``pg_stat_activity``), unless
the database URL names an ``application_name``."""

Row = Mapping[str, Any]


@attrs.frozen
class Query:
    """A SELECT compiled once for one dialect: its SQL and how to bind its parameters."""

    sql: str
    positions: tuple[str, ...] | None
    """The parameters' names in the order the SQL takes them; None for named parameters."""
    defaults: Mapping[str, Any]
    """The values bound in the statement itself (such as its ``LIMIT``)."""

    @classmethod
    def compile(cls, statement: sa.Select[Any], dialect: sa.Dialect) -> Query:
        """``statement``, whose parameters are :func:`sqlalchemy.bindparam` names."""
        compiled = statement.compile(dialect=dialect)
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        defaults = {
            k: v for k, v in compiled.construct_params(_check=False).items() if v is not None
        }
        return cls(compiled.string, positions, defaults)

    def parameters(self, given: Mapping[str, Any]) -> Any:
        """The parameters to hand the driver: a tuple or a mapping."""
        values = {**self.defaults, **given}
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)


class _Pool:
    """psycopg asyncio connections of one event loop, reused; at most ``size`` at once."""

    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self.slots = asyncio.Semaphore(size)
        self.idle: list[psycopg.AsyncConnection[Row]] = []
        self.closed = False

    async def _connect(self) -> psycopg.AsyncConnection[Row]:
        import psycopg
        from psycopg.rows import dict_row

        return await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, row_factory=dict_row
        )

    async def fetch(self, query: Query, params: Any) -> list[Row]:
        import psycopg

        async with self.slots:
            for attempt in (1, 2):
                reused = bool(self.idle)
                connection = self.idle.pop() if reused else await self._connect()
                try:
                    cursor = await connection.execute(query.sql, params, prepare=True)
                    rows = await cursor.fetchall()
                except psycopg.OperationalError:
                    _drop(connection)
                    if attempt == 2 or not reused:
                        raise
                    continue  # an idle connection the server dropped: once more, on a new one
                except BaseException:
                    # Cancelled mid-statement (its state is unknown), or the statement
                    # failed, maybe on a plan prepared before a migration: a new session
                    # starts afresh.
                    _drop(connection)
                    raise
                self._give_back(connection)
                return rows
        raise AssertionError("unreachable")  # pragma: no cover

    def _give_back(self, connection: psycopg.AsyncConnection[Row]) -> None:
        if self.closed:
            _drop(connection)
        else:
            self.idle.append(connection)

    def close(self) -> None:
        """Close the idle connections (those in use are closed when their read ends)."""
        self.closed = True
        while self.idle:
            _drop(self.idle.pop())


def _drop(connection: psycopg.AsyncConnection[Row]) -> None:
    # AsyncConnection.close() does no I/O beyond this, and this works from any loop
    # (the store may be closed from another loop than the one that read).
    connection.pgconn.finish()


def _rows(connection: PoolProxiedConnection, query: Query, params: Any) -> list[Row]:
    """The rows of one statement on a DB-API connection, as mappings of column to value."""
    cursor = connection.cursor()
    cursor.execute(query.sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _conninfo(engine: Engine) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    options = conninfo_to_dict(url)
    options.setdefault("application_name", APPLICATION_NAME)
    return make_conninfo("", **options)


class Reader:
    """Runs :class:`Query` reads for a store's engine (see the module docstring).

    :param engine: the store's engine (SQLite or PostgreSQL through psycopg).
    :param pool_size: PostgreSQL connections per event loop, at most.
    """

    def __init__(self, engine: Engine, *, pool_size: int = READ_POOL_SIZE) -> None:
        self.engine = engine
        self.pool_size = pool_size
        self._sqlite = engine.dialect.name == "sqlite"
        self._conninfo: str | None = None
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
            weakref.WeakKeyDictionary()
        )
        # SQLite file: one connection per thread kept for these reads, not checked out of
        # and back into the pool (and rolled back) at every read.
        self._kept = isinstance(engine.pool, sa.pool.QueuePool) and self._sqlite
        self._local = threading.local()
        self._held: list[PoolProxiedConnection] = []
        self._held_guard = threading.Lock()

    def compile(self, statement: sa.Select[Any]) -> Query:
        """``statement`` compiled for this engine's dialect."""
        return Query.compile(statement, self.engine.dialect)

    async def fetch(self, query: Query, **params: Any) -> list[Row]:
        """The rows of ``query`` with ``params``, as mappings of column name to value."""
        if self._sqlite:
            return await self._fetch_sqlite(query, query.parameters(params))
        loop = asyncio.get_running_loop()
        if sys.platform == "win32" and type(loop).__name__ == "ProactorEventLoop":
            # psycopg's asyncio connections cannot run on a proactor loop (Windows).
            return await anyio.to_thread.run_sync(self._fetch_raw, query, query.parameters(params))
        pool = self._pools.get(loop)
        if pool is None:
            if self._conninfo is None:
                self._conninfo = _conninfo(self.engine)
            pool = self._pools[loop] = _Pool(self._conninfo, self.pool_size)
            # A loop that is gone (asyncio.run returned) takes its connections with it.
            weakref.finalize(loop, pool.close)
        return await pool.fetch(query, query.parameters(params))

    def _fetch_raw(self, query: Query, params: Any) -> list[Row]:
        """One statement on a connection of the engine's pool, through the driver (blocking)."""
        raw = self.engine.raw_connection()
        try:
            return _rows(raw, query, params)
        finally:
            raw.close()  # back to the pool, which ends any transaction the driver began

    def _fetch_kept(self, query: Query, params: Any) -> list[Row]:
        """One statement on this thread's kept SQLite connection."""
        held: PoolProxiedConnection | None = getattr(self._local, "connection", None)
        if held is None:
            held = self._local.connection = self.engine.raw_connection()
            with self._held_guard:
                self._held.append(held)
        try:
            return _rows(held, query, params)
        except sqlite3.Error as exc:
            if not is_busy(exc):  # something is wrong with it: the next read opens another
                self._local.connection = None
                with self._held_guard:
                    self._held.remove(held)
                held.invalidate()
            raise

    async def _fetch_sqlite(self, query: Query, params: Any) -> list[Row]:
        fetch = self._fetch_kept if self._kept else self._fetch_raw
        for delay in (*RETRY_DELAYS, None):
            try:
                return fetch(query, params)
            except sqlite3.OperationalError as exc:
                if delay is None or not is_busy(exc):
                    raise
            await anyio.sleep(jittered(delay))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every pooled PostgreSQL connection, of every event loop, and give back
        the SQLite connections kept for reading."""
        for pool in list(self._pools.values()):
            pool.close()
        self._pools.clear()
        with self._held_guard:
            held, self._held = self._held, []
        for connection in held:
            connection.close()  # back to the pool, which the store then disposes of
        self._local = threading.local()
