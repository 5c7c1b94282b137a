"""The store contract, run against every backend."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import sqlalchemy as sa

from connectors_core import ConfigurationError
from connectors_core._settings import Settings
from connectors_core.store import (
    ConnectionState,
    ConnectionSummary,
    PendingAuthorization,
    Store,
    StoredConnection,
    TokenSet,
    generate_key,
    open_store,
)
from connectors_core.store._sql import SQLStore
from tests.postgres import reset

pytestmark = pytest.mark.anyio

EXPIRY = time.time() + 3600

SECRETS = ("ACCESS-TOKEN-a1", "REFRESH-TOKEN-b2", "API-KEY-c3", "VERIFIER-d4")

# Per-connection field values: what a user types when connecting.
CONFIG = {"shop": "acme-shop", "port": 8443, "sandbox": True}
FIELD_SECRETS = {"signingKey": "SIGNING-KEY-e5", "webhookSecret": "WEBHOOK-SECRET-f6"}
USERNAME, PASSWORD = "BASIC-USER-g7", "BASIC-PASSWORD-h8"
PENDING_SECRETS = {"clientSecret": "STATE-SECRET-i9"}


def _url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'c.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    reset(url)
    return url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs against every backend."""
    return _url(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    """An SQL store, for tests that read its tables."""
    url = _url(request.param, request, tmp_path)
    opened = open_store(Settings(database_url=url, secret_keys=(generate_key(),)))
    assert isinstance(opened, SQLStore)
    yield opened
    anyio.run(opened.close)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(Settings(database_url=database_url, secret_keys=(generate_key(),)))
    yield opened
    anyio.run(opened.close)


ID = "conn-1"
"""The id of the one connection of each test tenant and connector."""


def connection(tenant: str = "t1", **changes: Any) -> StoredConnection:
    base = StoredConnection(
        tenant=tenant,
        connector_id="evencio",
        connection_id=ID,
        state=ConnectionState.CONNECTED,
        tokens=TokenSet(SECRETS[0], SECRETS[1], expires_at=EXPIRY, scopes=("a",)),
        account={"organizationId": "org-1", "userId": "user-1"},
        created_at=1.0,
        updated_at=1.0,
    )
    return attrs.evolve(base, **changes)


def pending(state: str = "state-1", expires_at: float | None = None) -> PendingAuthorization:
    return PendingAuthorization(
        state=state,
        tenant="t1",
        connector_id="evencio",
        session_hash="s" * 64,
        code_verifier=SECRETS[3],
        redirect_uri="http://127.0.0.1/cb",
        expires_at=time.time() + 60 if expires_at is None else expires_at,
    )


def with_fields(tenant: str = "t1", **changes: Any) -> StoredConnection:
    """A connection with field values and HTTP Basic credentials."""
    fields: dict[str, Any] = {
        "config": CONFIG,
        "secrets": FIELD_SECRETS,
        "username": USERNAME,
        "password": PASSWORD,
    }
    return connection(tenant, **{**fields, **changes})


async def test_put_get_round_trips_and_versions(store: Store) -> None:
    first = await store.put(connection())
    assert first.version == 1
    stored = await store.get("t1", "evencio")
    assert stored is not None
    assert stored.tokens == connection().tokens
    assert stored.account == {"organizationId": "org-1", "userId": "user-1"}
    second = await store.put(connection(api_key=None))
    assert second.version == 2


async def test_field_values_and_basic_credentials_round_trip(store: Store) -> None:
    await store.put(with_fields())
    stored = await store.get("t1", "evencio")
    assert stored is not None
    assert stored.config == CONFIG
    assert stored.secrets == FIELD_SECRETS
    assert (stored.username, stored.password) == (USERNAME, PASSWORD)
    assert stored.tokens == connection().tokens  # alongside, not instead of, the tokens
    assert type(stored.config["port"]) is int  # JSON scalars keep their types
    assert stored.config["sandbox"] is True

    # A later save replaces them all; empty values come back empty, not as leftovers.
    await store.put(with_fields(config={"shop": "other"}, secrets={}, username=None, password=None))
    again = await store.get("t1", "evencio")
    assert again is not None
    assert (again.config, again.secrets, again.username, again.password) == (
        {"shop": "other"},
        {},
        None,
        None,
    )


async def test_a_connection_without_fields_has_empty_ones(store: Store) -> None:
    await store.put(connection(api_key=SECRETS[2]))
    stored = await store.get("t1", "evencio")
    assert stored is not None
    assert (stored.config, stored.secrets, stored.username, stored.password) == ({}, {}, None, None)
    summary = await store.summary("t1", "evencio")
    assert summary is not None
    assert summary.config == {}


async def test_summaries_carry_the_config_and_no_field_secret(store: Store) -> None:
    await store.put(with_fields("tenant-a"))
    await store.put(with_fields("tenant-a", connector_id="basic-api", tokens=None, config={}))
    summary = await store.summary("tenant-a", "evencio")
    assert summary is not None
    assert summary.config == CONFIG
    summaries = {s.connector_id: s for s in await store.summaries("tenant-a")}
    assert summaries["evencio"] == summary
    assert summaries["basic-api"].config == {}
    stored = await store.get("tenant-a", "evencio")
    assert stored is not None
    assert ConnectionSummary.of(stored) == summary  # both backends agree with the record
    for value in (*FIELD_SECRETS.values(), USERNAME, PASSWORD):
        assert value not in repr(summary)


async def test_an_authorization_carries_its_field_values_to_the_callback(store: Store) -> None:
    now = time.time()
    await store.put_authorization(
        attrs.evolve(pending(), config=CONFIG, secrets=PENDING_SECRETS), now=now
    )
    await store.put_authorization(pending("plain"), now=now)
    peeked = await store.peek_authorization("state-1", now=now)
    assert peeked is not None
    assert (peeked.config, peeked.secrets) == (CONFIG, PENDING_SECRETS)
    taken = await store.take_authorization("state-1", now=now)
    assert taken is not None
    assert taken == peeked
    assert taken.code_verifier == SECRETS[3]
    plain = await store.take_authorization("plain", now=now)
    assert plain is not None
    assert (plain.config, plain.secrets) == ({}, {})


async def test_the_tables_hold_no_plaintext_field_secret(sql_store: SQLStore) -> None:
    await sql_store.put(with_fields())
    await sql_store.put_authorization(
        attrs.evolve(pending(), config=CONFIG, secrets=PENDING_SECRETS), now=time.time()
    )
    with sql_store.engine.connect() as db:
        rows = [
            *db.execute(sa.text("SELECT * FROM connections")).mappings(),
            *db.execute(sa.text("SELECT * FROM oauth_states")).mappings(),
        ]
    dump = repr(rows)
    for value in (*FIELD_SECRETS.values(), USERNAME, PASSWORD, *PENDING_SECRETS.values()):
        assert value not in dump
    for row in rows:
        for column in ("secrets", "username", "password"):
            if column in row:
                assert row[column].startswith("v1.")
        assert json.loads(row["config"]) == CONFIG  # not a secret: plain, and really there


async def test_a_field_secret_moved_to_another_column_fails_to_decrypt(
    sql_store: SQLStore,
) -> None:
    from connectors_core import SecretError

    await sql_store.put(with_fields())
    with sql_store.engine.begin() as db:
        db.execute(sa.text("UPDATE connections SET password = username"))
    with pytest.raises(SecretError, match="failed authentication"):
        await sql_store.get("t1", "evencio")


async def test_tenants_are_isolated(store: Store) -> None:
    await store.put(connection("tenant-a"))
    assert await store.get("tenant-b", "evencio") is None
    assert await store.delete("tenant-b", "evencio", ID) is False
    assert await store.get("tenant-a", "evencio") is not None


async def test_summaries_are_one_tenant_s_connections_without_secrets(store: Store) -> None:
    await store.put(connection("tenant-a"))
    await store.put(
        connection("tenant-a", connector_id="acme-key", tokens=None, api_key="key-0123456789abcdef")
    )
    await store.put(connection("tenant-b"))
    summaries = {s.connector_id: s for s in await store.summaries("tenant-a")}
    assert sorted(summaries) == ["acme-key", "evencio"]
    assert summaries["evencio"] == await store.summary("tenant-a", "evencio")
    assert summaries["acme-key"].key_hint == "••••cdef"
    assert await store.summaries("tenant-c") == []


async def test_health_round_trips_and_shows_in_the_summary(store: Store) -> None:
    health: dict[str, Any] = {
        "state": ConnectionState.NEEDS_REAUTH,
        "last_refreshed_at": 12.5,
        "last_error": "provider_unavailable",
        "state_reason": "invalid_grant",
        "requested_scopes": ("a", "b"),
    }
    await store.put(connection(**health))
    stored = await store.get("t1", "evencio")
    assert stored is not None
    assert {name: getattr(stored, name) for name in health} == health
    summary = await store.summary("t1", "evencio")
    assert summary is not None
    assert summary == ConnectionSummary.of(stored)
    assert (summary.tenant, summary.connector_id, summary.expires_at) == ("t1", "evencio", EXPIRY)
    assert summary.refreshable is True
    await store.put(connection(tokens=TokenSet("only-an-access-token")))
    plain = await store.summary("t1", "evencio")
    assert plain is not None
    assert (plain.refreshable, plain.expires_at, plain.last_error) == (False, None, None)


async def test_list_filters_by_tenant_and_connector_in_a_stable_order(store: Store) -> None:
    await store.put(connection("tenant-b"))
    await store.put(connection("tenant-a", connector_id="zeta", tokens=None, api_key=SECRETS[2]))
    await store.put(connection("tenant-a"))
    everything = await store.list()
    assert [(s.tenant, s.connector_id) for s in everything] == [
        ("tenant-a", "evencio"),
        ("tenant-a", "zeta"),
        ("tenant-b", "evencio"),
    ]
    assert [s.tenant for s in await store.list(connector_id="evencio")] == ["tenant-a", "tenant-b"]
    assert [s.connector_id for s in await store.list(tenant="tenant-a")] == ["evencio", "zeta"]
    assert await store.list(tenant="tenant-a", connector_id="nope") == []
    for summary in everything:
        for secret in SECRETS:
            assert secret not in repr(summary)


async def test_delete_is_idempotent(store: Store) -> None:
    await store.put(connection())
    assert await store.delete("t1", "evencio", ID) is True
    assert await store.delete("t1", "evencio", ID) is False
    assert await store.get("t1", "evencio") is None


async def test_an_authorization_is_taken_exactly_once(store: Store) -> None:
    await store.put_authorization(pending(), now=time.time())
    taken = await store.take_authorization("state-1", now=time.time())
    assert taken is not None
    assert taken.code_verifier == SECRETS[3]
    assert await store.take_authorization("state-1", now=time.time()) is None
    assert await store.take_authorization("never-issued", now=time.time()) is None


async def test_an_expired_authorization_is_not_returned_and_is_cleaned_up(store: Store) -> None:
    now = time.time()
    await store.put_authorization(pending("old", expires_at=now - 1), now=now - 10)
    assert await store.take_authorization("old", now=now) is None
    await store.put_authorization(pending("stale", expires_at=now + 5), now=now)
    await store.put_authorization(pending("fresh"), now=now + 10)  # housekeeping on write
    assert await store.take_authorization("stale", now=now) is None


async def test_peeking_at_an_authorization_leaves_it_for_the_taker(store: Store) -> None:
    now = time.time()
    await store.put_authorization(pending(), now=now)
    for _ in range(2):  # e.g. a callback from another browser, checked and refused
        peeked = await store.peek_authorization("state-1", now=now)
        assert peeked is not None
        assert (peeked.tenant, peeked.session_hash, peeked.code_verifier) == (
            "t1",
            "s" * 64,
            SECRETS[3],
        )
    assert await store.take_authorization("state-1", now=now) == peeked
    assert await store.peek_authorization("state-1", now=now) is None
    assert await store.peek_authorization("never-issued", now=now) is None


async def test_an_expired_authorization_cannot_be_peeked_at(store: Store) -> None:
    now = time.time()
    await store.put_authorization(pending("short", expires_at=now + 5), now=now)
    assert await store.peek_authorization("short", now=now + 10) is None


async def test_a_session_keeps_only_its_newest_pending_authorizations(store: Store) -> None:
    now = time.time()
    for number in range(12):  # one browser session starting Connect twelve times
        await store.put_authorization(
            pending(f"mine-{number}", expires_at=now + 100 + number), now=now, max_per_session=10
        )
    other = attrs.evolve(pending("theirs"), session_hash="o" * 64)
    await store.put_authorization(other, now=now, max_per_session=10)
    kept = [
        number
        for number in range(12)
        if await store.peek_authorization(f"mine-{number}", now=now) is not None
    ]
    assert kept == list(range(2, 12))  # the two oldest were dropped
    assert await store.peek_authorization("theirs", now=now) is not None
    await store.put_authorization(pending("newest"), now=now, max_per_session=1)
    assert await store.peek_authorization("newest", now=now) is not None
    assert await store.peek_authorization("mine-11", now=now) is None


async def test_concurrent_lease_holders_never_overlap(store: Store) -> None:
    """Each holder adds one to a count it read under the lease: no update may be lost."""
    await store.put(connection(account={"n": "0"}))

    async def holder() -> None:
        for _ in range(3):
            async with store.lease("t1", "evencio", ID) as lease:
                assert lease.connection is not None  # what the previous holder saved
                count = int(lease.connection.account["n"])
                await anyio.sleep(0.01)  # the provider, answering
                await lease.save(attrs.evolve(lease.connection, account={"n": str(count + 1)}))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(holder)
    stored = await store.get("t1", "evencio")
    assert stored is not None
    assert stored.account == {"n": "18"}
    assert stored.version == 19


async def test_a_lease_does_not_bring_back_a_connection_deleted_meanwhile(store: Store) -> None:
    from connectors_core import NotConnectedError

    await store.put(connection())
    with anyio.fail_after(60):
        if isinstance(store, SQLStore) and store.engine.dialect.name == "postgresql":
            # The delete waits for the lease's row lock, then deletes what was saved.
            async with (
                anyio.create_task_group() as group,
                store.lease("t1", "evencio", ID) as lease,
            ):
                assert lease.connection is not None
                group.start_soon(store.delete, "t1", "evencio", ID)
                await lease.save(lease.connection)
        else:
            async with store.lease("t1", "evencio", ID) as lease:
                assert lease.connection is not None
                assert await store.delete("t1", "evencio", ID) is True  # Disconnect, mid-refresh
                with pytest.raises(NotConnectedError, match="disconnected"):
                    await lease.save(lease.connection)
    assert await store.get("t1", "evencio") is None


async def test_the_sqlite_file_holds_no_plaintext_secret(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = open_store(Settings(database_url=f"sqlite:///{path}", secret_keys=(generate_key(),)))
    await store.put(connection(api_key=SECRETS[2]))
    await store.put_authorization(pending("the-state"), now=time.time())
    await store.close()
    dump = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    dump += "\n".join(sqlite3.connect(path).iterdump()).encode()
    for secret in (*SECRETS, "the-state"):
        assert secret.encode() not in dump
    assert b"org-1" in dump  # the account is not a secret, and is really there


async def test_a_wrong_key_fails_loudly(tmp_path: Path) -> None:
    from connectors_core import SecretError
    from connectors_core.store import SecretBox
    from connectors_core.store._sql import SQLStore, create_engine

    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    await open_store(Settings(database_url=url, secret_keys=(generate_key(),))).put(connection())
    with pytest.raises(ConfigurationError, match="not configured"):  # at start-up...
        open_store(Settings(database_url=url, secret_keys=(generate_key(),)))
    other = SQLStore(create_engine(url), SecretBox([generate_key()]))  # ...or on first read
    with pytest.raises(SecretError, match="not in CONNECTORS_SECRET_KEYS"):
        await other.get("t1", "evencio")
    await other.close()


def test_no_key_outside_dev_mode_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONNECTORS_SECRET_KEYS: no encryption key"):
        open_store(Settings(database_url=f"sqlite:///{tmp_path / 'c.sqlite3'}"))


async def test_dev_mode_uses_a_private_local_key_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    settings = Settings(database_url=url, dev_mode=True)
    await open_store(settings).put(connection())
    key_file = tmp_path / "c.sqlite3.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    stored = await open_store(settings).get("t1", "evencio")  # same key next time
    assert stored is not None
    assert stored.tokens is not None


def test_secrets_never_appear_in_reprs() -> None:
    text = repr(connection(api_key=SECRETS[2])) + repr(pending())
    for secret in SECRETS:
        assert secret not in text


def test_field_secrets_never_appear_in_reprs_but_the_config_does() -> None:
    stored = with_fields()
    authorization = attrs.evolve(pending(), config=CONFIG, secrets=PENDING_SECRETS)
    text = repr(stored) + repr(authorization) + repr(ConnectionSummary.of(stored))
    for secret in (*FIELD_SECRETS.values(), USERNAME, PASSWORD, *PENDING_SECRETS.values()):
        assert secret not in text
    assert "acme-shop" in text


def test_a_store_can_be_used_from_successive_event_loops(database_url: str) -> None:
    """A job runner may call anyio.run / asyncio.run once per job with one store."""
    store = open_store(Settings(database_url=database_url, secret_keys=(generate_key(),)))
    anyio.run(store.put, connection())
    for _ in range(3):
        assert anyio.run(store.summary, "t1", "evencio") is not None
        assert anyio.run(store.get, "t1", "evencio") is not None
    anyio.run(store.close)


async def test_concurrent_first_saves_of_one_connection_both_succeed(store: Store) -> None:
    # A double-click on Save, or two replicas: each sees no row, each inserts.
    for round_ in range(10):
        tenant = f"race-{round_}"
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(store.put, connection(tenant))
        stored = await store.get(tenant, "evencio")
        assert stored is not None
        assert stored.version >= 1
