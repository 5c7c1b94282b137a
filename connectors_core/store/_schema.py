"""The store's schema version: Alembic migrations shipped in the package.

A new database is created at the newest revision. An older one is upgraded
automatically where that is safe (an SQLite file has one writer: this
process), and otherwise the server refuses to start with the command to run
(``connectors db upgrade``): several replicas must not race to migrate a
shared PostgreSQL database while starting up.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from .._exceptions import ConfigurationError
from ._engine import write

__all__ = ["current_revision", "head_revision", "prepare", "upgrade"]

# Any constant works; it names the lock replicas take while migrating.
_ADVISORY_LOCK = 0x636F6E6E  # "conn"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "connectors_core.store:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this version of connectors-core knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision a database is at (None: no schema yet)."""
    return MigrationContext.configure(connection).get_current_revision()


def _locked(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")


def _adopt_unversioned(connection: Connection) -> None:
    """Stamp a database created before it carried a revision."""
    inspector = sa.inspect(connection)
    if inspector.has_table("connections") and current_revision(connection) is None:
        columns = {c["name"] for c in inspector.get_columns("connections")}
        indexes = set()
        if inspector.has_table("oauth_states"):
            indexes = {i["name"] for i in inspector.get_indexes("oauth_states")}
        if "connection_id" in columns:
            revision = "0007"
        elif "last_refreshed_at" in columns:
            revision = "0006"
        elif "verified_at" in columns:
            revision = "0005"
        elif "config" in columns:
            revision = "0004"
        elif "ix_oauth_states_session_hash" in indexes:
            revision = "0003"
        else:
            revision = "0002" if "key_hint" in columns else "0001"
        command.stamp(_config(connection), revision)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to the newest revision; return (before, after)."""

    def work(connection: Connection) -> tuple[str | None, str]:
        _locked(connection)
        _adopt_unversioned(connection)
        before = current_revision(connection)
        command.upgrade(_config(connection), "head")
        return before, head_revision()

    return write(engine, work)


def prepare(engine: Engine, *, auto_upgrade: bool) -> None:
    """Make sure the schema is current before the store is used.

    :raises ConfigurationError: when the database is older and may not be
        upgraded automatically, or newer than this version of connectors-core.
    """
    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:
            return  # the common case, answered without taking SQLite's write lock

    def work(connection: Connection) -> str | None:
        _locked(connection)
        _adopt_unversioned(connection)
        current = current_revision(connection)
        if current == head:
            return None
        known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
        if current is not None and current not in known:
            raise ConfigurationError(
                "CONNECTORS_DATABASE_URL",
                f"the database schema is at revision {current}, newer than this version of "
                f"connectors-core knows (up to {head}); upgrade connectors-core",
            )
        if current is None or auto_upgrade:
            command.upgrade(_config(connection), "head")
            return None
        return current

    current = write(engine, work)
    if current is not None:
        raise ConfigurationError(
            "CONNECTORS_DATABASE_URL",
            f"the database schema is at revision {current} and this version needs {head}; "
            "run `connectors db upgrade` (once, with the new version installed)",
        )
