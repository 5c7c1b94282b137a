"""A PostgreSQL database of its own for this test run (fixtures)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

SERVER = os.environ.get("CONNECTORS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> object:
    import psycopg

    return psycopg.connect(
        SERVER.replace("postgresql://", "postgresql://", 1), autocommit=True, connect_timeout=3
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped after the run.

    Skips (with the reason) when no server answers, except under CI, where
    these tests must run.
    """
    try:
        admin = _admin()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means no server
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and did not answer at {SERVER}: {exc}")
        pytest.skip(f"no PostgreSQL at {SERVER} ({type(exc).__name__})")
    name = f"connectors_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:  # type: ignore[attr-defined]
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        try:
            yield SERVER.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]


def reset(url: str) -> None:
    """Drop the store's tables, so a test starts from an empty database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        from connectors_core.store._tables import metadata

        tables = ", ".join([*metadata.tables, "alembic_version"])
        db.execute(f"DROP TABLE IF EXISTS {tables}")
