"""The official Evencio connector for connectors-core.

This module is the plugin: the ``connectors_core`` entry point of the
``connectors-evencio`` distribution names it, and connectors-core registers it
with pluggy during :func:`connectors_core.discover`. It uses only the public
API of connectors-core, as any third-party connector would.

Its hooks are :func:`provide_connector` (the manifest, whose ``verify``
request finds the organization and user of a new connection) and
:func:`sandbox_api` (a stand-in for Evencio's API, for ``connectors serve
--demo`` and tests). A host's jobs read Evencio with :class:`EvencioClient`::

    async with EvencioClient.connect(connections, tenant) as evencio:
        async for event in evencio.events():
            ...

The client and its types are imported the first time they are used, so
discovering the plugin costs no HTTP client (they need connectors-core's
``server`` extra, as ``Connections`` does).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from connectors_core import Connector, hookimpl

from ._manifest import API_BASE_URL, EVENCIO

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ._client import EvencioClient
    from ._errors import EvencioError
    from ._models import Event, Guest, Venue

__version__ = "0.1.0"

__all__ = [
    "API_BASE_URL",
    "EVENCIO",
    "EvencioClient",
    "EvencioError",
    "Event",
    "Guest",
    "Venue",
    "__version__",
    "provide_connector",
    "sandbox_api",
]

_LAZY = {
    "EvencioClient": "._client",
    "EvencioError": "._errors",
    "Event": "._models",
    "Guest": "._models",
    "Venue": "._models",
}


def __getattr__(name: str) -> Any:
    # No module __dir__ listing these: pluggy reads every name dir() gives when it
    # registers the plugin, and would import the client (and httpx2) at discovery.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'connectors_evencio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


@hookimpl
def provide_connector() -> Connector:
    """Provide the Evencio manifest."""
    return EVENCIO


@hookimpl
def sandbox_api(connector: Connector) -> Starlette | None:
    """Stand in for Evencio's API with deterministic sample data (see ``_sandbox``).

    :param connector: the connector whose API is wanted.
    :return: the sandbox's Starlette app for Evencio, None for any other connector.
    """
    if connector.id != EVENCIO.id:
        return None
    from ._sandbox import create_app

    return create_app()
