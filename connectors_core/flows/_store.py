"""Storing a new connection: the one way every flow writes what a user connected."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._manifest import Connector

if TYPE_CHECKING:
    from ..store import StoredConnection
    from ._base import FlowContext, Submission

__all__ = ["store_new"]


async def store_new(
    ctx: FlowContext,
    connector: Connector,
    tenant: str,
    submission: Submission,
    **credentials: Any,
) -> StoredConnection:
    """Verify, then store a connection with the submission's values and ``credentials``.

    Stored as a new connection, or over the one holding the same account
    (:meth:`FlowContext.save_connection`).

    ``credentials`` are :class:`~connectors_core.store.StoredConnection`
    attributes (``api_key=``, ``username=``, ``tokens=``, ``account=``...).
    Nothing is stored unless the credentials passed verification
    (:func:`~connectors_core.flows._verify.verified_account`).
    """
    import attrs

    from ..store import ConnectionState, StoredConnection
    from ._verify import verified_account

    now = ctx.now()
    connection = StoredConnection(
        tenant=tenant,
        connector_id=connector.id,
        state=ConnectionState.CONNECTED,
        config=dict(submission.config),
        secrets=dict(submission.secrets),
        created_at=now,
        updated_at=now,
        **credentials,
    )
    hooks = await ctx.plugin_hooks(connector)
    found = await verified_account(ctx, connector, connection, hooks)
    connection = attrs.evolve(
        connection,
        account={**connection.account, **found.account},
        config={**connection.config, **found.kept},
    )
    return await ctx.save_connection(
        connector,
        connection,
        hooks=hooks,
        target=submission.connection_id,
        actor=submission.actor,
        may_replace=submission.may_replace,
    )
