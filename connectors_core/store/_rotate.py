"""Key rotation: re-encrypt every stored secret with the newest key, in batches.

Each batch is its own transaction, and only rows still encrypted with an older
key are selected, so an interrupted rotation resumes where it stopped when run
again. A connection row is rewritten only if its version did not change in the
meantime (a refresh running concurrently wins; the row is picked up again).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ._crypto import SecretBox
from ._sql import connections, oauth_states

__all__ = ["RotationProgress", "rotate_keys"]

_FIELDS = ("access_token", "refresh_token", "api_key")


@attrs.frozen
class RotationProgress:
    """How far a rotation got."""

    total: int
    """Secrets-holding rows that needed rotating when it started."""
    rotated: int
    """Rows re-encrypted so far."""
    remaining: int
    """Rows still encrypted with an older key."""


def _stale(column: Any, prefix: str) -> Any:
    return sa.and_(column.is_not(None), sa.not_(column.startswith(prefix)))


def _count(engine: Engine, prefix: str) -> int:
    with engine.connect() as db:
        stale_connections = sa.or_(*(_stale(connections.c[f], prefix) for f in _FIELDS))
        first = db.execute(sa.select(sa.func.count()).where(stale_connections)).scalar_one()
        second = db.execute(
            sa.select(sa.func.count()).where(_stale(oauth_states.c.code_verifier, prefix))
        ).scalar_one()
    return int(first) + int(second)


def _context(tenant: str, connector_id: str, field: str) -> str:
    return json.dumps(["connection", tenant, connector_id, field])


def _connections_batch(engine: Engine, box: SecretBox, prefix: str, size: int) -> int:
    stale = sa.or_(*(_stale(connections.c[f], prefix) for f in _FIELDS))
    with engine.begin() as db:
        rows = db.execute(
            sa.select(connections)
            .where(stale)
            .order_by(connections.c.tenant, connections.c.connector_id)
            .limit(size)
        ).all()
        done = 0
        for row in rows:
            values = {}
            for field in _FIELDS:
                sealed = getattr(row, field)
                if sealed is None or sealed.startswith(prefix):
                    continue
                context = _context(row.tenant, row.connector_id, field)
                values[field] = box.encrypt(box.decrypt(sealed, context=context), context=context)
            result = db.execute(
                connections.update()
                .where(
                    connections.c.tenant == row.tenant,
                    connections.c.connector_id == row.connector_id,
                    connections.c.version == row.version,
                )
                .values(version=row.version + 1, **values)
            )
            done += result.rowcount
    return done


def _states_batch(engine: Engine, box: SecretBox, prefix: str, size: int) -> int:
    with engine.begin() as db:
        rows = db.execute(
            sa.select(oauth_states.c.state_hash, oauth_states.c.code_verifier)
            .where(_stale(oauth_states.c.code_verifier, prefix))
            .order_by(oauth_states.c.state_hash)
            .limit(size)
        ).all()
        for state_hash, sealed in rows:
            context = f"state:{state_hash}"
            db.execute(
                oauth_states.update()
                .where(oauth_states.c.state_hash == state_hash)
                .values(
                    code_verifier=box.encrypt(box.decrypt(sealed, context=context), context=context)
                )
            )
        return len(rows)


def rotate_keys(
    engine: Engine,
    box: SecretBox,
    *,
    batch_size: int = 100,
    max_batches: int | None = None,
    on_progress: Callable[[RotationProgress], None] | None = None,
) -> RotationProgress:
    """Re-encrypt every secret still encrypted with an older key.

    :param max_batches: stop after this many batches (the rest is left for the
        next run); None runs to the end.
    :raises SecretError: when a secret cannot be decrypted with any configured key.
    """
    prefix = f"v1.{box.current_key_id}."
    total = _count(engine, prefix)
    rotated = batches = 0
    while max_batches is None or batches < max_batches:
        done = _connections_batch(engine, box, prefix, batch_size)
        if done == 0:
            done = _states_batch(engine, box, prefix, batch_size)
        if done == 0:
            break
        rotated += done
        batches += 1
        if on_progress is not None:
            on_progress(RotationProgress(total, rotated, max(total - rotated, 0)))
    return RotationProgress(total, rotated, _count(engine, prefix))
