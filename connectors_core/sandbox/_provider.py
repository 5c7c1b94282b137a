"""A strict local OAuth 2.0 authorization server: the sandbox's provider, and the tests'.

`OAuthProvider` serves the authorization code grant on the paths of the Evencio
service (``/oauth/authorize``, ``/api/oauth/token``, ``/api/oauth/revoke``,
``/oauth/status``) and is deliberately stricter than most real providers, so a
client that works against it does not rely on leniency. It enforces:

- exact redirect URI matching; an unknown client or redirect URI gets an error
  page, never a redirect (RFC 6749 §4.1.2.1);
- PKCE with S256 only, on every authorization (RFC 7636; ``plain`` is refused);
- a required ``state``, scopes limited to those registered for the client, and
  parameters that appear at most once;
- one-time, short-lived codes bound to the client, redirect URI, challenge and
  scopes; a replayed code revokes every token issued from it (RFC 6749 §10.5);
- client authentication by ``client_secret_basic`` (credentials form-encoded
  first, RFC 6749 §2.3.1) or ``client_secret_post``, never both, with
  form-encoded bodies only;
- refresh token rotation with reuse detection: presenting a rotated refresh
  token revokes its whole token family;
- revocation (RFC 7009) and a bearer-protected status endpoint.

A client's `Quirks` make the provider behave like a less standard one (Basic
or form authentication only, comma-separated scopes, no PKCE, extra required
parameters, JSON token requests, nested or millisecond token responses, an
``iss`` on the authorization response), and enforce that behaviour just as
strictly, so a client that does not match fails clearly.

Tests inspect and steer it from the main thread while it runs in a uvicorn
thread (`running`): `clock_offset` moves its clock, `deny_next` makes the next
authorization fail, `fail_next` injects HTTP errors and timeouts,
`respond_next` any raw answer (an HTML page, an empty 401, a malformed token
response), `delay_next` a slow but correct answer, and `tamper_next` a correct
answer (tokens really issued and rotated) whose JSON is then altered; and
`token_requests`, `revocations` and `is_active` show what happened.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._faults import ENDPOINTS, Fault, FaultInjection
from ._quirks import Quirks, quirks_for, verify_answer
from ._wire import (
    NO_STORE,
    OAuthError,
    basic_credentials,
    error_page,
    json_body,
    page,
    read_body,
    read_form,
    redirect,
    valid_form,
)

__all__ = [
    "ALL_GRANTS",
    "Account",
    "Client",
    "OAuthProvider",
    "Quirks",
    "quirks_for",
    "running",
    "verify_answer",
]

# BASE64URL(SHA-256(...)) without padding is always 43 characters (RFC 7636 §4.2).
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


ALL_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
"""Every grant type the provider implements."""


@attrs.frozen
class Client:
    """A registered OAuth client: its credentials, redirect URIs and allowed scopes."""

    client_id: str
    client_secret: str = attrs.field(repr=False)
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    grants: tuple[str, ...] = ("authorization_code", "refresh_token")
    """The grant types this client may use (``client_credentials`` must be listed to use it)."""
    quirks: Quirks = attrs.field(factory=Quirks)
    """How the provider departs from its defaults for this client."""


@attrs.frozen
class Account:
    """The resource owner every authorization is granted by."""

    user_id: str
    organization_id: str


_DEFAULT_ACCOUNT = Account("user-1", "org-1")
_DEFAULT_CLIENT = Client("", "", (), ())  # stands for an unknown client: default quirks


@attrs.frozen
class _ApiAnswer:
    """A canned answer of the connector API."""

    status: int
    body: Any
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class _Authorization:
    """An authorization request that passed validation."""

    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    scopes: tuple[str, ...]


@attrs.define
class _Code:
    authorization: _Authorization
    family: str  # shared by every token issued from this code and its refreshes
    expires_at: float
    used: bool = False


@attrs.define
class _Token:
    kind: Literal["access", "refresh"]
    client_id: str
    family: str
    scopes: tuple[str, ...]
    expires_at: float | None  # refresh tokens do not expire
    used: bool = False  # a refresh token that has been rotated
    revoked: bool = False


class OAuthProvider(FaultInjection):
    """A strict OAuth 2.0 authorization server, served by the ASGI app `app`.

    `clients` are the registered clients, `account` the resource owner behind
    every authorization, and the lifetimes are in seconds. With `interactive`,
    authorizations wait for a person on a consent page instead of being decided
    at once (by `deny_next`). All state is guarded by one lock: the app runs in
    a server thread while tests change and inspect the provider from theirs.
    """

    def __init__(
        self,
        *,
        clients: Sequence[Client],
        account: Account = _DEFAULT_ACCOUNT,
        access_token_lifetime: int = 3600,
        code_lifetime: int = 60,
        interactive: bool = False,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not clients:
            raise ValueError("at least one client is required")
        if access_token_lifetime <= 0 or code_lifetime <= 0:
            raise ValueError("lifetimes must be positive")
        self._clients = {client.client_id: client for client in clients}
        if len(self._clients) != len(clients):
            raise ValueError("client ids must be unique")
        for client in clients:
            for uri in client.redirect_uris:
                parts = urlsplit(uri)
                if not parts.scheme or parts.fragment:
                    raise ValueError(f"redirect URI must be absolute, without fragment: {uri!r}")
            if any(client.quirks.scope_separator in scope for scope in client.scopes):
                raise ValueError(f"a scope of {client.client_id!r} contains its scope separator")
            if client.quirks.client_auth == "none" and "client_credentials" in client.grants:
                raise ValueError("a public client cannot use client_credentials (RFC 6749 §4.4)")
        self.account = account
        self.access_token_lifetime = access_token_lifetime
        self.code_lifetime = code_lifetime
        self.interactive = interactive
        self.clock_offset = 0.0
        """Seconds added to the real time: tests move the clock instead of sleeping."""
        self.deny_next = False
        """Deny the next non-interactive authorization with ``access_denied``."""
        self.timeout_delay = 5.0
        """How long an injected ``"timeout"`` holds the response, in seconds."""
        self.rotate_refresh_tokens = True
        """Rotate refresh tokens on refresh; when False, like providers that keep one
        refresh token for the life of the grant, the response carries no new one."""
        self.token_requests: list[str] = []
        """The ``grant_type`` (``""`` if none) of every token request, failed ones included."""
        self.revocations: list[str] = []
        """The token of every revocation request answered with 200, in order."""
        self.api_credentials: set[str] = set()
        """Credentials (an API key, ``user:password``) the connector API at ``/connector-api``
        accepts besides the access tokens this provider issued (see :meth:`answer_api`)."""
        self.api_requests: list[tuple[str, str]] = []
        """``(method, path)`` of every request to ``/connector-api``, in order."""
        self.api_request_times: list[float] = []
        """When each request to ``/connector-api`` arrived (``time.monotonic()``), in order."""
        self._apis: dict[str, ASGIApp] = {}
        self._api_answers: dict[tuple[str, str], _ApiAnswer] = {}
        self._api_once: dict[tuple[str, str], deque[_ApiAnswer]] = {}
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        # Tokens by their SHA-256: what is kept, in memory and in `state_path`, is never
        # a usable token.
        self._tokens: dict[str, _Token] = {}
        self.issued: list[str] = []
        """Every token issued by this process, in order (in memory only; for tests)."""
        self.restored = False
        """Whether grants kept in `state_path` by an earlier run were read back."""
        self.state_path = None if state_path is None else os.fspath(state_path)
        """Where the grants (their hashes) and the clients' secrets are kept across restarts,
        readable by this user only (None: in memory only)."""
        if self.state_path is not None:
            self._load()
        self._pending: dict[str, _Authorization] = {}
        self._faults: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        # Set when the server stops, so that injected timeouts do not hold up shutdown.
        self._stopping = threading.Event()
        authorization = [
            Route("/oauth/authorize", self._authorize, methods=["GET"], name="authorize"),
            Route(
                "/oauth/authorize/decision",
                self._decision,
                methods=["POST"],
                name="authorize_decision",
            ),
        ]
        self.browser_app = Starlette(routes=authorization)
        """The part of `app` a browser visits: the authorization endpoint and its consent
        page. A server that calls the rest in-process need only expose this."""
        self.app = Starlette(
            routes=[
                *authorization,
                Route("/api/oauth/token", self._token, methods=["POST"], name="token"),
                Route("/api/oauth/revoke", self._revoke, methods=["POST"], name="revoke"),
                Route("/oauth/status", self._status, methods=["GET"], name="status"),
                Mount("/apis", app=self._mounted_api, name="apis"),
                Route(
                    "/connector-api/{path:path}",
                    self._connector_api,
                    methods=["GET", "HEAD", "POST"],
                    name="connector_api",
                ),
            ]
        )

    def answer_api(
        self,
        path: str,
        body: Any = None,
        *,
        status: int = 200,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer ``method /connector-api<path>`` with ``status``, JSON ``body`` and ``headers``.

        The connector's own API, for its ``verify`` request, account lookups
        and the authenticated client: point the connector's
        ``CONNECTORS_<ID>_API_BASE_URL`` at ``<provider URL>/connector-api``.
        A request is answered only when it carries a credential: an access
        token this provider issued, in the header and after the prefix its
        client's quirks name (``Authorization: Bearer`` by default), or one
        of :attr:`api_credentials` (in any header or the query, or as Basic
        ``user:password``); else 401. A path without an answer is 200 ``{}``.

        With ``times``, the answer is given that many times, before any
        given earlier with ``times`` and then the standing one: a 429 once,
        then the data.
        """
        key = (method.upper(), "/" + path.lstrip("/"))
        answer = _ApiAnswer(status, body, dict(headers or {}))
        with self._lock:
            if times is None:
                self._api_answers[key] = answer
            else:
                self._api_once.setdefault(key, deque()).extend([answer] * times)

    @property
    def client_ids(self) -> tuple[str, ...]:
        """The ids of the clients registered with this provider."""
        return tuple(self._clients)

    def mount_api(self, name: str, app: ASGIApp) -> None:
        """Serve ``app`` at ``/apis/<name>``, as a connector's own API stands in for the real one.

        A plugin's ``sandbox_api`` app is mounted this way (the sandbox and
        the contract suite point ``CONNECTORS_<ID>_API_BASE_URL`` there). The
        provider answers 401 itself unless a request carries a credential as
        :meth:`answer_api` describes, removes any ``X-Sandbox-*`` header the
        request had, and tells the app who is calling: ``X-Sandbox-User-Id``,
        ``X-Sandbox-Organization-Id``, and ``X-Sandbox-Scopes`` (the access
        token's scopes, space-separated; empty for other credentials).
        """
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", name):
            raise ValueError(f"an API is mounted under a connector id, not {name!r}")
        with self._lock:
            self._apis[name] = app

    async def _mounted_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        name, _, rest = scope["path"][len(scope.get("root_path", "")) :].lstrip("/").partition("/")
        with self._lock:
            app = self._apis.get(name)
        if app is None:
            await json_body({"error": "not_found"}, 404)(scope, receive, send)
            return
        identity = self._api_identity(Request(scope))
        if identity is None:
            await json_body({"error": "invalid_token"}, 401, _INVALID_TOKEN)(scope, receive, send)
            return
        headers = [
            (key, value)
            for key, value in scope["headers"]
            if not key.lower().startswith(b"x-sandbox-")
        ]
        headers += [
            (b"x-sandbox-user-id", self.account.user_id.encode()),
            (b"x-sandbox-organization-id", self.account.organization_id.encode()),
            (b"x-sandbox-scopes", " ".join(identity).encode()),
        ]
        path = "/" + rest
        inner = {
            **scope,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "headers": headers,
        }
        await app(inner, receive, send)

    def _api_credential(self, request: Request) -> bool:
        return self._api_identity(request) is not None

    def _api_identity(self, request: Request) -> tuple[str, ...] | None:
        """The scopes of the credential a connector API request carries, or None for none.

        An access token of a client gives its scopes; an API credential
        (:attr:`api_credentials`) none.
        """
        with self._lock:
            for client in self._clients.values():
                token = self._bearer(request, client)
                if token is not None:
                    return token.scopes
            if self._bearer(request, _DEFAULT_CLIENT) is not None:
                return None  # an unknown token, presented the standard way
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "basic":
                with contextlib.suppress(ValueError, binascii.Error, UnicodeDecodeError):
                    if base64.b64decode(value).decode() in self.api_credentials:
                        return ()
            offered = {v.partition(" ")[2] or v for v in request.headers.values()}
            offered |= set(request.query_params.values())
            return () if offered & self.api_credentials else None

    def _bearer(self, request: Request, client: Client) -> _Token | None:
        """An active access token of ``client`` in the header, after the prefix, it declares."""
        header = request.headers.get(client.quirks.api_token_header)
        prefix = client.quirks.api_token_prefix
        if header is None or len(header) <= len(prefix):
            return None
        given, value = header[: len(prefix)], header[len(prefix) :]
        same = given.lower() == prefix.lower() if prefix.endswith(" ") else given == prefix
        token = self._grant(value) if same else None
        if token is None or token.kind != "access" or not self._active(token):
            return None
        if client.client_id and token.client_id != client.client_id:
            return None
        return token

    async def _connector_api(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        key = (request.method, path)
        with self._lock:
            self.api_requests.append(key)
            self.api_request_times.append(time.monotonic())
        if not self._api_credential(request):
            return json_body({"error": "invalid_token"}, 401, _INVALID_TOKEN)
        with self._lock:
            once = self._api_once.get(key)
            answer = once.popleft() if once else self._api_answers.get(key, _ApiAnswer(200, {}))
        headers = {**NO_STORE, **answer.headers}
        return JSONResponse({} if answer.body is None else answer.body, answer.status, headers)

    def now(self) -> float:
        """The provider's clock: the real time plus `clock_offset`."""
        return time.time() + self.clock_offset

    def is_active(self, token: str) -> bool:
        """Whether an access or refresh token would currently be accepted."""
        with self._lock:
            found = self._grant(token)
            return found is not None and self._active(found)

    # -- grants kept across restarts -------------------------------------------------

    def _load(self) -> None:
        assert self.state_path is not None
        try:
            with open(self.state_path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot read the provider's grants in {self.state_path}: {exc}"
            ) from None
        self.restored = True
        for digest, fields in data.get("tokens", {}).items():
            self._tokens[digest] = _Token(
                fields["kind"],
                fields["client_id"],
                fields["family"],
                tuple(fields["scopes"]),
                fields["expires_at"],
                fields["used"],
                fields["revoked"],
            )

    @staticmethod
    def saved_client_secrets(state_path: str | os.PathLike[str]) -> dict[str, str]:
        """The client secrets a provider kept in ``state_path`` (none if there is no file).

        A sandbox that restarts registers its clients with the same secrets,
        so the tokens and refresh tokens it issued before still work.
        """
        try:
            with open(state_path, encoding="utf-8") as f:
                clients = json.load(f).get("clients", {})
        except (OSError, ValueError, AttributeError):
            return {}
        return {str(k): str(v) for k, v in clients.items()} if isinstance(clients, dict) else {}

    def _save(self) -> None:
        """Write the grants (their hashes) to `state_path`, atomically; callers hold the lock."""
        if self.state_path is None:
            return
        now = self.now()
        tokens = {
            digest: attrs.asdict(token)
            for digest, token in self._tokens.items()
            if token.expires_at is None or token.expires_at > now  # expired ones are dead
        }
        temporary = f"{self.state_path}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as f:
            clients = {c.client_id: c.client_secret for c in self._clients.values()}
            json.dump({"version": 1, "clients": clients, "tokens": tokens}, f)
        os.replace(temporary, self.state_path)

    def _grant(self, value: str) -> _Token | None:
        return self._tokens.get(_digest(value))

    # -- state helpers; callers hold the lock ---------------------------------------

    def _active(self, token: _Token) -> bool:
        if token.revoked or token.used:
            return False
        return token.expires_at is None or self.now() < token.expires_at

    def _revoke_family(self, family: str) -> None:
        for token in self._tokens.values():
            if token.family == family:
                token.revoked = True
        self._save()

    def _issue(
        self,
        client: Client,
        family: str,
        refresh_scopes: tuple[str, ...],
        scopes: tuple[str, ...],
        *,
        refresh: bool = True,
    ) -> dict[str, object]:
        quirks, client_id = client.quirks, client.client_id
        access = secrets.token_urlsafe(32)
        expires_at = self.now() + self.access_token_lifetime
        self._tokens[_digest(access)] = _Token("access", client_id, family, scopes, expires_at)
        self.issued.append(access)
        unit = 1000 if quirks.expires_in_unit == "milliseconds" else 1
        issued: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime * unit,
            "scope": quirks.scope_separator.join(scopes),
        }
        if refresh:
            refresh_token = secrets.token_urlsafe(32)
            refresh_record = _Token("refresh", client_id, family, refresh_scopes, None)
            self._tokens[_digest(refresh_token)] = refresh_record
            self.issued.append(refresh_token)
            issued["refresh_token"] = refresh_token
        self._save()
        if quirks.nest_tokens_under:
            return {"ok": True, quirks.nest_tokens_under: issued, **quirks.extra_response}
        return {**issued, **quirks.extra_response}

    # -- authorization endpoint --------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        params: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            params.setdefault(name, []).append(value)
        client_ids = params.get("client_id", [])
        client = self._clients.get(client_ids[0]) if len(client_ids) == 1 else None
        if client is None:
            return error_page("Unknown or missing client_id.")
        redirect_uris = params.get("redirect_uri", [])
        if len(redirect_uris) != 1 or redirect_uris[0] not in client.redirect_uris:
            # Redirecting to an unregistered URI would make this an open redirector.
            return error_page("The redirect_uri is not registered for this client.")
        redirect_uri = redirect_uris[0]
        states = params.get("state", [])
        state = states[0] if len(states) == 1 and states[0] else None
        try:
            authorization = _check_authorization(client, redirect_uri, state, params)
        except OAuthError as error:
            details = {"error": error.error, "error_description": error.description}
            return redirect(redirect_uri, 302, **details, state=state, iss=client.quirks.issuer)
        if self.interactive:
            request_id = secrets.token_urlsafe(24)
            with self._lock:
                self._pending[request_id] = authorization
            return self._consent_page(request, client, authorization, request_id)
        with self._lock:
            deny, self.deny_next = self.deny_next, False
        return self._decide(authorization, approve=not deny, status=302)

    async def _decision(self, request: Request) -> Response:
        form = await read_form(request) or {}
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return error_page("The decision must be approve or deny.")
        with self._lock:
            authorization = self._pending.pop(form.get("request", ""), None)
        if authorization is None:
            return error_page("Unknown or already decided authorization request.")
        # 303 so that the browser follows the POST with a GET.
        return self._decide(authorization, approve=decision == "approve", status=303)

    def _decide(self, authorization: _Authorization, *, approve: bool, status: int) -> Response:
        uri, state = authorization.redirect_uri, authorization.state
        iss = self._clients[authorization.client_id].quirks.issuer
        if not approve:
            return redirect(uri, status, error="access_denied", state=state, iss=iss)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(
                authorization, secrets.token_hex(8), self.now() + self.code_lifetime
            )
        return redirect(uri, status, code=code, state=state, iss=iss)

    def _consent_page(
        self, request: Request, client: Client, authorization: _Authorization, request_id: str
    ) -> Response:
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in authorization.scopes)
        # The form's action is relative to this page's URL (.../oauth/authorize), so it
        # leads back to the provider wherever it is mounted, behind whatever prefix.
        body = f"""
<h1>Authorize {html.escape(client.client_id)}</h1>
<p>{html.escape(client.client_id)} asks for access as user {html.escape(self.account.user_id)}
in organization {html.escape(self.account.organization_id)}, with these scopes:</p>
<ul>{scopes}</ul>
<form method="post" action="authorize/decision">
<input type="hidden" name="request" value="{html.escape(request_id)}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"""
        return page(body, 200)

    # -- token, revocation and status endpoints ------------------------------------

    async def _token(self, request: Request) -> Response:
        kind, form = await read_body(request)
        # The body format is the client's: that of the client the request names.
        expected = self._named_client(request, form).quirks.token_request_format
        if kind != expected:
            form = None
        with self._lock:
            self.token_requests.append((form or {}).get("grant_type", ""))
        fault = await self._inject("token")
        if isinstance(fault, Response):
            return fault
        try:
            form = valid_form(form, expected)
            client = self._authenticate(request, form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type is required")
            if grant_type in ALL_GRANTS and grant_type not in client.grants:
                raise OAuthError("unauthorized_client", f"this client may not use {grant_type}")
            if grant_type == "authorization_code":
                body = self._exchange_code(client, form)
            elif grant_type == "refresh_token":
                body = self._refresh(client, form)
            elif grant_type == "client_credentials":
                body = self._client_credentials(client, form)
            else:
                raise OAuthError("unsupported_grant_type")
        except OAuthError as error:
            return error.response()
        if fault is not None and fault.change is not None:
            return Response(json.dumps(fault.change(body)), 200, NO_STORE, "application/json")
        return json_body(body)

    def _exchange_code(self, client: Client, form: Mapping[str, str]) -> dict[str, object]:
        pkce = client.quirks.pkce
        _require_values(form, client.quirks.token_params)
        value, redirect_uri = _require(form, "code", "redirect_uri")
        # Without PKCE, a code_verifier is ignored: no challenge was kept to check it against.
        (verifier,) = _require(form, "code_verifier") if pkce else ("",)
        if pkce and not _VERIFIER.fullmatch(verifier):
            raise OAuthError("invalid_request", "code_verifier is malformed (RFC 7636 §4.1)")
        with self._lock:
            code = self._codes.get(value)
            if code is None:
                raise OAuthError("invalid_grant", "unknown authorization code")
            if code.used:
                self._revoke_family(code.family)
                raise OAuthError("invalid_grant", "authorization code already used")
            authorization = code.authorization
            if authorization.client_id != client.client_id:
                raise OAuthError("invalid_grant", "authorization code issued to another client")
            if self.now() >= code.expires_at:
                raise OAuthError("invalid_grant", "authorization code expired")
            if redirect_uri != authorization.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri differs from the authorization")
            if pkce and not hmac.compare_digest(_s256(verifier), authorization.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")
            code.used = True
            scopes = authorization.scopes
            return self._issue(client, code.family, scopes, scopes)

    def _client_credentials(self, client: Client, form: Mapping[str, str]) -> dict[str, object]:
        """RFC 6749 §4.4: an access token for the client itself, never a refresh token."""
        for name in ("code", "redirect_uri", "refresh_token", "code_verifier"):
            if name in form:
                raise OAuthError("invalid_request", f"{name} is not a client credentials parameter")
        requested = _parse_scope(client, form["scope"]) if "scope" in form else client.scopes
        if not set(requested) <= set(client.scopes):
            raise OAuthError("invalid_scope", "the client may not request that scope")
        with self._lock:
            family = secrets.token_urlsafe(8)
            return self._issue(client, family, (), requested, refresh=False)

    def _refresh(self, client: Client, form: Mapping[str, str]) -> dict[str, object]:
        _require_values(form, client.quirks.refresh_params)
        (value,) = _require(form, "refresh_token")
        requested = _parse_scope(client, form["scope"]) if "scope" in form else None
        with self._lock:
            token = self._grant(value)
            if token is None or token.kind != "refresh" or token.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown refresh token")
            if token.revoked:
                raise OAuthError("invalid_grant", "refresh token revoked")
            if token.used:
                # Either the client or an attacker holds a stolen copy: stop both.
                self._revoke_family(token.family)
                raise OAuthError("invalid_grant", "refresh token reused; its grant is revoked")
            if requested is not None and not set(requested) <= set(token.scopes):
                raise OAuthError("invalid_scope", "a refresh may only narrow the scope")
            scopes = requested or token.scopes
            if not self.rotate_refresh_tokens:
                return self._issue(client, token.family, token.scopes, scopes, refresh=False)
            token.used = True
            # The new refresh token keeps the original scope (RFC 6749 §6).
            return self._issue(client, token.family, token.scopes, scopes)

    async def _revoke(self, request: Request) -> Response:
        form = await read_form(request)
        if isinstance(fault := await self._inject("revoke"), Response):
            return fault
        try:
            form = valid_form(form)
            client = self._authenticate(request, form)
            (value,) = _require(form, "token")
        except OAuthError as error:
            return error.response()
        # token_type_hint is optional and one table holds both kinds, so it is not needed.
        with self._lock:
            token = self._grant(value)
            if token is not None and token.client_id != client.client_id:
                return OAuthError("unauthorized_client", "issued to another client").response()
            self.revocations.append(value)
            if token is not None and token.kind == "refresh":
                self._revoke_family(token.family)
            elif token is not None:
                token.revoked = True
                self._save()
        return Response(status_code=200, headers=NO_STORE)

    async def _status(self, request: Request) -> Response:
        if isinstance(fault := await self._inject("status"), Response):
            return fault
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            token = self._grant(value) if scheme.lower() == "bearer" else None
            if token is None or token.kind != "access" or not self._active(token):
                return json_body({"error": "invalid_token"}, 401, _INVALID_TOKEN)
            return json_body(
                {
                    "userId": self.account.user_id,
                    "organizationId": self.account.organization_id,
                    "clientId": token.client_id,
                    "scopes": list(token.scopes),
                }
            )

    def _authenticate(self, request: Request, form: Mapping[str, str]) -> Client:
        header = request.headers.get("authorization")
        secret: str | None
        if header is not None:
            if "client_secret" in form:
                raise OAuthError("invalid_request", "use one client authentication method")
            client_id, secret = basic_credentials(header)
            if form.get("client_id", client_id) != client_id:
                raise OAuthError("invalid_client")
            method = "client_secret_basic"
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret")
            method = "none" if secret is None else "client_secret_post"
        client = self._clients.get(client_id)
        expected = client.quirks.client_auth if client is not None else None
        if expected is not None and method != expected:
            # RFC 6749 §5.2: a 401 with WWW-Authenticate only answers an attempt with Basic.
            description = f"this client authenticates with {expected}, not {method}"
            raise OAuthError("invalid_client", description, 401 if header else 400)
        if client is not None and expected == "none":
            return client
        if (
            client is None
            or secret is None
            or not hmac.compare_digest(secret.encode(), client.client_secret.encode())
        ):
            raise OAuthError("invalid_client")
        return client

    def _named_client(self, request: Request, form: Mapping[str, str] | None) -> Client:
        """The client a request names, by Basic or ``client_id``, or a default one."""
        client_id = (form or {}).get("client_id", "")
        if header := request.headers.get("authorization"):
            with contextlib.suppress(OAuthError):
                client_id, _ = basic_credentials(header)
        return self._clients.get(client_id) or _DEFAULT_CLIENT


def _check_authorization(
    client: Client, redirect_uri: str, state: str | None, params: Mapping[str, list[str]]
) -> _Authorization:
    """Validate an authorization request whose client and redirect URI are known good."""
    if any(len(values) > 1 for values in params.values()):
        raise OAuthError("invalid_request", "a parameter appears more than once")
    single = {name: values[0] for name, values in params.items()}
    if state is None:
        raise OAuthError("invalid_request", "state is required")
    response_type = single.get("response_type")
    if not response_type:
        raise OAuthError("invalid_request", "response_type is required")
    if response_type != "code":
        raise OAuthError("unsupported_response_type")
    _require_values(single, client.quirks.authorize_params)
    challenge = ""  # a provider without PKCE ignores a challenge, as GitHub long did
    if client.quirks.pkce:
        challenge = single.get("code_challenge", "")
        if not challenge:
            raise OAuthError("invalid_request", "code_challenge is required")
        if single.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise OAuthError("invalid_request", "code_challenge is not a base64url SHA-256 digest")
    scopes = _parse_scope(client, single["scope"]) if "scope" in single else client.scopes
    if not set(scopes) <= set(client.scopes):
        raise OAuthError("invalid_scope", "a requested scope is not allowed for this client")
    return _Authorization(client.client_id, redirect_uri, state, challenge, scopes)


def _parse_scope(client: Client, value: str) -> tuple[str, ...]:
    separator = client.quirks.scope_separator
    parts = value.split(separator)
    # A scope token cannot hold a space (RFC 6749 §3.3), so spaces under "," are refused.
    if not all(_SCOPE_TOKEN.fullmatch(part) for part in parts):
        kind = "space" if separator == " " else repr(separator)
        raise OAuthError("invalid_scope", f"scope must be {kind}-separated scope tokens")
    return tuple(dict.fromkeys(parts))


def _require_values(given: Mapping[str, str], required: Mapping[str, str]) -> None:
    """Require each of `required` in `given` with exactly its value."""
    for name, value in required.items():
        if name not in given:
            raise OAuthError("invalid_request", f"{name}={value} is required")
        if given[name] != value:
            raise OAuthError("invalid_request", f"{name} must be {value!r}")


def _require(form: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not form.get(name)]
    if missing:
        raise OAuthError("invalid_request", f"missing {', '.join(missing)}")
    return [form[name] for name in names]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@contextlib.contextmanager
def running(provider: OAuthProvider, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `provider` on a free port of `host` (an IP address) in a daemon thread.

    Yields the base URL, such as ``http://127.0.0.1:54321``; the server stops on exit.
    """
    import uvicorn  # only tests serve the provider on its own

    server = uvicorn.Server(
        uvicorn.Config(provider.app, host=host, port=0, log_level="warning", lifespan="off")
    )
    provider._stopping.clear()
    thread = threading.Thread(target=server.run, name="oauth-provider", daemon=True)
    thread.start()
    try:
        for _ in range(1000):  # about 10 seconds
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError(f"the OAuth provider did not start on {host}")
        port: int = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{f'[{host}]' if ':' in host else host}:{port}"
    finally:
        server.should_exit = True
        provider._stopping.set()
        thread.join(timeout=10)
