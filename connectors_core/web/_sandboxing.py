"""``create_app(sandbox=...)``: the sandbox wired into the app (see :mod:`connectors_core.sandbox`).

With ``sandbox=True`` the app builds its :class:`~connectors_core.sandbox.Sandbox`
from its registry and settings, and its connections service with the
sandbox's settings and transport. A host that passes its own ``connections``
builds them from a ``Sandbox`` itself and passes that: ``sandbox=the_sandbox``.
"""

from __future__ import annotations

import logging
import warnings

import httpx2

from .._registry import Registry
from .._settings import Settings
from ..connections import Connections
from ..sandbox import Sandbox
from ..store import Store, open_store

__all__ = ["connections_for", "sandbox_option"]

log = logging.getLogger("connectors_core.web")


def sandbox_option(sandbox: bool | Sandbox, demo: bool | None) -> bool | Sandbox:
    """``sandbox``, or the deprecated ``demo`` it replaces."""
    if demo is not None:
        warnings.warn(
            "create_app(demo=...) is deprecated: use create_app(sandbox=...)",
            DeprecationWarning,
            stacklevel=3,
        )
        return sandbox or demo
    return sandbox


def connections_for(
    sandbox: bool | Sandbox,
    *,
    registry: Registry | None,
    settings: Settings | None,
    store: Store | None,
    connections: Connections | None,
    transport: httpx2.AsyncBaseTransport | None,
) -> tuple[Connections, Sandbox | None]:
    """The app's connections service and its sandbox (None without one, or when the
    sandbox stands in for no connector).

    :raises ConfigurationError: where the sandbox may not run.
    :raises ValueError: ``sandbox=True`` with ``connections`` of the host's own, or
        a ``Sandbox`` those connections were not built with.
    """
    built: Sandbox | None = None
    if connections is None:
        if registry is None:
            from .._discovery import discover

            registry = discover()
        settings = settings or Settings.from_env()
        if sandbox is True:
            built = Sandbox(registry, settings)
        elif sandbox is not False:
            built = sandbox
        if built is not None:
            settings = built.settings
            transport = built.transport(transport)
        connections = Connections(
            registry, store or open_store(settings), settings, transport=transport
        )
    elif sandbox is True:
        raise ValueError(
            "create_app(sandbox=True) builds its own connections service: pass registry, "
            "settings and store instead of connections, or build your Connections with "
            "sandbox = Sandbox(registry, settings): Connections(registry, store, "
            "sandbox.settings, transport=sandbox.transport()), and pass sandbox=sandbox"
        )
    elif sandbox is not False:
        built = sandbox
        for connector_id in built.connector_ids:
            client = connections.settings.client_credentials(connector_id)
            if client is None or client.client_id != f"sandbox-{connector_id}":
                raise ValueError(
                    f"the connections were not built with this sandbox's settings "
                    f"({connector_id!r} has another client): "
                    "Connections(registry, store, sandbox.settings, transport=sandbox.transport())"
                )
    if built is None or not built.active:
        return connections, None
    log.warning(
        "SANDBOX: %s; it hands out tokens that grant nothing. Never in production.",
        built.describe(),
    )
    return connections, built
