"""Engines for the store, and how it writes to SQLite without "database is locked".

SQLite lets one connection write at a time. A transaction that starts as a
reader (a deferred ``BEGIN``) and then writes has to upgrade its lock, and
SQLite refuses that upgrade at once (``SQLITE_BUSY``, its busy handler is not
used) when another connection wrote meanwhile. So on SQLite every write:

* takes the write lock up front (``BEGIN IMMEDIATE``), where SQLite's busy
  handler waits up to :data:`BUSY_TIMEOUT` for a writer in another process;
* holds this process's lock for the database file first, so threads of one
  process queue here, in order, instead of on SQLite's busy handler (and each
  holds a pooled connection only while it writes);
* is retried a few times, with backoff, should SQLite still answer busy or
  locked (:data:`RETRY_DELAYS`).

Reads never take the write lock (WAL mode: readers do not wait for writers).
The pool of a file database never makes a caller wait for a connection: the
store reads inline on the event loop, which must not block on the pool.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "BUSY_TIMEOUT",
    "RETRY_DELAYS",
    "create_engine",
    "is_busy",
    "jittered",
    "retry_busy",
    "write",
]

# Our own generator: jitter never touches (or depends on) the global random state.
_jitter = random.Random()

log = logging.getLogger("connectors_core.store")

T = TypeVar("T")

BUSY_TIMEOUT = 15.0
"""Seconds SQLite's busy handler waits for another process's write to finish."""

RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)
"""Pauses (before jitter) between attempts when SQLite still answers busy or locked."""

_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6

_file_locks: dict[str, threading.Lock] = {}
_file_locks_guard = threading.Lock()


def _is_file(url: sa.engine.URL) -> bool:
    database = url.database or ""
    return database not in ("", ":memory:") and "mode=memory" not in str(url)


def create_engine(url: str, *, busy_timeout: float = BUSY_TIMEOUT) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and immediate writes."""
    if url.startswith("sqlite"):
        options: dict[str, Any] = {}
        if _is_file(sa.engine.make_url(url)):
            # SQLAlchemy 2 gives a file database a QueuePool of 5 plus 10 overflow,
            # and a caller past those waits up to 30 s for a slot. Writers are
            # serialized (one connection at a time); a read must never wait.
            options = {"poolclass": sa.pool.QueuePool, "pool_size": 5, "max_overflow": -1}
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_timeout}, **options
        )

        @sa.event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions
            # begin, so that a write can BEGIN IMMEDIATE (take the lock up front).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            options = connection.get_execution_options()
            if options.get("sqlite_single_read", False):
                # One SELECT is a transaction of its own in SQLite: a BEGIN and a
                # ROLLBACK around it would only double the cost of the hottest read.
                return
            immediate = options.get("sqlite_immediate", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No pre-ping: it costs a round trip on every checkout, on the hottest path
    # (each status check). Connections are recycled instead, and one that the
    # server dropped is discarded by the pool when it fails.
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "database is locked" / "busy": worth trying again.

    ``error`` is SQLAlchemy's, or the ``sqlite3`` module's own.
    """
    cause = error.orig if isinstance(error, sa.exc.OperationalError) else error
    if not isinstance(cause, sqlite3.OperationalError):
        return False
    code = getattr(cause, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    message = str(cause).lower()
    return "database is locked" in message or "database is busy" in message


def jittered(delay: float) -> float:
    """``delay`` stretched by up to half again, so retrying processes spread out."""
    return delay * (1 + _jitter.random() / 2)  # timing, not security: any PRNG does


def retry_busy(function: Callable[[], T]) -> T:
    """Call ``function``, again after a pause while SQLite answers busy (bounded)."""
    for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
        try:
            return function()
        except sa.exc.OperationalError as exc:
            if delay is None or not is_busy(exc):
                raise
            log.info("the SQLite database is busy (attempt %d); trying again", attempt)
            time.sleep(jittered(delay))
    raise AssertionError("unreachable")  # pragma: no cover


def _file_lock(engine: Engine) -> threading.Lock:
    database = engine.url.database or ""
    key = os.path.realpath(database) if _is_file(engine.url) else f"engine:{id(engine)}"
    with _file_locks_guard:
        return _file_locks.setdefault(key, threading.Lock())


def write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one write transaction, committed when it returns (blocking).

    On SQLite: the process's lock for the file, ``BEGIN IMMEDIATE``, and the
    whole transaction tried again while SQLite answers busy; ``work`` must
    therefore touch nothing but the database. Elsewhere: a plain transaction.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as db:
            return work(db)

    def attempt() -> T:
        with engine.connect().execution_options(sqlite_immediate=True) as db, db.begin():
            return work(db)

    with _file_lock(engine):
        return retry_busy(attempt)
