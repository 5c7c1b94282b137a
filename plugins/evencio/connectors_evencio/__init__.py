"""The official Evencio connector for connectors-core.

This module is the plugin: the ``connectors_core`` entry point of the
``connectors-evencio`` distribution names it, and connectors-core registers it
with pluggy during :func:`connectors_core.discover`. It uses only the public
API of connectors-core, as any third-party connector would.
"""

from connectors_core import Connector, hookimpl

from ._manifest import EVENCIO

__version__ = "0.1.0"

__all__ = ["EVENCIO", "__version__", "provide_connector"]


@hookimpl
def provide_connector() -> Connector:
    """Provide the Evencio manifest."""
    return EVENCIO
