"""Flows: what each auth type means on the server, one module per type.

::

    flow = flow_for(connector)
    flow.connect_step(connector)     # REDIRECT, FORM or BUTTON
    flow.inputs(connector)           # the connect form's inputs
    await flow.connect(ctx, connector, tenant, submission)

The web routes, the page, the CLI, the OpenAPI document, the contract suite and
the scaffold ask the flow; nothing else branches on the auth type. Adding an
auth type is its model class in ``_manifest.py``, one module here registered
in :data:`FLOWS`, and its docs (``docs/writing-a-connector.md``).
"""

from __future__ import annotations

from ._api_key import ApiKeyFlow
from ._base import (
    ConnectStep,
    Flow,
    FlowContext,
    Input,
    Redirect,
    ReplaceCheck,
    Submission,
    field_inputs,
)
from ._basic import BasicFlow
from ._none import NoAuthFlow
from ._oauth import OAuthFlow
from ._table import FLOWS, flow_for

__all__ = [
    "FLOWS",
    "ApiKeyFlow",
    "BasicFlow",
    "ConnectStep",
    "Flow",
    "FlowContext",
    "Input",
    "NoAuthFlow",
    "OAuthFlow",
    "Redirect",
    "ReplaceCheck",
    "Submission",
    "field_inputs",
    "flow_for",
]
