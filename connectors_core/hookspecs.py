"""The hooks a connector plugin can implement.

A plugin is any module or object named by an entry point in the
``connectors_core`` group. It implements hooks by defining functions with the
names below, decorated with :data:`hookimpl`::

    from connectors_core import define_connector, hookimpl

    @hookimpl
    def provide_connector():
        return define_connector(id="acme", ...)

An implementation may accept any subset of a hook's arguments, so new
arguments can be added to a hook without breaking existing plugins.
Every hook is documented, with an example, in ``docs/hooks.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from ._entrypoints import GROUP

if TYPE_CHECKING:
    from ._manifest import Connector

__all__ = ["PROJECT_NAME", "handle_connect", "hookimpl", "hookspec", "provide_connector"]

PROJECT_NAME = GROUP
"""The pluggy project name, and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for hook specifications (used by this module only)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations in connector plugins."""


@hookspec
def provide_connector() -> (
    Connector | Mapping[str, Any] | Sequence[Connector | Mapping[str, Any]] | None
):
    """Return the connector manifest(s) this plugin provides.

    Called once per discovery, on every plugin. Return one manifest, a list of
    manifests (a plugin may provide several connectors), or None to provide
    none. A manifest is a :class:`~connectors_core.Connector` (build it with
    :func:`~connectors_core.define_connector`) or a camelCase mapping in the
    wire format; either way it is validated before it is registered, and an
    invalid one marks this plugin as failed without affecting the others.

    :return: a manifest, a list of manifests, or None.
    """


@hookspec(firstresult=True)
def handle_connect(connector: Connector, request: Any) -> Any | None:
    """Run the connect step for a connector, instead of the generic flow.

    Called when a user starts connecting ``connector``. Plugins that do not
    own ``connector`` must return None. The first non-None result is used
    and the remaining implementations are not called; when every plugin
    returns None, connectors-core runs its generic flow for the connector's
    ``auth`` type (OAuth authorization code with PKCE, or the API-key form).

    :param connector: the manifest of the connector being connected; compare
        ``connector.id`` to decide whether to handle it.
    :param request: the web framework's request object for the connect route.
    :return: a response for the web framework to send, or None to leave the
        connect step to another plugin or to the generic flow.
    """
