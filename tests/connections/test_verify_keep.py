"""A verify request on a host of its own, values kept from its answer, and the token's header.

Mailchimp's shape: the account's data centre is known only from a metadata
call made with the new token (``OAuth <token>``), and it fills the API's
base URL.
"""

from __future__ import annotations

import copy
from typing import Any

import anyio
import pytest

from connectors_core import IntegrationError, Registry, define_connector
from connectors_core.testing.contract import (
    ConnectorContract,
    integrations_test_client,
    start_provider,
)
from tests.test_contract import COOKBOOK

ORIGIN = "http://testserver"


def mailchimp(**auth: Any) -> Any:
    manifest = copy.deepcopy(COOKBOOK["Mailchimp"])
    manifest["auth"].update(auth)
    return define_connector(manifest)


def registry(connector: Any) -> Registry:
    found = Registry()
    found.register(connector)
    return found


def connect(client: Any, connector: Any) -> str:
    """Go through the provider's consent; the URL the browser lands on."""
    import httpx2

    start = client.get(f"/api/integrations/{connector.id}/connect")
    with httpx2.Client(follow_redirects=False) as browser:
        approved = browser.get(start.headers["location"])
    landed = client.get(approved.headers["location"].split("testserver", 1)[1])
    return str(landed.headers["location"])


def test_the_data_centre_from_the_metadata_call_becomes_config_and_fills_the_api_url() -> None:
    connector = mailchimp()
    with (
        start_provider(registry(connector), ORIGIN) as handle,
        integrations_test_client(registry(connector), handle, ORIGIN) as client,
    ):
        handle.provider.answer_api(
            "/oauth2/metadata", {"dc": "us6", "accountname": "Acme", "user_id": 42}
        )
        assert connect(client, connector).endswith("result=connected")
        status = client.get("/api/integrations/mailchimp/status").json()["status"]
        stored = anyio.run(client.app.state.connections.store.get, "tenant-1", "mailchimp")
    assert handle.provider.api_requests == [("GET", "/oauth2/metadata")]
    assert status["config"] == {"dc": "us6"}
    assert (status["accountName"], status["userId"]) == ("Acme", "42")

    from connectors_core._fields import resolve_url

    assert connector.api is not None
    assert resolve_url(connector.api.base_url, stored.config) == "https://us6.api.mailchimp.com/3.0"


def test_a_token_sent_with_another_scheme_than_the_provider_wants_is_refused() -> None:
    # The provider wants "OAuth <token>"; a manifest that forgot valuePrefix sends Bearer.
    declared, forgetful = mailchimp(), mailchimp(valuePrefix="Bearer ")
    with (
        start_provider(registry(declared), ORIGIN) as handle,
        integrations_test_client(registry(forgetful), handle, ORIGIN) as client,
    ):
        landed = connect(client, forgetful)
        stored = anyio.run(client.app.state.connections.store.get, "tenant-1", "mailchimp")
    assert landed.endswith("error=invalid_credentials")
    assert stored is None
    # The tokens the exchange granted did not stay valid: both were revoked, the
    # client authenticating at the revocation endpoint as the manifest declares.
    assert len(handle.provider.revocations) == 2
    assert not any(handle.provider.is_active(token) for token in handle.provider.revocations)


def test_an_answer_without_a_value_to_keep_stores_nothing() -> None:
    connector = mailchimp()
    with (
        start_provider(registry(connector), ORIGIN) as handle,
        integrations_test_client(registry(connector), handle, ORIGIN) as client,
    ):
        handle.provider.answer_api("/oauth2/metadata", {"accountname": "Acme"})
        landed = connect(client, connector)
        stored = anyio.run(client.app.state.connections.store.get, "tenant-1", "mailchimp")
    assert landed.endswith("error=verification_failed")
    assert stored is None


def test_verifying_again_keeps_the_value_the_provider_gives_now() -> None:
    connector = mailchimp()
    with (
        start_provider(registry(connector), ORIGIN) as handle,
        integrations_test_client(registry(connector), handle, ORIGIN) as client,
    ):
        ConnectorContract._at_provider(
            connector,
            client,
            client.get("/api/integrations/mailchimp/connect").headers["location"],
            [],
        )
        connections = client.app.state.connections
        assert anyio.run(connections.status, "tenant-1", "mailchimp")["status"]["config"] == {
            "dc": "contract-dc"
        }
        handle.provider.answer_api("/oauth2/metadata", {"dc": "us19"})
        status = anyio.run(connections.verify, "tenant-1", "mailchimp")
        assert status["status"]["config"] == {"dc": "us19"}
        handle.provider.answer_api("/oauth2/metadata", {"dc": ["not", "a", "value"]})
        with pytest.raises(IntegrationError) as info:
            anyio.run(connections.verify, "tenant-1", "mailchimp")
        assert info.value.reason == "verification_failed"
        # A failed check keeps what the last good one found.
        after = anyio.run(connections.status, "tenant-1", "mailchimp")["status"]
        assert (after["config"], after["verificationError"]) == (
            {"dc": "us19"},
            "verification_failed",
        )


def test_an_api_token_header_of_its_own_carries_the_bare_token() -> None:
    # Shopify's shape: X-Shopify-Access-Token: <token>, no scheme.
    connector = define_connector(
        id="shopish",
        name="Shopish",
        summary="S.",
        description="S.",
        category="custom",
        status="available",
        auth={
            "type": "oauth",
            "authorizeUrl": "https://shop.example.com/admin/oauth/authorize",
            "tokenUrl": "https://shop.example.com/admin/oauth/access_token",
            "scopes": ["read_orders"],
            "headerName": "X-Shop-Access-Token",
            "valuePrefix": "",
        },
        api={"baseUrl": "https://shop.example.com/admin/api"},
        verify={"path": "/shop.json", "account": {"shopId": "shop.id"}},
        capabilities=[{"id": "x", "label": "X"}],
        connection={"startPath": "/api/integrations/shopish/connect"},
    )
    with (
        start_provider(registry(connector), ORIGIN) as handle,
        integrations_test_client(registry(connector), handle, ORIGIN) as client,
    ):
        assert connect(client, connector).endswith("result=connected")
        status = client.get("/api/integrations/shopish/status").json()["status"]
    assert status["shopId"] == "contract-id"
