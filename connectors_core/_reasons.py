"""Every reason code, in one table: its HTTP status, the page's message and its docs line.

A failed operation raises :class:`~connectors_core.IntegrationError` with one
of these codes; the web layer turns it into ``{"error": "<code>", ...}`` with
the code's status for API clients, or sends a browser back to the
Integrations page, which shows the code's message. ``docs/connections.md``
lists every code, and a test holds the two together.
"""

from __future__ import annotations

import enum

__all__ = ["Reason"]


class Reason(enum.StrEnum):
    """A stable reason code; the value is what JSON carries (``"csrf_failed"``)."""

    UNKNOWN_CONNECTOR = "unknown_connector"
    NOT_CONNECTABLE = "not_connectable"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_AUTH = "unsupported_auth"
    UNAUTHENTICATED = "unauthenticated"
    CSRF_FAILED = "csrf_failed"
    NOT_CONFIGURED = "not_configured"
    INVALID_API_KEY = "invalid_api_key"
    INVALID_CREDENTIALS = "invalid_credentials"
    INVALID_FIELDS = "invalid_fields"
    INVALID_REQUEST = "invalid_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID_STATE = "invalid_state"
    SESSION_MISMATCH = "session_mismatch"
    WRONG_TENANT = "wrong_tenant"
    ISSUER_MISMATCH = "issuer_mismatch"
    ACCESS_DENIED = "access_denied"
    PROVIDER_ERROR = "provider_error"
    EXCHANGE_FAILED = "exchange_failed"
    VERIFICATION_FAILED = "verification_failed"
    REFRESH_FAILED = "refresh_failed"
    NOT_CONNECTED = "not_connected"
    NEEDS_REAUTH = "needs_reauth"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PLUGIN_UNAVAILABLE = "plugin_unavailable"
    LEASE_LOST = "lease_lost"
    NO_API = "no_api"
    HOST_NOT_ALLOWED = "host_not_allowed"
    CONNECTION_REQUIRED = "connection_required"
    UNKNOWN_CONNECTION = "unknown_connection"
    ACCOUNT_MISMATCH = "account_mismatch"
    ACCOUNT_TAKEN = "account_taken"
    FORBIDDEN = "forbidden"
    INTEGRATION_ERROR = "integration_error"

    @property
    def status(self) -> int:
        """The HTTP status of this reason: 4xx for what a client can cause, 5xx upstream."""
        return _TABLE[self][0]

    @property
    def message(self) -> str:
        """What the Integrations page says; ``{name}`` is the connector's name."""
        return _TABLE[self][1]

    @property
    def doc(self) -> str:
        """When this reason is given, as the docs say it."""
        return _TABLE[self][2]

    @classmethod
    def of(cls, code: str) -> Reason:
        """The reason for ``code``; an unknown code (a plugin's own) is ``integration_error``."""
        try:
            return cls(code)
        except ValueError:
            return cls.INTEGRATION_ERROR


_TABLE: dict[Reason, tuple[int, str, str]] = {
    Reason.UNKNOWN_CONNECTOR: (
        404,
        "That integration is not installed here.",
        "no connector with that id",
    ),
    Reason.NOT_CONNECTABLE: (
        404,
        "{name} cannot be connected from this page.",
        "the manifest declares no `connection` paths",
    ),
    Reason.NOT_FOUND: (
        404,
        "That page does not exist.",
        "a path under `/api/integrations` that no route serves",
    ),
    Reason.METHOD_NOT_ALLOWED: (
        405,
        "That action is not available here.",
        "a method the path does not serve; `Allow` lists those it does",
    ),
    Reason.UNSUPPORTED_AUTH: (
        400,
        "{name} does not connect that way.",
        "e.g. an API key sent to an OAuth connector",
    ),
    Reason.UNAUTHENTICATED: (
        401,
        "Sign in to manage integrations.",
        "the authenticator found no tenant",
    ),
    Reason.CSRF_FAILED: (
        403,
        "That form expired. Reload the page and try again.",
        "missing or wrong CSRF token, or a cross-site request",
    ),
    Reason.NOT_CONFIGURED: (
        409,
        "{name} is not set up on this server yet. Ask your administrator to configure it.",
        "the OAuth client of the connector is not configured, or the provider rejected it "
        "(`invalid_client`)",
    ),
    Reason.INVALID_API_KEY: (
        422,
        "That API key for {name} is not valid.",
        "an API key shorter than 8 or longer than 512 characters, or with anything but visible "
        "ASCII (spaces, accents, control characters cannot travel in an HTTP header)",
    ),
    Reason.INVALID_CREDENTIALS: (
        422,
        "Those credentials for {name} are not valid.",
        "a Basic username or password, or a client id and secret (client credentials), that "
        "is missing, too long (512) or has characters that cannot travel in an HTTP header "
        "(a Basic username may not contain `:`), or that the provider did not accept; or "
        "credentials the manifest's `verify` request or `verify_connection` refused",
    ),
    Reason.INVALID_FIELDS: (
        422,
        "Some of the values for {name} are not valid.",
        "a connection field failed its rules; `fields` maps each field id to its message",
    ),
    Reason.INVALID_REQUEST: (
        400,
        "That request could not be read. Try again.",
        "a body the route cannot read: not UTF-8, JSON that is not a flat object of strings, "
        "a field it does not take or sent twice, more than 64 form fields, a body shorter "
        "than its `Content-Length`",
    ),
    Reason.PAYLOAD_TOO_LARGE: (
        413,
        "That request was too large.",
        "a body over 8 KiB (with a valid `X-CSRF-Token`; without one, `csrf_failed`)",
    ),
    Reason.UNSUPPORTED_MEDIA_TYPE: (
        415,
        "That request could not be read. Try again.",
        "a non-empty body that is neither a form nor JSON (UTF-8)",
    ),
    Reason.INVALID_STATE: (
        400,
        "That connection attempt expired or was already used. Try again.",
        "callback: the `state` is missing, forged, replayed or expired",
    ),
    Reason.SESSION_MISMATCH: (
        403,
        "That connection attempt started in another browser. Try again.",
        "callback: the authorization was started in another browser session",
    ),
    Reason.WRONG_TENANT: (
        403,
        "That connection attempt belongs to another account. Try again.",
        "callback: the authorization was started by another tenant",
    ),
    Reason.ISSUER_MISMATCH: (
        400,
        "That answer did not come from {name}. Try again.",
        "callback: `iss` is missing or is not the connector's declared `issuer` (RFC 9207, "
        "a mix-up defence); checked before any token request",
    ),
    Reason.ACCESS_DENIED: (
        400,
        "Connecting {name} was cancelled at the provider.",
        "callback: the user (or the provider) declined the authorization",
    ),
    Reason.PROVIDER_ERROR: (
        502,
        "{name} refused the connection. Try again, or contact {name}'s support.",
        "callback: the provider answered with an error, or without a code",
    ),
    Reason.EXCHANGE_FAILED: (
        502,
        "{name} did not accept the connection. Try again.",
        "the token endpoint refused the code or the client credentials, or its answer was unusable",
    ),
    Reason.VERIFICATION_FAILED: (
        502,
        "{name} answered the check of the new connection in a way that could not be read.",
        "the verification's answer could not be read (not JSON, a URL that cannot be built, "
        "the plugin's `verify_connection` raised)",
    ),
    Reason.REFRESH_FAILED: (
        502,
        "{name} could not renew the connection. Try again later.",
        "the token endpoint's answer to a refresh was unusable",
    ),
    Reason.NOT_CONNECTED: (
        409,
        "{name} is not connected.",
        "nothing is connected for this tenant",
    ),
    Reason.NEEDS_REAUTH: (
        409,
        "{name} needs to be connected again.",
        "the provider rejected the grant; the user must connect again",
    ),
    Reason.PROVIDER_UNAVAILABLE: (
        503,
        "{name} could not be reached. Try again in a moment.",
        "the provider failed transiently (no answer, 5xx, 429)",
    ),
    Reason.PLUGIN_UNAVAILABLE: (
        503,
        "{name} is not available right now. Try again in a moment.",
        "the connector's plugin failed to load, raised while starting to connect, or is "
        "still loading after `CONNECTORS_PLUGIN_LOAD_TIMEOUT` seconds (try again)",
    ),
    Reason.LEASE_LOST: (
        503,
        "{name} is busy. Try again in a moment.",
        "a refresh outlived its lease and another holder took over (SQLite)",
    ),
    Reason.NO_API: (
        409,
        "{name} has no API to call.",
        "`client()` of a connector that declares no `api.baseUrl`",
    ),
    Reason.HOST_NOT_ALLOWED: (
        400,
        "{name} may not send its credentials there.",
        "a request through `client()` to a host outside `api.baseUrl`'s and `api.allowedHosts` "
        "(a redirect included), or over plain http beyond loopback; nothing was sent",
    ),
    Reason.CONNECTION_REQUIRED: (
        409,
        "Choose which {name} connection.",
        "a route or call without a connection id, for a connector holding several connections "
        "for the tenant (`connection.multiple`)",
    ),
    Reason.UNKNOWN_CONNECTION: (
        404,
        "That {name} connection is gone.",
        "a route names a connection id the tenant does not have (disconnected, or never made)",
    ),
    Reason.ACCOUNT_MISMATCH: (
        409,
        "That is another {name} account than the one this connection is for. Nothing changed.",
        "connecting an existing connection again, with an account other than its own; nothing "
        "is stored and the new credentials are revoked where the provider allows",
    ),
    Reason.ACCOUNT_TAKEN: (
        409,
        "That {name} account is being connected right now. Try again.",
        "two attempts connected the same account at the same moment; the other one won",
    ),
    Reason.FORBIDDEN: (
        403,
        "You may not do that.",
        "the host's authorizer refused the action (`view`, `connect`, `disconnect`, `test` or "
        "`manage`)",
    ),
    Reason.INTEGRATION_ERROR: (
        400,
        "Connecting {name} failed.",
        "any other failure (a plugin's own reason code is shown as this)",
    ),
}
