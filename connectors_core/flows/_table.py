"""The table of flows: one per auth type, looked up by the manifest's ``auth.type``."""

from __future__ import annotations

from .._manifest import Connector
from ._api_key import ApiKeyFlow
from ._base import Flow
from ._basic import BasicFlow
from ._none import NoAuthFlow
from ._oauth import OAuthFlow

__all__ = ["FLOWS", "flow_for"]

FLOWS: dict[str, Flow] = {
    flow.auth_type: flow for flow in (OAuthFlow(), ApiKeyFlow(), BasicFlow(), NoAuthFlow())
}
"""Every flow, by the auth type it serves."""


def flow_for(connector: Connector) -> Flow:
    """The flow of ``connector``'s auth type."""
    return FLOWS[connector.auth.type]
