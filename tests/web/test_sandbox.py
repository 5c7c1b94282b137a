"""``create_app(sandbox=True)`` in a host application, mounted under a prefix.

A host (a Starlette app of its own, with a home page) mounts the integration
routes at ``/settings/integrations``; the sandbox's consent page is then
``/settings/integrations/sandbox/oauth/authorize``, and Evencio (an OAuth
connector without a configured client) connects through it: over HTTP as a
browser does it, and in a real Chromium. The server reaches the sandbox's
token endpoint and Evencio's stand-in API in-process, never over the network.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest
from playwright.sync_api import Browser, expect
from starlette.applications import Starlette
from starlette.testclient import TestClient

from connectors_core import ConfigurationError, discover
from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.sandbox import SANDBOX_ACCOUNT, Sandbox, check_allowed
from connectors_core.store import generate_key, open_store
from connectors_core.testing.oauth_provider import Client, OAuthProvider, running
from connectors_core.web import create_app
from tests.harness import header_tenant, mounted, oauth_manifest, serve
from tests.web.test_browser import TIMEOUT_MS

PREFIX = "/settings/integrations"
BANNER = re.compile(r'<div class="banner" role="note">\s*<strong>Sandbox\.</strong>')


@contextmanager
def host(tmp_path: Path, **create: Any) -> Iterator[tuple[str, Starlette]]:
    """The host application on loopback, the routes (``sandbox=True``) under ``PREFIX``.

    Yields the base URL of the routes and the integrations app.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": origin + PREFIX,
            "CONNECTORS_DATABASE_URL": f"sqlite:///{tmp_path / 'host.sqlite3'}",
            "CONNECTORS_SECRET_KEYS": generate_key(),
        }
    )
    integrations = create_app(
        discover(allow=["evencio"]), settings=settings, sandbox=True, **create
    )
    with serve(mounted(integrations, PREFIX), sock):
        yield origin + PREFIX, integrations


def approve(browser: httpx2.Client, authorize: str, decision: str = "approve") -> str:
    """The sandbox's consent page, answered; the callback URL it sends the browser to."""
    consent = browser.get(authorize)
    assert consent.status_code == 200, consent.text
    assert "Sandbox OAuth provider" in consent.text
    assert "sandbox-evencio" in consent.text
    action = re.search(r'<form method="post" action="([^"]+)"', consent.text)
    request_id = re.search(r'name="request" value="([^"]+)"', consent.text)
    assert action is not None
    assert request_id is not None
    answered = browser.post(
        urljoin(authorize, action.group(1)),  # relative to the page, as a browser resolves it
        data={"request": request_id.group(1), "decision": decision},
    )
    assert answered.status_code == 303, answered.text
    return answered.headers["location"]


def csrf(browser: httpx2.Client, base: str) -> dict[str, str]:
    token = browser.get(f"{base}/api/integrations/csrf").json()["csrfToken"]
    return {"X-CSRF-Token": token, "Origin": f"{urlsplit(base).scheme}://{urlsplit(base).netloc}"}


def test_a_host_connects_an_oauth_connector_through_the_sandbox_over_http(tmp_path: Path) -> None:
    with host(tmp_path) as (base, integrations), httpx2.Client(timeout=10) as browser:
        start = browser.get(f"{base}/api/integrations/evencio/connect")
        assert start.status_code == 303, start.text
        authorize = start.headers["location"]
        assert authorize.startswith(f"{base}/sandbox/oauth/authorize?")
        params = parse_qs(urlsplit(authorize).query)
        assert params["client_id"] == ["sandbox-evencio"]
        assert params["redirect_uri"] == [f"{base}/api/integrations/evencio/callback"]
        assert params["code_challenge_method"] == ["S256"]

        callback = approve(browser, authorize)
        assert callback.startswith(f"{base}/api/integrations/evencio/callback?code=")
        landing = browser.get(callback)
        assert landing.status_code == 303, landing.text
        assert landing.headers["location"] == (
            f"{PREFIX}/integrations?connector=evencio&result=connected"
        )

        status = browser.get(f"{base}/api/integrations/evencio/status").json()
        assert status["connected"] is True
        assert status["status"]["organizationId"] == SANDBOX_ACCOUNT.organization_id
        # Test connection: Evencio's verify request, answered by its plugin's stand-in API.
        tested = browser.post(f"{base}/api/integrations/evencio/test", headers=csrf(browser, base))
        assert tested.status_code == 200, tested.text
        assert "verifiedAt" in tested.json()["status"]

        provider = integrations.state.sandbox.provider
        assert provider.token_requests == ["authorization_code"]
        gone = browser.post(
            f"{base}/api/integrations/evencio/disconnect", headers=csrf(browser, base)
        )
        assert gone.json() == {"connected": False, "error": "not_connected"}
        assert provider.revocations  # revoked at the sandbox: nothing it issued still works
        assert not any(provider.is_active(token) for token in provider.issued)


def test_denying_at_the_sandbox_comes_back_not_connected(tmp_path: Path) -> None:
    with host(tmp_path) as (base, _), httpx2.Client(timeout=10) as browser:
        start = browser.get(f"{base}/api/integrations/evencio/connect")
        callback = approve(browser, start.headers["location"], decision="deny")
        landing = browser.get(callback)
        assert landing.headers["location"] == (
            f"{PREFIX}/integrations?connector=evencio&error=access_denied"
        )
        assert browser.get(f"{base}/api/integrations/evencio/status").json()["connected"] is False


def test_only_the_consent_page_is_served_to_browsers(tmp_path: Path) -> None:
    # The token endpoint and the stand-in APIs are the server's, reached in-process.
    with host(tmp_path) as (base, _), httpx2.Client(timeout=10) as browser:
        assert browser.post(f"{base}/sandbox/api/oauth/token").status_code == 404
        assert browser.get(f"{base}/sandbox/connector-api/me").status_code == 404
        assert browser.get(f"{base}/sandbox/apis/evencio/v1/me").status_code == 404
        unknown = browser.get(f"{base}/sandbox/oauth/authorize?client_id=nobody")
        assert unknown.status_code == 400
        assert "Sandbox OAuth provider" in unknown.text


def test_every_page_and_the_catalogue_say_sandbox(tmp_path: Path) -> None:
    with host(tmp_path) as (base, _), httpx2.Client(timeout=10) as browser:
        html = {"Accept": "text/html"}
        for path in (
            "/integrations",
            "/integrations/evencio",
            "/integrations/no-such-connector",
            "/api/integrations/evencio/disconnect",  # not connected: back to the page
        ):
            page = browser.get(base + path, headers=html, follow_redirects=True)
            assert BANNER.search(page.text), path
        catalogue = browser.get(f"{base}/api/integrations").json()
        assert catalogue["sandbox"] is True
        (evencio,) = catalogue["connectors"]
        assert evencio["sandbox"] is True


def test_the_sandbox_starts_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors_core.web")
    with host(tmp_path) as (base, _):
        pass
    (record,) = [r for r in caplog.records if "SANDBOX" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert f"{base}/sandbox stands in for evencio" in record.getMessage()
    assert "Never in production" in record.getMessage()


def settings_at(public_url: str, tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": public_url,
            "CONNECTORS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
            "CONNECTORS_SECRET_KEYS": generate_key(),
            **environ,
        }
    )


@pytest.mark.parametrize(
    "public_url",
    ["https://app.example.com", "https://app.example.com/settings", "http://10.0.0.5:8000"],
)
def test_the_sandbox_is_refused_beyond_loopback(public_url: str, tmp_path: Path) -> None:
    settings = settings_at(public_url, tmp_path)
    with pytest.raises(ConfigurationError, match="refusing to run the sandbox") as info:
        create_app(discover(allow=["evencio"]), settings=settings, sandbox=True)
    assert "CONNECTORS_DEV_MODE=1" in str(info.value)
    assert info.value.setting == "sandbox"


@pytest.mark.parametrize(
    "public_url",
    ["http://127.0.0.1:8000", "http://localhost:3000/settings", "http://[::1]:8000"],
)
def test_the_sandbox_runs_on_loopback(public_url: str, tmp_path: Path) -> None:
    check_allowed(settings_at(public_url, tmp_path))


def test_development_mode_allows_the_sandbox_on_a_staging_server(tmp_path: Path) -> None:
    settings = settings_at("https://staging.example.com", tmp_path, CONNECTORS_DEV_MODE="1")
    app = create_app(discover(allow=["evencio"]), settings=settings, sandbox=True)
    assert app.state.sandbox.base_url == "https://staging.example.com/sandbox"


def test_even_an_idle_sandbox_is_refused_beyond_loopback(tmp_path: Path) -> None:
    # Every connector has its client today; a plugin installed tomorrow would not.
    settings = settings_at(
        "https://app.example.com", tmp_path, CONNECTORS_EVENCIO_CLIENT_ID="real-client"
    )
    with pytest.raises(ConfigurationError, match="refusing to run the sandbox"):
        create_app(discover(allow=["evencio"]), settings=settings, sandbox=True)


def test_configured_connectors_are_left_alone(tmp_path: Path) -> None:
    settings = settings_at(
        "http://127.0.0.1:8000",
        tmp_path,
        CONNECTORS_EVENCIO_CLIENT_ID="real-client",
        CONNECTORS_EVENCIO_CLIENT_SECRET="real-secret",
    )
    app = create_app(
        discover(allow=["evencio"]), settings=settings, sandbox=True, authenticator=header_tenant
    )
    assert app.state.sandbox is None  # it stands in for nothing: no route, no label
    assert app.state.connections.settings.client_credentials("evencio").client_id == "real-client"
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        headers = {"x-test-tenant": "t"}
        assert client.get("/sandbox/oauth/authorize").status_code == 404
        assert "Sandbox." not in client.get("/integrations", headers=headers).text
        assert "sandbox" not in client.get("/api/integrations", headers=headers).json()


def test_a_connector_with_its_client_connects_to_its_real_provider_beside_the_sandbox(
    tmp_path: Path,
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    callback = f"{origin}/api/integrations/acme-oauth/callback"
    real = OAuthProvider(clients=[Client("acme-client", "acme-secret", (callback,), ("read",))])
    with running(real) as provider_url:
        registry = discover(allow=["evencio"])
        registry.register(oauth_manifest("acme-oauth", provider_url))
        settings = settings_at(
            origin,
            tmp_path,
            CONNECTORS_ACME_OAUTH_CLIENT_ID="acme-client",
            CONNECTORS_ACME_OAUTH_CLIENT_SECRET="acme-secret",
        )
        app = create_app(registry, settings=settings, sandbox=True, authenticator=header_tenant)
        assert app.state.sandbox.connector_ids == {"evencio"}
        with serve(app, sock), httpx2.Client(timeout=10, headers={"x-test-tenant": "t"}) as browser:
            start = browser.get(f"{origin}/api/integrations/acme-oauth/connect")
            assert start.headers["location"].startswith(f"{provider_url}/oauth/authorize?")
            back = browser.get(start.headers["location"]).headers["location"]
            assert back.startswith(f"{callback}?code=")
            landing = browser.get(back)
            assert landing.headers["location"].endswith("result=connected"), landing.text
        assert real.token_requests == ["authorization_code"]  # over HTTP, to the real one


def test_connecting_works_where_the_server_cannot_reach_its_own_public_url(
    tmp_path: Path,
) -> None:
    # Nothing listens at the public URL (a test client, or a proxy the server cannot
    # call back through): the token exchange and the verify request never leave the app.
    settings = settings_at("http://localhost:9" + PREFIX, tmp_path)
    integrations = create_app(
        discover(allow=["evencio"]), settings=settings, sandbox=True, authenticator=header_tenant
    )
    base = "http://localhost:9" + PREFIX
    with TestClient(
        mounted(integrations, PREFIX), base_url="http://localhost:9", follow_redirects=False
    ) as client:
        client.headers["x-test-tenant"] = "tenant-a"
        start = client.get(f"{PREFIX}/api/integrations/evencio/connect")
        authorize = start.headers["location"]
        assert authorize.startswith(f"{base}/sandbox/oauth/authorize?")
        consent = client.get(authorize)
        request_id = re.search(r'name="request" value="([^"]+)"', consent.text)
        assert request_id is not None
        answered = client.post(
            urljoin(authorize, "authorize/decision"),
            data={"request": request_id.group(1), "decision": "approve"},
        )
        landing = client.get(answered.headers["location"])
        assert landing.headers["location"].endswith("result=connected"), landing.text
        status = client.get(f"{PREFIX}/api/integrations/evencio/status").json()
        assert status["connected"] is True


def test_demo_is_a_deprecated_alias_of_sandbox(tmp_path: Path) -> None:
    settings = settings_at("http://127.0.0.1:8000", tmp_path)
    with pytest.warns(DeprecationWarning, match=r"create_app\(sandbox=\.\.\.\)"):
        app = create_app(discover(allow=["evencio"]), settings=settings, demo=True)
    assert app.state.sandbox.connector_ids == {"evencio"}


def test_a_host_s_own_connections_take_the_sandbox_they_were_built_with(tmp_path: Path) -> None:
    registry = discover(allow=["evencio"])
    settings = settings_at("http://127.0.0.1:8000", tmp_path)
    plain = Connections(registry, open_store(settings), settings)
    with pytest.raises(ValueError, match=r"create_app\(sandbox=True\) builds its own connections"):
        create_app(connections=plain, sandbox=True)

    sandbox = Sandbox(registry, settings)
    with pytest.raises(ValueError, match="were not built with this sandbox"):
        create_app(connections=plain, sandbox=sandbox)
    connections = Connections(
        registry, open_store(sandbox.settings), sandbox.settings, transport=sandbox.transport()
    )
    app = create_app(connections=connections, sandbox=sandbox)
    assert app.state.sandbox is sandbox
    token_url = connections.settings.connector_setting("evencio", "token_url")
    assert token_url == "http://127.0.0.1:8000/sandbox/api/oauth/token"


def test_the_sandbox_needs_no_test_only_library(tmp_path: Path) -> None:
    script = """
import sys
for name in ("pytest", "playwright", "schemathesis", "standardwebhooks", "jsonschema"):
    sys.modules[name] = None  # importing one now fails
from connectors_core import discover
from connectors_core._settings import Settings
from connectors_core.web import create_app
settings = Settings.from_env({"CONNECTORS_DATABASE_URL": "memory://", "CONNECTORS_DEV_MODE": "1"})
app = create_app(discover(allow=["evencio"]), settings=settings, sandbox=True)
print(sorted(app.state.sandbox.connector_ids))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['evencio']"


@pytest.mark.slow
def test_connecting_through_the_sandbox_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    with host(tmp_path) as (base, _):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            page.goto(f"{base}/integrations")
            expect(page.get_by_role("note")).to_contain_text("Sandbox.")

            page.get_by_role("link", name="Connect Evencio", exact=True).click()

            expect(page).to_have_url(re.compile(re.escape(f"{base}/sandbox/oauth/authorize?")))
            expect(page.get_by_text("not a real service")).to_be_visible()
            expect(page.get_by_role("heading", level=1)).to_contain_text("sandbox-evencio")
            page.get_by_role("button", name="Approve").click()

            expect(page).to_have_url(f"{base}/integrations?connector=evencio&result=connected")
            expect(page.get_by_role("status")).to_have_text("Evencio is connected.")
            state = page.locator("#card-evencio [data-state]")
            expect(state).to_contain_text("Connected")
            expect(state).to_contain_text("organization sandbox-org")
        finally:
            context.close()


def test_a_sandbox_left_on_behind_a_real_host_name_sends_no_browser_to_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.testclient import TestClient

    # The public URL left at its loopback default on a server reached as app.example.com.
    settings = Settings.from_env(
        {
            "CONNECTORS_DATABASE_URL": f"sqlite:///{tmp_path / 'host.sqlite3'}",
            "CONNECTORS_SECRET_KEYS": generate_key(),
        }
    )
    app = create_app(
        discover(allow=["evencio"]),
        settings=settings,
        sandbox=True,
        authenticator=lambda request: "t1",
    )
    with TestClient(app, base_url="https://app.example.com") as client:
        connect = client.get(
            "/api/integrations/evencio/connect",
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        consent = client.get("/sandbox/oauth/authorize?client_id=sandbox-evencio")
    assert connect.json()["error"] == "not_configured"
    assert "sandbox" not in connect.headers.get("location", "")
    assert consent.status_code == 403
    assert "refusing to send a browser at app.example.com to the sandbox" in caplog.text
