"""Connector icons on the page: served from the plugin's package, so that nothing in them runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from connectors_core import Connector, define_connector, discover
from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.store import MemoryStore, generate_key
from connectors_core.web import create_app


def linked(connector_id: str, icon: str) -> Connector:
    return define_connector(
        id=connector_id,
        name=connector_id.title(),
        summary="With an icon.",
        description="With an icon.",
        category="analytics",
        status="beta",
        auth={"type": "none"},
        capabilities=[{"id": "x", "label": "X"}],
        icon=icon,
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    registry = discover()
    registry.register(linked("remote", "https://cdn.example.com/remote.png"))
    registry.register(linked("in-code", "icon.svg"))
    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": "http://testserver",
            "CONNECTORS_DATABASE_URL": "memory://",
            "CONNECTORS_SECRET_KEYS": generate_key(),
        }
    )
    app = create_app(
        connections=Connections(registry, MemoryStore(), settings),
        authenticator=lambda request: "t1",
    )
    with TestClient(app) as client:
        yield client


def test_the_evencio_icon_is_served_from_its_package_and_cannot_run_anything(
    client: TestClient,
) -> None:
    page = client.get("/integrations").text
    assert '<img class="logo" src="/integrations/_icons/evencio"' in page
    assert 'src="https://cdn.example.com/remote.png"' in page
    icon = client.get("/integrations/_icons/evencio")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.lstrip().startswith(b"<svg")
    assert icon.headers["x-content-type-options"] == "nosniff"
    policy = icon.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "sandbox" in policy
    again = client.get(
        "/integrations/_icons/evencio", headers={"If-None-Match": icon.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert "/integrations/_icons/evencio" in client.get("/integrations/evencio").text
    links = {c["id"]: c["links"] for c in client.get("/api/integrations").json()["connectors"]}
    assert links["evencio"]["icon"] == "/integrations/_icons/evencio"
    assert links["remote"]["icon"] == "https://cdn.example.com/remote.png"


@pytest.mark.parametrize("connector_id", ["nope", "remote", "in-code", "..%2Fevencio"])
def test_there_is_no_icon_to_serve_for_unknown_linked_or_packageless_connectors(
    client: TestClient, connector_id: str
) -> None:
    assert client.get(f"/integrations/_icons/{connector_id}").status_code == 404


def test_an_icon_is_for_those_who_may_view_its_connector() -> None:
    from connectors_core.web import Action

    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": "http://testserver",
            "CONNECTORS_DATABASE_URL": "memory://",
            "CONNECTORS_SECRET_KEYS": generate_key(),
        }
    )

    def no_evencio(request: object, action: Action, connector: object, *_: object) -> bool:
        return getattr(connector, "id", None) != "evencio"

    app = create_app(
        connections=Connections(discover(), MemoryStore(), settings),
        authenticator=lambda request: request.headers.get("x-tenant"),
        authorizer=no_evencio,
    )
    with TestClient(app) as client:
        assert client.get("/integrations/_icons/evencio").status_code == 404  # signed out
        hidden = client.get("/integrations/_icons/evencio", headers={"x-tenant": "t1"})
        assert hidden.status_code == 404
