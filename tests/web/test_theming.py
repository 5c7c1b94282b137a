"""A host's look: its template folder ahead of the built-in one, the documented theme.

The templates under ``docs/examples/theme/templates`` are the ones
``docs/theming.md`` shows: they extend the built-in ``base.html`` and
``card.html`` and replace a block each, without copying them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from starlette.testclient import TestClient

from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.store import MemoryStore, generate_key
from connectors_core.web import create_app
from tests.harness import TENANT_HEADER, build_registry, serve
from tests.web.test_browser import TIMEOUT_MS

THEME = Path(__file__).resolve().parents[2] / "docs" / "examples" / "theme" / "templates"


def themed_app(**options: Any) -> Any:
    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": "http://testserver",
            "CONNECTORS_DATABASE_URL": "memory://",
            "CONNECTORS_SECRET_KEYS": generate_key(),
        }
    )
    connections = Connections(build_registry("http://127.0.0.1:9"), MemoryStore(), settings)
    return create_app(
        connections=connections,
        authenticator=lambda request: request.headers.get(TENANT_HEADER),
        **options,
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(themed_app(templates=THEME), headers={TENANT_HEADER: "t1"}) as client:
        yield client


def test_the_hosts_card_and_base_replace_one_block_each(client: TestClient) -> None:
    html = client.get("/integrations").text
    assert html.count('class="host-note"') == len(re.findall(r'<li class="card[ "]', html)) > 10
    assert "Used by custom campaigns." in html
    assert '<nav class="host-nav" aria-label="Marketing app">' in html
    assert "--cc-accent: #6b21a8" in html
    # The rest is the built-in page: its search, filters, actions and script.
    assert 'id="filters"' in html
    assert 'action="/api/integrations/acme-key/connect"' in html
    assert "integrations.js" in html
    # Every page shares the frame: the details page, the connect form, "disconnect?".
    for path in ("/integrations/evencio", "/api/integrations/acme-key/connect"):
        page = client.get(path, headers={"Accept": "text/html"}).text
        assert "Marketing app" in page, path


def test_without_a_template_folder_the_built_in_look_is_used() -> None:
    with TestClient(themed_app(), headers={TENANT_HEADER: "t1"}) as client:
        html = client.get("/integrations").text
    assert "host-note" not in html
    assert "--cc-accent: #6b21a8" not in html


def test_the_home_link_leads_back_to_the_host() -> None:
    with TestClient(
        themed_app(home=("Marketing", "/dashboard")), headers={TENANT_HEADER: "t1"}
    ) as client:
        html = client.get("/integrations").text
    assert '<a href="/dashboard">← Marketing</a>' in html


def test_a_missing_template_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        themed_app(templates=tmp_path / "nowhere")


@pytest.mark.slow
def test_the_theme_colours_the_page_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with serve(themed_app(templates=THEME), sock):
        context = browser.new_context(base_url=origin, extra_http_headers={TENANT_HEADER: "t1"})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            page.goto("/integrations")
            button = page.locator("#card-acme-key").get_by_role("button").first
            expect(button).to_have_css("background-color", "rgb(107, 33, 168)")
            expect(page.locator("#card-evencio")).to_have_css("border-radius", "16px")
            expect(page.get_by_role("navigation", name="Marketing app")).to_be_visible()
        finally:
            context.close()
    sock.close()


def test_the_theming_guide_quotes_the_tested_templates() -> None:
    guide = (THEME.parents[2] / "theming.md").read_text(encoding="utf-8")
    for name in ("base.html", "card.html"):
        quoted = f"`{name}`:\n\n```jinja\n{(THEME / name).read_text(encoding='utf-8')}```"
        assert quoted in guide, name
