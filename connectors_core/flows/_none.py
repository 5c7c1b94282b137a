"""The flow of connectors that need no credentials (``auth.type = "none"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .._manifest import Connector
from ._base import Flow, FlowContext, Submission
from ._store import store_new

if TYPE_CHECKING:
    import httpx2

    from ..store import StoredConnection

__all__ = ["NoAuthFlow"]


class NoAuthFlow(Flow):
    """Connect is one click (or a form of the connector's fields); nothing secret is kept."""

    auth_type: ClassVar[str] = "none"
    label: ClassVar[str] = "No credentials"
    has_credentials: ClassVar[bool] = False

    def scaffold(self, connector_id: str, name: str) -> tuple[dict[str, Any], str]:
        return {"type": "none"}, f"Nothing to configure: {name} needs no credentials."

    async def connect(
        self, ctx: FlowContext, connector: Connector, tenant: str, submission: Submission
    ) -> StoredConnection:
        return await store_new(ctx, connector, tenant, submission)

    def authenticate(
        self, connector: Connector, connection: StoredConnection, request: httpx2.Request
    ) -> None:
        return None
