"""Keys checked at start-up: a store whose secrets the configured keys cannot open is refused."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from connectors_core import ConfigurationError
from connectors_core._settings import Settings
from connectors_core.store import (
    ConnectionState,
    PendingAuthorization,
    SecretBox,
    StoredConnection,
    TokenSet,
    generate_key,
    open_store,
)
from connectors_core.store._sql import SQLStore, create_engine
from tests.postgres import reset

OLD, NEW = generate_key(), generate_key()
OLD_ID, NEW_ID = SecretBox([OLD]).current_key_id, SecretBox([NEW]).current_key_id


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    reset(url)
    return url


def fill(url: str, keys: list[str], tenants: range) -> None:
    """Connections with two secrets each, and one pending authorization, under ``keys``."""
    store = SQLStore(create_engine(url), SecretBox(keys))

    async def write() -> None:
        now = time.time()
        for number in tenants:
            await store.put(
                StoredConnection(
                    tenant=f"t{number}",
                    connector_id="evencio",
                    state=ConnectionState.CONNECTED,
                    tokens=TokenSet(f"access-{number}", f"refresh-{number}", now + 60),
                    created_at=now,
                    updated_at=now,
                )
            )
        await store.put_authorization(
            PendingAuthorization(
                f"state-{tenants.start}", "t0", "evencio", "s" * 64, "v", "http://x/cb", now + 60
            ),
            now=now,
        )
        await store.close()

    anyio.run(write)


def test_a_wrong_key_is_refused_at_start_up_naming_the_key_ids(url: str) -> None:
    fill(url, [OLD], range(2))
    with pytest.raises(ConfigurationError) as refused:
        open_store(Settings(database_url=url, secret_keys=(NEW,)))
    message = str(refused.value)
    assert refused.value.setting == "CONNECTORS_SECRET_KEYS"
    assert f"the database holds 5 secrets encrypted with key {OLD_ID}, which is not" in message
    assert f"Key ids in use: {OLD_ID} (5 secrets); configured: {NEW_ID}." in message
    assert "after the new one, then run `connectors rotate-keys`" in message
    assert OLD not in message
    assert NEW not in message


def test_a_removed_key_still_in_use_is_refused_with_its_count(url: str) -> None:
    fill(url, [OLD], range(3))  # 3 connections x 2 tokens + 1 verifier on the old key
    fill(url, [NEW, OLD], range(3, 5))  # newer writes on the new key
    settings = Settings(database_url=url, secret_keys=(NEW,))  # the old key removed too early
    with pytest.raises(ConfigurationError, match=f"holds 7 secrets encrypted with key {OLD_ID}"):
        open_store(settings)
    both = Settings(database_url=url, secret_keys=(NEW, OLD))
    store = open_store(both)  # the old key back, after the new one: it starts
    assert isinstance(store, SQLStore)
    assert store.check_keys() == {OLD_ID: 7, NEW_ID: 5}
    anyio.run(store.close)


def test_check_keys_is_a_public_method_of_the_sql_store(url: str) -> None:
    fill(url, [OLD], range(1))
    store = SQLStore(create_engine(url), SecretBox([NEW]))  # constructed directly: no check
    with pytest.raises(ConfigurationError, match=f"Key ids in use: {OLD_ID} \\(3 secrets\\)"):
        store.check_keys()
    anyio.run(store.close)


def test_field_secrets_and_basic_credentials_count_at_start_up(url: str) -> None:
    store = SQLStore(create_engine(url), SecretBox([OLD]))
    now = time.time()

    async def write() -> None:
        await store.put(
            StoredConnection(
                tenant="t0",
                connector_id="basic-api",
                state=ConnectionState.CONNECTED,
                config={"dataCentre": "us6"},  # not a secret: not counted
                secrets={"signingKey": "signing-1"},
                username="user-1",
                password="password-1",
            )
        )
        await store.put_authorization(
            PendingAuthorization(
                "a-state",
                "t0",
                "shop",
                "s" * 64,
                "v",
                "http://x/cb",
                now + 60,
                secrets={"appSecret": "app-secret-1"},
            ),
            now=now,
        )
        await store.close()

    anyio.run(write)
    # secrets, username, password; the verifier and the pending secrets.
    with pytest.raises(ConfigurationError, match=f"holds 5 secrets encrypted with key {OLD_ID}"):
        open_store(Settings(database_url=url, secret_keys=(NEW,)))
    opened = open_store(Settings(database_url=url, secret_keys=(OLD,)))
    assert isinstance(opened, SQLStore)
    assert opened.check_keys() == {OLD_ID: 5}
    anyio.run(opened.close)


def test_an_empty_database_starts_with_any_key(url: str) -> None:
    store = open_store(Settings(database_url=url, secret_keys=(NEW,)))
    assert isinstance(store, SQLStore)
    assert store.check_keys() == {}
    anyio.run(store.close)


def test_dev_mode_refuses_a_new_key_file_beside_a_database_holding_secrets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite3"
    settings = Settings(database_url=f"sqlite:///{path}", dev_mode=True)
    anyio.run(open_store(settings).close)  # first start: writes the key file
    key_file = tmp_path / "c.sqlite3.key"
    key_id = SecretBox([key_file.read_text().strip()]).current_key_id
    store = open_store(settings)
    anyio.run(
        store.put,
        StoredConnection(
            tenant="local",
            connector_id="acme-key",
            state=ConnectionState.CONNECTED,
            api_key="key-0123456789abcdef",
        ),
    )
    anyio.run(store.close)
    key_file.unlink()  # lost: a clean checkout, a deleted file

    with pytest.raises(ConfigurationError) as refused:
        open_store(settings)
    message = str(refused.value)
    assert f"holds 1 secret encrypted with key {key_id}, which is not configured" in message
    assert "configured: none" in message
    assert f"The local key file {key_file} is missing: restore it" in message
    assert not key_file.exists()  # nothing written: the old key can still be put back


def test_dev_mode_refuses_a_key_file_that_does_not_open_the_database(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    fill(f"sqlite:///{path}", [OLD], range(1))
    (tmp_path / "c.sqlite3.key").write_text(NEW + "\n")
    with pytest.raises(ConfigurationError, match="In development mode the key is read from"):
        open_store(Settings(database_url=f"sqlite:///{path}", dev_mode=True))


def test_dev_mode_on_a_fresh_database_writes_the_key_file_and_works(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    settings = Settings(database_url=f"sqlite:///{path}", dev_mode=True)
    store = open_store(settings)
    key_file = tmp_path / "c.sqlite3.key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    async def use() -> str | None:
        await store.put(
            StoredConnection(
                tenant="local",
                connector_id="acme-key",
                state=ConnectionState.CONNECTED,
                api_key="key-0123456789abcdef",
            )
        )
        await store.close()
        again = open_store(settings)  # the same key next time
        stored = await again.get("local", "acme-key")
        await again.close()
        return stored.api_key if stored else None

    assert anyio.run(use) == "key-0123456789abcdef"
