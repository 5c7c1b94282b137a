"""Schema migrations: new databases, older ones upgraded without losing a connection."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from connectors_core import ConfigurationError
from connectors_core.cli import cli
from connectors_core.connections import Settings
from connectors_core.store import PendingAuthorization, SecretBox, generate_key, open_store
from connectors_core.store._schema import _config, head_revision, upgrade
from connectors_core.store._sql import create_engine
from tests.postgres import reset

KEY = generate_key()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    reset(url)
    return url


def old_database(url: str, revision: str = "0001") -> None:
    """A database at an older revision holding one connected tenant, as that version left it."""
    engine = create_engine(url)
    with engine.begin() as db:
        command.upgrade(_config(db), revision)
        box = SecretBox([KEY])
        context = json.dumps(["connection", "t1", "evencio", "access_token"])
        db.execute(
            sa.text(
                "INSERT INTO connections (tenant, connector_id, state, access_token, scopes,"
                " account, created_at, updated_at, version)"
                " VALUES ('t1', 'evencio', 'connected', :token,"
                " 'events:read', '{\"organizationId\": \"org-1\"}', :now, :now, 1)"
            ),
            {"token": box.encrypt("the-old-token", context=context), "now": time.time()},
        )
    engine.dispose()


def settings(url: str) -> Settings:
    return Settings(database_url=url, secret_keys=(KEY,))


def revision(url: str) -> str | None:
    engine = create_engine(url)
    with engine.connect() as db:
        found = db.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return found


def test_a_new_database_is_created_at_the_newest_revision(url: str) -> None:
    anyio.run(open_store(settings(url)).close)
    assert revision(url) == head_revision() == "0007"


@pytest.mark.parametrize("start", ["0001", "0002", "0003", "0004", "0005", "0006"])
def test_an_older_database_upgrades_without_losing_a_connection(
    url: str, start: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_database(url, start)
    if url.startswith("postgresql"):
        # A shared database is not migrated behind the operator's back...
        with pytest.raises(ConfigurationError, match="run `connectors db upgrade`"):
            open_store(settings(url))
        monkeypatch.setenv("CONNECTORS_DATABASE_URL", url)
        result = CliRunner().invoke(cli, ["db", "upgrade"])
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"upgraded the schema from {start} to revision 0007\n"
    store = open_store(settings(url))  # ...an SQLite file is upgraded on start.

    async def read() -> tuple[str | None, dict[str, str]]:
        connection = await store.get("t1", "evencio")
        assert connection is not None
        assert connection.tokens is not None
        return connection.tokens.access_token, dict(connection.account)

    assert anyio.run(read) == ("the-old-token", {"organizationId": "org-1"})
    anyio.run(store.close)
    assert revision(url) == "0007"
    engine = create_engine(url)
    inspector = sa.inspect(engine)
    indexes = {index["name"] for index in inspector.get_indexes("oauth_states")}
    assert "ix_oauth_states_session_hash" in indexes
    # SQLite's refresh leases got their table; PostgreSQL locks rows instead.
    assert inspector.has_table("leases") == url.startswith("sqlite")
    engine.dispose()


def test_a_0003_database_keeps_connections_and_pending_authorizations_without_fields(
    url: str,
) -> None:
    old_database(url, "0003")
    state_hash = hashlib.sha256(b"the-state").hexdigest()
    engine = create_engine(url)
    with engine.begin() as db:  # a pending authorization, as 0003 stored it
        db.execute(
            sa.text(
                "INSERT INTO oauth_states (state_hash, tenant, connector_id, session_hash,"
                " code_verifier, redirect_uri, expires_at)"
                " VALUES (:hash, 't1', 'evencio', :session, :verifier, 'http://x/cb', :expires)"
            ),
            {
                "hash": state_hash,
                "session": "s" * 64,
                "verifier": SecretBox([KEY]).encrypt("the-verifier", context=f"state:{state_hash}"),
                "expires": time.time() + 600,
            },
        )
    assert upgrade(engine) == ("0003", "0007")
    engine.dispose()
    store = open_store(settings(url))

    async def read() -> None:
        connection = await store.get("t1", "evencio")
        assert connection is not None
        assert connection.tokens is not None
        assert connection.tokens.access_token == "the-old-token"
        assert connection.account == {"organizationId": "org-1"}
        assert (connection.config, connection.secrets) == ({}, {})
        assert (connection.username, connection.password) == (None, None)
        # Health not known yet: never renewed, no error, asked-for scopes unknown.
        assert (connection.last_refreshed_at, connection.last_error) == (None, None)
        assert (connection.state_reason, connection.requested_scopes) == (None, ())
        summary = await store.summary("t1", "evencio")
        assert summary is not None
        assert summary.config == {}
        pending = await store.take_authorization("the-state", now=time.time())
        assert pending is not None
        assert (pending.code_verifier, pending.redirect_uri) == ("the-verifier", "http://x/cb")
        assert (pending.config, pending.secrets) == ({}, {})
        await store.close()

    anyio.run(read)
    assert revision(url) == "0007"


def test_the_upgraded_sqlite_file_leases_and_caps_pending_authorizations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    old_database(url, "0002")
    store = open_store(settings(url))

    async def use() -> int | None:
        now = time.time()
        for number in range(3):
            await store.put_authorization(
                PendingAuthorization(
                    f"state-{number}", "t1", "evencio", "s" * 64, "v", "http://x/cb", now + number
                ),
                now=now,
                max_per_session=2,
            )
        assert await store.peek_authorization("state-0", now=now) is None
        only = await store.get("t1", "evencio")
        assert only is not None
        async with store.lease("t1", "evencio", only.connection_id) as lease:
            assert lease.connection is not None
            saved = await lease.save(lease.connection)
        await store.close()
        return saved.version

    assert anyio.run(use) == 2


def test_upgrade_is_idempotent(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTORS_DATABASE_URL", url)
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.stdout == "the schema is already at revision 0007\n"


def test_a_newer_database_is_refused(url: str) -> None:
    anyio.run(open_store(settings(url)).close)
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigurationError, match="newer than this version"):
        open_store(settings(url))


def test_a_database_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    from connectors_core.store._sql import metadata

    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    anyio.run(open_store(settings(url)).close)
    assert revision(url) == "0007"
