"""A client's quirks make the provider behave like a less standard one, and enforce it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from connectors_core.testing.oauth_provider import Client, OAuthProvider, Quirks, running
from tests.test_oauth_provider import (
    CALLBACK,
    REVOKE,
    TOKEN,
    assert_invalid_token,
    authorize,
    error_of,
    pkce,
    redirected,
    status,
)

CLIENT_ID, SECRET = "quirky", "quirky-secret"
SCOPES = ("read", "write", "offline")

Serve = Callable[[Quirks], tuple[OAuthProvider, httpx2.Client]]


def quirky(quirks: Quirks, **kwargs: Any) -> Client:
    return Client(CLIENT_ID, SECRET, (CALLBACK,), SCOPES, quirks=quirks, **kwargs)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Serve a provider whose one client has these quirks, and return a client for it."""
    with contextlib.ExitStack() as stack:

        def serve_(quirks: Quirks) -> tuple[OAuthProvider, httpx2.Client]:
            provider = OAuthProvider(clients=[quirky(quirks)])
            base_url = stack.enter_context(running(provider))
            return provider, stack.enter_context(httpx2.Client(base_url=base_url, timeout=5.0))

        yield serve_


def send(
    http: httpx2.Client,
    form: dict[str, str],
    *,
    auth: str = "basic",
    body: str = "form",
    endpoint: str = TOKEN,
) -> httpx2.Response:
    """A token (or revocation) request; `auth` is basic, post or none, `body` form or json."""
    kwargs: dict[str, Any] = {}
    if auth == "basic":
        kwargs["auth"] = (CLIENT_ID, SECRET)
    elif auth == "post":
        form = {**form, "client_id": CLIENT_ID, "client_secret": SECRET}
    else:
        form = {**form, "client_id": CLIENT_ID}
    if body == "json":
        return http.post(endpoint, json=form, **kwargs)
    return http.post(endpoint, data=form, **kwargs)


def code(http: httpx2.Client, **params: str | None) -> tuple[str, str]:
    """An authorization code of the quirky client and its verifier."""
    verifier, challenge = pkce()
    params = {"scope": "read", **params}
    redirect = redirected(authorize(http, challenge, client_id=CLIENT_ID, **params))
    assert "code" in redirect, redirect
    return redirect["code"], verifier


def exchange(http: httpx2.Client, found: tuple[str, str], **kwargs: Any) -> httpx2.Response:
    value, verifier = found
    form = {"grant_type": "authorization_code", "code": value, "redirect_uri": CALLBACK}
    return send(http, {**form, "code_verifier": verifier, **kwargs.pop("form", {})}, **kwargs)


def refresh(http: httpx2.Client, refresh_token: str, **kwargs: Any) -> httpx2.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return send(http, {**form, **kwargs.pop("form", {})}, **kwargs)


def ok(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def description(response: httpx2.Response) -> str:
    return response.json()["error_description"]  # type: ignore[no-any-return]


# -- client authentication -----------------------------------------------------------


def test_client_secret_post_is_the_only_method_of_such_a_client(serve: Serve) -> None:
    provider, http = serve(Quirks(client_auth="client_secret_post"))
    issued = ok(exchange(http, code(http), auth="post"))
    renewed = ok(refresh(http, issued["refresh_token"], auth="post"))

    basic = refresh(http, renewed["refresh_token"], auth="basic")
    assert error_of(basic, 401) == "invalid_client"
    assert basic.headers["www-authenticate"].startswith("Basic")
    assert "client_secret_post" in description(basic)
    revoke = send(http, {"token": renewed["refresh_token"]}, auth="basic", endpoint=REVOKE)
    assert error_of(revoke, 401) == "invalid_client"
    assert provider.is_active(renewed["refresh_token"])
    assert error_of(refresh(http, renewed["refresh_token"], auth="none")) == "invalid_client"
    assert send(http, {"token": renewed["refresh_token"]}, auth="post", endpoint=REVOKE).is_success
    assert not provider.is_active(renewed["refresh_token"])


def test_client_secret_basic_is_the_only_method_of_such_a_client(serve: Serve) -> None:
    _, http = serve(Quirks(client_auth="client_secret_basic"))
    issued = ok(exchange(http, code(http), auth="basic"))

    post = refresh(http, issued["refresh_token"], auth="post")
    # A failed attempt that did not use Basic is a 400, without a Basic challenge.
    assert error_of(post) == "invalid_client"
    assert "www-authenticate" not in post.headers
    assert "client_secret_basic" in description(post)
    ok(refresh(http, issued["refresh_token"], auth="basic"))


def test_a_public_client_sends_its_id_and_no_secret(serve: Serve) -> None:
    provider, http = serve(Quirks(client_auth="none"))
    issued = ok(exchange(http, code(http), auth="none"))
    renewed = ok(refresh(http, issued["refresh_token"], auth="none"))

    for auth, status_code in (("post", 400), ("basic", 401)):
        refused = refresh(http, renewed["refresh_token"], auth=auth)
        assert error_of(refused, status_code) == "invalid_client"
        assert "none" in description(refused)
    assert provider.is_active(renewed["refresh_token"])
    assert send(http, {"token": renewed["refresh_token"]}, auth="none", endpoint=REVOKE).is_success
    assert not provider.is_active(renewed["refresh_token"])


def test_a_public_client_may_not_use_client_credentials() -> None:
    client = quirky(Quirks(client_auth="none"), grants=("client_credentials",))
    with pytest.raises(ValueError, match="public client"):
        OAuthProvider(clients=[client])


# -- scopes, PKCE and extra parameters -------------------------------------------------


def test_scopes_are_separated_by_the_declared_separator(serve: Serve) -> None:
    _, http = serve(Quirks(scope_separator=","))
    issued = ok(exchange(http, code(http, scope="read,write")))
    assert issued["scope"] == "read,write"
    assert status(http, issued["access_token"]).json()["scopes"] == ["read", "write"]
    assert ok(refresh(http, issued["refresh_token"]))["scope"] == "read,write"

    spaced = redirected(authorize(http, pkce()[1], client_id=CLIENT_ID, scope="read write"))
    assert spaced["error"] == "invalid_scope"
    assert "','" in spaced["error_description"]
    narrowed = refresh(http, issued["refresh_token"], form={"scope": "read write"})
    assert error_of(narrowed) == "invalid_scope"


def test_a_scope_may_not_contain_its_clients_separator() -> None:
    with pytest.raises(ValueError, match="scope separator"):
        OAuthProvider(
            clients=[Client("c", "s", (CALLBACK,), ("a,b",), quirks=Quirks(scope_separator=","))]
        )


def test_without_pkce_no_verifier_is_needed_and_a_challenge_is_ignored(serve: Serve) -> None:
    _, http = serve(Quirks(pkce=False))
    value, _ = code(http, code_challenge=None, code_challenge_method=None)
    form = {"grant_type": "authorization_code", "code": value, "redirect_uri": CALLBACK}
    issued = ok(send(http, form))
    ok(refresh(http, issued["refresh_token"]))

    # A challenge is not kept, so the verifier sent with it is not checked either.
    value, _ = code(http, code_challenge_method="plain")
    ok(send(http, {**form, "code": value, "code_verifier": pkce()[0]}))


def test_authorize_params_are_required_with_their_values(serve: Serve) -> None:
    params = {"access_type": "offline", "prompt": "consent"}
    _, http = serve(Quirks(authorize_params=params, issuer="https://id.example"))
    ok(exchange(http, code(http, **params)))

    for wrong, name in (({"access_type": None}, "access_type"), ({"prompt": "none"}, "prompt")):
        redirect = redirected(
            authorize(http, pkce()[1], client_id=CLIENT_ID, scope="read", **{**params, **wrong})
        )
        assert redirect["error"] == "invalid_request"
        assert name in redirect["error_description"]
        assert redirect["state"] == "xyz"
        assert redirect["iss"] == "https://id.example"
        assert "code" not in redirect


def test_token_and_refresh_params_are_required_with_their_values(serve: Serve) -> None:
    audience, team = {"audience": "https://api.example"}, {"team": "t-1"}
    _, http = serve(Quirks(token_params=audience, refresh_params=team))
    found = code(http)
    missing = exchange(http, found)
    assert error_of(missing) == "invalid_request"
    assert "audience" in description(missing)
    wrong = exchange(http, found, form={"audience": "https://other.example"})
    assert error_of(wrong) == "invalid_request"
    issued = ok(exchange(http, found, form=audience))

    # The exchange's parameters are not the refresh's.
    not_team = refresh(http, issued["refresh_token"], form=audience)
    assert error_of(not_team) == "invalid_request"
    assert "team" in description(not_team)
    ok(refresh(http, issued["refresh_token"], form=team))


# -- request and response shapes -------------------------------------------------------


def test_json_token_requests_are_the_only_body_of_such_a_client(serve: Serve) -> None:
    provider, http = serve(Quirks(token_request_format="json", client_auth="client_secret_post"))
    found = code(http)
    form = exchange(http, found, auth="post")
    assert error_of(form) == "invalid_request"
    assert "JSON" in description(form)
    issued = ok(exchange(http, found, auth="post", body="json"))
    ok(refresh(http, issued["refresh_token"], auth="post", body="json"))
    assert provider.token_requests == ["", "authorization_code", "refresh_token"]

    for raw in (b'["grant_type", "refresh_token"]', b'{"grant_type": "refresh_token", "x": 1}'):
        response = http.post(TOKEN, content=raw, headers={"Content-Type": "application/json"})
        assert error_of(response) == "invalid_request"


def test_tokens_nested_under_a_key(serve: Serve) -> None:
    extra = {"team": {"id": "T1"}, "access_token": "xoxb-bot"}
    provider, http = serve(Quirks(nest_tokens_under="authed_user", extra_response=extra))
    body = ok(exchange(http, code(http)))
    assert set(body) == {"ok", "authed_user", "team", "access_token"}
    assert body["ok"] is True
    assert body["team"] == {"id": "T1"}
    user = body["authed_user"]
    assert set(user) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert status(http, user["access_token"]).status_code == 200
    assert_invalid_token(status(http, body["access_token"]))  # the top level's is not the user's

    renewed = ok(refresh(http, user["refresh_token"]))["authed_user"]
    assert not provider.is_active(user["refresh_token"])
    assert provider.is_active(renewed["refresh_token"])
    assert send(http, {"token": renewed["refresh_token"]}, endpoint=REVOKE).is_success
    assert not provider.is_active(renewed["access_token"])


def test_expires_in_in_milliseconds(serve: Serve) -> None:
    provider, http = serve(Quirks(expires_in_unit="milliseconds"))
    issued = ok(exchange(http, code(http)))
    assert issued["expires_in"] == provider.access_token_lifetime * 1000
    renewed = ok(refresh(http, issued["refresh_token"]))
    assert renewed["expires_in"] == provider.access_token_lifetime * 1000
    # The lifetime itself is unchanged.
    provider.clock_offset += provider.access_token_lifetime
    assert not provider.is_active(renewed["access_token"])


def test_extra_response_values_are_in_every_token_response(serve: Serve) -> None:
    instance = {"instance_url": "https://acme.my.salesforce.example"}
    _, http = serve(Quirks(extra_response=instance))
    issued = ok(exchange(http, code(http)))
    assert issued["instance_url"] == instance["instance_url"]
    assert status(http, issued["access_token"]).status_code == 200
    assert ok(refresh(http, issued["refresh_token"]))["instance_url"] == instance["instance_url"]


def test_quirks_check_their_values() -> None:
    with pytest.raises(ValueError, match="client_auth"):
        Quirks(client_auth="client_secret_jwt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope_separator"):
        Quirks(scope_separator="")
    with pytest.raises(ValueError, match="extra_response may not set access_token"):
        Quirks(extra_response={"access_token": "fixed"})
    with pytest.raises(ValueError, match="may not set ok"):
        Quirks(nest_tokens_under="authed_user", extra_response={"ok": False})


def test_every_authorization_response_carries_the_issuer(serve: Serve) -> None:
    provider, http = serve(Quirks(issuer="https://id.example"))
    granted = redirected(authorize(http, pkce()[1], client_id=CLIENT_ID, scope="read"))
    assert set(granted) == {"code", "state", "iss"}
    assert granted["iss"] == "https://id.example"
    bad_scope = redirected(authorize(http, pkce()[1], client_id=CLIENT_ID, scope="admin"))
    assert bad_scope["error"] == "invalid_scope"
    assert bad_scope["iss"] == "https://id.example"
    provider.deny_next = True
    denied = redirected(authorize(http, pkce()[1], client_id=CLIENT_ID, scope="read"))
    assert denied == {"error": "access_denied", "state": "xyz", "iss": "https://id.example"}
