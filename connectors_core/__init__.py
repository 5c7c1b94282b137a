"""connectors-core: typed connector manifests, discovered from installed plugins.

Importing this package is cheap and has no side effects: it loads no plugin,
opens no database, and imports nothing heavy. Each name below is imported the
first time it is used (so ``from connectors_core import discover`` does not
pay for the manifest converter). Call :func:`discover` to load plugins.
"""

from __future__ import annotations

import importlib

from ._version import __version__

# Not `typing.TYPE_CHECKING`: importing typing would cost every start-up (see _index).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._converter import define_connector, to_wire
    from ._discovery import discover
    from ._events import Actor, ConnectionEvent, EventType
    from ._exceptions import (
        AccountTakenError,
        ConfigurationError,
        ConnectionRequiredError,
        ConnectorsError,
        DiscoveryError,
        DuplicateConnectorError,
        HostNotAllowedError,
        IconError,
        IntegrationError,
        InvalidFieldsError,
        LeaseLostError,
        ManifestError,
        ManifestLoadError,
        ManifestProblem,
        NeedsReauthError,
        NotConnectedError,
        PluginLoadError,
        ProviderUnavailableError,
        RegistryError,
        SecretError,
        UnknownConnectorError,
    )
    from ._icons import Icon, load_icon
    from ._manifest import (
        ApiKeyAuth,
        Auth,
        BasicAuth,
        Capability,
        Category,
        Connection,
        Connector,
        Field,
        FieldTranslation,
        FieldType,
        Grant,
        NoAuth,
        OAuth,
        Publisher,
        SetupStep,
        SetupStepTranslation,
        Status,
        Translation,
    )
    from ._reasons import Reason
    from ._records import Phase, PluginRecord, PluginState, Provider
    from ._registry import Registry
    from .hookspecs import hookimpl

__all__ = [
    "AccountTakenError",
    "Actor",
    "ApiKeyAuth",
    "Auth",
    "BasicAuth",
    "Capability",
    "Category",
    "ConfigurationError",
    "Connection",
    "ConnectionEvent",
    "ConnectionRequiredError",
    "Connector",
    "ConnectorsError",
    "DiscoveryError",
    "DuplicateConnectorError",
    "EventType",
    "Field",
    "FieldTranslation",
    "FieldType",
    "Grant",
    "HostNotAllowedError",
    "Icon",
    "IconError",
    "IntegrationError",
    "InvalidFieldsError",
    "LeaseLostError",
    "ManifestError",
    "ManifestLoadError",
    "ManifestProblem",
    "NeedsReauthError",
    "NoAuth",
    "NotConnectedError",
    "OAuth",
    "Phase",
    "PluginLoadError",
    "PluginRecord",
    "PluginState",
    "Provider",
    "ProviderUnavailableError",
    "Publisher",
    "Reason",
    "Registry",
    "RegistryError",
    "SecretError",
    "SetupStep",
    "SetupStepTranslation",
    "Status",
    "Translation",
    "UnknownConnectorError",
    "__version__",
    "define_connector",
    "discover",
    "hookimpl",
    "load_icon",
    "to_wire",
]

# Where each public name lives; kept in step with __all__ by a test.
_LOCATIONS = {
    "._converter": ("define_connector", "to_wire"),
    "._discovery": ("discover",),
    "._events": ("Actor", "ConnectionEvent", "EventType"),
    "._exceptions": (
        "AccountTakenError",
        "ConfigurationError",
        "ConnectionRequiredError",
        "ConnectorsError",
        "DiscoveryError",
        "DuplicateConnectorError",
        "ManifestError",
        "ManifestLoadError",
        "HostNotAllowedError",
        "IconError",
        "IntegrationError",
        "InvalidFieldsError",
        "LeaseLostError",
        "ManifestProblem",
        "NeedsReauthError",
        "NotConnectedError",
        "PluginLoadError",
        "ProviderUnavailableError",
        "RegistryError",
        "SecretError",
        "UnknownConnectorError",
    ),
    "._icons": ("Icon", "load_icon"),
    "._manifest": (
        "ApiKeyAuth",
        "Auth",
        "BasicAuth",
        "Capability",
        "Category",
        "Connection",
        "Connector",
        "Field",
        "FieldTranslation",
        "FieldType",
        "Grant",
        "NoAuth",
        "OAuth",
        "Publisher",
        "SetupStep",
        "SetupStepTranslation",
        "Status",
        "Translation",
    ),
    "._reasons": ("Reason",),
    "._records": ("Phase", "PluginRecord", "PluginState", "Provider"),
    "._registry": ("Registry",),
    ".hookspecs": ("hookimpl",),
}
_MODULE_OF = {name: module for module, names in _LOCATIONS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'connectors_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
