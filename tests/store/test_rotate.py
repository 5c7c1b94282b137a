"""connectors rotate-keys: re-encrypt everything with the newest key, resumably."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from connectors_core.cli import cli
from connectors_core.connections import Settings
from connectors_core.store import (
    ConnectionState,
    PendingAuthorization,
    SecretBox,
    StoredConnection,
    TokenSet,
    generate_key,
    open_store,
)
from connectors_core.store._rotate import rotate_keys
from connectors_core.store._sql import SQLStore, create_engine
from connectors_core.store._tables import ENCRYPTED_COLUMNS
from tests.postgres import reset

OLD, NEW = generate_key(), generate_key()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    reset(url)
    return url


def fill(url: str, tenants: int = 7) -> None:
    store = open_store(Settings(database_url=url, secret_keys=(OLD,)))

    async def write() -> None:
        now = time.time()
        for number in range(tenants):
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
        await store.put(
            StoredConnection(
                tenant="t0",
                connector_id="acme-key",
                state=ConnectionState.CONNECTED,
                api_key="key-0123456789abcdef",
                created_at=now,
                updated_at=now,
            )
        )
        await store.put_authorization(
            PendingAuthorization(
                "a-state", "t0", "evencio", "s" * 64, "verifier-1", "http://x/cb", now + 600
            ),
            now=now,
        )
        await store.close()

    anyio.run(write)


def key_ids(url: str) -> set[str]:
    """The ids of the keys that encrypted the stored secrets, in every encrypted column."""
    engine = create_engine(url)
    with engine.connect() as db:
        values = [
            value
            for column in ENCRYPTED_COLUMNS
            for value in db.execute(sa.select(column).where(column.is_not(None))).scalars()
        ]
    engine.dispose()
    return {value.split(".")[1] for value in values}


def test_an_interrupted_rotation_resumes_and_then_the_old_key_can_go(url: str) -> None:
    fill(url)
    old_id, new_id = SecretBox([OLD]).current_key_id, SecretBox([NEW]).current_key_id
    engine = create_engine(url)
    box = SecretBox([NEW, OLD])

    first = rotate_keys(engine, box, batch_size=3, max_batches=1)  # "interrupted"
    assert (first.total, first.rotated, first.remaining) == (9, 3, 6)
    assert key_ids(url) == {old_id, new_id}

    seen: list[int] = []
    second = rotate_keys(engine, box, batch_size=3, on_progress=lambda p: seen.append(p.rotated))
    assert (second.total, second.remaining) == (6, 0)
    assert seen == [3, 5, 6]  # two batches of connections, then the pending state
    assert key_ids(url) == {new_id}
    engine.dispose()

    store = open_store(Settings(database_url=url, secret_keys=(NEW,)))  # old key removed

    async def read() -> None:
        connection = await store.get("t5", "evencio")
        assert connection is not None
        assert connection.tokens is not None
        assert connection.tokens.refresh_token == "refresh-5"
        pending = await store.take_authorization("a-state", now=time.time())
        assert pending is not None
        assert pending.code_verifier == "verifier-1"
        await store.close()

    anyio.run(read)


def test_field_secrets_and_basic_credentials_are_re_encrypted(url: str) -> None:
    store = open_store(Settings(database_url=url, secret_keys=(OLD,)))
    now = time.time()
    basic = StoredConnection(
        tenant="t0",
        connector_id="basic-api",
        state=ConnectionState.CONNECTED,
        config={"dataCentre": "us6"},
        secrets={"signingKey": "signing-1"},
        username="user-1",
        password="password-1",
        created_at=now,
        updated_at=now,
    )
    authorization = PendingAuthorization(
        "a-state",
        "t0",
        "shop",
        "s" * 64,
        "verifier-1",
        "http://x/cb",
        now + 600,
        config={"shop": "acme"},
        secrets={"appSecret": "app-secret-1"},
    )

    async def write() -> None:
        await store.put(basic)
        await store.put_authorization(authorization, now=now)
        await store.close()

    anyio.run(write)
    old_id, new_id = SecretBox([OLD]).current_key_id, SecretBox([NEW]).current_key_id
    assert key_ids(url) == {old_id}
    engine = create_engine(url)
    result = rotate_keys(engine, SecretBox([NEW, OLD]))
    engine.dispose()
    assert (result.total, result.rotated, result.remaining, result.failures) == (2, 2, 0, ())
    assert key_ids(url) == {new_id}  # every column, the new ones included

    store = open_store(Settings(database_url=url, secret_keys=(NEW,)))  # old key removed

    async def read() -> None:
        stored = await store.get("t0", "basic-api")
        assert stored is not None
        assert (stored.config, stored.secrets, stored.username, stored.password) == (
            {"dataCentre": "us6"},
            {"signingKey": "signing-1"},
            "user-1",
            "password-1",
        )
        pending = await store.take_authorization("a-state", now=time.time())
        assert pending is not None
        assert (pending.code_verifier, pending.config, pending.secrets) == (
            "verifier-1",
            {"shop": "acme"},
            {"appSecret": "app-secret-1"},
        )
        await store.close()

    anyio.run(read)


def test_the_command_reports_progress(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(url, tenants=2)
    monkeypatch.setenv("CONNECTORS_DATABASE_URL", url)
    monkeypatch.setenv("CONNECTORS_SECRET_KEYS", f"{NEW},{OLD}")
    result = CliRunner().invoke(cli, ["rotate-keys", "--batch-size", "2"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "re-encrypted 2 of 4 rows",
        "re-encrypted 3 of 4 rows",
        "re-encrypted 4 of 4 rows",
        f"every secret is encrypted with key {SecretBox([NEW]).current_key_id}; "
        "the other keys can now be removed from CONNECTORS_SECRET_KEYS",
    ]


GONE = generate_key()  # a key that is no longer configured anywhere


def spoil(url: str) -> None:
    """Three bad secrets among good ones: one on a removed key, one tampered, one bad state."""
    store = SQLStore(create_engine(url), SecretBox([GONE]))

    async def write() -> None:
        now = time.time()
        await store.put(
            StoredConnection(
                tenant="t1",
                connector_id="gone-key",
                state=ConnectionState.CONNECTED,
                api_key="key-on-a-removed-key-0001",
                created_at=now,
                updated_at=now,
            )
        )
        await store.put_authorization(
            PendingAuthorization(
                "gone-state", "t0", "evencio", "g" * 64, "verifier-gone", "http://x/cb", now + 600
            ),
            now=now,
        )
        await store.close()

    anyio.run(write)
    engine = create_engine(url)
    with engine.begin() as db:  # a refresh token copied into the access token's column
        db.execute(
            sa.text(
                "UPDATE connections SET access_token = refresh_token"
                " WHERE tenant = 't2' AND connector_id = 'evencio'"
            )
        )
    engine.dispose()


EXPECTED_FAILURES = [
    "tenant t1, connector gone-key, field api_key: encrypted with key "
    f"{SecretBox([GONE]).current_key_id}, which is not in CONNECTORS_SECRET_KEYS",
    "tenant t2, connector evencio, field access_token: failed authentication "
    "(tampered with, or copied from another row)",
    f"pending authorization {hashlib.sha256(b'gone-state').hexdigest()[:12]}…, "
    f"field code_verifier: encrypted with key {SecretBox([GONE]).current_key_id}, "
    "which is not in CONNECTORS_SECRET_KEYS",
]


def test_bad_secrets_are_reported_and_every_other_one_is_rotated(url: str) -> None:
    fill(url, tenants=4)
    spoil(url)
    engine = create_engine(url)
    box = SecretBox([NEW, OLD])
    seen: list[int] = []
    result = rotate_keys(engine, box, batch_size=2, on_progress=lambda p: seen.append(p.rotated))
    assert [str(failure) for failure in result.failures] == EXPECTED_FAILURES
    assert (result.total, result.rotated, result.remaining) == (8, 6, 3)
    assert seen[-1] == 6
    assert result.failures[1].tenant == "t2"
    assert result.failures[1].field == "access_token"

    # Run again: the same three reported, nothing else left, and it ends.
    again = rotate_keys(engine, box, batch_size=1)
    assert [str(failure) for failure in again.failures] == EXPECTED_FAILURES
    assert (again.total, again.rotated, again.remaining) == (3, 0, 3)
    engine.dispose()

    # The good secrets, including t2's refresh token, open with the new key alone.
    store = SQLStore(create_engine(url), SecretBox([NEW]))

    async def read() -> None:
        for tenant in ("t0", "t1", "t3"):
            connection = await store.get(tenant, "evencio")
            assert connection is not None
            assert connection.tokens is not None
            assert connection.tokens.access_token == f"access-{tenant[1]}"
        pending = await store.take_authorization("a-state", now=time.time())
        assert pending is not None
        assert pending.code_verifier == "verifier-1"
        await store.close()

    anyio.run(read)
    assert key_ids(url) == {
        SecretBox([NEW]).current_key_id,
        SecretBox([OLD]).current_key_id,  # t2's tampered access token, left as it was
        SecretBox([GONE]).current_key_id,
    }


def test_the_command_lists_bad_secrets_and_fails_after_rotating_the_rest(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(url, tenants=4)
    spoil(url)
    monkeypatch.setenv("CONNECTORS_DATABASE_URL", url)
    monkeypatch.setenv("CONNECTORS_SECRET_KEYS", f"{NEW},{OLD}")
    result = CliRunner().invoke(cli, ["rotate-keys", "--batch-size", "50"])
    assert result.exit_code == 1
    assert result.stdout == "re-encrypted 5 of 8 rows\nre-encrypted 6 of 8 rows\n"
    assert result.stderr.splitlines() == [
        "could not re-encrypt 3 secrets:",
        *(f"  {line}" for line in EXPECTED_FAILURES),
        "error: 3 stored secrets could not be re-encrypted (listed above); every other secret "
        "was. Put the key they use back in CONNECTORS_SECRET_KEYS and run `connectors "
        "rotate-keys` again, or disconnect and reconnect those connections",
    ]
    assert "Traceback" not in result.output
    for secret in ("key-on-a-removed-key-0001", "verifier-gone", "access-2", "refresh-2", GONE):
        assert secret not in result.output
