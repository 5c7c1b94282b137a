"""SQLite under concurrent writers: no "database is locked", and a lease that blocks no one.

Real files, real threads and a real second process. Nothing here asserts a
timing: a write that SQLite refused, or one lost, fails the test however fast
the machine is; the bounds are only there so that a regression fails instead
of hanging.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest
import sqlalchemy as sa

from connectors_core import IntegrationError
from connectors_core._settings import Settings
from connectors_core.store import (
    ConnectionState,
    SecretBox,
    Store,
    StoredConnection,
    generate_key,
    open_store,
)
from connectors_core.store._engine import is_busy, write
from connectors_core.store._sql import SQLStore, create_engine
from tests.store.writer import COUNTER, ROOT, api_key_connection, increment, mixed, only

pytestmark = pytest.mark.anyio

KEY = generate_key()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'c.sqlite3'}"


@pytest.fixture
def store(url: str) -> Any:
    opened = open_store(Settings(database_url=url, secret_keys=(KEY,)))
    yield opened
    anyio.run(opened.close)


def writer(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "tests.store.writer", args[0], url, KEY, *args[1:]]


async def start_counter(store: Store) -> None:
    await store.put(
        StoredConnection(
            tenant=COUNTER[0],
            connector_id=COUNTER[1],
            connection_id=COUNTER[2],
            state=ConnectionState.CONNECTED,
            account={"n": "0"},
            created_at=1.0,
            updated_at=1.0,
        )
    )


async def counter(store: Store) -> int:
    stored = await store.get(*COUNTER)
    assert stored is not None
    return int(stored.account["n"])


async def test_many_writers_in_threads_and_another_process_all_succeed(
    store: Store, url: str
) -> None:
    """Every kind of write at once, for a few seconds: none fails, none is lost."""
    await start_counter(store)
    seconds = "3"
    process = subprocess.Popen(
        writer(url, "mixed", "process", seconds), cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    reports: dict[str, dict[str, Any]] = {}

    def thread(name: str) -> None:
        # Its own event loop, the same store: as a host's job threads would use it.
        reports[name] = anyio.run(mixed, store, name, float(seconds))

    threads = [threading.Thread(target=thread, args=(f"thread-{n}",)) for n in range(3)]
    for started in threads:
        started.start()
    reports["loop"] = await mixed(store, "loop", float(seconds))
    for started in threads:
        await anyio.to_thread.run_sync(started.join, 60)
    output, _ = await anyio.to_thread.run_sync(process.communicate, None, 60)
    assert process.returncode == 0
    reports["process"] = json.loads(output)

    assert {name: report["errors"] for name, report in reports.items()} == {
        name: [] for name in reports
    }
    for name, report in reports.items():
        assert report["increments"] > 0
        assert report["taken"] == report["increments"]
        for connector_id, api_key in report["expected"].items():
            stored = await store.get(name, connector_id)
            assert (stored.api_key if stored else None) == api_key, (name, connector_id)
    # Every leased increment, from every thread and process, is in the counter.
    assert await counter(store) == sum(report["increments"] for report in reports.values())


async def test_a_lease_held_across_a_slow_call_blocks_no_other_write(
    store: Store, url: str
) -> None:
    """A refresh waiting for its provider leaves the database writable for everyone."""
    await store.put(api_key_connection("t1", "evencio", "key-0123456789abcdef"))
    with anyio.fail_after(120):
        async with store.lease("t1", "evencio", only("evencio")) as lease:
            await anyio.sleep(2)  # the provider, slow to answer
            # Another request in this process, and another process, write meanwhile.
            await store.put(api_key_connection("t2", "evencio", "key-from-this-process"))
            other = await anyio.run_process(writer(url, "put", "t3"), cwd=ROOT, check=False)
            assert other.returncode == 0, other.stderr.decode()
            assert other.stdout == b"ok\n"
            assert lease.connection is not None
            await lease.save(attrs.evolve(lease.connection, api_key="key-after-refresh-0000"))
    found = {tenant: await store.get(tenant, "evencio") for tenant in ("t1", "t2", "t3")}
    assert {tenant: c.api_key for tenant, c in found.items() if c} == {
        "t1": "key-after-refresh-0000",
        "t2": "key-from-this-process",
        "t3": "key-from-another-process",
    }


async def test_an_expired_lease_is_taken_over_and_its_stale_holder_cannot_save(
    url: str,
) -> None:
    store = SQLStore(create_engine(url), SecretBox([KEY]), lease_lifetime=0.3)
    await start_counter(store)
    taken_over = anyio.Event()

    async def second_holder() -> None:
        async with store.lease(*COUNTER) as fresh:
            taken_over.set()
            assert fresh.connection is not None
            await fresh.save(attrs.evolve(fresh.connection, account={"n": "fresh"}))

    with anyio.fail_after(60):
        async with store.lease(*COUNTER) as stale, anyio.create_task_group() as group:
            group.start_soon(second_holder)
            await taken_over.wait()  # only once the stale holder's lifetime ran out
            assert stale.connection is not None
            with pytest.raises(IntegrationError, match="took it over") as refused:
                await stale.save(attrs.evolve(stale.connection, account={"n": "stale"}))
            assert refused.value.reason == "lease_lost"
        async with store.lease(*COUNTER) as after:  # released: granted again
            assert after.connection is not None
            assert after.connection.account == {"n": "fresh"}
    await store.close()


async def test_a_killed_holder_s_lease_is_released_when_it_expires(store: Store, url: str) -> None:
    await start_counter(store)
    with subprocess.Popen(
        writer(url, "hold", "1"), cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            assert await anyio.to_thread.run_sync(holder.stdout.readline) == "held\n"
        finally:
            holder.kill()  # mid-refresh, without releasing
    with anyio.fail_after(60):
        await increment(store)  # waits out the dead holder's second, then gets it
    assert await counter(store) == 1


async def test_concurrent_lease_holders_in_one_process_never_overlap(url: str) -> None:
    store = SQLStore(create_engine(url), SecretBox([KEY]))
    await start_counter(store)

    async def holder() -> None:
        for _ in range(5):
            await increment(store)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(holder)
    assert await counter(store) == 40
    await store.close()


async def test_a_read_never_waits_for_a_pool_slot(store: Store, url: str) -> None:
    """Reads run on the event loop: a pool that made them wait would stall the server."""
    await store.put(api_key_connection("t1", "evencio", "key-0123456789abcdef"))
    assert isinstance(store, SQLStore)
    held = [store.engine.connect() for _ in range(20)]  # more than pool_size + max_overflow
    try:
        for db in held:
            db.execute(sa.text("SELECT 1"))
        with anyio.fail_after(10):
            assert await store.get("t1", "evencio") is not None
    finally:
        for db in held:
            db.close()


def test_a_write_waits_out_another_process_s_lock_and_retries(url: str) -> None:
    """SQLite answering busy (past the busy timeout) is tried again, not raised."""
    engine = create_engine(url, busy_timeout=0)
    with engine.begin() as db:
        db.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process, holding the write lock

    class ReleaseOnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "busy" in record.getMessage():
                other.execute("COMMIT")

    handler = ReleaseOnRetry()
    logger = logging.getLogger("connectors_core.store")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        write(engine, lambda db: db.execute(sa.text("INSERT INTO t VALUES (1)")))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        other.close()
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    engine.dispose()


def test_a_write_that_stays_locked_fails_after_bounded_retries(url: str) -> None:
    engine = create_engine(url, busy_timeout=0)
    with engine.begin() as db:
        db.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sa.exc.OperationalError) as failed:
            write(engine, lambda db: db.execute(sa.text("INSERT INTO t VALUES (1)")))
        assert is_busy(failed.value)
    finally:
        other.close()
        engine.dispose()


def test_other_database_errors_are_not_retried(url: str) -> None:
    engine = create_engine(url)
    calls: list[int] = []

    def broken(db: sa.Connection) -> None:
        calls.append(1)
        db.execute(sa.text("INSERT INTO no_such_table VALUES (1)"))

    with pytest.raises(sa.exc.OperationalError, match="no such table") as failed:
        write(engine, broken)
    assert not is_busy(failed.value)
    assert calls == [1]
    engine.dispose()


async def test_a_refresh_never_saves_over_a_connection_replaced_meanwhile(store: Store) -> None:
    await start_counter(store)
    async with store.lease(*COUNTER) as lease:
        assert lease.connection is not None
        # The user reconnects while the refresh waits for the provider.
        await store.put(attrs.evolve(lease.connection, account={"n": "reconnected"}))
        with pytest.raises(IntegrationError) as refused:
            await lease.save(attrs.evolve(lease.connection, account={"n": "old grant"}))
        assert refused.value.reason == "lease_lost"
    assert await counter_account(store) == {"n": "reconnected"}


async def test_a_key_rotation_during_a_refresh_does_not_refuse_its_save(
    store: Store, url: str
) -> None:
    from connectors_core.store._rotate import rotate_keys

    await store.put(api_key_connection(*COUNTER[:2], "an-api-key-0123456789"))
    newer = SecretBox([generate_key(), KEY])
    async with store.lease(*COUNTER) as lease:
        assert lease.connection is not None
        engine = create_engine(url)
        try:
            progress = await anyio.to_thread.run_sync(lambda: rotate_keys(engine, newer))
        finally:
            engine.dispose()
        assert progress.remaining == 0
        await lease.save(attrs.evolve(lease.connection, account={"n": "refreshed"}))
    assert await counter_account(store) == {"n": "refreshed"}


async def counter_account(store: Store) -> dict[str, str]:
    stored = await store.get(*COUNTER)
    assert stored is not None
    return dict(stored.account)
