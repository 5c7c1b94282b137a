"""Persistence of connections and pending authorizations (the ``server`` extra).

:func:`open_store` picks the backend from ``CONNECTORS_DATABASE_URL``: an
SQLite file by default, ``memory://`` for tests and demos.
"""

from __future__ import annotations

import logging
import os

from .._exceptions import ConfigurationError
from .._settings import Settings
from ._base import Store
from ._crypto import SecretBox, generate_key
from ._memory import MemoryStore
from ._records import (
    ConnectionState,
    ConnectionSummary,
    PendingAuthorization,
    StoredConnection,
    TokenSet,
)

__all__ = [
    "ConnectionState",
    "ConnectionSummary",
    "MemoryStore",
    "PendingAuthorization",
    "SecretBox",
    "Store",
    "StoredConnection",
    "TokenSet",
    "generate_key",
    "open_store",
    "secret_box",
]

log = logging.getLogger("connectors_core.store")


def secret_box(settings: Settings) -> SecretBox:
    """The encryption keys from settings; in dev mode, a generated local key.

    :raises ConfigurationError: when no key is configured outside dev mode.
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
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as f:
            f.write(generate_key() + "\n")
    log.warning(
        "development mode: secrets are encrypted with the local key file %s; "
        "set CONNECTORS_SECRET_KEYS in production",
        key_file,
    )
    with open(key_file, encoding="utf-8") as f:
        return SecretBox([f.read().strip()])


def _sqlite_path(url: str) -> str | None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return url.removeprefix("sqlite:///")
    return None


def open_store(settings: Settings) -> Store:
    """The store ``settings.database_url`` names."""
    url = settings.database_url
    if url in ("memory://", "memory:"):
        return MemoryStore()
    from ._sql import SQLStore, create_engine

    box = secret_box(settings)
    engine = create_engine(url)
    try:
        return SQLStore(engine, box)
    except BaseException:
        engine.dispose()
        raise
