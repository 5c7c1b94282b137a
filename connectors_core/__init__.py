"""connectors-core: typed connector manifests, discovered from installed plugins.

The light core: importing it loads no plugin, opens no database and imports no
web, database or crypto library. Call :func:`discover` to load plugins.
"""

from ._converter import define_connector, to_wire
from ._discovery import discover
from ._exceptions import (
    ConfigurationError,
    ConnectorsError,
    DiscoveryError,
    DuplicateConnectorError,
    ManifestError,
    ManifestProblem,
    RegistryError,
    UnknownConnectorError,
)
from ._manifest import (
    ApiKeyAuth,
    Auth,
    Capability,
    Category,
    Connection,
    Connector,
    NoAuth,
    OAuth,
    Publisher,
    SetupStep,
    Status,
)
from ._records import Phase, PluginRecord, PluginState, Provider
from ._registry import Registry
from ._version import __version__
from .hookspecs import hookimpl

__all__ = [
    "ApiKeyAuth",
    "Auth",
    "Capability",
    "Category",
    "ConfigurationError",
    "Connection",
    "Connector",
    "ConnectorsError",
    "DiscoveryError",
    "DuplicateConnectorError",
    "ManifestError",
    "ManifestProblem",
    "NoAuth",
    "OAuth",
    "Phase",
    "PluginRecord",
    "PluginState",
    "Provider",
    "Publisher",
    "Registry",
    "RegistryError",
    "SetupStep",
    "Status",
    "UnknownConnectorError",
    "__version__",
    "define_connector",
    "discover",
    "hookimpl",
    "to_wire",
]
