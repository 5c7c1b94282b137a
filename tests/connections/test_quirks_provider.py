"""Each OAuth quirk a manifest declares, proven against a provider that enforces it.

For every quirk: the code exchange and the refresh succeed against the strict
provider configured the same way, and a connector that does not declare the
quirk fails against it with a message naming what the provider answered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx2
import pytest

from connectors_core import IntegrationError, Registry, define_connector
from connectors_core.connections import Connections, Settings
from connectors_core.store import MemoryStore
from connectors_core.testing.oauth_provider import (
    ALL_GRANTS,
    Client,
    OAuthProvider,
    Quirks,
    running,
)

ORIGIN = "http://127.0.0.1:8000"
SECRET = "quirk-client-secret-0f3e"
ISSUER = "https://auth.quirky.example"


def quirks_and_manifest() -> list[tuple[str, Quirks, dict[str, Any]]]:
    """(name, what the provider enforces, what the manifest declares for it)."""
    return [
        (
            "client_secret_post",
            Quirks(client_auth="client_secret_post"),
            {"clientAuth": "client_secret_post"},
        ),
        ("comma scopes", Quirks(scope_separator=","), {"scopeSeparator": ","}),
        ("pkce off", Quirks(pkce=False), {"pkce": False}),
        (
            "extra parameters",
            Quirks(
                authorize_params={"access_type": "offline", "prompt": "consent"},
                token_params={"audience": "api"},
                refresh_params={"access_type": "offline"},
            ),
            {
                "authorizeParams": {"access_type": "offline", "prompt": "consent"},
                "tokenParams": {"audience": "api"},
                "refreshParams": {"access_type": "offline"},
            },
        ),
        (
            "json token requests",
            Quirks(token_request_format="json"),
            {"tokenRequestFormat": "json"},
        ),
        (
            "nested token in milliseconds",
            Quirks(
                nest_tokens_under="authed_user",
                expires_in_unit="milliseconds",
                extra_response={"instance_url": "https://acme.my.example"},
            ),
            {
                "tokenResponse": {
                    "accessTokenPath": "authed_user.access_token",
                    "refreshTokenPath": "authed_user.refresh_token",
                    "expiresInPath": "authed_user.expires_in",
                    "expiresInUnit": "milliseconds",
                    "keep": ["instance_url"],
                }
            },
        ),
        ("issuer", Quirks(issuer=ISSUER), {"issuer": ISSUER}),
    ]


CASES = quirks_and_manifest()


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def provider_for() -> Iterator[Any]:
    stack: list[Any] = []

    def start(quirks: Quirks) -> tuple[OAuthProvider, str]:
        client = Client(
            "quirk-client",
            SECRET,
            (f"{ORIGIN}/api/integrations/quirky/callback",),
            ("read", "write"),
            ALL_GRANTS,
            quirks,
        )
        provider = OAuthProvider(clients=[client])
        context = running(provider)
        url = context.__enter__()
        stack.append(context)
        return provider, url

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def service(url: str, declared: dict[str, Any], clock: Clock) -> Connections:
    registry = Registry()
    registry.register(
        define_connector(
            id="quirky",
            name="Quirky",
            summary="Q.",
            description="Q.",
            category="custom",
            status="available",
            auth={
                "type": "oauth",
                "authorizeUrl": f"{url}/oauth/authorize",
                "tokenUrl": f"{url}/api/oauth/token",
                "revocationUrl": f"{url}/api/oauth/revoke",
                "scopes": ["read", "write"],
                **declared,
            },
            capabilities=[{"id": "x", "label": "X"}],
            connection={"startPath": "/api/integrations/quirky/connect"},
        )
    )
    settings = Settings(
        public_url=ORIGIN,
        database_url="memory://",
        environ={
            "CONNECTORS_QUIRKY_CLIENT_ID": "quirk-client",
            "CONNECTORS_QUIRKY_CLIENT_SECRET": SECRET,
        },
    )
    return Connections(registry, MemoryStore(), settings, clock=clock)


def connect(connections: Connections) -> Any:
    url = anyio.run(connections.begin_oauth, "t1", "quirky", "session")
    with httpx2.Client(follow_redirects=False) as browser:
        answer = browser.get(url)
    assert answer.status_code in (302, 303), answer.text
    params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert "error" not in params, params
    return anyio.run(connections.finish_oauth, "quirky", "t1", "session", params)


@pytest.mark.parametrize(("name", "quirks", "declared"), CASES, ids=[c[0] for c in CASES])
def test_a_declared_quirk_works_for_the_exchange_and_the_refresh(
    provider_for: Any, name: str, quirks: Quirks, declared: dict[str, Any]
) -> None:
    provider, url = provider_for(quirks)
    clock = Clock()
    connections = service(url, declared, clock)
    stored = connect(connections)
    assert provider.is_active(stored.tokens.access_token)
    assert set(stored.tokens.scopes) == {"read", "write"}
    if "tokenResponse" in declared:
        assert stored.config == {"instance_url": "https://acme.my.example"}
    # Past the token's lifetime: refreshed, with the quirk, at the provider.
    clock.offset += 3600
    provider.clock_offset += 3600
    token = anyio.run(connections.get_access_token, "t1", "quirky")
    assert token != stored.tokens.access_token
    assert provider.is_active(token)
    assert provider.token_requests == ["authorization_code", "refresh_token"]


MISMATCHES = [c for c in CASES if c[0] not in ("pkce off", "issuer")]


@pytest.mark.parametrize(("name", "quirks", "declared"), MISMATCHES, ids=[c[0] for c in MISMATCHES])
def test_a_connector_that_does_not_declare_the_quirk_fails_clearly(
    provider_for: Any, name: str, quirks: Quirks, declared: dict[str, Any]
) -> None:
    _provider, url = provider_for(quirks)
    connections = service(url, {}, Clock())
    begun = anyio.run(connections.begin_oauth, "t1", "quirky", "session")
    with httpx2.Client(follow_redirects=False) as browser:
        answer = browser.get(begun)
    params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    if "error" in params:  # refused at the authorization step: said there
        assert params["error"] in ("invalid_request", "invalid_scope")
        return
    with pytest.raises(IntegrationError) as info:
        anyio.run(connections.finish_oauth, "quirky", "t1", "session", params)
    message = str(info.value)
    assert "the provider answered HTTP" in message or "no access token" in message, message
    assert anyio.run(connections.store.get, "t1", "quirky") is None


def test_a_provider_that_sends_its_issuer_is_refused_when_another_is_declared(
    provider_for: Any,
) -> None:
    provider, url = provider_for(Quirks(issuer="https://other.example"))
    connections = service(url, {"issuer": ISSUER}, Clock())
    begun = anyio.run(connections.begin_oauth, "t1", "quirky", "session")
    with httpx2.Client(follow_redirects=False) as browser:
        answer = browser.get(begun)
    params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert params["iss"] == "https://other.example"
    with pytest.raises(IntegrationError) as info:
        anyio.run(connections.finish_oauth, "quirky", "t1", "session", params)
    assert info.value.reason == "issuer_mismatch"
    assert provider.token_requests == []
