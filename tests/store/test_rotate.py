"""connectors rotate-keys: re-encrypt everything with the newest key, resumably."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from connectors_core import SecretError
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
from connectors_core.store._sql import create_engine
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
    engine = create_engine(url)
    with engine.connect() as db:
        values = (
            db.execute(
                sa.text(
                    " UNION ALL ".join(
                        [
                            *(
                                f"SELECT {field} FROM connections WHERE {field} IS NOT NULL"
                                for field in ("access_token", "refresh_token", "api_key")
                            ),
                            "SELECT code_verifier FROM oauth_states",
                        ]
                    )
                )
            )
            .scalars()
            .all()
        )
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


def test_a_secret_no_key_can_open_stops_the_rotation_loudly(url: str) -> None:
    fill(url, tenants=1)
    engine = create_engine(url)
    with pytest.raises(SecretError, match="not in CONNECTORS_SECRET_KEYS"):
        rotate_keys(engine, SecretBox([NEW]))
    engine.dispose()
