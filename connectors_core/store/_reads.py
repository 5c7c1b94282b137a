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

A status check is a :class:`KeyedQuery`: on PostgreSQL, the checks that queue
while every pooled connection is busy are answered together, in one statement
that takes their keys as arrays (``unnest(...) WITH ORDINALITY`` joined
``LATERAL`` to the single-key read). Each check queued before that statement
was sent, so it sees every write that committed before it was asked: as
fresh as a read of its own. Under load, one round trip then answers many
checks, instead of each paying the driver's and the server's per-statement
cost.

Writes, migrations and every other read stay on SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread
import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from ._engine import RETRY_DELAYS, is_busy, jittered

if TYPE_CHECKING:
    import psycopg

__all__ = ["APPLICATION_NAME", "BATCH_LIMIT", "READ_POOL_SIZE", "KeyedQuery", "Query", "Reader"]

READ_POOL_SIZE = 10
"""PostgreSQL connections the hot reads hold open per event loop, at most."""

BATCH_LIMIT = 100
"""Queued keyed reads answered by one statement, at most."""

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


@attrs.frozen
class KeyedQuery:
    """A read by key (such as a status check) that queued callers can share a statement for.

    :param one: the read of one key, whose parameters are named in ``keys``.
    :param many: the read of several keys at once, each of ``keys`` bound to an
        array of values, each row carrying the 1-based ``position`` of its key
        (None where reads are not batched: SQLite).
    """

    one: Query
    many: Query | None
    keys: tuple[str, ...]


def batched(
    statement: sa.Select[Any], keys: tuple[str, ...], order: Sequence[sa.Column[Any]] = ()
) -> sa.Select[Any]:
    """``statement``, a read of one key (its ``keys`` bound parameters), made a read of many.

    The keys come as arrays, one per name, unnested ``WITH ORDINALITY``; the
    single-key read becomes a ``LATERAL`` subquery on each of them (its own
    ``ORDER BY`` and ``LIMIT`` apply per key); each row starts with its key's
    ``position``, and rows come in key order, then by ``order`` (the columns
    ``statement`` is ordered by, which it must select). PostgreSQL only.
    """
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.sql.elements import BindParameter
    from sqlalchemy.sql.visitors import iterate, replacement_traverse

    # Each array of the element type its parameter has in the one-key read (a VARCHAR
    # array compared with an integer column would fail every batch).
    types: dict[str, Any] = {}
    for element in iterate(statement):
        if isinstance(element, BindParameter) and element.key in keys:
            types.setdefault(element.key, element.type)
    missing = [name for name in keys if name not in types]
    if missing:
        raise ValueError(f"batched(): the statement has no parameter {missing[0]!r}")
    given = sa.func.unnest(*(sa.bindparam(name, type_=ARRAY(types[name])) for name in keys))
    table = given.table_valued(*keys, with_ordinality="position").render_derived(name="keys")

    def per_key(element: Any, **_: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in keys:
            return table.c[element.key]
        return None

    options: dict[str, Any] = {}
    each = cast("sa.Select[Any]", replacement_traverse(statement, options, per_key))
    found = each.correlate(table).lateral("found")  # keys from the outer query, always
    then = [found.corresponding_column(column) for column in order]
    if any(column is None for column in then):
        raise ValueError("batched(): order by columns the statement selects")
    return (
        sa.select(table.c.position, found)
        .select_from(table.join(found, sa.true()))
        .order_by(table.c.position, *cast("list[sa.ColumnElement[Any]]", then))
    )


_Waiting = tuple[KeyedQuery, tuple[Any, ...], "asyncio.Future[list[Row]]"]
"""A keyed read queued for a worker: its query, its key, its caller's future."""


class _Pool:
    """psycopg asyncio connections of one event loop, reused; at most ``size`` at once."""

    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self.slots = asyncio.Semaphore(size)
        self.idle: list[psycopg.AsyncConnection[Row]] = []
        self.closed = False
        self.size = size
        self.waiting: list[_Waiting] = []
        self.workers = 0
        self.tasks: set[asyncio.Task[None]] = set()

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

    async def fetch_keyed(self, query: KeyedQuery, key: tuple[Any, ...]) -> list[Row]:
        """The rows of ``query`` for ``key`` (its values in ``query.keys`` order), read
        alone or with others queued beside it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Row]] = loop.create_future()
        self.waiting.append((query, key, future))
        if self.workers < self.size:
            # A connection is free: a worker takes this read, with whatever queues meanwhile.
            self._start_worker(loop)
        return await future

    def _start_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        # A task of its own, so that a caller cancelled while waiting never cancels the
        # statement that answers the others; in a context of its own, not the caller's
        # (whose context variables, a tracing span say, are not those of the others).
        self.workers += 1
        task = loop.create_task(self._work(), context=contextvars.Context())
        self.tasks.add(task)
        task.add_done_callback(self._worker_ended)

    async def _work(self) -> None:
        while self.waiting:
            query = self.waiting[0][0]
            taken: list[_Waiting] = []
            rest: list[_Waiting] = []
            for each in self.waiting:
                same = each[0] is query and len(taken) < BATCH_LIMIT
                (taken if same else rest).append(each)
            self.waiting = rest
            try:
                await self._answer(query, [(key, future) for _, key, future in taken])
            except BaseException:
                # Cancelled (the event loop is closing): the callers it took did not ask
                # to be cancelled, and must not wait for ever.
                for _, _, future in taken:
                    _settle([future], RuntimeError("the read was interrupted; try again"))
                raise

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        """Count a worker out (also one cancelled before it started), and make sure the
        reads still queued have one."""
        self.tasks.discard(task)
        self.workers -= 1
        if not self.waiting or self.workers:
            return
        if task.cancelled() or task.get_loop().is_closed():
            waiting, self.waiting = self.waiting, []
            for _, _, future in waiting:
                _settle([future], RuntimeError("the read was interrupted; try again"))
        else:  # queued after the last worker's last look, before it was counted out
            self._start_worker(task.get_loop())

    async def _answer(
        self, query: KeyedQuery, taken: list[tuple[tuple[Any, ...], asyncio.Future[list[Row]]]]
    ) -> None:
        """Read the keys of ``taken`` in one statement and settle each caller's future."""
        callers: dict[tuple[Any, ...], list[asyncio.Future[list[Row]]]] = {}
        for key, future in taken:
            if not future.done():  # a caller cancelled meanwhile needs no answer
                callers.setdefault(key, []).append(future)
        try:
            if len(callers) > 1 and query.many is not None:
                try:
                    answers = await self._read_many(query, list(callers))
                except Exception as exc:
                    import psycopg

                    if isinstance(exc, psycopg.OperationalError):
                        raise  # the server is unreachable: for every key alike
                    # One key the statement refused (a value PostgreSQL cannot store, say)
                    # must fail its own callers only: each key is read alone below.
                else:
                    for rows, futures in zip(answers, callers.values(), strict=True):
                        _settle(futures, rows)
                    return
            for key, futures in callers.items():
                one = dict(zip(query.keys, key, strict=True))
                try:
                    rows = await self.fetch(query.one, query.one.parameters(one))
                except Exception as exc:  # noqa: BLE001 - this key's callers raise it
                    _settle(futures, exc)
                else:
                    _settle(futures, rows)
        except Exception as exc:  # noqa: BLE001 - every caller still waiting raises it
            for futures in callers.values():
                _settle(futures, exc)

    async def _read_many(self, query: KeyedQuery, keys: list[tuple[Any, ...]]) -> list[list[Row]]:
        """The rows of each of ``keys``, in one statement."""
        assert query.many is not None
        arrays = {name: [key[i] for key in keys] for i, name in enumerate(query.keys)}
        answers: list[list[Row]] = [[] for _ in keys]
        for row in await self.fetch(query.many, query.many.parameters(arrays)):
            # Without its position: rows as a one-key read gives them (psycopg's dict rows).
            answers[cast("dict[str, Any]", row).pop("position") - 1].append(row)
        return answers

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


def _settle(futures: list[asyncio.Future[list[Row]]], outcome: list[Row] | Exception) -> None:
    """Answer the callers still waiting with ``outcome``, rows or an error."""
    for future in futures:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


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

    def compile_keyed(
        self,
        statement: sa.Select[Any],
        keys: tuple[str, ...],
        order: Sequence[sa.Column[Any]] = (),
    ) -> KeyedQuery:
        """``statement``, a read of the key its ``keys`` parameters name, compiled to read one
        key and (on PostgreSQL) several at once (see :func:`batched` for ``order``)."""
        many = None if self._sqlite else self.compile(batched(statement, keys, order))
        return KeyedQuery(self.compile(statement), many, keys)

    async def fetch_keyed(self, query: KeyedQuery, **params: Any) -> list[Row]:
        """The rows of ``query`` for the key ``params`` name (see :class:`KeyedQuery`).

        The rows may be shared with other callers of the same key: read them, do
        not change them.

        :raises TypeError: ``params`` do not name exactly ``query.keys``, or a value
            cannot be a key (it is not hashable).
        """
        if params.keys() != set(query.keys):
            raise TypeError(f"a keyed read takes {', '.join(query.keys)}; got {sorted(params)}")
        key = tuple(params[name] for name in query.keys)
        hash(key)  # a value that cannot be a key fails its own caller, not a batch
        pool = self._pool()
        if pool is None:
            return await self.fetch(query.one, **params)
        return await pool.fetch_keyed(query, key)

    async def fetch(self, query: Query, **params: Any) -> list[Row]:
        """The rows of ``query`` with ``params``, as mappings of column name to value."""
        if self._sqlite:
            return await self._fetch_sqlite(query, query.parameters(params))
        pool = self._pool()
        if pool is None:
            return await anyio.to_thread.run_sync(self._fetch_raw, query, query.parameters(params))
        return await pool.fetch(query, query.parameters(params))

    def _pool(self) -> _Pool | None:
        """The running loop's PostgreSQL pool; None on SQLite or a Windows proactor loop."""
        if self._sqlite:
            return None
        loop = asyncio.get_running_loop()
        if sys.platform == "win32" and type(loop).__name__ == "ProactorEventLoop":
            # psycopg's asyncio connections cannot run on a proactor loop (Windows).
            return None
        pool = self._pools.get(loop)
        if pool is None:
            if self._conninfo is None:
                self._conninfo = _conninfo(self.engine)
            pool = self._pools[loop] = _Pool(self._conninfo, self.pool_size)
            # A loop that is gone (asyncio.run returned) takes its connections with it.
            weakref.finalize(loop, pool.close)
        return pool

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
