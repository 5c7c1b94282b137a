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

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from ._entrypoints import GROUP

if TYPE_CHECKING:
    from ._manifest import Connector

__all__ = [
    "PROJECT_NAME",
    "after_connect",
    "before_disconnect",
    "connection_account",
    "handle_connect",
    "hookimpl",
    "hookspec",
    "on_connection_event",
    "parse_token_response",
    "prepare_request",
    "prepare_token_request",
    "provide_connector",
    "sandbox_api",
    "verify_connection",
]

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
def handle_connect(connector: Connector, request: Any, tenant: str) -> Any | None:
    """Run the connect step for a connector, instead of the generic flow.

    Called on the plugin that provides ``connector`` when a user starts
    connecting it. The first non-None result is used; when it returns None,
    connectors-core runs its generic flow for the connector's ``auth`` type
    (OAuth authorization code with PKCE, or the API-key form).

    :param connector: the manifest of the connector being connected.
    :param request: the web framework's request for the connect route (a
        Starlette ``Request``).
    :param tenant: the tenant the connection will belong to.
    :return: a response to send (a Starlette ``Response``), or None to leave
        the connect step to the generic flow.
    """


@hookspec(firstresult=True)
def connection_account(
    connector: Connector,
    access_token: str,
    token_response: Mapping[str, Any],
    http: Any,
    settings: Any,
) -> Mapping[str, str] | Awaitable[Mapping[str, str] | None] | None:
    """Identify the provider account a new connection belongs to.

    Called on the plugin that provides ``connector`` right after a successful
    code exchange, before anything is stored. The result is kept with the
    connection and shown in its status (for example ``organizationId`` and
    ``userId``). It may be a coroutine. Without an implementation,
    connectors-core takes ``organization_id`` / ``user_id`` (or their
    camelCase forms) from the token response.

    :param connector: the connector being connected.
    :param access_token: the new access token, to call the provider's API.
        Never log it or put it in the result.
    :param token_response: the provider's token response.
    :param http: an ``httpx2.AsyncClient`` with the server's timeout; a
        transport error or an HTTP 5xx / 429 status raised from it ends the
        flow as ``provider_unavailable``; other HTTP errors, and any other
        exception the implementation raises (a body it cannot parse, a
        missing field), as ``exchange_failed``. Nothing is stored then.
    :param settings: the server :class:`~connectors_core.connections.Settings`,
        for per-connector settings such as an API base URL.
    :return: a mapping of account fields (string values), or None.
    """


@hookspec(firstresult=True)
def prepare_token_request(
    connector: Connector, grant_type: str, params: Mapping[str, str]
) -> Mapping[str, str] | None:
    """Adjust a request to the token endpoint before it is sent.

    Called on the plugin that provides ``connector`` for every code exchange,
    refresh and client credentials request, with the parameters the flow
    built (the manifest's ``tokenParams`` / ``refreshParams`` included, the
    client's secret included when it authenticates in the body). For what a
    manifest cannot say: a parameter computed per request, a signed assertion.

    :param connector: the connector whose token endpoint is called.
    :param grant_type: ``authorization_code``, ``refresh_token`` or ``client_credentials``.
    :param params: the body's parameters. Never log them: they hold a code,
        a refresh token or a client secret.
    :return: the parameters to send instead, or None to send them unchanged.
    """


@hookspec(firstresult=True)
def parse_token_response(
    connector: Connector, grant_type: str, response: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """Map a token endpoint's non-standard answer onto the standard fields.

    Called on the plugin that provides ``connector`` with every successful
    (2xx) JSON answer of its token endpoint, before connectors-core reads it
    (and after the manifest's ``tokenResponse`` paths, if any). Return an
    object with ``access_token`` and, where the provider gives them,
    ``refresh_token``, ``expires_in`` (seconds), ``scope`` and
    ``token_type``; other keys are kept for the account lookup and
    ``tokenResponse.keep``.

    :param connector: the connector whose token endpoint answered.
    :param grant_type: ``authorization_code``, ``refresh_token`` or ``client_credentials``.
    :param response: the parsed answer. Never log it: it holds tokens.
    :return: the answer in the standard shape, or None to read it as it is.
    """


@hookspec(firstresult=True)
def verify_connection(
    connector: Connector, connection: Any, http: Any, settings: Any
) -> Mapping[str, str] | bool | Awaitable[Mapping[str, str] | bool | None] | None:
    """Prove new credentials work before they are stored, when one request cannot.

    Called on the plugin that provides ``connector`` after the manifest's
    ``verify`` request (if any) passed, for every auth type, before anything
    is stored. May be a coroutine.

    :param connector: the connector being connected.
    :param connection: the connection about to be stored (a
        :class:`~connectors_core.store.StoredConnection`: its ``config``, and
        the credentials: never log them).
    :param http: an ``httpx2.AsyncClient`` with the server's timeout; a
        transport error or an HTTP 5xx / 429 status raised from it means
        ``provider_unavailable``, a 4xx ``invalid_credentials``.
    :param settings: the server settings.
    :return: a mapping of account fields (the credentials work, and this is
        whose they are), True (they work), False (they do not:
        ``invalid_credentials``), or None to leave the decision to the manifest.
    """


@hookspec(firstresult=True)
def prepare_request(connector: Connector, connection: Any, request: Any) -> Any | None:
    """Sign or adjust a request to the connector's API, after its credentials are on it.

    Called on the plugin that provides ``connector`` for every attempt of
    every request sent through ``Connections.client`` (so a signature over a
    timestamp is fresh on a retry), with the request about to be sent. For
    what a manifest cannot say: an HMAC signature, a per-connection header,
    a body checksum. May be a coroutine. A hook that raises fails that
    request with ``plugin_unavailable``; nothing is sent.

    :param connector: the connector whose API is called.
    :param connection: the connection the request is sent for (a
        :class:`~connectors_core.store.StoredConnection`: its ``config`` and
        ``secrets``; never log them).
    :param request: the ``httpx2.Request`` about to be sent, credentials on it;
        change it in place. Never log it.
    :return: a new ``httpx2.Request`` to send instead, or None to send ``request``.
    """


@hookspec(firstresult=True)
def sandbox_api(connector: Connector) -> Any | None:
    """Provide an ASGI application that stands in for the connector's API.

    Called on the plugin that provides ``connector`` when the sandbox
    (``create_app(sandbox=True)``, ``connectors serve --demo``) or the
    contract suite starts its local provider. The app is served behind that
    provider, which answers 401 itself to any request without a credential
    it issued and tells the app who is calling in ``X-Sandbox-User-Id``,
    ``X-Sandbox-Organization-Id`` and ``X-Sandbox-Scopes`` headers; the connector's
    ``CONNECTORS_<ID>_API_BASE_URL`` points at it, so its ``verify``
    request, its account lookups and a job's ``Connections.client`` reach
    it. Serve a small, deterministic set of sample data.

    :param connector: the connector whose API is wanted.
    :return: an ASGI application (a Starlette app, say), or None for none.
    """


@hookspec(firstresult=True)
def after_connect(
    connector: Connector, connection: Any, http: Any, settings: Any
) -> Mapping[str, str] | Awaitable[Mapping[str, str] | None] | None:
    """Fetch what to keep of the account a connection was just made for.

    Called on the plugin that provides ``connector`` once new credentials
    passed verification, before the connection is stored (a new one, or
    connected again): for non-secret account data the manifest cannot ask
    for, such as a HubSpot portal id or a Mailchimp account name. The result
    is kept with the connection's account fields (shown in its status, sent
    with its events) and may supply the connector's ``accountKey``. May be a
    coroutine. A hook that raises is logged (its type only) and the
    connection is stored without what it would have added.

    :param connector: the connector being connected.
    :param connection: the connection about to be stored (a
        :class:`~connectors_core.store.StoredConnection`; its credentials:
        never log them).
    :param http: an ``httpx2.AsyncClient`` with the server's timeout.
    :param settings: the server settings.
    :return: a mapping of account fields (string values), or None.
    """


@hookspec(firstresult=True)
def before_disconnect(
    connector: Connector, connection: Any, http: Any, settings: Any, replacing: bool
) -> bool | Awaitable[bool | None] | None:
    """Revoke a connection's credentials the provider's own way, or keep them.

    Called on the plugin that provides ``connector`` before connectors-core
    revokes a connection's credentials: when the user disconnects, and when
    connecting an account again replaces them (``replacing``). Return None
    to let connectors-core revoke them (RFC 7009, where the manifest has a
    ``revocationUrl``), True when the plugin revoked them itself, or False
    to revoke nothing (a provider whose revocation would also end the new
    grant, or an app installation shared with others). May be a coroutine.
    The connection is deleted (or replaced) whatever happens here; a hook
    that raises is logged and connectors-core revokes as usual.

    :param connector: the connector whose connection goes.
    :param connection: the connection whose credentials go (never log them).
    :param http: an ``httpx2.AsyncClient`` with the server's timeout.
    :param settings: the server settings.
    :param replacing: True when new credentials of the same account replace these.
    :return: True (revoked here), False (revoke nothing), or None (connectors-core revokes).
    """


@hookspec
def on_connection_event(connector: Connector, event: Any) -> Awaitable[None] | None:
    """Learn that something happened to a connection of the plugin's connector.

    Called on the plugin that provides ``connector`` for each
    :class:`~connectors_core.ConnectionEvent` of its connections
    (``connected``, ``reconnected``, ``needs_reauth``, ``recovered``,
    ``verification_failed``, ``disconnected``), at least once (the same
    ``event.id`` may come again after a crash) and in order per connection,
    from the server's delivery loop, never from the request that caused it.
    May be a coroutine. A hook that raises, or takes longer than
    ``CONNECTORS_EVENT_TIMEOUT``, is called again later with the same event,
    and later events of that connection wait for it.

    :param connector: the connector of the connection.
    :param event: the event (no secret in it).
    :return: None (a coroutine may be returned and is awaited).
    """
