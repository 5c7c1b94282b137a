"""Connections.connect with fields: a value fills a URL template only where it is meant to."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from connectors_core import InvalidFieldsError, Registry, define_connector
from connectors_core.connections import Connections, Settings
from connectors_core.store import MemoryStore


def shop_connector() -> Any:
    return define_connector(
        id="shop",
        name="Shop",
        summary="A shop.",
        description="Its URLs use the shop's name.",
        category="marketing",
        status="available",
        fields=[
            {"id": "shop", "label": "Shop name", "suffix": ".myshopify.example"},
            {"id": "api_version", "label": "API version", "default": "2024-10"},
            {"id": "webhook_secret", "label": "Webhook secret", "type": "secret"},
        ],
        auth={
            "type": "oauth",
            "authorizeUrl": "https://{shop}.myshopify.example/admin/oauth/authorize",
            "tokenUrl": "https://{shop}.myshopify.example/admin/{api_version}/oauth/token",
            "scopes": ["read_orders"],
        },
        capabilities=[{"id": "orders", "label": "Orders"}],
        connection={"startPath": "/api/integrations/shop/connect"},
    )


@pytest.fixture
def connections() -> Connections:
    registry = Registry()
    registry.register(shop_connector())
    settings = Settings(
        public_url="http://127.0.0.1:8000",
        database_url="memory://",
        environ={"CONNECTORS_SHOP_CLIENT_ID": "client", "CONNECTORS_SHOP_CLIENT_SECRET": "s"},
    )
    return Connections(registry, MemoryStore(), settings)


def begin(connections: Connections, values: dict[str, str]) -> str:
    return anyio.run(connections.begin_oauth, "tenant-1", "shop", "session-1", values)


def test_a_checked_value_becomes_one_host_label(connections: Connections) -> None:
    url = begin(connections, {"shop": "Acme-Store", "webhook_secret": "whsec_123"})
    assert urlsplit(url).hostname == "acme-store.myshopify.example"
    (pending,) = connections.store._pending.values()  # type: ignore[attr-defined]
    assert pending.config == {"shop": "Acme-Store", "api_version": "2024-10"}  # as typed
    assert pending.secrets == {"webhook_secret": "whsec_123"}
    assert "whsec_123" not in url


@pytest.mark.parametrize(
    "shop",
    [
        "evil.com#",
        "evil.com/",
        "x@evil",
        "a.b",
        "sh\u043ep",  # a Cyrillic o
        "-a",
        "a b",
        "evil.com:444",
        "%2e%2e",
    ],
)
def test_a_value_that_could_change_the_host_is_a_field_error(
    connections: Connections, shop: str
) -> None:
    with pytest.raises(InvalidFieldsError) as info:
        begin(connections, {"shop": shop, "webhook_secret": "whsec_123"})
    assert list(info.value.fields) == ["shop"]
    assert info.value.reason == "invalid_fields"
    assert connections.store._pending == {}  # type: ignore[attr-defined]


def test_a_path_value_is_one_encoded_segment(connections: Connections) -> None:
    begin(connections, {"shop": "acme", "api_version": "a/../b", "webhook_secret": "w"})
    (pending,) = connections.store._pending.values()  # type: ignore[attr-defined]
    client = connections.oauth_client(connections.registry.get("shop"), pending.config)
    assert client.endpoints.token_url == (
        "https://acme.myshopify.example/admin/a%2F..%2Fb/oauth/token"
    )


def test_a_missing_required_value_is_reported_with_the_others(connections: Connections) -> None:
    with pytest.raises(InvalidFieldsError) as info:
        begin(connections, {"shop": ""})
    assert info.value.fields == {"shop": "is required", "webhook_secret": "is required"}


def test_a_field_added_later_is_filled_from_its_default(connections: Connections) -> None:
    # A connection made before the manifest gained api_version still has a token URL.
    client = connections.oauth_client(connections.registry.get("shop"), {"shop": "acme"})
    assert client.endpoints.token_url == (
        "https://acme.myshopify.example/admin/2024-10/oauth/token"
    )


def test_a_connection_lacking_a_value_its_urls_need_must_be_connected_again(
    connections: Connections,
) -> None:
    from connectors_core import NeedsReauthError
    from connectors_core.flows import flow_for
    from connectors_core.store import ConnectionState, StoredConnection, TokenSet

    connector = connections.registry.get("shop")
    connection = StoredConnection(
        tenant="tenant-1",
        connector_id="shop",
        state=ConnectionState.CONNECTED,
        tokens=TokenSet(access_token="a", refresh_token="r"),
        config={},  # made before the shop field existed
    )
    with pytest.raises(NeedsReauthError, match="lacks values"):
        anyio.run(flow_for(connector).renew, connections, connector, connection)


def test_a_pending_authorization_that_cannot_be_decrypted_is_an_invalid_state(
    connections: Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors_core import IntegrationError, SecretError

    async def undecryptable(state: str, *, now: float) -> None:
        raise SecretError("tampered")

    monkeypatch.setattr(connections.store, "peek_authorization", undecryptable)
    with pytest.raises(IntegrationError) as info:
        anyio.run(
            connections.finish_oauth, "shop", "tenant-1", "session-1", {"state": "s", "code": "c"}
        )
    assert info.value.reason == "invalid_state"
