"""The start-up key check: every key that stored secrets use must be configured.

A wrong key in ``CONNECTORS_SECRET_KEYS``, or an old key removed while rows
still use it, would otherwise let the server start and fail on the first read
of such a row. Each ciphertext names its key (``v1.<key id>.<payload>``), so
counting ciphertexts per key id in every encrypted column tells, without
decrypting anything, whether the configured keys can open them all. Key ids
are non-secret hashes; a key is never printed.
"""

from __future__ import annotations

import re
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .._exceptions import ConfigurationError
from ._crypto import SecretBox
from ._tables import ENCRYPTED_COLUMNS

__all__ = ["ADVICE", "check_keys", "key_usage", "missing_keys_error"]

_PREFIX = re.compile(r"v1\.([0-9a-f]{12})\.")


def key_usage(db: Connection) -> dict[str, int]:
    """How many stored ciphertexts each key id encrypted, across every encrypted column.

    Tables or columns the database does not have (yet) count as empty; a value
    that is not a ciphertext is not counted (decrypting it fails loudly).
    """
    inspector = sa.inspect(db)
    usage: Counter[str] = Counter()
    for column in ENCRYPTED_COLUMNS:
        table = column.table
        if not inspector.has_table(table.name):
            continue
        if column.name not in {c["name"] for c in inspector.get_columns(table.name)}:
            continue
        prefix = sa.func.substr(column, 1, 16).label("prefix")
        rows = db.execute(
            sa.select(prefix, sa.func.count()).where(column.is_not(None)).group_by(prefix)
        )
        for value, count in rows:
            match = _PREFIX.fullmatch(value or "")
            if match is not None:
                usage[match.group(1)] += int(count)
    return dict(usage)


def _plural(count: int) -> str:
    return f"{count} secret" if count == 1 else f"{count} secrets"


ADVICE = (
    "Put the old key back in CONNECTORS_SECRET_KEYS, after the new one, "
    "then run `connectors rotate-keys`"
)


def missing_keys_error(
    usage: dict[str, int], configured: tuple[str, ...], *, hint: str = "", advice: str = ADVICE
) -> ConfigurationError | None:
    """The error for key ids in ``usage`` that are not ``configured``; None if all are.

    :param hint: a sentence (ending in a space) put before ``advice``.
    """
    missing = {key_id: count for key_id, count in usage.items() if key_id not in configured}
    if not missing:
        return None
    in_use = ", ".join(f"{key_id} ({_plural(count)})" for key_id, count in sorted(usage.items()))
    unknown = ", ".join(sorted(missing))
    which = "key {}, which is" if len(missing) == 1 else "keys {}, which are"
    return ConfigurationError(
        "CONNECTORS_SECRET_KEYS",
        f"the database holds {_plural(sum(missing.values()))} encrypted with "
        f"{which.format(unknown)} not configured. Key ids in use: {in_use}; "
        f"configured: {', '.join(configured) or 'none'}. {hint}{advice}",
    )


def check_keys(engine: Engine, box: SecretBox, *, hint: str = "") -> dict[str, int]:
    """Refuse keys that cannot open every stored secret; return the usage per key id.

    :raises ConfigurationError: naming the key ids in use (with their counts)
        and the configured ones, when a key id in use is not configured.
    """
    with engine.connect() as db:
        usage = key_usage(db)
    error = missing_keys_error(usage, box.key_ids, hint=hint)
    if error is not None:
        raise error
    return usage
