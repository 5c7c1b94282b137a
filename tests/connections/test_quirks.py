"""OAuth provider quirks a manifest declares, as the client sends and reads them."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest

from connectors_core import IntegrationError, Registry, define_connector
from connectors_core.connections import Connections, Settings
from connectors_core.store import ConnectionState, MemoryStore, StoredConnection, TokenSet

NOW = 1_800_000_000.0


def manifest(**auth: Any) -> Any:
    return define_connector(
        id="quirky",
        name="Quirky",
        summary="Q.",
        description="Q.",
        category="custom",
        status="available",
        fields=[{"id": "team", "label": "Team"}],
        auth={
            "type": "oauth",
            "authorizeUrl": "https://auth.quirky.example/authorize",
            "tokenUrl": "https://auth.quirky.example/token",
            "scopes": ["a", "b"],
            **auth,
        },
        capabilities=[{"id": "x", "label": "X"}],
        connection={"startPath": "/api/integrations/quirky/connect"},
    )


class Provider:
    """Records every token request and answers with ``body``."""

    def __init__(self, body: dict[str, Any] | None = None) -> None:
        self.requests: list[httpx2.Request] = []
        self.body = body or {"access_token": "at", "refresh_token": "rt", "expires_in": 3600}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(200, json=self.body)

    def form(self, index: int = -1) -> dict[str, str]:
        request = self.requests[index]
        if request.headers.get("content-type", "").startswith("application/json"):
            return dict(json.loads(request.content))
        return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def connections(connector: Any, provider: Provider) -> Connections:
    registry = Registry()
    registry.register(connector)
    settings = Settings(
        public_url="http://127.0.0.1:8000",
        database_url="memory://",
        environ={"CONNECTORS_QUIRKY_CLIENT_ID": "cid", "CONNECTORS_QUIRKY_CLIENT_SECRET": "cs"},
    )
    return Connections(
        registry,
        MemoryStore(),
        settings,
        transport=httpx2.MockTransport(provider),
        clock=lambda: NOW,
    )


def start(service: Connections) -> tuple[str, dict[str, list[str]]]:
    url = anyio.run(service.begin_oauth, "t1", "quirky", "session", {"team": "acme"})
    return url, parse_qs(urlsplit(url).query)


def finish(service: Connections, state: str, **extra: str) -> StoredConnection:
    params = {"state": state, "code": "the-code", **extra}
    return anyio.run(service.finish_oauth, "quirky", "t1", "session", params)


def test_scopes_are_joined_with_the_declared_separator_and_extra_parameters_sent() -> None:
    service = connections(
        manifest(
            scopeSeparator=",",
            authorizeParams={"access_type": "offline", "prompt": "consent", "team": "{team}"},
        ),
        Provider(),
    )
    _url, query = start(service)
    assert query["scope"] == ["a,b"]
    assert query["access_type"] == ["offline"]
    assert query["prompt"] == ["consent"]
    assert query["team"] == ["acme"]  # a field's value


def test_client_secret_post_sends_the_secret_in_the_body_and_no_basic() -> None:
    provider = Provider()
    service = connections(
        manifest(clientAuth="client_secret_post", tokenParams={"audience": "api"}), provider
    )
    _url, query = start(service)
    finish(service, query["state"][0])
    (request,) = provider.requests
    assert "authorization" not in request.headers
    form = provider.form()
    assert (form["client_id"], form["client_secret"], form["audience"]) == ("cid", "cs", "api")


def test_the_default_is_basic_client_authentication() -> None:
    provider = Provider()
    service = connections(manifest(), provider)
    _url, query = start(service)
    finish(service, query["state"][0])
    scheme, encoded = provider.requests[0].headers["authorization"].split(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", "cid:cs")
    assert "client_secret" not in provider.form()


def test_a_json_token_request_carries_the_same_parameters() -> None:
    provider = Provider()
    service = connections(manifest(tokenRequestFormat="json"), provider)
    _url, query = start(service)
    finish(service, query["state"][0])
    request = provider.requests[0]
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body["grant_type"] == "authorization_code"
    assert body["code"] == "the-code"
    assert "code_verifier" in body


def test_a_nested_token_in_milliseconds_with_comma_scopes_is_read() -> None:
    provider = Provider(
        {
            "ok": True,
            "authed_user": {
                "access_token": "xoxp-1",
                "refresh_token": "xoxe-1",
                "expires_in": 43_200_000,
                "scope": "a,b",
            },
            "instance_url": "https://acme.my.example",
            "team": {"id": "T123", "name": "Acme"},
        }
    )
    service = connections(
        manifest(
            scopeSeparator=",",
            tokenResponse={
                "accessTokenPath": "authed_user.access_token",
                "refreshTokenPath": "authed_user.refresh_token",
                "expiresInPath": "authed_user.expires_in",
                "expiresInUnit": "milliseconds",
                "keep": ["instance_url", "team.id"],
            },
        ),
        provider,
    )
    _url, query = start(service)
    stored = finish(service, query["state"][0])
    assert stored.tokens is not None
    assert stored.tokens.access_token == "xoxp-1"
    assert stored.tokens.refresh_token == "xoxe-1"
    assert stored.tokens.expires_at == NOW + 43_200
    assert stored.config == {
        "team": "acme",
        "instance_url": "https://acme.my.example",
        "team_id": "T123",
    }
    # The scope granted reads with the declared separator (not one scope "a,b").
    status = anyio.run(service.status, "t1", "quirky")
    assert status["status"]["config"]["instance_url"] == "https://acme.my.example"


def test_refresh_sends_its_declared_parameters() -> None:
    provider = Provider()
    service = connections(manifest(refreshParams={"access_type": "offline"}), provider)
    client = service.oauth_client(service.registry.get("quirky"), {"team": "acme"})
    anyio.run(client.refresh, TokenSet(access_token="old", refresh_token="rt"))
    form = provider.form()
    assert (form["grant_type"], form["access_type"]) == ("refresh_token", "offline")


def test_the_declared_refresh_margin_decides_when_a_token_is_due() -> None:
    service = connections(manifest(refreshMarginSeconds=1800), Provider())
    connection = StoredConnection(
        tenant="t1",
        connector_id="quirky",
        state=ConnectionState.CONNECTED,
        tokens=TokenSet(access_token="a", refresh_token="r", expires_at=NOW + 1200),
        updated_at=NOW - 6000,
    )
    assert service._token_due(connection)  # 20 minutes left: within the declared 30
    default = connections(manifest(), Provider())
    assert not default._token_due(connection)  # the server's margin is one minute


@pytest.mark.parametrize(
    "iss", [None, "https://evil.example", "https://auth.quirky.example/"], ids=str
)
def test_a_callback_without_the_declared_issuer_is_refused_before_any_token_request(
    iss: str | None,
) -> None:
    provider = Provider()
    service = connections(manifest(issuer="https://auth.quirky.example"), provider)
    _url, query = start(service)
    extra = {} if iss is None else {"iss": iss}
    with pytest.raises(IntegrationError) as info:
        finish(service, query["state"][0], **extra)
    assert info.value.reason == "issuer_mismatch"
    assert provider.requests == []


def test_the_declared_issuer_lets_the_callback_through() -> None:
    provider = Provider()
    service = connections(manifest(issuer="https://auth.quirky.example"), provider)
    _url, query = start(service)
    finish(service, query["state"][0], iss="https://auth.quirky.example")
    assert len(provider.requests) == 1


class Hooks:
    """A plugin's hook relay, as the flows call it (keyword arguments)."""

    def __init__(self, prepare: Any = None, parse: Any = None) -> None:
        self.prepare = prepare or (lambda **_: None)
        self.parse = parse or (lambda **_: None)
        self.calls: list[tuple[str, str]] = []

    def prepare_token_request(self, *, connector: Any, grant_type: str, params: Any) -> Any:
        self.calls.append(("prepare", grant_type))
        return self.prepare(grant_type=grant_type, params=params)

    def parse_token_response(self, *, connector: Any, grant_type: str, response: Any) -> Any:
        self.calls.append(("parse", grant_type))
        return self.parse(grant_type=grant_type, response=response)

    def connection_account(self, **_: Any) -> None:
        return None

    def verify_connection(self, **_: Any) -> None:
        return None


def with_hooks(service: Connections, hooks: Hooks, monkeypatch: pytest.MonkeyPatch) -> None:
    async def plugin_hooks(connector: Any) -> Hooks:
        return hooks

    monkeypatch.setattr(service, "plugin_hooks", plugin_hooks)


def test_prepare_token_request_changes_the_exchange_and_the_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = Provider()
    service = connections(manifest(tokenRequestFormat="json"), provider)
    hooks = Hooks(prepare=lambda grant_type, params: {**params, "signed": f"sig-{grant_type}"})
    with_hooks(service, hooks, monkeypatch)
    _url, query = start(service)
    stored = finish(service, query["state"][0])
    assert provider.form()["signed"] == "sig-authorization_code"
    relay: Any = hooks  # stands in for the plugin's pluggy relay
    client = service.oauth_client(service.registry.get("quirky"), stored.config, hooks=relay)
    assert stored.tokens is not None
    anyio.run(client.refresh, stored.tokens)
    assert provider.form()["signed"] == "sig-refresh_token"
    assert ("prepare", "refresh_token") in hooks.calls


def test_parse_token_response_maps_a_non_standard_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = Provider({"data": {"token": "T-1", "renewal": "R-1", "valid_for_minutes": 60}})
    service = connections(manifest(), provider)

    def parse(grant_type: str, response: Any) -> Any:
        data = response["data"]
        return {
            "access_token": data["token"],
            "refresh_token": data["renewal"],
            "expires_in": data["valid_for_minutes"] * 60,
        }

    with_hooks(service, Hooks(parse=parse), monkeypatch)
    _url, query = start(service)
    stored = finish(service, query["state"][0])
    assert stored.tokens is not None
    assert (stored.tokens.access_token, stored.tokens.refresh_token) == ("T-1", "R-1")
    assert stored.tokens.expires_at == NOW + 3600


@pytest.mark.parametrize("which", ["prepare", "parse"])
def test_a_token_hook_that_raises_fails_the_flow_cleanly(
    which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: Any) -> Any:
        raise KeyError("a token-bearing key")

    provider = Provider()
    service = connections(manifest(), provider)
    with_hooks(service, Hooks(**{which: broken}), monkeypatch)
    _url, query = start(service)
    with pytest.raises(IntegrationError) as info:
        finish(service, query["state"][0])
    assert info.value.reason == "exchange_failed"
    assert "KeyError" in str(info.value)
    assert "token-bearing" not in str(info.value)
    assert anyio.run(service.store.get, "t1", "quirky") is None


def test_an_account_lookup_that_raises_fails_the_flow_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Lookup(Hooks):
        def connection_account(self, **_: Any) -> None:
            raise ValueError("an answer quoting at")

    service = connections(manifest(), Provider())
    with_hooks(service, Lookup(), monkeypatch)
    _url, query = start(service)
    with pytest.raises(IntegrationError) as info:
        finish(service, query["state"][0])
    assert info.value.reason == "exchange_failed"
    assert "ValueError" in str(info.value)
    assert "quoting" not in str(info.value)
    assert anyio.run(service.store.get, "t1", "quirky") is None
