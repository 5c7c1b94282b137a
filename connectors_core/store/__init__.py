"""Persistence of connections and pending authorizations (the ``server`` extra).

:func:`open_store` picks the backend from ``CONNECTORS_DATABASE_URL``: an
SQLite file by default, ``memory://`` for tests and demos.
"""

from __future__ import annotations

import logging
import os

from .._exceptions import ConfigurationError
from .._settings import Settings
from ._base import EventRecord, Lease, Outbox, Store, Stream
from ._crypto import SecretBox, generate_key
from ._memory import MemoryStore
from ._records import (
    ConnectionState,
    ConnectionSummary,
    PendingAuthorization,
    StoredConnection,
    TokenSet,
    new_connection_id,
)

__all__ = [
    "ConnectionState",
    "ConnectionSummary",
    "EventRecord",
    "Lease",
    "MemoryStore",
    "Outbox",
    "PendingAuthorization",
    "SecretBox",
    "Store",
    "StoredConnection",
    "Stream",
    "TokenSet",
    "generate_key",
    "new_connection_id",
    "open_store",
    "secret_box",
]

log = logging.getLogger("connectors_core.store")


def secret_box(settings: Settings) -> SecretBox:
    """The encryption keys from settings; in dev mode, a generated local key.

    In dev mode with an SQLite file, the key lives beside it in ``<file>.key``,
    created on first use, but never beside a database that already holds
    secrets: they were encrypted with another key, and a new one would not
    open them.

    :raises ConfigurationError: when no key is configured outside dev mode, or
        in dev mode when the key file is missing and the database holds secrets.
    """
    if settings.secret_keys:
        return SecretBox(settings.secret_keys)
    if not settings.dev_mode:
        raise ConfigurationError(
            "CONNECTORS_SECRET_KEYS",
            "no encryption key is configured. Set CONNECTORS_SECRET_KEYS to one or more keys "
            "(newest first; generate one with `connectors keygen`), or set "
            "CONNECTORS_DEV_MODE=1 for local development",
        )
    path = _sqlite_path(settings.database_url)
    if path is None:
        log.warning("development mode: secrets are encrypted with a key that lasts this process")
        return SecretBox([generate_key()])
    key_file = path + ".key"
    if not os.path.exists(key_file):
        _refuse_a_new_key_beside_secrets(path, key_file)
        try:
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process starting at the same moment wrote it: use that one
        else:
            with os.fdopen(descriptor, "w") as f:
                f.write(generate_key() + "\n")
    log.warning(
        "development mode: secrets are encrypted with the local key file %s; "
        "set CONNECTORS_SECRET_KEYS in production",
        key_file,
    )
    with open(key_file, encoding="utf-8") as f:
        return SecretBox([f.read().strip()])


def _key_file_hint(settings: Settings) -> str:
    path = _sqlite_path(settings.database_url)
    if settings.secret_keys or not settings.dev_mode or path is None:
        return ""
    return f"(In development mode the key is read from the file {path}.key.) "


def _refuse_a_new_key_beside_secrets(path: str, key_file: str) -> None:
    """Raise, writing nothing, if the SQLite file at ``path`` already holds secrets."""
    if not os.path.exists(path):
        return
    import sqlite3
    from pathlib import Path

    import sqlalchemy as sa

    from ._keys import key_usage, missing_keys_error

    uri = Path(path).resolve().as_uri() + "?mode=ro"
    engine = sa.create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
        poolclass=sa.pool.NullPool,
    )
    try:
        with engine.connect() as db:
            usage = key_usage(db)
    finally:
        engine.dispose()
    error = missing_keys_error(
        usage,
        (),
        advice=f"The local key file {key_file} is missing: restore it, or set "
        "CONNECTORS_SECRET_KEYS to the key those secrets were encrypted with",
    )
    if error is not None:
        raise error


def _sqlite_path(url: str) -> str | None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return url.removeprefix("sqlite:///")
    return None


def open_store(settings: Settings) -> Store:
    """The store ``settings.database_url`` names, ready to use.

    An SQL store is checked before it is returned: its schema is current (or
    upgraded, on SQLite) and every key its stored secrets use is configured.

    :raises ConfigurationError: when no key is configured, when a key that
        stored secrets use is not configured (naming the key ids in use and
        the configured ones), or when the schema needs an upgrade.
    """
    url = settings.database_url
    if url in ("memory://", "memory:"):
        return MemoryStore()
    from ._keys import check_keys
    from ._sql import SQLStore, create_engine

    box = secret_box(settings)
    engine = create_engine(url)
    try:
        # Before the schema is touched: wrong keys leave the database as it was.
        check_keys(engine, box, hint=_key_file_hint(settings))
        # A lease outlives the slowest provider call it may wait for.
        return SQLStore(engine, box, lease_lifetime=max(60.0, 6 * settings.http_timeout))
    except BaseException:
        engine.dispose()
        raise
