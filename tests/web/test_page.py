"""The Integrations page, server-rendered: what it shows and what it never shows."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors_core import define_connector
from connectors_core.connections import Connections, Settings
from connectors_core.store import MemoryStore, generate_key
from connectors_core.web import Action, Identity, by_role, create_app
from tests.harness import build_registry


def xss_connector() -> Any:
    return define_connector(
        id="tricky",
        name="Tricky <img src=x onerror=alert(1)>",
        summary="<script>alert('summary')</script>",
        description="</details><script>alert('description')</script>",
        category="analytics",
        status="deprecated",
        auth={"type": "none"},
        capabilities=[{"id": "x", "label": "<b>bold</b>"}],
        tags=['quote"tag'],
        docs_path="https://docs.example.com/tricky?a=1&b=2",
    )


@pytest.fixture
def client() -> Any:
    registry = build_registry("http://127.0.0.1:9")
    registry.register(xss_connector())
    registry.register(
        define_connector(
            id="soon",
            name="Soon",
            summary="Coming.",
            description="Later.",
            category="events",
            status="coming-soon",
            auth={"type": "none"},
            capabilities=[{"id": "x", "label": "X"}],
            connection={"startPath": "/api/integrations/soon/connect"},
        )
    )
    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": "http://testserver",
            "CONNECTORS_DATABASE_URL": "memory://",
            "CONNECTORS_SECRET_KEYS": generate_key(),
            "CONNECTORS_EVENCIO_CLIENT_ID": "client",
        }
    )
    connections = Connections(registry, MemoryStore(), settings)
    app = create_app(
        connections=connections, authenticator=lambda request: request.headers.get("x-tenant")
    )
    with TestClient(app, headers={"x-tenant": "t1"}) as client:
        yield client


def card_ids(html: str) -> list[str]:
    """The cards shown (those the filters leave out are sent hidden)."""
    tags = re.findall(r'<li class="card[^"]*"\s+id="card-([a-z0-9-]+)"[^>]*?( hidden)?>', html)
    return [connector_id for connector_id, hidden in tags if not hidden]


def test_cards_left_out_by_the_filters_are_sent_hidden(client: TestClient) -> None:
    html = client.get("/integrations?q=evencio").text
    assert card_ids(html) == ["evencio"]
    assert len(re.findall(r'<li class="card[ "]', html)) == 14
    assert "Showing 1 of 14 integrations" in html
    assert re.search(r'<p class="empty" id="empty" hidden>', html)
    nothing = client.get("/integrations?q=zzzz").text
    assert card_ids(nothing) == []
    assert re.search(r'<p class="empty" id="empty">', nothing)


def test_every_connector_has_a_card_with_its_action(client: TestClient) -> None:
    html = client.get("/integrations").text
    assert sorted(card_ids(html)) == [
        "acme-basic",
        "acme-cc",
        "acme-fields",
        "acme-key",
        "acme-multi",
        "acme-norevoke",
        "acme-oauth",
        "acme-plain",
        "acme-shop",
        "acme-static",
        "acme-unset",
        "evencio",
        "soon",
        "tricky",
    ]
    assert 'href="/api/integrations/evencio/connect"' in html
    assert 'action="/api/integrations/acme-key/connect"' in html
    assert 'type="password"' in html
    assert "Showing 14 of 14 integrations" in html


def card(html: str, connector_id: str) -> str:
    return html.split(f'id="card-{connector_id}"')[1].split("</li>")[0]


def test_a_connector_without_its_oauth_client_says_it_is_not_set_up_yet(
    client: TestClient,
) -> None:
    html = client.get("/integrations").text
    for connector_id in ("acme-oauth", "acme-shop", "acme-unset"):
        text = card(html, connector_id)
        assert "Not set up yet." in text, connector_id
        assert "/connect" not in text, connector_id  # no Connect that dead-ends
    assert "Not set up yet." not in card(html, "evencio")  # its client id is configured
    # Client credentials need no server-wide client: each connection brings its own.
    machine = card(html, "acme-cc")
    assert "Not set up yet." not in machine
    assert 'name="client_id"' in machine
    assert 'name="client_secret" type="password"' in machine


def test_cards_show_the_connect_form_their_flow_asks_for(client: TestClient) -> None:
    html = client.get("/integrations").text
    basic = card(html, "acme-basic")  # subdomain, user, token: three inputs, on the connect page
    assert 'name="username"' not in basic
    assert 'href="/api/integrations/acme-basic/connect"' in basic
    key = card(html, "acme-key")  # one input: inline, with its help
    assert 'name="api_key"' in key
    assert "Key." in key
    plain = card(html, "acme-plain")  # nothing to enter: one button
    assert 'action="/api/integrations/acme-plain/connect"' in plain
    assert plain.count("<input") == 1  # the CSRF token only


def test_coming_soon_and_unconnectable_connectors_offer_no_connect(client: TestClient) -> None:
    html = client.get("/integrations").text
    for connector_id in ("soon", "acme-static"):
        card = html.split(f'id="card-{connector_id}"')[1].split("</li>")[0]
        assert "/connect" not in card
    assert "Coming soon" in html


def test_manifest_text_is_escaped(client: TestClient) -> None:
    for path in ("/integrations", "/integrations/tricky"):
        html = client.get(path).text
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&#39;summary&#39;)&lt;/script&gt;" in html
        assert "<b>bold</b>" not in html
    details = client.get("/integrations/tricky").text
    assert 'href="https://docs.example.com/tricky?a=1&amp;b=2"' in details
    assert "&lt;/details&gt;&lt;script&gt;alert(&#39;description&#39;)" in details


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=analytics", ["tricky"]),
        ("status=coming-soon", ["soon"]),
        ("q=evenc", ["evencio"]),
        (
            "q=ACME&category=custom",
            ["acme-basic", "acme-fields", "acme-key", "acme-plain", "acme-static"],
        ),
        ("tag=nothing", []),
    ],
)
def test_filters_work_without_javascript(
    client: TestClient, query: str, expected: list[str]
) -> None:
    html = client.get(f"/integrations?{query}").text
    assert card_ids(html) == expected
    if not expected:
        assert "No integration matches these filters." in html


def test_connection_state_and_outcome_notices(client: TestClient) -> None:
    token = client.get("/api/integrations/csrf").json()["csrfToken"]
    key = "sk_live_0123456789abcdef"
    client.post("/api/integrations/acme-key/connect", data={"api_key": key, "csrf_token": token})
    html = client.get("/integrations?connector=acme-key&result=connected").text
    card = html.split('id="card-acme-key"')[1].split("</li>")[0]
    assert "Connected" in card
    assert "••••cdef" in card
    assert "Disconnect" in card
    assert key not in html
    assert "Acme-Key is connected." in html
    denied = client.get("/integrations?connector=evencio&error=access_denied").text
    assert "Connecting Evencio was cancelled at the provider." in denied
    assert "cancelled" not in client.get("/integrations?connector=nope&error=x").text


def test_failed_plugins_are_noticed() -> None:
    from connectors_core import Registry
    from connectors_core._entrypoints import EntryPointSpec
    from connectors_core._outcome import Outcome

    registry = Registry._from_outcomes(
        [
            Outcome.failed(
                EntryPointSpec("broken", "broken_mod", "broken-dist", "1.0"),
                "load",
                "ImportError: No module named 'x'",
            )
        ],
        None,
    )
    settings = Settings(
        database_url="memory://", secret_keys=(generate_key(),), public_url="http://testserver"
    )
    app = create_app(
        connections=Connections(registry, MemoryStore(), settings),
        authenticator=lambda request: Identity("t", roles={request.headers.get("x-role", "")}),
        authorizer=by_role({"admin": list(Action), "member": [Action.VIEW]}),
    )
    with TestClient(app) as client:
        html = client.get("/integrations", headers={"x-role": "admin"}).text
        member = client.get("/integrations", headers={"x-role": "member"}).text
    assert "1 connector plugin failed to load" in html
    assert "<strong>broken</strong> (broken-dist), failed during load" in html
    # What failed in a plugin is for those who manage the integrations.
    assert "failed to load" not in member
    assert "broken-dist" not in member


def test_the_page_needs_a_tenant(client: TestClient) -> None:
    assert client.get("/integrations", headers={"x-tenant": ""}).status_code == 401


def test_static_assets_are_served(client: TestClient) -> None:
    assert client.get("/integrations/_static/integrations.css").status_code == 200
    assert "addEventListener" in client.get("/integrations/_static/integrations.js").text


def test_the_catalogue_json_offers_nothing_to_connect_for_a_coming_soon_connector(
    client: TestClient,
) -> None:
    listed = {c["id"]: c for c in client.get("/api/integrations").json()["connectors"]}
    assert listed["soon"]["status"] == {"connected": False, "error": "not_connectable"}
    assert set(listed["soon"]["links"]) == {"details"}
    assert "connect" in listed["acme-key"]["links"]
