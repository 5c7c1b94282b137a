"""The OAuth 2.0 client side, on Authlib: authorize URL, code exchange, refresh, revoke.

Kept apart from the routes and the store. Authlib builds and sends the
requests (client authentication, PKCE); every answer of the token endpoint is
then sorted by :func:`~connectors_core.connections._answers.classify` before
Authlib parses anything, and becomes a token set or one of the stable errors
of :mod:`connectors_core._exceptions` (the table is
:data:`~connectors_core.connections._answers.OUTCOMES`):

* no answer, HTTP 5xx or 429, ``temporarily_unavailable`` → :class:`ProviderUnavailableError`
  (transient: try again later, never ask the user to reconnect);
* on refresh, ``invalid_grant`` or any other 401 / 403 → :class:`NeedsReauthError`;
* ``invalid_client`` / ``unauthorized_client`` → ``not_configured`` (the server's
  OAuth client is wrong; reconnecting would not help);
* anything else → ``exchange_failed`` or ``refresh_failed``.

Messages carry the HTTP status and the provider's error code, never a body,
a token, a secret or a verifier.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client

from .._exceptions import (
    IntegrationError,
    InvalidFieldsError,
    NeedsReauthError,
    ProviderUnavailableError,
)
from .._fields import PLACEHOLDER, TemplateError, resolve_url
from .._manifest import Connector, ExpiresInUnit, OAuth, TokenRequestFormat
from .._settings import ClientCredentials, Settings
from ..store import TokenSet
from ._answers import (
    OUTCOMES,
    Answer,
    Shape,
    TokenAnswer,
    classify,
    lifetime,
    standard,
    unreachable,
)

__all__ = ["OAuthClient", "OAuthEndpoints", "TokenResponse", "new_state", "new_verifier"]

log = logging.getLogger("connectors_core.connections")


def new_state() -> str:
    """A fresh, unguessable OAuth ``state``."""
    return secrets.token_urlsafe(32)


def new_verifier() -> str:
    """A fresh PKCE code verifier (RFC 7636: 43 to 128 characters)."""
    return secrets.token_urlsafe(64)


@attrs.frozen
class OAuthEndpoints:
    """Where a connector's provider is reached (the manifest's, or a configured base URL)."""

    authorize_url: str | None
    token_url: str
    revocation_url: str | None

    @classmethod
    def of(
        cls, connector: Connector, settings: Settings, config: Mapping[str, Any] | None = None
    ) -> OAuthEndpoints:
        """The endpoints of ``connector``, their ``{field}`` placeholders filled from ``config``.

        ``CONNECTORS_<ID>_BASE_URL`` moves them all to another origin (keeping
        their paths); ``CONNECTORS_<ID>_AUTHORIZE_URL``, ``_TOKEN_URL`` and
        ``_REVOCATION_URL`` replace one each.

        :raises InvalidFieldsError: a value cannot fill its placeholder safely.
        """
        auth = connector.auth
        assert isinstance(auth, OAuth)
        explicit = {
            name: settings.connector_setting(connector.id, name)
            for name in ("authorize_url", "token_url", "revocation_url")
        }
        base = settings.connector_setting(connector.id, "base_url")

        def move(url: str | None) -> str | None:
            if url is None or not base:
                return url
            target = urlsplit(base.rstrip("/"))
            source = urlsplit(url)
            path = target.path + source.path
            return urlunsplit((target.scheme, target.netloc, path, source.query, ""))

        def fill(url: str | None) -> str | None:
            if url is None:
                return None
            try:
                return resolve_url(url, config or {})
            except TemplateError as exc:
                if exc.field_id is None:  # the template itself, not a user's value
                    raise IntegrationError(
                        f"a URL of {connector.id!r} cannot be built: {exc.message}",
                        connector_id=connector.id,
                    ) from None
                raise InvalidFieldsError(
                    {exc.field_id: exc.message}, connector_id=connector.id
                ) from None

        authorize = explicit["authorize_url"] or move(fill(auth.authorize_url))
        token = explicit["token_url"] or move(fill(auth.token_url))
        assert token is not None
        return cls(authorize, token, explicit["revocation_url"] or move(fill(auth.revocation_url)))


@attrs.frozen
class TokenResponse:
    """A successful token response: the tokens, plus the raw fields (for account ids)."""

    tokens: TokenSet
    raw: Mapping[str, Any] = attrs.field(repr=False)


class _Answered(Exception):
    """Carries the classified answer out of Authlib before it parses the body (never escapes)."""

    def __init__(self, answer: TokenAnswer) -> None:
        super().__init__(answer.kind)
        self.answer = answer


def _answerer(shape: Shape | None) -> Callable[[httpx2.Response], NoReturn]:
    """Authlib compliance hook: classify the answer and take it away from Authlib's parser."""

    def answer(response: httpx2.Response) -> NoReturn:
        response.read()
        try:
            answered = classify(response, shape)
        except Exception as exc:  # noqa: BLE001 - a plugin's parse_token_response raised
            log.warning("parse_token_response raised %s", type(exc).__name__)
            answered = TokenAnswer(
                Answer.UNREADABLE, response.status_code, error=f"plugin {type(exc).__name__}"
            )
        raise _Answered(answered)

    return answer


def _filled(template: str, values: Mapping[str, Any]) -> str:
    """A parameter value with its ``{field}`` placeholders filled (values checked already)."""

    def value(match: re.Match[str]) -> str:
        found = values.get(match.group(1), "")
        return str(found).lower() if isinstance(found, bool) else str(found)

    return PLACEHOLDER.sub(value, template)


Prepare = Callable[[str, dict[str, str]], Mapping[str, str] | None]
"""A plugin's ``prepare_token_request``: (grant type, parameters) -> parameters or None."""


class _TokenRequests(httpx2.AsyncBaseTransport):
    """Rewrites the requests Authlib sends to the token endpoint, before they leave.

    Authlib builds every token request as a form; this hands its parameters
    to the plugin's ``prepare_token_request`` (if any), and sends them as JSON
    for providers whose endpoint takes JSON (``tokenRequestFormat: json``).
    """

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        token_url: str,
        *,
        as_json: bool,
        prepare: Prepare | None,
    ) -> None:
        self.inner = inner
        self.token_url = token_url
        self.as_json = as_json
        self.prepare = prepare

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        kind = request.headers.get("content-type", "")
        if str(request.url) != self.token_url or not kind.startswith(
            "application/x-www-form-urlencoded"
        ):
            return await self.inner.handle_async_request(request)
        from urllib.parse import parse_qsl, urlencode

        fields = dict(parse_qsl((await request.aread()).decode(), keep_blank_values=True))
        if self.prepare is not None:
            try:
                changed = self.prepare(fields.get("grant_type", ""), dict(fields))
            except Exception as exc:  # noqa: BLE001 - a plugin's bug ends this request, not the server
                # The type only: the parameters hold a code, a token or a secret.
                log.warning("prepare_token_request raised %s", type(exc).__name__)
                raise _Answered(
                    TokenAnswer(Answer.UNREADABLE, error=f"plugin {type(exc).__name__}")
                ) from None
            if changed is not None:
                fields = {str(k): str(v) for k, v in dict(changed).items()}
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in ("content-type", "content-length")
        }
        if self.as_json:
            content, kind = json.dumps(fields).encode(), "application/json"
        else:
            content = urlencode(fields).encode()
        request = httpx2.Request(
            request.method,
            request.url,
            headers={**headers, "Content-Type": kind},
            content=content,
            extensions=request.extensions,
        )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


RotatedToken = Callable[[str], Awaitable[object]]
"""Called with a new refresh token as soon as a refresh answer carries one."""


class OAuthClient:
    """Talks OAuth to one connector's provider on behalf of the server."""

    def __init__(
        self,
        connector: Connector,
        credentials: ClientCredentials,
        settings: Settings,
        *,
        config: Mapping[str, Any] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        hooks: Any = None,
    ) -> None:
        auth = connector.auth
        if not isinstance(auth, OAuth):
            raise IntegrationError(
                f"connector {connector.id!r} does not use OAuth",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        self.connector = connector
        self.auth = auth
        self.endpoints = OAuthEndpoints.of(connector, settings, config)
        self._config = dict(config or {})
        self._hooks = hooks
        """The plugin's hooks (``prepare_token_request``, ``parse_token_response``), if any."""
        self.redirect_uri = settings.redirect_uri(connector.id)
        self._credentials = credentials
        self._timeout = settings.http_timeout
        self._default_lifetime = settings.default_token_lifetime
        self._transport = transport
        self._clock = clock

    def _params(self, params: Mapping[str, str]) -> dict[str, str]:
        return {name: _filled(value, self._config) for name, value in params.items()}

    def _shape(self, grant_type: str) -> Shape | None:
        paths = self.auth.token_response
        declared = None
        if paths is not None:
            declared = standard(
                paths.access_token_path,
                paths.refresh_token_path,
                paths.expires_in_path,
                paths.expires_in_unit is ExpiresInUnit.MILLISECONDS,
            )
        hooks = self._hooks
        if hooks is None:
            return declared

        def shape(body: Mapping[str, Any]) -> Mapping[str, Any]:
            body = declared(body) if declared is not None else body
            mapped = hooks.parse_token_response(
                connector=self.connector, grant_type=grant_type, response=dict(body)
            )
            return body if mapped is None else {**body, **dict(mapped)}

        return shape

    def _token_transport(self) -> httpx2.AsyncBaseTransport | None:
        as_json = self.auth.token_request_format is TokenRequestFormat.JSON
        hooks = self._hooks
        if not as_json and hooks is None:
            return self._transport
        prepare: Prepare | None = None
        if hooks is not None:

            def prepare(grant_type: str, params: dict[str, str]) -> Mapping[str, str] | None:
                result: Mapping[str, str] | None = hooks.prepare_token_request(
                    connector=self.connector, grant_type=grant_type, params=params
                )
                return result

        inner = self._transport or httpx2.AsyncHTTPTransport()
        return _TokenRequests(inner, self.endpoints.token_url, as_json=as_json, prepare=prepare)

    def _client(self, grant_type: str = "authorization_code") -> AsyncOAuth2Client:
        method = self.auth.client_auth.value
        if not self._credentials.client_secret:
            method = "none"
        client = AsyncOAuth2Client(
            client_id=self._credentials.client_id,
            client_secret=self._credentials.client_secret,
            token_endpoint_auth_method=method,
            # Authlib authenticates at the revocation endpoint on its own setting.
            revocation_endpoint_auth_method=method,
            scope=self.auth.scope_separator.join(self.auth.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256" if self.auth.pkce else None,
            timeout=self._timeout,
            transport=self._token_transport(),
        )
        answer = _answerer(self._shape(grant_type))
        client.register_compliance_hook("access_token_response", answer)
        client.register_compliance_hook("refresh_token_response", answer)
        return client

    def authorization_url(self, state: str, code_verifier: str) -> str:
        """The provider URL the browser is sent to (with PKCE S256 when enabled)."""
        client = self._client()
        assert self.endpoints.authorize_url is not None, "the authorization code grant has one"
        url, _state = client.create_authorization_url(
            self.endpoints.authorize_url,
            state=state,
            code_verifier=code_verifier if self.auth.pkce else None,
            **self._params(self.auth.authorize_params),
        )
        return str(url)

    async def exchange_code(self, code: str, code_verifier: str) -> TokenResponse:
        """Exchange an authorization code for tokens, server-side.

        :raises IntegrationError: with the reason :data:`OUTCOMES` gives for
            the answer (``provider_unavailable`` as :class:`ProviderUnavailableError`).
        """
        async with self._client() as client:
            answer = await self._send(
                client.fetch_token(
                    self.endpoints.token_url,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=self.redirect_uri,
                    code_verifier=code_verifier if self.auth.pkce else None,
                    **self._params(self.auth.token_params),
                )
            )
        if answer.kind is not Answer.TOKENS:
            self._fail(answer, OUTCOMES[answer.kind][0], "the code exchange")
        return self._response(answer.body, previous=None)

    async def client_credentials(self, *, renewal: bool = False) -> TokenResponse:
        """A token for the client itself (the client credentials grant, RFC 6749 4.4).

        :param renewal: a new token for an existing connection (its failures
            read as a refresh's), not a first connect (read as a code exchange's).
        :raises IntegrationError: with the reason :data:`OUTCOMES` gives for the answer.
        """
        async with self._client("client_credentials") as client:
            answer = await self._send(
                client.fetch_token(
                    self.endpoints.token_url,
                    grant_type="client_credentials",
                    **self._params(self.auth.token_params),
                )
            )
        if answer.kind is not Answer.TOKENS:
            self._fail(answer, OUTCOMES[answer.kind][int(renewal)], "the client credentials grant")
        return self._response(answer.body, previous=None)

    async def refresh(
        self, tokens: TokenSet, *, on_rotated: RotatedToken | None = None
    ) -> TokenResponse:
        """Use the refresh token; the response's refresh token replaces it if there is one.

        :param on_rotated: awaited with a new refresh token when the answer
            carries one but is unusable otherwise (no access token), so that a
            token the provider already rotated is never thrown away.
        :raises NeedsReauthError: the provider rejected the grant.
        :raises IntegrationError: ``not_configured``, ``refresh_failed``, or
            :class:`ProviderUnavailableError`.
        """
        if not tokens.refresh_token:
            raise NeedsReauthError(
                "the connection has no refresh token",
                cause="no_refresh_token",
                connector_id=self.connector.id,
            )
        async with self._client("refresh_token") as client:
            answer = await self._send(
                client.refresh_token(
                    self.endpoints.token_url,
                    refresh_token=tokens.refresh_token,
                    **self._params(self.auth.refresh_params),
                )
            )
        if answer.kind is not Answer.TOKENS:
            rotated = answer.body.get("refresh_token")
            ok = 200 <= (answer.status or 0) < 300
            if ok and isinstance(rotated, str) and rotated and on_rotated is not None:
                await on_rotated(rotated)
            self._fail(answer, OUTCOMES[answer.kind][1], "the refresh")
        return self._response(answer.body, previous=tokens)

    async def revoke(self, token: str, hint: str) -> None:
        """Revoke ``token`` at the provider (RFC 7009), if it has a revocation endpoint.

        :raises ProviderUnavailableError: for any answer but a 2xx.
        """
        if self.endpoints.revocation_url is None:
            return
        async with self._client() as client:
            try:
                response = await client.revoke_token(
                    self.endpoints.revocation_url, token=token, token_type_hint=hint
                )
            except httpx2.HTTPError as exc:
                raise ProviderUnavailableError(f"revocation failed: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise ProviderUnavailableError(f"revocation answered HTTP {response.status_code}")

    @staticmethod
    async def _send(request: Awaitable[Any]) -> TokenAnswer:
        try:
            await request
        except _Answered as answered:
            return answered.answer
        except httpx2.HTTPError as exc:
            # TimeoutException is a TransportError; the message names no secret.
            return unreachable(exc)
        raise AssertionError("the compliance hook answers every token request")

    def _fail(self, answer: TokenAnswer, reason: str, what: str) -> NoReturn:
        message = f"{what} failed: the provider answered {answer.describe()}"
        if answer.error is not None and answer.error.startswith("plugin "):
            message = f"{what} failed: the plugin's token hook raised {answer.error[7:]}"
        log.info("%s for %s: %s -> %s", what, self.connector.id, answer.describe(), reason)
        if reason == "provider_unavailable":
            raise ProviderUnavailableError(message, connector_id=self.connector.id)
        if reason == "needs_reauth":
            raise NeedsReauthError(message, connector_id=self.connector.id)
        raise IntegrationError(message, reason=reason, connector_id=self.connector.id)

    def _response(self, raw: Mapping[str, Any], previous: TokenSet | None) -> TokenResponse:
        """Tokens from a usable answer; odd optional fields are ignored, never fatal."""
        now = self._clock()
        access = raw["access_token"]
        refresh = raw.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            refresh = previous.refresh_token if previous else None
        expires_at: float | None = None
        seconds = lifetime(raw.get("expires_in"))
        if seconds is not None:
            expires_at = now + seconds
        elif (absolute := lifetime(raw.get("expires_at"))) is not None and absolute > now:
            expires_at = absolute
        elif refresh:
            # Without a lifetime a token would never be refreshed; with a refresh
            # token in hand, assume the documented default and refresh then.
            expires_at = now + self._default_lifetime
        token_type = raw.get("token_type")
        return TokenResponse(
            TokenSet(
                access_token=access,
                refresh_token=refresh,
                expires_at=expires_at,
                token_type=token_type
                if isinstance(token_type, str) and _plausible(token_type)
                else "Bearer",
                scopes=_scopes(raw.get("scope"), self.auth.scope_separator)
                or (previous.scopes if previous else ())
                or tuple(self.auth.scopes),
            ),
            raw,
        )


def _plausible(token_type: str) -> bool:
    """Whether ``token_type`` is plausible (the store keeps at most 32 visible characters)."""
    return 0 < len(token_type) <= 32 and all("!" <= c <= "~" for c in token_type)


def _scopes(value: object, separator: str = " ") -> tuple[str, ...]:
    """The granted scope: a string joined with ``separator`` (or spaces), or a list of strings."""
    if isinstance(value, str):
        parts = value.split() if separator == " " else value.replace(separator, " ").split()
        return tuple(parts)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item for item in value if item)
    return ()
