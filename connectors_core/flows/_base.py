"""What every flow is: the server side of one auth type.

A :class:`Flow` answers two kinds of question. From the manifest alone (cheap,
no I/O): what the connect step is (:class:`ConnectStep`), which inputs the
connect form has (:class:`Input`), whether the server is set up for it, what
the CLI shows about it. And with a :class:`FlowContext` (the
:class:`~connectors_core.connections.Connections` service): what a submit or
callback does, what it stores, what it adds to the status, how it
disconnects, how it renews tokens, and how it authenticates a request with
the stored credentials.

Module-level imports stay light: the CLI and the scaffold read flows without
loading the web or database stack; server work imports what it needs lazily.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from .._events import Actor
from .._exceptions import IntegrationError
from .._manifest import Connector, Field, FieldType

if TYPE_CHECKING:
    import httpx2
    import pluggy

    from .._registry import Registry
    from .._settings import ClientCredentials, Settings
    from ..connections._oauth import OAuthClient
    from ..store import ConnectionSummary, Store, StoredConnection, TokenSet

__all__ = [
    "ConnectStep",
    "Flow",
    "FlowContext",
    "Input",
    "Redirect",
    "ReplaceCheck",
    "Submission",
    "field_inputs",
]

ReplaceCheck = Callable[["ConnectionSummary"], Awaitable[bool]]
"""Asked before new credentials replace an existing connection's: whether they may."""


class ConnectStep(enum.Enum):
    """What the Connect action of a card is."""

    REDIRECT = "redirect"
    """A link: ``GET /connect`` sends the browser to the provider."""

    FORM = "form"
    """A form of :meth:`Flow.inputs`, posted to ``/connect``."""

    BUTTON = "button"
    """A form without inputs: one click connects."""


_HTML_TYPES = {
    FieldType.TEXT: "text",
    FieldType.SECRET: "password",
    FieldType.URL: "url",
    FieldType.HOSTNAME: "text",
    FieldType.EMAIL: "email",
    FieldType.INTEGER: "number",
    FieldType.BOOLEAN: "checkbox",
    FieldType.CHOICE: "select",
}


@attrs.frozen(kw_only=True)
class Input:
    """One input of a connect form: a manifest field, or a credential the flow asks for."""

    name: str
    """The form name, also the key of error messages (``shop``, ``api_key``)."""

    json_name: str
    """The key of a JSON body (``shop``, ``apiKey``)."""

    label: str
    """The input's label."""

    html_type: str
    """The HTML input type: ``text``, ``password``, ``url``, ``email``, ``number``,
    ``checkbox`` or ``select``."""

    required: bool = True
    """Whether a value must be entered."""

    secret: bool = False
    """Never rendered back into a page, never stored in plain text."""

    help: str | None = None
    """A hint shown under the input."""

    example: str | None = None
    """Shown as the input's placeholder."""

    prefix: str | None = None
    """Text before the input."""

    suffix: str | None = None
    """Text after the input."""

    choices: tuple[str, ...] = ()
    """The options of a ``select``."""

    min_length: int | None = None
    """The fewest characters, if any."""

    max_length: int | None = None
    """The most characters, if any."""

    default: str | int | bool | None = None
    """The value the form starts with."""

    field: Field | None = None
    """The manifest field this input is, or None for the flow's own credentials."""


def field_inputs(connector: Connector) -> tuple[Input, ...]:
    """The inputs of the connector's own fields, in manifest order."""
    return tuple(_field_input(field) for field in connector.fields)


def _field_input(field: Field) -> Input:
    return Input(
        name=field.id,
        json_name=field.id,
        label=field.label,
        html_type=_HTML_TYPES[field.type],
        required=field.required and field.type is not FieldType.BOOLEAN,
        secret=field.type is FieldType.SECRET,
        help=field.help,
        example=field.example,
        prefix=field.prefix,
        suffix=field.suffix,
        choices=field.choices,
        min_length=field.min_length,
        max_length=field.max_length,
        default=field.default,
        field=field,
    )


@attrs.frozen
class Redirect:
    """The browser goes to the provider next (to ``url``), to come back to the callback."""

    url: str


@attrs.frozen
class Submission:
    """What a user submitted to connect, after the connector's fields were checked."""

    config: Mapping[str, Any]
    """The non-secret field values, checked and typed."""

    secrets: Mapping[str, str] = attrs.field(repr=False)
    """The secret field values, checked."""

    credentials: Mapping[str, str] = attrs.field(repr=False)
    """The flow's own inputs as submitted (``api_key``, ``username``, ``password``)."""

    session_id: str | None = attrs.field(default=None, repr=False)
    """The browser session that submitted, for flows that redirect to a provider."""

    connection_id: str | None = None
    """The connection being connected again (its account may not change), or None."""

    actor: Actor | None = None
    """Who submitted, as the authenticator named them."""

    may_replace: ReplaceCheck | None = attrs.field(default=None, repr=False, eq=False)
    """Whether the submitter may replace the credentials of an existing connection (the
    one the new credentials turn out to belong to); None: anyone may."""


class FlowContext(Protocol):
    """What a flow may use of the server: implemented by ``Connections``."""

    registry: Registry
    store: Store
    settings: Settings

    def now(self) -> float:
        """The current time (UNIX seconds; a test may move it)."""

    def oauth_client(
        self,
        connector: Connector,
        config: Mapping[str, Any],
        credentials: ClientCredentials | None = None,
        hooks: pluggy.HookRelay | None = None,
    ) -> OAuthClient:
        """The OAuth client of ``connector``, its URLs filled from ``config``.

        With ``credentials``, the connection's own client; else the server's.
        With ``hooks``, the plugin's token request and response hooks apply.
        """

    def http(self) -> httpx2.AsyncClient:
        """An HTTP client for calls to providers (the configured timeout and transport)."""

    async def plugin_hooks(self, connector: Connector) -> pluggy.HookRelay:
        """The hooks of the connector's plugin, loaded if need be."""

    async def save_connection(
        self,
        connector: Connector,
        candidate: StoredConnection,
        *,
        hooks: pluggy.HookRelay,
        target: str | None = None,
        actor: Actor | None = None,
        may_replace: ReplaceCheck | None = None,
    ) -> StoredConnection:
        """Store verified new credentials: a new connection, or over the account's own.

        ``target`` names the connection being connected again (its account may
        not change: ``account_mismatch``). ``may_replace`` is asked before an
        existing connection's credentials are replaced (``forbidden``). Writes
        the ``connected`` or ``reconnected`` event with it.
        """


class Flow(abc.ABC):
    """The server side of one auth type. Subclasses are stateless singletons."""

    auth_type: ClassVar[str]
    """The manifest's ``auth.type`` this flow serves."""

    label: ClassVar[str]
    """How the page and the CLI name the sign-in method (``OAuth``, ``API key``)."""

    credential_reason: ClassVar[str] = "invalid_fields"
    """The reason code when only the flow's own credentials are invalid."""

    has_credentials: ClassVar[bool] = True
    """Whether a connection of this auth type sends credentials its API may refuse."""

    # --- from the manifest ---------------------------------------------------------

    def credential_inputs(self, connector: Connector) -> tuple[Input, ...]:
        """The inputs of the flow's own credentials (none by default)."""
        return ()

    def check_credentials(self, connector: Connector, values: Mapping[str, str]) -> dict[str, str]:
        """A message for each of the flow's own inputs that cannot be used, by name."""
        return {}

    def rejection_input(self, connector: Connector) -> str | None:
        """The input a provider's "these credentials are wrong" is shown beside (if any)."""
        inputs = self.credential_inputs(connector)
        return inputs[-1].name if inputs else None

    def inputs(self, connector: Connector) -> tuple[Input, ...]:
        """Every input of the connect form: the connector's fields, then the credentials."""
        return field_inputs(connector) + self.credential_inputs(connector)

    def connect_step(self, connector: Connector) -> ConnectStep:
        """What Connect is: a form when there is anything to enter, else one button."""
        return ConnectStep.FORM if self.inputs(connector) else ConnectStep.BUTTON

    def continues_at_provider(self, connector: Connector) -> bool:
        """Whether connecting continues at the provider's site (a redirect and back)."""
        return False

    def needs_client(self, connector: Connector) -> bool:
        """Whether the server needs a client registered with the provider (OAuth)."""
        return False

    def scopes(self, connector: Connector) -> tuple[str, ...]:
        """The scopes the connector asks the provider for (none by default)."""
        return ()

    def refresh_margin(self, connector: Connector) -> int | None:
        """Seconds before expiry to renew tokens, if the connector says (else the server's)."""
        return None

    def configured(self, connector: Connector, settings: Settings) -> bool:
        """Whether this server is set up to connect ``connector``: its client, if it needs one."""
        return not self.needs_client(connector) or (
            settings.client_credentials(connector.id) is not None
        )

    def describe(self, connector: Connector) -> list[tuple[str, str]]:
        """``(label, value)`` lines about the auth, for ``connectors show``."""
        return []

    def scaffold(self, connector_id: str, name: str) -> tuple[dict[str, Any], str]:
        """The ``auth`` object of a new connector's manifest, and its first set-up step."""
        raise NotImplementedError

    # --- with the server ----------------------------------------------------------------

    @abc.abstractmethod
    async def connect(
        self, ctx: FlowContext, connector: Connector, tenant: str, submission: Submission
    ) -> StoredConnection | Redirect:
        """Connect from a submission: store the connection, or redirect to the provider.

        :raises InvalidFieldsError: a credential failed its rules (nothing stored).
        :raises IntegrationError: with a reason code.
        """

    async def callback(
        self,
        ctx: FlowContext,
        connector: Connector,
        tenant: str,
        session_id: str | None,
        params: Mapping[str, str],
        *,
        actor: Actor | None = None,
        may_replace: ReplaceCheck | None = None,
    ) -> StoredConnection:
        """Finish a redirect flow from the provider's answer (redirect flows only).

        Other flows never start an authorization, so no state can be pending.
        """
        raise IntegrationError(
            "unknown, used or expired authorization state",
            reason="invalid_state",
            connector_id=connector.id,
        )

    def status_details(self, connector: Connector, summary: ConnectionSummary) -> dict[str, Any]:
        """What this auth type adds to a connected status object."""
        return {}

    async def disconnect(
        self, ctx: FlowContext, connector: Connector, connection: StoredConnection
    ) -> None:
        """Revoke at the provider where the auth type allows (nothing by default).

        Failures are logged, never raised: the local secrets go regardless.
        """
        return None

    def query_credential(self, connector: Connector) -> str | None:
        """The query parameter the credentials travel in, if they do (an API key's ``queryParam``).

        The API client keeps it out of every URL a job sees.
        """
        return None

    def renewable(self, connector: Connector, connection: StoredConnection) -> bool:
        """Whether the stored credentials can be renewed without the user (none by default)."""
        return False

    async def renew(
        self,
        ctx: FlowContext,
        connector: Connector,
        connection: StoredConnection,
        on_rotated: Any = None,
    ) -> TokenSet:
        """New tokens for ``connection`` (refresh, or a new client-credentials token)."""
        raise IntegrationError(
            f"connector {connector.id!r} has no tokens to renew",
            reason="unsupported_auth",
            connector_id=connector.id,
        )

    @abc.abstractmethod
    def authenticate(
        self, connector: Connector, connection: StoredConnection, request: httpx2.Request
    ) -> None:
        """Put the stored credentials on an outgoing API request (in place).

        The seam of the authenticated HTTP client: a bearer token, an API key
        in its header or query parameter, Basic credentials. Tokens are taken
        as they are; renewing them first is the caller's job.
        """
