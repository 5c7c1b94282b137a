"""The contract suite connects any connector: fields of every type, each auth type."""

from __future__ import annotations

from typing import Any

import pytest

from connectors_core import Registry, define_connector
from connectors_core.flows import flow_for
from connectors_core.testing.contract import (
    ConnectorContract,
    integrations_test_client,
    sample_value,
    start_provider,
)
from tests.harness import fields_manifests

ORIGIN = "http://testserver"
EVERY_TYPE = [
    {"id": "name", "label": "Name", "pattern": "[a-z]{3,8}", "example": "acme"},
    {"id": "site", "label": "Site", "type": "url"},
    {"id": "host", "label": "Host", "type": "hostname"},
    {"id": "mail", "label": "Mail", "type": "email"},
    {"id": "count", "label": "Count", "type": "integer"},
    {"id": "on", "label": "On", "type": "boolean"},
    {"id": "pick", "label": "Pick", "type": "choice", "choices": ["x", "y"]},
    {"id": "token", "label": "Token", "type": "secret", "minLength": 20},
]


def registry() -> Registry:
    found = Registry()
    for manifest in fields_manifests("http://127.0.0.1:9"):
        found.register(define_connector(manifest))
    found.register(
        define_connector(
            id="every-type",
            name="Every Type",
            summary="A field of each type.",
            description="For the contract.",
            category="custom",
            status="available",
            auth={"type": "none"},
            fields=EVERY_TYPE,
            capabilities=[{"id": "x", "label": "X"}],
            connection={"startPath": "/api/integrations/every-type/connect"},
        )
    )
    return found


@pytest.mark.parametrize(
    "connector_id", ["acme-fields", "acme-basic", "acme-shop", "acme-cc", "every-type"]
)
def test_the_contract_connects_and_disconnects(connector_id: str) -> None:
    connectors = registry()
    with (
        start_provider(connectors, ORIGIN) as handle,
        integrations_test_client(connectors, handle, ORIGIN) as client,
    ):
        ConnectorContract().test_connect_status_disconnect(
            connectors.get(connector_id), client, handle
        )


def test_sample_values_pass_their_fields_rules() -> None:
    from connectors_core._fields import check_value

    connector = registry().get("every-type")
    for item in flow_for(connector).inputs(connector):
        assert item.field is not None
        check_value(item.field, sample_value(item))


def test_a_field_no_sample_fits_asks_for_a_valid_example() -> None:
    connector: Any = define_connector(
        id="strict",
        name="Strict",
        summary="S.",
        description="S.",
        category="custom",
        status="available",
        auth={"type": "none"},
        fields=[{"id": "code", "label": "Code", "pattern": "[0-9]{6}"}],
        capabilities=[{"id": "x", "label": "X"}],
    )
    (item,) = flow_for(connector).inputs(connector)
    with pytest.raises(AssertionError, match="give it a valid example"):
        sample_value(item)


def cookbook() -> dict[str, dict[str, Any]]:
    """Every manifest in docs/cookbook.md, by the section it is under."""
    import json
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "cookbook.md").read_text("utf-8")
    found = {}
    for section in text.split("\n## ")[1:]:
        title = section.split(":", 1)[0].split("\n", 1)[0].strip()
        blocks = re.findall(r"```json\n(.*?)\n```", section, flags=re.DOTALL)
        for block in blocks:
            found[title] = json.loads(block)
    return found


COOKBOOK = cookbook()


def test_values_kept_from_the_token_response_show_in_the_status() -> None:
    connectors = Registry()
    for title in ("Slack", "Salesforce"):
        connectors.register(define_connector(COOKBOOK[title]))
    with (
        start_provider(connectors, ORIGIN) as handle,
        integrations_test_client(connectors, handle, ORIGIN) as client,
    ):
        expected = {
            "slack": {"team_id": "contract-id"},
            "salesforce": {"instance_url": "contract-instance_url"},
        }
        for connector_id, config in expected.items():
            connector = connectors.get(connector_id)
            start = client.get(f"/api/integrations/{connector_id}/connect")
            ConnectorContract._at_provider(connector, client, start.headers["location"], [])
            status = client.get(f"/api/integrations/{connector_id}/status").json()
            assert status["status"]["config"] == config


def test_the_cookbook_has_the_providers_it_promises() -> None:
    assert {"Slack", "Shopify", "Salesforce", "Google", "Mailchimp"} <= set(COOKBOOK)


@pytest.mark.parametrize("title", sorted(COOKBOOK))
def test_a_cookbook_manifest_connects_against_the_provider_in_its_mode(title: str) -> None:
    connector = define_connector(COOKBOOK[title])
    connectors = Registry()
    connectors.register(connector)
    with (
        start_provider(connectors, ORIGIN) as handle,
        integrations_test_client(connectors, handle, ORIGIN) as client,
    ):
        ConnectorContract().test_connect_status_disconnect(connector, client, handle)
    # One code exchange, in the mode the manifest declares (the provider enforced it).
    assert handle.provider.token_requests == ["authorization_code"]


def test_the_contract_verifies_through_the_providers_connector_api() -> None:
    connectors = Registry()
    for connector_id, auth in (
        ("verified-key", {"type": "api-key", "description": "K.", "headerName": "X-Key"}),
        ("verified-basic", {"type": "basic", "description": "U."}),
        (
            "verified-oauth",
            {
                "type": "oauth",
                "authorizeUrl": "https://auth.verified.example/authorize",
                "tokenUrl": "https://auth.verified.example/token",
                "scopes": ["read"],
            },
        ),
    ):
        connectors.register(
            define_connector(
                id=connector_id,
                name=connector_id.title(),
                summary="S.",
                description="S.",
                category="custom",
                status="available",
                auth=auth,
                api={"baseUrl": "https://api.verified.example/v2"},
                verify={"path": "/whoami", "account": {"accountId": "account.id"}},
                capabilities=[{"id": "x", "label": "X"}],
                connection={"startPath": f"/api/integrations/{connector_id}/connect"},
            )
        )
    with (
        start_provider(connectors, ORIGIN) as handle,
        integrations_test_client(connectors, handle, ORIGIN) as client,
    ):
        handle.provider.answer_api("/whoami", {"account": {"id": "acct-5"}})
        for connector in connectors:
            ConnectorContract().test_connect_status_disconnect(connector, client, handle)
    assert handle.provider.api_requests == [("GET", "/whoami")] * 3


def test_the_connector_api_refuses_a_request_without_a_known_credential() -> None:
    import httpx2

    from connectors_core.testing.oauth_provider import Client, OAuthProvider, running

    provider = OAuthProvider(clients=[Client("c", "s", ("http://127.0.0.1/cb",), ())])
    provider.api_credentials.add("known-key-123")
    provider.answer_api("/me", {"id": 1})
    with running(provider) as url, httpx2.Client() as http:
        refused = http.get(f"{url}/connector-api/me", headers={"X-Key": "other"})
        accepted = http.get(f"{url}/connector-api/me", headers={"X-Key": "known-key-123"})
        by_query = http.get(f"{url}/connector-api/me?api_key=known-key-123")
    assert refused.status_code == 401
    assert (accepted.status_code, accepted.json()) == (200, {"id": 1})
    assert by_query.status_code == 200
