"""The hot reads below SQLAlchemy (status checks, the page's summaries), on SQLite and
PostgreSQL: the same answers as the reference store, and their pool closed with the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest

from connectors_core import ConnectionRequiredError, Registry, discover
from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.store import (
    ConnectionState,
    Store,
    StoredConnection,
    TokenSet,
    generate_key,
    open_store,
)
from connectors_core.store._crypto import SecretBox
from connectors_core.store._reads import APPLICATION_NAME
from connectors_core.store._rotate import rotate_keys
from connectors_core.store._sql import SQLStore
from tests.harness import oauth_manifest, simple_manifest
from tests.postgres import reset

pytestmark = pytest.mark.anyio

OLD, NEW = generate_key(), generate_key()
NOW = time.time()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.sqlite3'}"
    found: str = request.getfixturevalue("postgres_url")
    reset(found)
    return found


def registry() -> Registry:
    found = discover(allow=["evencio"])
    provider = "http://127.0.0.1:9"
    found.register(oauth_manifest("acme-multi", provider, multiple=True))
    found.register(
        simple_manifest("acme-key", {"type": "api-key", "description": "Key.", "headerName": "X"})
    )
    found.register(simple_manifest("acme-plain", {"type": "none"}))
    return found


def tokens(refresh: str | None = "refresh") -> TokenSet:
    return TokenSet("access", refresh, expires_at=NOW + 3600, scopes=("events:read",))


def everything() -> list[StoredConnection]:
    """Every state a status shows, for two tenants."""
    account = {"organizationId": "org-1", "userId": "user-1"}
    found = []
    for tenant in ("t1", "t2"):
        found += [
            StoredConnection(
                tenant,
                "evencio",
                ConnectionState.CONNECTED,
                tokens(),
                account={**account, "userId": f"user-{tenant}"},
                created_at=NOW,
                updated_at=NOW,
                config={"shop": "acme", "port": 8443, "sandbox": True},
                secrets={"signingKey": "SIGNING"},
                verified_at=NOW - 5,
                last_refreshed_at=NOW - 60,
                connected_by="u1",
                connected_by_name="Ada",
                label="Main",
                connection_id="conn_0000000000000001",
            ),
            StoredConnection(
                tenant,
                "acme-key",
                ConnectionState.CONNECTED,
                api_key="key-0123456789abcdef",
                created_at=NOW,
                updated_at=NOW,
                verify_reason="invalid_key",
                connection_id="conn_0000000000000002",
            ),
        ]
    for number, state in enumerate([ConnectionState.CONNECTED, ConnectionState.NEEDS_REAUTH]):
        found.append(
            StoredConnection(
                "t1",
                "acme-multi",
                state,
                tokens(None),
                account={"organizationId": f"org-{number}", "userId": "u"},
                account_key=f"org-{number}",
                created_at=NOW + number,
                updated_at=NOW + number,
                state_reason="invalid_grant" if number else None,
                last_error="invalid_grant" if number else None,
                requested_scopes=("read",),
                connection_id=f"conn_100000000000000{number}",
            )
        )
    return found


def open_with(url: str, *keys: str) -> Store:
    return open_store(Settings(database_url=url, secret_keys=keys))


async def answers(store: Store) -> dict[str, Any]:
    """What the status route and the page show, for every tenant and connector."""
    connections = Connections(registry(), store, Settings(secret_keys=(OLD,)))
    found: dict[str, Any] = {}
    for tenant in ("t1", "t2", "t3"):
        found[f"{tenant} page"] = await connections.statuses(tenant)
        for connector in ("evencio", "acme-key", "acme-multi", "acme-plain"):
            found[f"{tenant} {connector}"] = await connections.status(tenant, connector)
        for summary in await store.list(tenant=tenant):
            key = f"{tenant} {summary.connector_id} {summary.connection_id}"
            found[key] = await connections.status(
                tenant, summary.connector_id, summary.connection_id
            )
            found[f"{key} summary"] = await store.summary(
                tenant, summary.connector_id, summary.connection_id
            )
        found[f"{tenant} summaries"] = await store.summaries(tenant)
    return found


@pytest.fixture
def reference() -> Iterator[dict[str, Any]]:
    """The answers of the in-memory store, holding the same connections."""
    memory = open_with("memory://", OLD)

    async def fill() -> dict[str, Any]:
        for each in everything():
            await memory.put(each)
        return await answers(memory)

    yield anyio.run(fill)
    anyio.run(memory.close)


async def test_status_and_summaries_read_fast_are_those_of_the_reference_store(
    url: str, reference: dict[str, Any]
) -> None:
    store = open_with(url, OLD)
    try:
        for each in everything():
            await store.put(each)
        found = await answers(store)
        assert found == reference
        # The same states the status shows, for the record.
        assert found["t1 evencio"]["connected"] is True
        multi = found["t1 acme-multi"]["connections"]
        assert [each["connected"] for each in multi] == [True, False]
        assert multi[1]["reason"] == "invalid_grant"
        assert found["t3 summaries"] == []
        assert found["t3 evencio"]["error"] == "not_connected"
        with pytest.raises(ConnectionRequiredError):
            await store.summary("t1", "acme-multi")  # several, and no id named
    finally:
        await store.close()


def test_the_fast_reads_answer_the_same_after_a_key_rotation(
    url: str, reference: dict[str, Any]
) -> None:
    async def fill() -> None:
        store = open_with(url, OLD)
        for each in everything():
            await store.put(each)
        await store.close()

    anyio.run(fill)
    store = open_with(url, OLD)
    assert isinstance(store, SQLStore)
    rotate_keys(store.engine, SecretBox([NEW, OLD]))
    anyio.run(store.close)
    rotated = open_with(url, NEW)  # the old key is gone
    try:
        assert anyio.run(answers, rotated) == reference
    finally:
        anyio.run(rotated.close)


def _read_sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (APPLICATION_NAME,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_the_read_pool_is_closed_with_the_store(postgres_url: str) -> None:
    reset(postgres_url)
    store = open_with(postgres_url, OLD)
    await store.put(everything()[0])
    async with anyio.create_task_group() as group:
        for _ in range(20):  # at once: more than one pooled connection
            group.start_soon(store.summaries, "t1")
    assert _read_sessions(postgres_url) >= 1
    await store.close()
    deadline = time.monotonic() + 10  # the server ends a backend soon after its client left
    while _read_sessions(postgres_url) and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    assert _read_sessions(postgres_url) == 0


async def test_a_read_session_the_server_dropped_is_replaced(postgres_url: str) -> None:
    reset(postgres_url)
    store = open_with(postgres_url, OLD)
    try:
        stored = await store.put(everything()[0])
        assert await store.summary("t1", "evencio") is not None
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (APPLICATION_NAME,),
            )
        summary = await store.summary("t1", "evencio")
        assert summary is not None
        assert summary.connection_id == stored.connection_id
    finally:
        await store.close()


async def test_the_sqlite_connections_kept_for_reading_are_given_back_on_close(
    tmp_path: Path,
) -> None:
    store = open_with(f"sqlite:///{tmp_path / 'c.sqlite3'}", OLD)
    assert isinstance(store, SQLStore)
    await store.put(everything()[0])
    await store.summaries("t1")
    await anyio.to_thread.run_sync(lambda: anyio.run(store.summaries, "t1"))  # another thread
    assert store.engine.pool.checkedout() == 2  # type: ignore[attr-defined]
    await store.close()
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


# --- status checks at once: answered together on PostgreSQL, each as if alone ----------


def _keys() -> list[tuple[str, str, str | None]]:
    """Status reads of every kind: by connector, by id, unknown, several, repeated."""
    keys: list[tuple[str, str, str | None]] = []
    for tenant in ("t1", "t2", "t3"):
        for connector in ("evencio", "acme-key", "acme-multi", "acme-plain"):
            keys.append((tenant, connector, None))
    for each in everything():
        keys.append((each.tenant, each.connector_id, each.connection_id))
    keys.append(("t1", "evencio", "conn_ffffffffffffffff"))  # no such connection
    return keys * 3


async def _read(store: Store, key: tuple[str, str, str | None]) -> object:
    """A summary, or the type of error the read raised."""
    try:
        return await store.summary(*key)
    except Exception as exc:  # noqa: BLE001 - compared, as a name, with the other reads
        return type(exc).__name__


async def _at_once(store: Store, keys: list[tuple[str, str, str | None]]) -> list[object]:
    found: list[object] = [None] * len(keys)

    async def one(position: int) -> None:
        found[position] = await _read(store, keys[position])

    with anyio.fail_after(60):  # a read left waiting fails the test, never hangs it
        async with anyio.create_task_group() as group:
            for position in range(len(keys)):
                group.start_soon(one, position)
    return found


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many keys each PostgreSQL read statement answered (1 for a single-key read)."""
    from connectors_core.store import _reads

    counted: list[int] = []
    fetch = _reads._Pool.fetch

    async def counting(self: Any, query: Any, params: Any) -> Any:
        values = params.values() if isinstance(params, dict) else params
        lists = [len(v) for v in values if isinstance(v, list)]
        counted.append(lists[0] if lists else 1)
        return await fetch(self, query, params)

    monkeypatch.setattr(_reads._Pool, "fetch", counting)
    return counted


async def test_status_reads_at_once_answer_as_each_alone(url: str, statements: list[int]) -> None:
    store = open_with(url, OLD)
    try:
        for each in everything():
            await store.put(each)
        keys = _keys()
        alone = [await _read(store, key) for key in keys]
        assert "ConnectionRequiredError" in alone
        assert None in alone
        statements.clear()
        assert await _at_once(store, keys) == alone
        if url.startswith("postgresql"):
            # Queued reads shared statements: each key read once (a key asked for three
            # times at once is read once), several keys a statement, within the limit.
            assert sum(statements) == len(set(keys))
            assert len(statements) < len(set(keys))
            assert max(statements) > 1
            from connectors_core.store._reads import BATCH_LIMIT

            assert max(statements) <= BATCH_LIMIT
    finally:
        await store.close()


async def test_a_read_a_batch_cannot_take_fails_alone(postgres_url: str) -> None:
    reset(postgres_url)
    store = open_with(postgres_url, OLD)
    try:
        for each in everything():
            await store.put(each)
        keys = _keys()[:20]
        alone = [await _read(store, key) for key in keys]
        # PostgreSQL stores no NUL in text: this key fails the statement it is in.
        found = await _at_once(store, [*keys, ("t\x00", "evencio", None)])
        assert found[:-1] == alone
        assert found[-1] == "DataError"
    finally:
        await store.close()


async def test_a_status_read_cancelled_while_queued_leaves_the_others_answered(
    postgres_url: str,
) -> None:
    import asyncio

    reset(postgres_url)
    store = open_with(postgres_url, OLD)
    try:
        for each in everything():
            await store.put(each)
        keys = _keys()
        alone = [await _read(store, key) for key in keys]
        tasks = [asyncio.ensure_future(_read(store, key)) for key in keys]
        await asyncio.sleep(0)  # each read queued (or started)
        for task in tasks[::7]:
            task.cancel()
        with anyio.fail_after(60):
            done = await asyncio.gather(*tasks, return_exceptions=True)
        for position, result in enumerate(done):
            if position % 7:
                assert result == alone[position]
            else:
                assert isinstance(result, asyncio.CancelledError)
        assert [await _read(store, key) for key in keys] == alone  # and reads go on
    finally:
        await store.close()


async def test_a_keyed_read_with_wrong_parameters_fails_alone(url: str) -> None:
    store = open_with(url, OLD)
    assert isinstance(store, SQLStore)
    try:
        await store.put(everything()[0])
        reader, query = store._reads, store._summary_only
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                found: dict[str, object] = {}

                async def read(name: str, params: dict[str, Any]) -> None:
                    try:
                        found[name] = len(await reader.fetch_keyed(query, **params))
                    except TypeError as exc:
                        found[name] = str(exc)

                group.start_soon(read, "good", {"tenant": "t1", "connector_id": "evencio"})
                group.start_soon(read, "missing", {"tenant": "t1"})
                group.start_soon(read, "unhashable", {"tenant": "t1", "connector_id": ["x"]})
                group.start_soon(read, "also good", {"tenant": "t1", "connector_id": "evencio"})
        assert found["good"] == found["also good"] == 1
        assert found["missing"] == "a keyed read takes tenant, connector_id; got ['tenant']"
        assert "unhashable" in str(found["unhashable"])
    finally:
        await store.close()


def _echo(reader: Any) -> Any:
    """A keyed read of an integer key (no table): its rows say which key they answer."""
    import sqlalchemy as sa

    number = sa.bindparam("number", type_=sa.Integer)
    return reader.compile_keyed(sa.select((number * 2).label("double")), ("number",))


async def test_keys_that_are_not_text_are_read_together(
    postgres_url: str, statements: list[int]
) -> None:
    from connectors_core.store._reads import Reader

    store = open_with(postgres_url, OLD)
    assert isinstance(store, SQLStore)
    reader = Reader(store.engine)
    try:
        query = _echo(reader)
        found: dict[int, Any] = {}

        async def read(number: int) -> None:
            found[number] = await reader.fetch_keyed(query, number=number)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for number in range(30):
                    group.start_soon(read, number)
        assert found == {number: [{"double": 2 * number}] for number in range(30)}
        assert len(statements) < 30  # batched, and no batch failed over to single reads
        assert max(statements) > 1
    finally:
        reader.close()
        await store.close()


async def test_a_worker_cancelled_mid_read_leaves_no_caller_waiting(postgres_url: str) -> None:
    import asyncio

    from connectors_core.store._reads import Reader

    store = open_with(postgres_url, OLD)
    assert isinstance(store, SQLStore)
    reader = Reader(store.engine, pool_size=1)
    try:
        query = _echo(reader)
        taken = asyncio.ensure_future(reader.fetch_keyed(query, number=1))
        await asyncio.sleep(0)  # the read queued, its worker started
        await asyncio.sleep(0)  # the worker took it and began reading
        queued = asyncio.ensure_future(reader.fetch_keyed(query, number=2))
        await asyncio.sleep(0)  # queued behind the only worker
        (pool,) = reader._pools.values()
        assert pool.workers == 1
        assert len(pool.waiting) == 1
        for worker in list(pool.tasks):
            worker.cancel()  # as a closing event loop does
        with anyio.fail_after(30):
            results = await asyncio.gather(taken, queued, return_exceptions=True)
        for result in results:
            assert isinstance(result, RuntimeError)
            assert str(result) == "the read was interrupted; try again"
        assert pool.workers == 0
        assert pool.waiting == []
        with anyio.fail_after(30):
            assert await reader.fetch_keyed(query, number=3) == [{"double": 6}]
    finally:
        reader.close()
        await store.close()
