"""Key rotation: re-encrypt every stored secret with the newest key, in batches.

Each batch is its own (write) transaction and only rows still encrypted with
an older key are selected, so an interrupted rotation resumes where it
stopped when run again. Rows are walked in key order (keyset pagination): a
row whose secret cannot be decrypted (its key is gone, or it fails
authentication) is reported as a :class:`RotationFailure` and passed, never
selected again in the same run, while every other row is re-encrypted. A
connection row is rewritten only if its version did not change in the
meantime (a refresh running concurrently wins; the row is picked up again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .._exceptions import SecretError
from ._crypto import SecretBox, connection_context, state_context
from ._engine import write
from ._tables import connections, oauth_states

__all__ = ["RotationFailure", "RotationProgress", "rotate_keys"]

_FIELDS = ("access_token", "refresh_token", "api_key", "secrets", "username", "password")
_STATE_FIELDS = ("code_verifier", "secrets")
_MAX_CONFLICTS = 3  # times a row that keeps changing is tried before this run passes it


@attrs.frozen
class RotationFailure:
    """A stored secret that could not be re-encrypted; it names no secret."""

    table: str
    """``connections`` or ``oauth_states``."""
    field: str
    """The column: ``access_token``, ``refresh_token``, ``api_key``, ``secrets``,
    ``username``, ``password`` (connections) or ``code_verifier``, ``secrets`` (oauth_states)."""
    reason: str
    """Why, in plain words (the key is not configured; it failed authentication)."""
    tenant: str | None = None
    """The connection's tenant (connections only)."""
    connector_id: str | None = None
    """The connection's connector (connections only)."""
    state_hash_prefix: str | None = None
    """The first characters of the pending authorization's state hash (oauth_states only)."""

    def __str__(self) -> str:
        if self.table == "connections":
            where = f"tenant {self.tenant}, connector {self.connector_id}, field {self.field}"
        else:
            where = f"pending authorization {self.state_hash_prefix}…, field {self.field}"
        return f"{where}: {self.reason}"


@attrs.frozen
class RotationProgress:
    """How far a rotation got."""

    total: int
    """Secrets-holding rows that needed rotating when it started."""
    rotated: int
    """Rows re-encrypted so far."""
    remaining: int
    """Rows still encrypted with an older key (the failed ones among them)."""
    failures: tuple[RotationFailure, ...] = ()
    """Secrets that could not be re-encrypted, in the order they were met."""


def _stale(column: Any, prefix: str) -> Any:
    return sa.and_(column.is_not(None), sa.not_(column.startswith(prefix)))


def _stale_connections(prefix: str) -> Any:
    """Rows holding a secret of an older key, or sealed before connections had ids."""
    return sa.or_(
        *(_stale(connections.c[f], prefix) for f in _FIELDS), connections.c.legacy_seal.is_(True)
    )


def _count(engine: Engine, prefix: str) -> int:
    with engine.connect() as db:
        stale_connections = _stale_connections(prefix)
        first = db.execute(sa.select(sa.func.count()).where(stale_connections)).scalar_one()
        stale_states = sa.or_(*(_stale(oauth_states.c[f], prefix) for f in _STATE_FIELDS))
        second = db.execute(sa.select(sa.func.count()).where(stale_states)).scalar_one()
    return int(first) + int(second)


def _reseal(box: SecretBox, sealed: str, context: str) -> str:
    return box.encrypt(box.decrypt(sealed, context=context), context=context)


def _reason(box: SecretBox, sealed: str) -> str:
    key_id = box.key_id_of(sealed)
    if not sealed.startswith("v1.") or not key_id:
        return "not a ciphertext"
    if not box.can_open(sealed):
        return f"encrypted with key {key_id}, which is not in CONNECTORS_SECRET_KEYS"
    return "failed authentication (tampered with, or copied from another row)"


@attrs.define
class _Batch:
    """What one batch did, and where the next one starts."""

    rotated: int = 0
    seen: int = 0
    after: tuple[str, ...] | None = None
    failures: list[RotationFailure] = attrs.field(factory=list)
    conflict: tuple[str, ...] | None = None
    """A row that changed while this batch worked on it (it was not rewritten)."""


def _connections_batch(
    box: SecretBox, prefix: str, size: int, after: tuple[str, ...] | None
) -> Callable[[Connection], _Batch]:
    stale = _stale_connections(prefix)
    order = (connections.c.tenant, connections.c.connector_id, connections.c.connection_id)
    position = sa.tuple_(*order)

    def work(db: Connection) -> _Batch:
        query = sa.select(connections).where(stale)
        if after is not None:
            query = query.where(position > sa.tuple_(*after))
        rows = db.execute(query.order_by(*order).limit(size)).all()
        batch = _Batch(seen=len(rows), after=after)
        for row in rows:
            values: dict[str, Any] = {}
            failed = len(batch.failures)
            # Sealed anew to the row's id, whatever key or form sealed it before.
            opened_with = None if row.legacy_seal else row.connection_id
            for field in _FIELDS:
                sealed = getattr(row, field)
                if sealed is None or (sealed.startswith(prefix) and not row.legacy_seal):
                    continue
                try:
                    plain = box.decrypt(
                        sealed,
                        context=connection_context(
                            row.tenant, row.connector_id, opened_with, field
                        ),
                    )
                except SecretError:
                    batch.failures.append(
                        RotationFailure(
                            "connections",
                            field,
                            _reason(box, sealed),
                            tenant=row.tenant,
                            connector_id=row.connector_id,
                        )
                    )
                    continue
                context = connection_context(row.tenant, row.connector_id, row.connection_id, field)
                values[field] = box.encrypt(plain, context=context)
            if row.legacy_seal and len(batch.failures) > failed:
                # Part of a legacy row cannot be opened: reseal none of it, or its
                # ciphertexts would be sealed two ways at once.
                values = {}
            elif row.legacy_seal:
                values["legacy_seal"] = False
            if values:
                result = db.execute(
                    connections.update()
                    .where(
                        connections.c.tenant == row.tenant,
                        connections.c.connector_id == row.connector_id,
                        connections.c.connection_id == row.connection_id,
                        connections.c.version == row.version,
                    )
                    # Compared, not bumped: a re-encryption changes no value, so a
                    # refresh holding this row may still save over it.
                    .values(**values)
                )
                if result.rowcount == 0:
                    # Changed meanwhile: the next batch starts just before it, and
                    # picks it up again if it still holds an older key's secret.
                    del batch.failures[failed:]
                    batch.conflict = (row.tenant, row.connector_id, row.connection_id)
                    return batch
                batch.rotated += 1
            batch.after = (row.tenant, row.connector_id, row.connection_id)
        return batch

    return work


def _states_batch(
    box: SecretBox, prefix: str, size: int, after: tuple[str, ...] | None
) -> Callable[[Connection], _Batch]:
    stale = sa.or_(*(_stale(oauth_states.c[f], prefix) for f in _STATE_FIELDS))
    columns = (oauth_states.c.state_hash, *(oauth_states.c[f] for f in _STATE_FIELDS))

    def work(db: Connection) -> _Batch:
        query = sa.select(*columns).where(stale)
        if after is not None:
            query = query.where(oauth_states.c.state_hash > after[0])
        rows = db.execute(query.order_by(oauth_states.c.state_hash).limit(size)).all()
        batch = _Batch(seen=len(rows), after=after)
        for row in rows:
            state_hash = row.state_hash
            batch.after = (state_hash,)
            values = {}
            for field in _STATE_FIELDS:
                sealed = getattr(row, field)
                if sealed is None or sealed.startswith(prefix):
                    continue
                try:
                    values[field] = _reseal(box, sealed, state_context(state_hash, field))
                except SecretError:
                    batch.failures.append(
                        RotationFailure(
                            "oauth_states",
                            field,
                            _reason(box, sealed),
                            state_hash_prefix=state_hash[:12],
                        )
                    )
            if values:
                # A pending authorization is never rewritten, only taken: nothing to compare.
                db.execute(
                    oauth_states.update()
                    .where(oauth_states.c.state_hash == state_hash)
                    .values(**values)
                )
                batch.rotated += 1
        return batch

    return work


def rotate_keys(
    engine: Engine,
    box: SecretBox,
    *,
    batch_size: int = 100,
    max_batches: int | None = None,
    on_progress: Callable[[RotationProgress], None] | None = None,
) -> RotationProgress:
    """Re-encrypt every secret still encrypted with an older key.

    A secret that cannot be decrypted does not stop the rotation: it is left as
    it is, listed in :attr:`RotationProgress.failures`, and every other one is
    re-encrypted.

    :param max_batches: stop after this many batches (the rest is left for the
        next run); None runs to the end.
    """
    prefix = f"v1.{box.current_key_id}."
    total = _count(engine, prefix)
    rotated = batches = 0
    failures: list[RotationFailure] = []
    tables: Sequence[Any] = (_connections_batch, _states_batch)
    for make_batch in tables:
        after: tuple[str, ...] | None = None
        conflicts: list[tuple[str, ...]] = []
        while max_batches is None or batches < max_batches:
            batch = write(engine, make_batch(box, prefix, batch_size, after))
            if batch.seen == 0:
                break
            rotated += batch.rotated
            failures.extend(batch.failures)
            after = batch.after
            if batch.conflict is not None:
                conflicts.append(batch.conflict)
                if conflicts[-_MAX_CONFLICTS:] == [batch.conflict] * _MAX_CONFLICTS:
                    after = batch.conflict  # changing all the time: left for the next run
            batches += 1
            if on_progress is not None:
                remaining = max(total - rotated, 0)
                on_progress(RotationProgress(total, rotated, remaining, tuple(failures)))
    return RotationProgress(total, rotated, _count(engine, prefix), tuple(failures))
