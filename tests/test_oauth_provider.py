"""The sandbox OAuth provider enforces the protocol, over real HTTP on loopback."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import httpx2
import pytest

from connectors_core.testing.oauth_provider import Account, Client, OAuthProvider, running

CALLBACK = "http://localhost:8000/callback"
TENANT_CALLBACK = "http://localhost:8000/callback?tenant=7"
APP = Client(
    "app",
    "app-secret",
    (CALLBACK, TENANT_CALLBACK),
    ("events:read", "venues:read", "offline_access"),
)
APP_AUTH = (APP.client_id, APP.client_secret)
OTHER = Client("other", "other:secret+%", (CALLBACK,), ("events:read",))
AUTHORIZE, TOKEN, REVOKE, STATUS = (
    "/oauth/authorize",
    "/api/oauth/token",
    "/api/oauth/revoke",
    "/oauth/status",
)

Start = Callable[[OAuthProvider], httpx2.Client]


@pytest.fixture
def start() -> Iterator[Start]:
    """Serve a provider on loopback and return a client for it; both stop after the test."""
    with contextlib.ExitStack() as stack:

        def start_(provider: OAuthProvider) -> httpx2.Client:
            base_url = stack.enter_context(running(provider))
            return stack.enter_context(httpx2.Client(base_url=base_url, timeout=5.0))

        yield start_


@pytest.fixture
def provider() -> OAuthProvider:
    return OAuthProvider(clients=[APP, OTHER], account=Account("user-9", "org-9"))


@pytest.fixture
def http(start: Start, provider: OAuthProvider) -> httpx2.Client:
    return start(provider)


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 code challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize(http: httpx2.Client, challenge: str, **overrides: str | None) -> httpx2.Response:
    """Start an authorization; an override of None leaves that parameter out."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": APP.client_id,
        "redirect_uri": CALLBACK,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "events:read offline_access",
    }
    params.update(overrides)
    return http.get(AUTHORIZE, params={k: v for k, v in params.items() if v is not None})


def redirected(response: httpx2.Response, to: str = CALLBACK) -> dict[str, str]:
    """The parameters of a redirect back to the client."""
    assert response.status_code in (302, 303), response.text
    location = urlsplit(response.headers["location"])
    expected = urlsplit(to)
    assert location[:3] == expected[:3]
    return dict(parse_qsl(location.query))


def get_code(http: httpx2.Client, **overrides: str | None) -> tuple[str, str]:
    """An authorization code and its verifier."""
    verifier, challenge = pkce()
    params = redirected(authorize(http, challenge, **overrides))
    assert params["state"] == "xyz"
    return params["code"], verifier


def token(
    http: httpx2.Client, form: dict[str, str], *, client: Client = APP, style: str = "basic"
) -> httpx2.Response:
    """A token request, the client authenticating with Basic or in the form."""
    if style == "basic":
        return http.post(TOKEN, data=form, auth=(client.client_id, client.client_secret))
    return http.post(
        TOKEN, data={**form, "client_id": client.client_id, "client_secret": client.client_secret}
    )


def exchange(
    http: httpx2.Client, code: str, verifier: str, redirect_uri: str = CALLBACK, **kwargs: Any
) -> httpx2.Response:
    form = {"code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    return token(http, {"grant_type": "authorization_code", **form}, **kwargs)


def tokens(http: httpx2.Client) -> dict[str, Any]:
    """Tokens from a complete, successful code flow."""
    response = exchange(http, *get_code(http))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def refresh(
    http: httpx2.Client, refresh_token: str, scope: str | None = None, **kwargs: Any
) -> httpx2.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token(http, form if scope is None else {**form, "scope": scope}, **kwargs)


def status(http: httpx2.Client, access_token: str) -> httpx2.Response:
    return http.get(STATUS, headers={"Authorization": f"Bearer {access_token}"})


def error_of(response: httpx2.Response, status_code: int = 400) -> str:
    assert response.status_code == status_code, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()["error"]  # type: ignore[no-any-return]


def assert_invalid_token(response: httpx2.Response) -> None:
    assert error_of(response, 401) == "invalid_token"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


# -- the authorization code flow --------------------------------------------------


def test_full_code_flow_with_pkce(http: httpx2.Client, provider: OAuthProvider) -> None:
    code, verifier = get_code(http)
    response = exchange(http, code, verifier)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "events:read offline_access"
    assert provider.is_active(body["access_token"])
    assert provider.is_active(body["refresh_token"])
    assert provider.token_requests == ["authorization_code"]
    me = status(http, body["access_token"])
    assert me.status_code == 200
    assert me.json() == {
        "userId": "user-9",
        "organizationId": "org-9",
        "clientId": "app",
        "scopes": ["events:read", "offline_access"],
    }


def test_scope_defaults_to_the_clients_scopes(http: httpx2.Client) -> None:
    code, verifier = get_code(http, scope=None)
    assert exchange(http, code, verifier).json()["scope"] == " ".join(APP.scopes)


def test_the_redirect_keeps_the_query_of_the_redirect_uri(http: httpx2.Client) -> None:
    verifier, challenge = pkce()
    params = redirected(authorize(http, challenge, redirect_uri=TENANT_CALLBACK), TENANT_CALLBACK)
    assert params["tenant"] == "7"
    response = exchange(http, params["code"], verifier, redirect_uri=TENANT_CALLBACK)
    assert response.status_code == 200


def test_a_wrong_verifier_is_an_invalid_grant(http: httpx2.Client) -> None:
    code, _ = get_code(http)
    assert error_of(exchange(http, code, pkce()[0])) == "invalid_grant"


def test_a_missing_verifier_is_an_invalid_request(http: httpx2.Client) -> None:
    code, _ = get_code(http)
    response = token(
        http, {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    )
    assert error_of(response) == "invalid_request"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "events:read events:write"}, "invalid_scope"),
    ],
    ids=["plain", "no-method", "no-challenge", "bad-challenge", "no-state", "token", "scope"],
)
def test_invalid_authorizations_redirect_with_an_error(
    http: httpx2.Client, overrides: dict[str, str | None], error: str
) -> None:
    params = redirected(authorize(http, pkce()[1], **overrides))
    assert params["error"] == error
    assert "code" not in params
    if "state" not in overrides:
        assert params["state"] == "xyz"


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "nobody"},
        {"client_id": None},
        {"redirect_uri": "http://evil.example/callback"},
        {"redirect_uri": CALLBACK + "/"},
        {"redirect_uri": CALLBACK + "?x=1"},
        {"redirect_uri": "HTTP://localhost:8000/callback"},
        {"redirect_uri": None},
    ],
    ids=["unknown-client", "no-client", "other-host", "slash", "query", "case", "no-uri"],
)
def test_unknown_clients_and_redirect_uris_get_an_error_page_not_a_redirect(
    http: httpx2.Client, overrides: dict[str, str | None]
) -> None:
    response = authorize(http, pkce()[1], **overrides)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def test_the_redirect_uri_must_match_at_the_token_endpoint(http: httpx2.Client) -> None:
    code, verifier = get_code(http)
    response = exchange(http, code, verifier, redirect_uri=TENANT_CALLBACK)
    assert error_of(response) == "invalid_grant"


def test_a_code_is_bound_to_its_client(http: httpx2.Client) -> None:
    code, verifier = get_code(http)
    response = exchange(http, code, verifier, client=OTHER, style="post")
    assert error_of(response) == "invalid_grant"


def test_a_replayed_code_revokes_the_tokens_issued_from_it(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    code, verifier = get_code(http)
    first = exchange(http, code, verifier).json()

    assert error_of(exchange(http, code, verifier)) == "invalid_grant"
    assert not provider.is_active(first["access_token"])
    assert not provider.is_active(first["refresh_token"])
    assert_invalid_token(status(http, first["access_token"]))
    assert error_of(refresh(http, first["refresh_token"])) == "invalid_grant"


def test_an_expired_code_is_an_invalid_grant(http: httpx2.Client, provider: OAuthProvider) -> None:
    code, verifier = get_code(http)
    provider.clock_offset += provider.code_lifetime
    assert error_of(exchange(http, code, verifier)) == "invalid_grant"


def test_a_denied_authorization_redirects_with_access_denied(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    provider.deny_next = True
    params = redirected(authorize(http, pkce()[1]))
    assert params == {"error": "access_denied", "state": "xyz"}
    assert provider.deny_next is False
    assert "code" in redirected(authorize(http, pkce()[1]))


# -- client authentication and request format --------------------------------------


@pytest.mark.parametrize("style", ["basic", "post"])
@pytest.mark.parametrize("client", [APP, OTHER], ids=["app", "reserved-characters"])
def test_clients_authenticate_by_basic_or_in_the_form(
    http: httpx2.Client, client: Client, style: str
) -> None:
    verifier, challenge = pkce()
    params = redirected(authorize(http, challenge, client_id=client.client_id, scope=None))
    form = {"code": params["code"], "redirect_uri": CALLBACK, "code_verifier": verifier}
    if style == "basic":
        # RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
        credentials = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
        header = "Basic " + base64.b64encode(credentials.encode()).decode()
        response = http.post(
            TOKEN,
            data={"grant_type": "authorization_code", **form},
            headers={"Authorization": header},
        )
    else:
        response = token(
            http, {"grant_type": "authorization_code", **form}, client=client, style="post"
        )
    assert response.status_code == 200, response.text


def test_basic_credentials_must_be_form_encoded(http: httpx2.Client) -> None:
    code, verifier = get_code(http, client_id="other", scope=None)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    raw = http.post(
        TOKEN, data={**form, "redirect_uri": CALLBACK}, auth=("other", OTHER.client_secret)
    )
    assert error_of(raw, 401) == "invalid_client"


@pytest.mark.parametrize("endpoint", [TOKEN, REVOKE])
@pytest.mark.parametrize(
    "credentials",
    [
        {"auth": ("app", "wrong")},
        {"data": {"client_id": "app", "client_secret": "wrong"}},
        {"data": {"client_id": "app"}},
        {"auth": ("nobody", "app-secret")},
        {"headers": {"Authorization": "Bearer app-secret"}},
        {"headers": {"Authorization": "Basic not-base64!"}},
        {},
    ],
    ids=["basic", "post", "no-secret", "unknown", "bearer", "garbled", "none"],
)
def test_bad_client_credentials_are_an_invalid_client(
    http: httpx2.Client, endpoint: str, credentials: dict[str, Any]
) -> None:
    form = {"grant_type": "refresh_token", "token": "t", "refresh_token": "t"}
    kwargs = {**credentials, "data": {**form, **credentials.get("data", {})}}
    response = http.post(endpoint, **kwargs)
    assert error_of(response, 401) == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_two_authentication_methods_at_once_are_refused(http: httpx2.Client) -> None:
    response = http.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": "t", "client_secret": "app-secret"},
        auth=APP_AUTH,
    )
    assert error_of(response) == "invalid_request"


def test_the_token_endpoint_takes_only_form_bodies(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    code, verifier = get_code(http)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    response = http.post(TOKEN, json=form, auth=APP_AUTH)
    assert error_of(response) == "invalid_request"
    assert provider.token_requests == [""]


def test_a_repeated_parameter_is_an_invalid_request(http: httpx2.Client) -> None:
    response = http.post(
        TOKEN,
        content=b"grant_type=refresh_token&refresh_token=a&refresh_token=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=APP_AUTH,
    )
    assert error_of(response) == "invalid_request"


def test_other_grant_types_are_unsupported(http: httpx2.Client, provider: OAuthProvider) -> None:
    response = token(http, {"grant_type": "password", "username": "u", "password": "p"})
    assert error_of(response) == "unsupported_grant_type"
    assert error_of(token(http, {})) == "invalid_request"
    assert provider.token_requests == ["password", ""]


def test_client_credentials_need_a_client_allowed_to_use_them(http: httpx2.Client) -> None:
    # The app client is registered for the authorization code grant only.
    assert error_of(token(http, {"grant_type": "client_credentials"})) == "unauthorized_client"


# -- refresh tokens -----------------------------------------------------------------


def test_a_refresh_rotates_both_tokens(http: httpx2.Client, provider: OAuthProvider) -> None:
    first = tokens(http)
    response = refresh(http, first["refresh_token"], style="post")

    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    assert not provider.is_active(first["refresh_token"])
    assert provider.is_active(second["refresh_token"])
    assert status(http, second["access_token"]).status_code == 200
    assert provider.token_requests == ["authorization_code", "refresh_token"]


def test_reusing_a_rotated_refresh_token_revokes_the_family(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    first = tokens(http)
    second = refresh(http, first["refresh_token"]).json()
    unrelated = tokens(http)

    assert error_of(refresh(http, first["refresh_token"])) == "invalid_grant"
    for issued in (first, second):
        assert not provider.is_active(issued["access_token"])
        assert not provider.is_active(issued["refresh_token"])
    assert_invalid_token(status(http, second["access_token"]))
    assert error_of(refresh(http, second["refresh_token"])) == "invalid_grant"
    assert provider.is_active(unrelated["refresh_token"])


def test_a_refresh_may_narrow_the_scope_but_not_widen_it(http: httpx2.Client) -> None:
    first = tokens(http)
    assert error_of(refresh(http, first["refresh_token"], scope="venues:read")) == "invalid_scope"
    narrowed = refresh(http, first["refresh_token"], scope="events:read").json()
    assert narrowed["scope"] == "events:read"
    assert status(http, narrowed["access_token"]).json()["scopes"] == ["events:read"]
    # The new refresh token keeps the original scope (RFC 6749 §6).
    assert refresh(http, narrowed["refresh_token"]).json()["scope"] == first["scope"]


def test_a_refresh_token_belongs_to_its_client(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    first = tokens(http)
    stolen = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert error_of(token(http, stolen, client=OTHER, style="post")) == "invalid_grant"
    assert error_of(refresh(http, "unknown")) == "invalid_grant"
    assert error_of(refresh(http, first["access_token"])) == "invalid_grant"
    assert provider.is_active(first["refresh_token"])


# -- revocation and status ---------------------------------------------------------


def test_revoking_a_refresh_token_revokes_its_family(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    first = tokens(http)
    second = refresh(http, first["refresh_token"]).json()
    other = tokens(http)

    response = http.post(
        REVOKE,
        data={"token": second["refresh_token"], "token_type_hint": "refresh_token"},
        auth=APP_AUTH,
    )

    assert response.status_code == 200
    assert response.content == b""
    assert provider.revocations == [second["refresh_token"]]
    assert not provider.is_active(second["refresh_token"])
    assert_invalid_token(status(http, second["access_token"]))
    assert_invalid_token(status(http, first["access_token"]))
    assert provider.is_active(other["refresh_token"])


def test_revoking_an_access_token_revokes_only_that_token(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    issued = tokens(http)
    response = http.post(
        REVOKE,
        data={"token": issued["access_token"], "client_id": "app", "client_secret": "app-secret"},
    )
    assert response.status_code == 200
    assert_invalid_token(status(http, issued["access_token"]))
    assert provider.is_active(issued["refresh_token"])


def test_revoking_an_unknown_token_succeeds(http: httpx2.Client) -> None:
    response = http.post(REVOKE, data={"token": "unknown"}, auth=APP_AUTH)
    assert response.status_code == 200
    assert response.content == b""


def test_revocation_requires_a_token_issued_to_the_client(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    issued = tokens(http)
    assert error_of(http.post(REVOKE, data={}, auth=APP_AUTH)) == "invalid_request"
    form = {"token": issued["refresh_token"], "client_id": "other"}
    response = http.post(REVOKE, data={**form, "client_secret": OTHER.client_secret})
    assert error_of(response) == "unauthorized_client"
    assert provider.is_active(issued["refresh_token"])
    assert provider.revocations == []


def test_status_needs_a_live_access_token(http: httpx2.Client, provider: OAuthProvider) -> None:
    issued = tokens(http)
    assert status(http, issued["access_token"]).status_code == 200
    assert_invalid_token(status(http, issued["refresh_token"]))
    assert_invalid_token(status(http, "unknown"))
    assert_invalid_token(http.get(STATUS))
    assert_invalid_token(
        http.get(STATUS, headers={"Authorization": f"Basic {issued['access_token']}"})
    )


def test_an_expired_access_token_is_refused(http: httpx2.Client, provider: OAuthProvider) -> None:
    issued = tokens(http)
    provider.clock_offset += provider.access_token_lifetime
    assert not provider.is_active(issued["access_token"])
    assert_invalid_token(status(http, issued["access_token"]))
    # The refresh token outlives it.
    assert status(http, refresh(http, issued["refresh_token"]).json()["access_token"]).is_success


# -- fault injection -----------------------------------------------------------------


@pytest.mark.parametrize("failure", [500, 503, 429])
def test_an_injected_failure_is_served_once(
    http: httpx2.Client, provider: OAuthProvider, failure: int
) -> None:
    issued = tokens(http)
    provider.fail_next("token", failure)

    failed = refresh(http, issued["refresh_token"])

    assert failed.status_code == failure
    assert failed.json()["error"]
    assert (failed.headers.get("retry-after") == "1") == (failure == 429)
    assert provider.is_active(issued["refresh_token"])  # nothing happened
    assert refresh(http, issued["refresh_token"]).status_code == 200
    assert provider.token_requests == ["authorization_code", "refresh_token", "refresh_token"]


def test_injected_failures_are_consumed_in_order(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    provider.fail_next("revoke", 500, count=2)
    provider.fail_next("revoke", 503)
    codes = [http.post(REVOKE, data={"token": "t"}, auth=APP_AUTH).status_code for _ in range(4)]
    assert codes == [500, 500, 503, 200]


def test_an_injected_timeout_holds_the_response(
    http: httpx2.Client, provider: OAuthProvider
) -> None:
    issued = tokens(http)
    provider.timeout_delay = 2.0
    provider.fail_next("status", "timeout")
    with pytest.raises(httpx2.TimeoutException):
        http.get(STATUS, headers={"Authorization": f"Bearer {issued['access_token']}"}, timeout=0.5)
    assert status(http, issued["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "failure", "count"),
    [("authorize", 500, 1), ("token", 200, 1), ("token", "slow", 1), ("token", 500, 0)],
)
def test_fail_next_checks_its_arguments(
    provider: OAuthProvider, endpoint: str, failure: int | str, count: int
) -> None:
    with pytest.raises(ValueError, match="must be"):
        provider.fail_next(endpoint, failure, count)


# -- interactive consent ---------------------------------------------------------------


def consent(http: httpx2.Client) -> tuple[str, str]:
    """Open the consent page; return the pending request id and the verifier."""
    verifier, challenge = pkce()
    page = authorize(http, challenge)
    assert page.status_code == 200
    assert "Sandbox OAuth provider — not a real service" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    match = re.search(r'name="request" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1), verifier


@pytest.fixture
def interactive(start: Start) -> httpx2.Client:
    return start(OAuthProvider(clients=[APP], interactive=True))


def test_interactive_approval(interactive: httpx2.Client) -> None:
    request_id, verifier = consent(interactive)
    decision = {"request": request_id, "decision": "approve"}

    response = interactive.post("/oauth/authorize/decision", data=decision)

    assert response.status_code == 303
    params = redirected(response)
    assert params["state"] == "xyz"
    assert exchange(interactive, params["code"], verifier).status_code == 200
    # A decision is taken once.
    assert interactive.post("/oauth/authorize/decision", data=decision).status_code == 400


def test_interactive_denial(interactive: httpx2.Client) -> None:
    request_id, _ = consent(interactive)
    response = interactive.post(
        "/oauth/authorize/decision", data={"request": request_id, "decision": "deny"}
    )
    assert response.status_code == 303
    assert redirected(response) == {"error": "access_denied", "state": "xyz"}


def test_interactive_mode_still_rejects_bad_requests(interactive: httpx2.Client) -> None:
    assert redirected(authorize(interactive, pkce()[1], code_challenge_method="plain"))["error"]
    assert interactive.post("/oauth/authorize/decision", data={"request": "x"}).status_code == 400


# -- construction ----------------------------------------------------------------------


def test_the_client_secret_stays_out_of_the_repr() -> None:
    assert "app-secret" not in repr(APP)


@pytest.mark.parametrize(
    "clients",
    [[], [APP, APP], [Client("c", "s", ("http://x/cb#frag",), ())]],
    ids=["none", "duplicate", "fragment"],
)
def test_the_provider_checks_its_clients(clients: list[Client]) -> None:
    with pytest.raises(ValueError, match=r"client|redirect URI"):
        OAuthProvider(clients=clients)


# -- grants kept across restarts, and a plugin's API behind the provider ------------


def test_grants_survive_a_restart_kept_only_as_hashes(start: Start, tmp_path: Any) -> None:
    import json
    import os

    path = tmp_path / "sandbox.json"
    first = OAuthProvider(clients=[APP], state_path=path)
    issued = tokens(start(first))
    revoked = tokens(start(first))
    start(first).post(REVOKE, data={"token": revoked["access_token"]}, auth=APP_AUTH)
    text = path.read_text("utf-8")
    for value in (*issued.values(), *revoked.values()):
        if isinstance(value, str) and len(value) > 20:
            assert value not in text  # no usable token on disk
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert json.loads(text)["clients"] == {"app": "app-secret"}
    assert OAuthProvider.saved_client_secrets(path) == {"app": "app-secret"}

    again = OAuthProvider(clients=[APP], state_path=path)  # the restart
    http = start(again)
    assert status(http, issued["access_token"]).status_code == 200
    assert_invalid_token(status(http, revoked["access_token"]))
    renewed = refresh(http, issued["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    # Rotation is remembered too: the spent refresh token is refused after another restart.
    third = start(OAuthProvider(clients=[APP], state_path=path))
    assert error_of(refresh(third, issued["refresh_token"])) == "invalid_grant"


def test_an_unreadable_state_file_is_a_clear_error(tmp_path: Any) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text("{not json", "utf-8")
    with pytest.raises(ValueError, match="cannot read the provider's grants"):
        OAuthProvider(clients=[APP], state_path=path)
    assert OAuthProvider.saved_client_secrets(path) == {}
    assert OAuthProvider.saved_client_secrets(tmp_path / "missing.json") == {}


def test_a_mounted_api_is_served_only_with_a_credential_and_learns_who_calls(
    start: Start, provider: OAuthProvider
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def whoami(request: Request) -> JSONResponse:
        headers = request.headers
        return JSONResponse(
            {
                "path": request.url.path,
                "user": headers["x-sandbox-user-id"],
                "org": headers["x-sandbox-organization-id"],
                "scopes": headers["x-sandbox-scopes"],
                "forged": headers.getlist("x-sandbox-user-id"),
            }
        )

    provider.mount_api("acme", Starlette(routes=[Route("/v1/me", whoami)]))
    http = start(provider)
    access = tokens(http)["access_token"]
    assert_invalid_token(http.get("/apis/acme/v1/me"))
    forged = {"X-Sandbox-User-Id": "someone-else"}
    answer = http.get("/apis/acme/v1/me", headers={"Authorization": f"Bearer {access}", **forged})
    assert answer.json() == {
        "path": "/v1/me",
        "user": "user-9",
        "org": "org-9",
        "scopes": "events:read offline_access",
        "forged": ["user-9"],
    }
    assert http.get("/apis/nobody/v1/me").status_code == 404
    with pytest.raises(ValueError, match="connector id"):
        provider.mount_api("Not An Id", Starlette())


def test_canned_answers_can_be_given_a_number_of_times_with_headers(
    start: Start, provider: OAuthProvider
) -> None:
    provider.api_credentials.add("a-key-123456")
    provider.answer_api("/items", {"items": [1]})
    provider.answer_api("/items", status=429, headers={"Retry-After": "1"}, times=2)
    http = start(provider)
    key = {"X-Key": "a-key-123456"}
    first, second, third = (http.get("/connector-api/items", headers=key) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "1"
    assert third.json() == {"items": [1]}
    assert len(provider.api_request_times) == 3


def test_a_provider_says_whether_it_restored_grants(tmp_path: Any) -> None:
    path = tmp_path / "sandbox.json"
    assert OAuthProvider(clients=[APP], state_path=path).restored is False
    path.write_text('{"version": 1, "tokens": {}}', "utf-8")
    assert OAuthProvider(clients=[APP], state_path=path).restored is True
    assert OAuthProvider(clients=[APP]).restored is False
