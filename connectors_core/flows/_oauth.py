"""The flow of OAuth 2.0 connectors (``auth.type = "oauth"``), both grants.

Authorization code (the default): Connect sends the browser to the provider
with PKCE S256 and a one-time ``state`` bound to the browser session and the
tenant; the field values travel with the pending authorization (secret ones
encrypted) until the callback exchanges the code, server-side.

Client credentials: Connect asks only for the connector's fields, the server
obtains a token itself, and gets a new one when it is due.

The provider side (requests, answers, errors) is
:class:`~connectors_core.connections.OAuthClient`; this module decides what
each step stores.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from .._events import Actor
from .._exceptions import (
    IntegrationError,
    InvalidFieldsError,
    NeedsReauthError,
    SecretError,
)
from .._manifest import Connector, Grant, OAuth
from ._base import ConnectStep, Flow, FlowContext, Input, Redirect, ReplaceCheck, Submission
from ._store import store_new
from ._verify import verified_account

if TYPE_CHECKING:
    import httpx2
    import pluggy

    from ..connections._oauth import OAuthClient, RotatedToken, TokenResponse
    from ..store import ConnectionSummary, StoredConnection, TokenSet

__all__ = ["CLIENT_CREDENTIAL_MAX", "OAuthFlow", "session_hash"]

CLIENT_CREDENTIAL_MAX = 512
"""The longest client id or secret a connection may hold."""

log = logging.getLogger("connectors_core.connections")


def _auth(connector: Connector) -> OAuth:
    auth = connector.auth
    assert isinstance(auth, OAuth), "the flow table gives this flow OAuth connectors only"
    return auth


def session_hash(session_id: str) -> str:
    """What the store keeps of a browser session id."""
    import hashlib

    return hashlib.sha256(b"connectors-core session\0" + session_id.encode()).hexdigest()


def _account_from(raw: Mapping[str, Any]) -> dict[str, str]:
    """Organization and user ids, when the token response carries them."""
    account: dict[str, str] = {}
    for key, names in (
        ("organizationId", ("organizationId", "organization_id", "orgId", "org_id")),
        ("userId", ("userId", "user_id")),
    ):
        value = next((raw[n] for n in names if raw.get(n) not in (None, "")), None)
        if value is not None:
            account[key] = str(value)
    return account


def _kept(connector: Connector, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The values the manifest keeps from a token response, named by their path.

    Dots become underscores: ``team.id`` is kept as ``team_id``.

    Only JSON scalars are kept (they become non-secret config, shown in the
    status); a missing or structured value is left out.
    """
    from ..connections._answers import dig

    paths = _auth(connector).token_response
    kept: dict[str, Any] = {}
    for path in paths.keep if paths else ():
        value = dig(raw, path)
        if isinstance(value, str | int | float | bool) and len(str(value)) <= 2048:
            kept[path.replace(".", "_")] = value
    return kept


def _failed(connector: Connector, reason: str, message: str) -> IntegrationError:
    return IntegrationError(message, reason=reason, connector_id=connector.id)


class OAuthFlow(Flow):
    """OAuth 2.0: a redirect to the provider and back, or a server-side client-credentials grant."""

    auth_type: ClassVar[str] = "oauth"
    label: ClassVar[str] = "OAuth"
    credential_reason: ClassVar[str] = "invalid_credentials"

    # --- from the manifest ---------------------------------------------------------

    def connect_step(self, connector: Connector) -> ConnectStep:
        if self.inputs(connector):
            return ConnectStep.FORM
        return ConnectStep.REDIRECT

    def credential_inputs(self, connector: Connector) -> tuple[Input, ...]:
        """For client credentials, the connection's own client: its id and secret.

        A server-wide client would hand every tenant a token of the operator's
        own account; each connection brings its client instead (as Zoom's
        server-to-server apps and Salesforce's connected apps are set up).
        """
        if _auth(connector).grant is not Grant.CLIENT_CREDENTIALS:
            return ()
        return (
            Input(
                name="client_id",
                json_name="clientId",
                label="Client ID",
                html_type="text",
                secret=True,
                max_length=CLIENT_CREDENTIAL_MAX,
            ),
            Input(
                name="client_secret",
                json_name="clientSecret",
                label="Client secret",
                html_type="password",
                secret=True,
                max_length=CLIENT_CREDENTIAL_MAX,
            ),
        )

    def check_credentials(self, connector: Connector, values: Mapping[str, str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for item in self.credential_inputs(connector):
            value = values.get(item.name, "").strip()
            if not value:
                errors[item.name] = "is required"
            elif len(value) > CLIENT_CREDENTIAL_MAX or not all("!" <= c <= "~" for c in value):
                errors[item.name] = (
                    f"must be 1 to {CLIENT_CREDENTIAL_MAX} visible ASCII characters, without spaces"
                )
        return errors

    def continues_at_provider(self, connector: Connector) -> bool:
        return _auth(connector).grant is Grant.AUTHORIZATION_CODE

    def needs_client(self, connector: Connector) -> bool:
        # Client credentials bring their own client (see credential_inputs).
        return _auth(connector).grant is Grant.AUTHORIZATION_CODE

    def scopes(self, connector: Connector) -> tuple[str, ...]:
        return _auth(connector).scopes

    def refresh_margin(self, connector: Connector) -> int | None:
        return _auth(connector).refresh_margin_seconds

    def describe(self, connector: Connector) -> list[tuple[str, str]]:
        auth = _auth(connector)
        lines = [("grant", auth.grant.value)]
        if auth.authorize_url:
            lines.append(("authorize", auth.authorize_url))
        lines.append(("token", auth.token_url))
        if auth.revocation_url:
            lines.append(("revocation", auth.revocation_url))
        lines.append(("scopes", " ".join(auth.scopes) or "(none)"))
        if auth.grant is Grant.AUTHORIZATION_CODE:
            lines.append(("pkce", "S256" if auth.pkce else "off"))
        return lines

    def scaffold(self, connector_id: str, name: str) -> tuple[dict[str, Any], str]:
        auth = {
            "type": "oauth",
            "authorizeUrl": f"https://auth.{connector_id}.example.com/oauth/authorize",
            "tokenUrl": f"https://auth.{connector_id}.example.com/oauth/token",
            "scopes": ["read"],
        }
        env = connector_id.upper().replace("-", "_")
        setup = (
            f"Register an OAuth client with {name}, with the redirect URI "
            f"`<public URL>/api/integrations/{connector_id}/callback`, and set "
            f"`CONNECTORS_{env}_CLIENT_ID` and `CONNECTORS_{env}_CLIENT_SECRET` on the server."
        )
        return auth, setup

    # --- connecting ----------------------------------------------------------------------

    async def connect(
        self, ctx: FlowContext, connector: Connector, tenant: str, submission: Submission
    ) -> StoredConnection | Redirect:
        if _auth(connector).grant is Grant.CLIENT_CREDENTIALS:
            return await self._client_credentials(ctx, connector, tenant, submission)
        client = ctx.oauth_client(connector, submission.config)
        return Redirect(await self._begin(ctx, connector, tenant, submission, client))

    async def _client_credentials(
        self, ctx: FlowContext, connector: Connector, tenant: str, submission: Submission
    ) -> StoredConnection:
        from .._settings import ClientCredentials

        own = {
            name: submission.credentials[name].strip() for name in ("client_id", "client_secret")
        }
        # The plugin first: one that cannot load leaves no token granted for nothing.
        hooks = await ctx.plugin_hooks(connector)
        client = ctx.oauth_client(
            connector,
            submission.config,
            ClientCredentials(own["client_id"], own["client_secret"]),
            hooks,
        )
        try:
            response = await client.client_credentials()
        except IntegrationError as exc:
            if exc.reason != "not_configured":
                raise
            # invalid_client: the id and secret this user typed are wrong.
            raise InvalidFieldsError(
                {"client_secret": "the provider did not accept this client ID and secret"},
                reason="invalid_credentials",
                connector_id=connector.id,
            ) from None
        account = await self._account(ctx, connector, hooks, response)
        kept = {**submission.config, **_kept(connector, response.raw)}
        stored = await store_new(
            ctx,
            connector,
            tenant,
            attrs.evolve(submission, config=kept, secrets={**submission.secrets, **own}),
            tokens=response.tokens,
            account=account,
            requested_scopes=_auth(connector).scopes,
        )
        log.info("connected %s for tenant %s (client credentials)", connector.id, tenant)
        return stored

    async def _begin(
        self,
        ctx: FlowContext,
        connector: Connector,
        tenant: str,
        submission: Submission,
        client: OAuthClient,
    ) -> str:
        from ..connections._oauth import new_state, new_verifier
        from ..store import PendingAuthorization

        if submission.session_id is None:
            raise _failed(connector, "session_mismatch", "an authorization needs a browser session")
        state, verifier = new_state(), new_verifier()
        now = ctx.now()
        await ctx.store.put_authorization(
            PendingAuthorization(
                state=state,
                tenant=tenant,
                connector_id=connector.id,
                session_hash=session_hash(submission.session_id),
                code_verifier=verifier,
                redirect_uri=client.redirect_uri,
                expires_at=now + ctx.settings.state_lifetime,
                config=dict(submission.config),
                secrets=dict(submission.secrets),
                connection_id=submission.connection_id,
            ),
            now=now,
            max_per_session=ctx.settings.max_pending_per_session,
        )
        return client.authorization_url(state, verifier)

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
        """Complete the flow from the provider's redirect; store the connection.

        In stages: the pending authorization (checked before it is consumed:
        a callback from another browser, session or tenant must not burn the
        state of the user who started it), the plugin, the provider's answer,
        the code exchange, the account, the store. Nothing is stored unless
        every stage succeeded.
        """
        from ..store import ConnectionState, StoredConnection

        state = params.get("state", "")
        try:
            pending = await ctx.store.peek_authorization(state, now=ctx.now()) if state else None
        except SecretError:
            # Tampered with, or its key is gone: as good as no authorization at all.
            pending = None
        if pending is None or pending.connector_id != connector.id:
            raise _failed(
                connector, "invalid_state", "unknown, used or expired authorization state"
            )
        if session_id is None or session_hash(session_id) != pending.session_hash:
            raise _failed(
                connector,
                "session_mismatch",
                "the authorization was started in another browser session",
            )
        if tenant != pending.tenant:
            raise _failed(
                connector, "wrong_tenant", "the authorization was started by another tenant"
            )
        # Loaded before the state is spent and a code exchanged: a plugin that
        # cannot load leaves the authorization, and no fresh grant, behind.
        hooks = await ctx.plugin_hooks(connector)
        if await ctx.store.take_authorization(state, now=ctx.now()) is None:
            raise _failed(
                connector, "invalid_state", "unknown, used or expired authorization state"
            )
        issuer = _auth(connector).issuer
        if issuer is not None and params.get("iss") != issuer:
            # RFC 9207: an answer from another authorization server (a mix-up), or one
            # without the iss this provider always sends, is never processed further.
            raise _failed(
                connector,
                "issuer_mismatch",
                "the authorization response is not from the expected issuer",
            )
        error = params.get("error")
        if error:
            reason = "access_denied" if error == "access_denied" else "provider_error"
            raise _failed(connector, reason, f"the provider ended the authorization: {error[:64]}")
        code = params.get("code")
        if not code:
            raise _failed(connector, "provider_error", "the provider sent no authorization code")
        client = ctx.oauth_client(connector, pending.config, hooks=hooks)
        response = await client.exchange_code(code, pending.code_verifier)
        account = await self._account(ctx, connector, hooks, response)
        config = {**pending.config, **_kept(connector, response.raw)}
        now = ctx.now()
        candidate = StoredConnection(
            tenant=tenant,
            connector_id=connector.id,
            state=ConnectionState.CONNECTED,
            tokens=response.tokens,
            account=account,
            config=config,
            secrets=dict(pending.secrets),
            created_at=now,
            updated_at=now,
            requested_scopes=_auth(connector).scopes,
        )
        try:
            found = await verified_account(ctx, connector, candidate, hooks)
        except IntegrationError:
            # Nothing is stored: the tokens just granted must not stay valid either.
            await self.disconnect(ctx, connector, candidate)
            raise
        candidate = attrs.evolve(
            candidate,
            account={**candidate.account, **found.account},
            config={**candidate.config, **found.kept},
        )
        return await ctx.save_connection(
            connector,
            candidate,
            hooks=hooks,
            target=pending.connection_id,
            actor=actor,
            may_replace=may_replace,
        )

    async def _account(
        self,
        ctx: FlowContext,
        connector: Connector,
        hooks: pluggy.HookRelay,
        response: TokenResponse,
    ) -> dict[str, str]:
        """Who the connection belongs to: from the plugin's hook, else the token response."""
        from ._http import provider_errors

        def refused(status: int) -> IntegrationError:
            message = f"the provider refused the account lookup (HTTP {status})"
            return _failed(connector, "exchange_failed", message)

        account = _account_from(response.raw)
        async with ctx.http() as http:
            try:
                with provider_errors(connector, refused):
                    found = hooks.connection_account(
                        connector=connector,
                        access_token=response.tokens.access_token,
                        token_response=response.raw,
                        http=http,
                        settings=ctx.settings,
                    )
                    if inspect.isawaitable(found):
                        found = await found
                found = {str(k): str(v) for k, v in dict(found or {}).items()}
            except IntegrationError:
                raise
            except Exception as exc:  # noqa: BLE001 - a plugin's bug ends this flow, not the server
                # The type only: a message may quote a response that carries a token.
                log.warning(
                    "the account lookup of %s failed in its plugin: %s",
                    connector.id,
                    type(exc).__name__,
                )
                raise _failed(
                    connector,
                    "exchange_failed",
                    f"the account lookup failed ({type(exc).__name__})",
                ) from None
        account.update(found)
        return account

    # --- a connection --------------------------------------------------------------------

    def status_details(self, connector: Connector, summary: ConnectionSummary) -> dict[str, Any]:
        return {"scopes": list(summary.scopes)}

    async def disconnect(
        self, ctx: FlowContext, connector: Connector, connection: StoredConnection
    ) -> None:
        """Revoke both tokens, each on its own: one failing does not spare the other."""
        tokens = connection.tokens
        if tokens is None:
            return
        try:
            client = ctx.oauth_client(connector, connection.config)
        except IntegrationError as exc:
            log.warning("cannot revoke %s (%s); deleting it locally", connector.id, exc.reason)
            return
        pairs = [(tokens.refresh_token, "refresh_token"), (tokens.access_token, "access_token")]
        for token, hint in pairs:
            if not token:
                continue
            try:
                await client.revoke(token, hint)
            except IntegrationError as exc:
                log.warning(
                    "revocation of the %s of %s failed (%s); deleting it locally",
                    hint.replace("_", " "),
                    connector.id,
                    exc.reason,
                )

    def renewable(self, connector: Connector, connection: StoredConnection) -> bool:
        """A refresh token, or a client-credentials grant that gets a new token itself."""
        tokens = connection.tokens
        if tokens is None:
            return False
        return bool(tokens.refresh_token) or _auth(connector).grant is Grant.CLIENT_CREDENTIALS

    async def renew(
        self,
        ctx: FlowContext,
        connector: Connector,
        connection: StoredConnection,
        on_rotated: RotatedToken | None = None,
    ) -> TokenSet:
        """A refreshed token set; for client credentials, a newly granted one.

        :raises NeedsReauthError: the provider rejected the grant, or the
            connection's own client; or the connection lacks a value its
            connector's URLs now need (the user must connect again).
        """
        from .._settings import ClientCredentials

        assert connection.tokens is not None
        own = None
        if _auth(connector).grant is Grant.CLIENT_CREDENTIALS:
            own = ClientCredentials(
                connection.secrets.get("client_id", ""), connection.secrets.get("client_secret")
            )
        hooks = await ctx.plugin_hooks(connector)
        try:
            client = ctx.oauth_client(connector, connection.config, own, hooks)
        except InvalidFieldsError as exc:
            raise NeedsReauthError(
                f"the connection lacks values {connector.id!r} now needs ({', '.join(exc.fields)})",
                cause="missing_values",
                connector_id=connector.id,
            ) from None
        if own is None:
            response = await client.refresh(connection.tokens, on_rotated=on_rotated)
            return response.tokens
        try:
            response = await client.client_credentials(renewal=True)
        except IntegrationError as exc:
            if exc.reason != "not_configured":
                raise
            raise NeedsReauthError(
                "the provider no longer accepts this connection's client",
                cause="client_rejected",
                connector_id=connector.id,
            ) from None
        return response.tokens

    def authenticate(
        self, connector: Connector, connection: StoredConnection, request: httpx2.Request
    ) -> None:
        if connection.tokens is not None:
            auth = _auth(connector)
            request.headers[auth.header_name] = auth.value_prefix + connection.tokens.access_token
