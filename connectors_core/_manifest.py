"""The connector manifest: frozen attrs classes, one per part.

Attributes are snake_case; the wire format (JSON, TOML, what ``--json`` prints)
is camelCase. Both directions go through the one converter in
:mod:`connectors_core._converter`, which also enforces every rule. Build
manifests with :func:`connectors_core.define_connector` so they are validated;
constructing these classes directly skips validation.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Literal

import attrs

__all__ = [
    "ApiKeyAuth",
    "Auth",
    "Capability",
    "Category",
    "Connection",
    "Connector",
    "NoAuth",
    "OAuth",
    "Publisher",
    "SetupStep",
    "Status",
]


class Category(enum.Enum):
    """Where a connector is filed in the catalogue."""

    EVENTS = "events"
    TICKETING = "ticketing"
    MARKETING = "marketing"
    ASSETS = "assets"
    ANALYTICS = "analytics"
    CUSTOM = "custom"


class Status(enum.Enum):
    """The release status of a connector, shown as a badge."""

    AVAILABLE = "available"
    BETA = "beta"
    COMING_SOON = "coming-soon"
    DEPRECATED = "deprecated"


@attrs.frozen
class NoAuth:
    """The connector needs no credentials (wire form ``{"type": "none"}``)."""

    type: ClassVar[Literal["none"]] = "none"


@attrs.frozen
class ApiKeyAuth:
    """The user pastes an API key, which the server stores and sends in a header."""

    type: ClassVar[Literal["api-key"]] = "api-key"

    description: str
    """What the key is and where the user finds it, shown beside the key field."""

    header_name: str
    """The HTTP header the key is sent in, such as ``X-Api-Key`` (wire: ``headerName``)."""


@attrs.frozen
class OAuth:
    """OAuth 2.0 authorization code flow; client id and secret live in server config."""

    type: ClassVar[Literal["oauth"]] = "oauth"

    authorize_url: str
    """The provider's authorization endpoint (wire: ``authorizeUrl``).

    https, or plain http on loopback only (for local development and tests).
    """

    token_url: str
    """The provider's token endpoint (wire: ``tokenUrl``); https, or http on loopback."""

    scopes: tuple[str, ...]
    """The scopes requested: the least the connector needs, no duplicates."""

    pkce: bool = True
    """Whether to use PKCE (S256). On unless the provider cannot support it."""

    revocation_url: str | None = None
    """The provider's RFC 7009 revocation endpoint, if any (wire: ``revocationUrl``)."""


Auth = NoAuth | ApiKeyAuth | OAuth
"""How a connector authenticates, tagged by ``type`` on the wire."""


@attrs.frozen
class Capability:
    """One thing the connector can do, listed on its card."""

    id: str
    """Kebab-case identifier, unique within the connector."""

    label: str
    """Human-readable label."""


@attrs.frozen
class SetupStep:
    """One step the user follows to set the connector up."""

    title: str
    """Short title of the step."""

    description: str
    """What to do in this step."""


@attrs.frozen
class Publisher:
    """Who publishes and supports the connector."""

    name: str
    """The publisher's display name."""

    url: str | None = None
    """The publisher's public web site (http or https)."""

    email: str | None = None
    """A support e-mail address."""


@attrs.frozen
class Connection:
    """Server paths through which the user connects, checks and disconnects."""

    start_path: str
    """Path that starts the connect flow (wire: ``startPath``); starts with ``/``."""

    status_path: str | None = None
    """Path that reports the connection status (wire: ``statusPath``)."""

    disconnect_path: str | None = None
    """Path that disconnects (wire: ``disconnectPath``)."""


@attrs.frozen
class Connector:
    """A connector manifest: who it is, how it authenticates, what it can do."""

    id: str
    """Unique kebab-case identifier, such as ``google-ads``."""

    name: str
    """Display name."""

    summary: str
    """One line shown on the card."""

    description: str
    """Longer text shown in the connector's details."""

    category: Category
    """Catalogue category."""

    status: Status
    """Release status."""

    auth: Auth
    """How the connector authenticates."""

    capabilities: tuple[Capability, ...]
    """What the connector can do; at least one, ids unique."""

    setup: tuple[SetupStep, ...] = ()
    """Set-up steps shown in the UI, in order."""

    docs_path: str | None = None
    """Public http(s) URL of the connector's documentation (wire: ``docsPath``)."""

    tags: tuple[str, ...] = ()
    """Free-form tags for filtering."""

    publisher: Publisher | None = None
    """Who publishes the connector."""

    connection: Connection | None = None
    """Server paths for connect, status and disconnect, if the connector can connect."""

    def to_wire(self) -> dict[str, Any]:
        """Return this manifest in the camelCase wire format (JSON-ready)."""
        # Imported here: the converter imports this module.
        from ._converter import to_wire

        return to_wire(self)


# --- trusted wire data ---------------------------------------------------------
# The discovery index stores manifests that were validated when it was written
# (and checksummed). Rebuilding them must not cost a cattrs import at every
# start-up, so this builds the objects directly. A test checks it agrees with
# the converter for every field.

_AUTH_CLASSES: dict[str, type[NoAuth | ApiKeyAuth | OAuth]] = {
    cls.type: cls for cls in (OAuth, ApiKeyAuth, NoAuth)
}


def _tuple_of(cls: type) -> Any:
    return lambda items: tuple(_from_trusted(cls, item) for item in items)


def _optional(cls: type) -> Any:
    return lambda value: None if value is None else _from_trusted(cls, value)


def _auth(value: dict[str, Any]) -> Auth:
    fields = {key: item for key, item in value.items() if key != "type"}
    auth: Auth = _from_trusted(_AUTH_CLASSES[value["type"]], fields)
    return auth


# Per class: wire name -> (attribute, how to build the value); plain values are copied.
_BUILDERS: dict[type, dict[str, tuple[str, Any]]] = {
    Connector: {
        "category": ("category", Category),
        "status": ("status", Status),
        "auth": ("auth", _auth),
        "capabilities": ("capabilities", _tuple_of(Capability)),
        "setup": ("setup", _tuple_of(SetupStep)),
        "docsPath": ("docs_path", None),
        "tags": ("tags", tuple),
        "publisher": ("publisher", _optional(Publisher)),
        "connection": ("connection", _optional(Connection)),
    },
    ApiKeyAuth: {"headerName": ("header_name", None)},
    OAuth: {
        "authorizeUrl": ("authorize_url", None),
        "tokenUrl": ("token_url", None),
        "scopes": ("scopes", tuple),
        "revocationUrl": ("revocation_url", None),
    },
    Connection: {
        "startPath": ("start_path", None),
        "statusPath": ("status_path", None),
        "disconnectPath": ("disconnect_path", None),
    },
}


def _from_trusted(cls: type, data: dict[str, Any]) -> Any:
    builders = _BUILDERS.get(cls, {})
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        attribute, build = builders.get(key, (key, None))
        kwargs[attribute] = value if build is None else build(value)
    return cls(**kwargs)


def from_trusted_wire(data: dict[str, Any]) -> Connector:
    """Build a :class:`Connector` from wire data validated earlier, without re-validating.

    Only for data connectors-core validated itself (the discovery index); use
    :func:`~connectors_core.define_connector` for anything else.
    """
    result: Connector = _from_trusted(Connector, data)
    return result
