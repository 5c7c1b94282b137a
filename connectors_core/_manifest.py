"""The connector manifest: frozen attrs classes, one per part.

Attributes are snake_case; the wire format (JSON, TOML, what ``--json`` prints)
is camelCase. Both directions go through the one converter in
:mod:`connectors_core._converter`, which also enforces every rule. Build
manifests with :func:`connectors_core.define_connector` so they are validated;
constructing these classes directly skips validation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs

__all__ = [
    "Api",
    "ApiKeyAuth",
    "Auth",
    "BasicAuth",
    "Capability",
    "Category",
    "ClientAuth",
    "Connection",
    "Connector",
    "ExpiresInUnit",
    "Field",
    "FieldTranslation",
    "FieldType",
    "Grant",
    "NoAuth",
    "OAuth",
    "Publisher",
    "Retry",
    "SetupStep",
    "SetupStepTranslation",
    "Status",
    "TokenRequestFormat",
    "TokenResponsePaths",
    "Translation",
    "Verify",
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


@attrs.frozen(kw_only=True)
class ApiKeyAuth:
    """The user pastes an API key, which the server stores and sends in a header or query."""

    type: ClassVar[Literal["api-key"]] = "api-key"

    description: str
    """What the key is and where the user finds it, shown beside the key field."""

    header_name: str | None = None
    """The HTTP header the key is sent in, such as ``X-Api-Key`` (wire: ``headerName``).

    Exactly one of ``headerName`` and ``queryParam`` is set.
    """

    query_param: str | None = None
    """The query parameter the key is sent in instead of a header (wire: ``queryParam``)."""

    value_prefix: str | None = None
    """Put before the key, such as ``"Bearer "`` or ``"Token token="`` (wire: ``valuePrefix``)."""


@attrs.frozen(kw_only=True)
class BasicAuth:
    """HTTP Basic: the user enters a username and a password, stored encrypted."""

    type: ClassVar[Literal["basic"]] = "basic"

    description: str
    """What to enter and where the user finds it, shown above the two inputs."""

    username_label: str = "Username"
    """The label of the username input, such as ``API key`` (wire: ``usernameLabel``)."""

    password_label: str = "Password"
    """The label of the password input, such as ``API secret`` (wire: ``passwordLabel``)."""

    password_required: bool = True
    """Whether a password must be entered; off for APIs that take the key as the username
    and an empty password (wire: ``passwordRequired``)."""


class ClientAuth(enum.Enum):
    """How the server authenticates its OAuth client at the token endpoint (RFC 6749 2.3)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    NONE = "none"


class TokenRequestFormat(enum.Enum):
    """The body of a token request."""

    FORM = "form"
    JSON = "json"


class ExpiresInUnit(enum.Enum):
    """The unit of a token response's lifetime."""

    SECONDS = "seconds"
    MILLISECONDS = "milliseconds"


@attrs.frozen(kw_only=True)
class TokenResponsePaths:
    """Where a non-standard token response keeps its values (dotted paths into its JSON)."""

    access_token_path: str = "access_token"
    """The access token, such as ``authed_user.access_token`` (wire: ``accessTokenPath``)."""

    refresh_token_path: str = "refresh_token"
    """The refresh token (wire: ``refreshTokenPath``)."""

    expires_in_path: str = "expires_in"
    """The token's lifetime (wire: ``expiresInPath``)."""

    expires_in_unit: ExpiresInUnit = ExpiresInUnit.SECONDS
    """``seconds`` or ``milliseconds`` (wire: ``expiresInUnit``)."""

    keep: tuple[str, ...] = ()
    """Dotted paths whose values become the connection's non-secret config, named by
    their path with dots as underscores (``team.id`` is ``team_id``)."""


class Grant(enum.Enum):
    """The OAuth 2.0 grant a connector uses."""

    AUTHORIZATION_CODE = "authorization_code"
    CLIENT_CREDENTIALS = "client_credentials"


@attrs.frozen(kw_only=True)
class OAuth:
    """OAuth 2.0; client id and secret live in server config.

    With the authorization code grant (the default) the user signs in at the
    provider; with client credentials the server obtains tokens by itself.
    """

    type: ClassVar[Literal["oauth"]] = "oauth"

    authorize_url: str | None = None
    """The provider's authorization endpoint (wire: ``authorizeUrl``).

    Required for the authorization code grant, absent for client credentials.
    https, or plain http on loopback only (for local development and tests);
    may use ``{field}`` placeholders.
    """

    token_url: str
    """The provider's token endpoint (wire: ``tokenUrl``); https, or http on loopback."""

    scopes: tuple[str, ...]
    """The scopes requested: the least the connector needs, no duplicates."""

    pkce: bool = True
    """Whether to use PKCE (S256). On unless the provider cannot support it."""

    revocation_url: str | None = None
    """The provider's RFC 7009 revocation endpoint, if any (wire: ``revocationUrl``)."""

    grant: Grant = Grant.AUTHORIZATION_CODE
    """``authorization_code`` (the user signs in at the provider) or
    ``client_credentials`` (no browser round trip)."""

    client_auth: ClientAuth = ClientAuth.CLIENT_SECRET_BASIC
    """``client_secret_basic``, ``client_secret_post`` or ``none`` (a public client)
    (wire: ``clientAuth``)."""

    scope_separator: str = " "
    """How scopes are joined in requests and split in answers: ``" "``, ``","`` or ``"+"``
    (wire: ``scopeSeparator``)."""

    authorize_params: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    """Added to the authorization request, such as ``{"access_type": "offline"}``; values
    may use ``{field}`` (wire: ``authorizeParams``)."""

    token_params: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    """Added to the code exchange (and the client credentials request) (wire: ``tokenParams``)."""

    refresh_params: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    """Added to the refresh request (wire: ``refreshParams``)."""

    token_request_format: TokenRequestFormat = TokenRequestFormat.FORM
    """``form`` (RFC 6749) or ``json`` (wire: ``tokenRequestFormat``)."""

    token_response: TokenResponsePaths | None = None
    """Where a non-standard token response keeps its values (wire: ``tokenResponse``)."""

    refresh_margin_seconds: int | None = None
    """Refresh this long before expiry, instead of the server's setting
    (wire: ``refreshMarginSeconds``)."""

    issuer: str | None = None
    """The provider's issuer identifier: a callback must carry it as ``iss`` (RFC 9207)."""

    header_name: str = "Authorization"
    """The header the access token is sent in to the provider's API (wire: ``headerName``),
    such as Shopify's ``X-Shopify-Access-Token``."""

    value_prefix: str = "Bearer "
    """Put before the access token in that header (wire: ``valuePrefix``): ``"Bearer "``
    (RFC 6750) unless the provider wants another scheme (Mailchimp's ``"OAuth "``), or
    ``""`` for the bare token."""


Auth = NoAuth | ApiKeyAuth | BasicAuth | OAuth
"""How a connector authenticates, tagged by ``type`` on the wire."""


class FieldType(enum.Enum):
    """What kind of value a connection field takes, and how it is checked."""

    TEXT = "text"
    SECRET = "secret"
    URL = "url"
    HOSTNAME = "hostname"
    EMAIL = "email"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"


@attrs.frozen(kw_only=True)
class Field:
    """A value the user enters per connection, such as a shop name or a data centre.

    Non-secret values are kept as the connection's config (shown in its
    status); ``secret`` values are encrypted and never shown. A field may be
    used in URL templates as ``{id}`` (not a secret one).
    """

    id: str
    """Identifier, ``^[a-z][a-z0-9_]{0,39}$``; the placeholder name in templates."""

    label: str
    """The input's label."""

    type: FieldType = FieldType.TEXT
    """``text``, ``secret``, ``url``, ``hostname``, ``email``, ``integer``, ``boolean``
    or ``choice``."""

    help: str | None = None
    """A hint shown under the input."""

    required: bool = True
    """Whether a value must be entered (a default counts)."""

    default: str | int | bool | None = None
    """The value used when none is entered; it must pass the field's own rules."""

    pattern: str | None = None
    """A regular expression the whole value must match (text, secret, hostname)."""

    min_length: int | None = None
    """The fewest characters (wire: ``minLength``)."""

    max_length: int | None = None
    """The most characters (wire: ``maxLength``; at most 2048)."""

    choices: tuple[str, ...] = ()
    """The allowed values of a ``choice`` field (and only of one)."""

    example: str | None = None
    """An example value, shown as the input's placeholder."""

    prefix: str | None = None
    """Text shown before the input, such as ``https://``."""

    suffix: str | None = None
    """Text shown after the input, such as ``.myshopify.com``."""


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


@attrs.frozen(kw_only=True)
class Retry:
    """When and how long the authenticated client waits and tries a request again."""

    statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    """The answers worth another attempt: rate limits and transient server errors."""

    retry_after_headers: tuple[str, ...] = ("Retry-After",)
    """Headers that say when to try again (wire: ``retryAfterHeaders``): seconds or an
    HTTP date (``Retry-After``), or a reset time as UNIX seconds or milliseconds
    (``X-RateLimit-Reset``); the longest wait any of them asks for is taken."""

    max_attempts: int = 3
    """Attempts in all, the first included (wire: ``maxAttempts``; 1 to 10; 1: never again)."""

    max_wait_seconds: int = 60
    """The longest single wait (wire: ``maxWaitSeconds``): an answer that asks for more
    is returned as it is instead of waited for."""


@attrs.frozen(kw_only=True)
class Api:
    """Where the connector's API lives, and how the authenticated client calls it."""

    base_url: str
    """The API's base URL (wire: ``baseUrl``): https, or http on loopback; may use
    ``{field}`` placeholders, and values kept from the token response."""

    headers: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    """Headers sent with every request, such as an API version (``{"Notion-Version":
    "2022-06-28"}``); values may use ``{field}`` placeholders. Never a credential."""

    allowed_hosts: tuple[str, ...] = ()
    """Hosts a request may go to besides the base URL's (wire: ``allowedHosts``):
    ``files.example.com``, ``*.example.com`` (its subdomains), ``host:port``."""

    retry: Retry = attrs.field(factory=Retry)
    """When the client tries a request again (idempotent methods only, unless asked)."""

    token_expired_statuses: tuple[int, ...] = (401,)
    """Answers that mean the credentials were refused (wire: ``tokenExpiredStatuses``):
    a token is refreshed and the request sent once more; credentials that cannot be
    renewed, or are refused again, leave the connection ``needs_reauth``."""


@attrs.frozen(kw_only=True)
class Verify:
    """The request that proves the credentials work, made before anything is stored."""

    path: str
    """Relative to ``baseUrl`` (or else ``api.baseUrl``), starting with ``/``; may use
    ``{field}`` placeholders and values kept from the token response."""

    method: str = "GET"
    """``GET``, ``HEAD`` or ``POST`` (a POST sends no body)."""

    expect: tuple[int, ...] = (200,)
    """The statuses that mean the credentials work."""

    account: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    """Status fields taken from the JSON answer: ``{"organizationId": "org.id"}`` (dotted
    paths); shown in the connection's status."""

    base_url: str | None = None
    """Where the verify request goes instead of ``api.baseUrl`` (wire: ``baseUrl``), for a
    provider that answers "who is this" on another host (Mailchimp's
    ``https://login.mailchimp.com``); templated like ``api.baseUrl``."""

    keep: tuple[str, ...] = ()
    """Dotted paths in the JSON answer whose values become non-secret connection config,
    named like ``tokenResponse.keep`` (``dc``, or ``team_id`` for ``team.id``) and usable in
    ``api.baseUrl``: Mailchimp's data centre."""


@attrs.frozen
class Connection:
    """Server paths through which the user connects, checks and disconnects."""

    start_path: str
    """Path that starts the connect flow (wire: ``startPath``); starts with ``/``."""

    status_path: str | None = None
    """Path that reports the connection status (wire: ``statusPath``)."""

    disconnect_path: str | None = None
    """Path that disconnects (wire: ``disconnectPath``)."""

    multiple: bool = False
    """Whether a tenant may connect several provider accounts (several ad accounts, mail
    audiences); each connection then has its own id, status and disconnect."""

    account_key: str | None = None
    """With ``multiple``, the status field that tells the accounts apart, such as
    ``accountId`` (wire: ``accountKey``): connecting an account already connected updates
    that connection, instead of adding a second."""


@attrs.frozen(kw_only=True)
class SetupStepTranslation:
    """One set-up step in another language; what it leaves out stays as the manifest says."""

    title: str | None = None
    """The step's title."""

    description: str | None = None
    """What to do in this step."""


@attrs.frozen(kw_only=True)
class FieldTranslation:
    """A connection field's texts in another language."""

    label: str | None = None
    """The input's label."""

    help: str | None = None
    """The hint shown under the input."""


@attrs.frozen(kw_only=True)
class Translation:
    """A connector's display strings in one language; what it leaves out stays as it is."""

    name: str | None = None
    """The display name."""

    summary: str | None = None
    """The one line shown on the card."""

    description: str | None = None
    """The longer text shown in the connector's details."""

    setup: tuple[SetupStepTranslation, ...] = ()
    """The set-up steps, by position: the first translates the manifest's first step, and
    so on (never more than the manifest has; ``{}`` leaves a step as it is)."""

    fields: Mapping[str, FieldTranslation] = attrs.field(factory=dict, hash=False)
    """Connection fields' texts, by field id (ids of the manifest's ``fields`` only)."""


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

    fields: tuple[Field, ...] = ()
    """Values the user enters per connection, in form order; ids unique."""

    api: Api | None = None
    """Where the connector's API lives."""

    verify: Verify | None = None
    """The request that proves new credentials work; needs ``api`` unless it has its own
    ``baseUrl``."""

    icon: str | None = None
    """The connector's icon: an SVG or PNG file inside the plugin's package, relative to its
    top-level package (``icon.svg``, ``static/logo.png``), or a public https URL."""

    translations: Mapping[str, Translation] = attrs.field(factory=dict, hash=False)
    """The display strings in other languages, by locale (``fr``, ``pt-BR``); the manifest's
    own strings are English."""

    def to_wire(self) -> dict[str, Any]:
        """Return this manifest in the camelCase wire format (JSON-ready)."""
        # Imported here: the converter imports this module.
        from ._converter import to_wire

        return to_wire(self)

    def localized(self, locale: str | Sequence[str]) -> Connector:
        """Return this connector with its display strings in the best matching language.

        ``locale`` is a language tag (``pt-BR``) or several in order of preference (as
        an ``Accept-Language`` header lists them). For each, an exact translation wins
        (``pt-BR``), then the language's (``pt``), then another region's of the same
        language (``pt-PT``); English, which the manifest itself is written in, stops the
        search. Name, summary, description, set-up steps and field labels and help are
        replaced where the translation has them; everything else is unchanged.

        :return: a copy (the translations included), or this connector itself when no
            translation matches.
        """
        chosen = best_locale(self.translations, [locale] if isinstance(locale, str) else locale)
        if chosen is None:
            return self
        translation = self.translations[chosen]
        setup = tuple(
            _evolved(step, translation.setup[index] if index < len(translation.setup) else None)
            for index, step in enumerate(self.setup)
        )
        fields = tuple(_evolved(field, translation.fields.get(field.id)) for field in self.fields)
        texts = {
            name: value
            for name in ("name", "summary", "description")
            if (value := getattr(translation, name)) is not None
        }
        return attrs.evolve(self, setup=setup, fields=fields, **texts)


def _evolved(part: Any, translation: SetupStepTranslation | FieldTranslation | None) -> Any:
    """``part`` with the texts ``translation`` gives (a step's or a field's)."""
    if translation is None:
        return part
    texts = {
        a.name: value
        for a in attrs.fields(type(translation))
        if (value := getattr(translation, a.name)) is not None
    }
    return attrs.evolve(part, **texts) if texts else part


def best_locale(available: Iterable[str], wanted: Sequence[str]) -> str | None:
    """The locale of ``available`` that best serves ``wanted`` (in order), or None for English.

    Tags compare without regard to case or to ``_`` versus ``-``. For each wanted tag:
    the tag itself, then shorter prefixes of it (``zh-Hant-TW``, ``zh-Hant``, ``zh``),
    then any available tag of its language; a wanted English tag with no English
    translation of its own means the manifest's own strings.
    """
    by_key = {key.lower(): key for key in available}
    for tag in wanted:
        parts = tag.strip().replace("_", "-").lower().split("-")
        if not parts[0] or parts[0] == "*":
            continue
        for length in range(len(parts), 0, -1):
            found = by_key.get("-".join(parts[:length]))
            if found is not None:
                return found
        if parts[0] == "en":
            return None
        siblings = sorted(key for low, key in by_key.items() if low.split("-")[0] == parts[0])
        if siblings:
            return siblings[0]
    return None


# --- trusted wire data ---------------------------------------------------------
# The discovery index stores manifests that were validated when it was written
# (and checksummed). Rebuilding them must not cost a cattrs import at every
# start-up, so this builds the objects directly. A test checks it agrees with
# the converter for every field.

AUTH_CLASSES: dict[str, type[Auth]] = {
    cls.type: cls for cls in (OAuth, ApiKeyAuth, BasicAuth, NoAuth)
}
"""Every auth model class, by its ``type`` tag: the one list of auth types."""


def _tuple_of(cls: type) -> Any:
    return lambda items: tuple([_from_trusted(cls, item) for item in items])


def _optional(cls: type) -> Any:
    return lambda value: None if value is None else _from_trusted(cls, value)


def _map_of(cls: type) -> Any:
    return lambda items: {key: _from_trusted(cls, item) for key, item in items.items()}


def _auth(value: dict[str, Any]) -> Auth:
    auth: Auth = _from_trusted(AUTH_CLASSES[value["type"]], value)  # "type" is no attribute
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
        "fields": ("fields", _tuple_of(Field)),
        "api": ("api", _optional(Api)),
        "verify": ("verify", _optional(Verify)),
        "translations": ("translations", _map_of(Translation)),
    },
    Translation: {
        "setup": ("setup", _tuple_of(SetupStepTranslation)),
        "fields": ("fields", _map_of(FieldTranslation)),
    },
    Api: {
        "baseUrl": ("base_url", None),
        "headers": ("headers", dict),
        "allowedHosts": ("allowed_hosts", tuple),
        "retry": ("retry", lambda value: _from_trusted(Retry, value)),
        "tokenExpiredStatuses": ("token_expired_statuses", tuple),
    },
    Retry: {
        "statuses": ("statuses", tuple),
        "retryAfterHeaders": ("retry_after_headers", tuple),
        "maxAttempts": ("max_attempts", None),
        "maxWaitSeconds": ("max_wait_seconds", None),
    },
    Verify: {
        "expect": ("expect", tuple),
        "account": ("account", dict),
        "baseUrl": ("base_url", None),
        "keep": ("keep", tuple),
    },
    ApiKeyAuth: {
        "headerName": ("header_name", None),
        "queryParam": ("query_param", None),
        "valuePrefix": ("value_prefix", None),
    },
    BasicAuth: {
        "usernameLabel": ("username_label", None),
        "passwordLabel": ("password_label", None),
        "passwordRequired": ("password_required", None),
    },
    OAuth: {
        "authorizeUrl": ("authorize_url", None),
        "tokenUrl": ("token_url", None),
        "scopes": ("scopes", tuple),
        "revocationUrl": ("revocation_url", None),
        "grant": ("grant", Grant),
        "clientAuth": ("client_auth", ClientAuth),
        "scopeSeparator": ("scope_separator", None),
        "authorizeParams": ("authorize_params", dict),
        "tokenParams": ("token_params", dict),
        "refreshParams": ("refresh_params", dict),
        "tokenRequestFormat": ("token_request_format", TokenRequestFormat),
        "tokenResponse": ("token_response", _optional(TokenResponsePaths)),
        "refreshMarginSeconds": ("refresh_margin_seconds", None),
        "headerName": ("header_name", None),
        "valuePrefix": ("value_prefix", None),
    },
    TokenResponsePaths: {
        "accessTokenPath": ("access_token_path", None),
        "refreshTokenPath": ("refresh_token_path", None),
        "expiresInPath": ("expires_in_path", None),
        "expiresInUnit": ("expires_in_unit", ExpiresInUnit),
        "keep": ("keep", tuple),
    },
    Field: {
        "type": ("type", FieldType),
        "minLength": ("min_length", None),
        "maxLength": ("max_length", None),
        "choices": ("choices", tuple),
    },
    Connection: {
        "startPath": ("start_path", None),
        "statusPath": ("status_path", None),
        "disconnectPath": ("disconnect_path", None),
        "accountKey": ("account_key", None),
    },
}


_MISSING = object()
# A class at runtime, though attrs' stubs declare Factory as an overloaded function.
_FACTORY: type = attrs.Factory  # type: ignore[assignment]

# Per class, made once: (wire name, slot setter, builder or None, default, factory or None)
# for every attribute, in order.
_Plan = list[tuple[str, Any, Any, Any, Any]]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """How to fill each slot of ``cls`` from trusted wire data (made on first use)."""
    builders = _BUILDERS.get(cls, {})
    by_attribute = {attribute: (wire, build) for wire, (attribute, build) in builders.items()}
    plan: _Plan = []
    for field in attrs.fields(cls):
        wire, build = by_attribute.get(field.name, (field.name, None))
        # Every model class is slotted: each attribute is a member descriptor, and
        # setting it directly is what the frozen class's __init__ does too.
        setter = cls.__dict__[field.name].__set__
        default = field.default
        factory = getattr(default, "factory", None) if isinstance(default, _FACTORY) else None
        plan.append((wire, setter, build, default, factory))
    _PLANS[cls] = plan
    return plan


def _from_trusted(cls: type, data: dict[str, Any]) -> Any:
    """Build ``cls`` from trusted wire data, without validation or keyword arguments.

    ``object.__new__`` and then every slot set in turn, as the generated
    ``__init__`` sets them; an absent key takes the attribute's default (a
    factory is called anew, as ``__init__`` calls it).
    """
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _plan(cls)
    obj: Any = object.__new__(cls)
    get = data.get
    for wire, setter, build, default, factory in plan:
        value = get(wire, _MISSING)
        if value is _MISSING:
            if default is attrs.NOTHING:  # a required attribute: the data is not what we wrote
                raise KeyError(wire)
            value = default if factory is None else factory()
        elif build is not None:
            value = build(value)
        setter(obj, value)
    return obj


def from_trusted_wire(data: dict[str, Any]) -> Connector:
    """Build a :class:`Connector` from wire data validated earlier, without re-validating.

    Only for data connectors-core validated itself (the discovery index); use
    :func:`~connectors_core.define_connector` for anything else.
    """
    result: Connector = _from_trusted(Connector, data)
    return result
