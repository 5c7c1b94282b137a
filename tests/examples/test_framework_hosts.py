"""The host applications of docs/examples: FastAPI, Starlette, Django and Flask.

Each is served for real (uvicorn on loopback), configured by the environment
as its docstring says, with the strict OAuth provider behind its connectors.
A signed-out browser goes through the host's own sign-in and back; a user
connects, checks and disconnects; another organization sees none of it; an
API client without a session gets JSON 401; the host runs the integrations'
lifespan (their events reach the webhook); the sign-in only ever returns to a
path on the site, and refuses a form posted by another site.
"""

from __future__ import annotations

import base64
import importlib
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx2
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors_core.store import generate_key
from connectors_core.testing.oauth_provider import Client, OAuthProvider
from tests.harness import ACCOUNT, ACME_SECRET, build_registry, running_with_workspaces, serve
from tests.web.test_browser import TIMEOUT_MS

PREFIX = "/settings/integrations"
ADA, GRACE = "ada@org-a.example", "grace@org-b.example"
PASSWORDS = {ADA: "lovelace-1843", GRACE: "hopper-1952"}
JSON = {"Accept": "application/json"}

# name: (the module uvicorn is told to import, the host's name on the Integrations page)
HOSTS = {
    "django": ("docs.examples.django_host.asgi", "Acme (Django)"),
    "fastapi": ("docs.examples.fastapi_host.app", "Acme (FastAPI)"),
    "flask": ("docs.examples.flask_host.app", "Acme (Flask)"),
    "starlette": ("docs.examples.starlette_host.app", "Acme (Starlette)"),
}


class Receiver:
    """The webhook the hosts' connection events are sent to; it checks their signatures."""

    def __init__(self) -> None:
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.events: list[dict[str, Any]] = []
        self.forged = 0
        self.arrived = threading.Condition()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        try:
            message = Webhook(self.secret).verify(await request.body(), dict(request.headers))
        except WebhookVerificationError:
            self.forged += 1
            return Response(status_code=401)
        with self.arrived:
            self.events.append(message["data"])
            self.arrived.notify_all()
        return Response(status_code=204)

    def wait_for(self, **expected: Any) -> dict[str, Any]:
        """The first event with those values, once it has arrived (10 s at most)."""

        def found() -> dict[str, Any] | None:
            matching = (e for e in self.events if expected.items() <= e.items())
            return next(matching, None)

        with self.arrived:
            assert self.arrived.wait_for(found, timeout=10), (expected, self.events)
            event = found()
        assert event is not None
        return event


@attrs.frozen
class Host:
    """An example host application, served."""

    origin: str
    label: str
    provider: OAuthProvider
    webhook: Receiver

    @property
    def base(self) -> str:
        """Where the integrations are mounted."""
        return self.origin + PREFIX


@pytest.fixture(scope="module", params=sorted(HOSTS))
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    """The example, served on loopback; its connectors call a strict OAuth provider."""
    module_name, label = HOSTS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    with ExitStack() as stack:
        sock = stack.enter_context(closing(socket.socket()))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        callback = f"{origin}{PREFIX}/api/integrations/acme-oauth/callback"
        provider = OAuthProvider(
            clients=[Client("acme-client", ACME_SECRET, (callback,), ("read",))], account=ACCOUNT
        )
        provider_url = stack.enter_context(running_with_workspaces(provider))
        webhook = Receiver()
        hook_socket = stack.enter_context(closing(socket.socket()))
        hook_socket.bind(("127.0.0.1", 0))
        hook_url = f"http://127.0.0.1:{hook_socket.getsockname()[1]}/hook"
        stack.enter_context(serve(webhook.app, hook_socket))
        env = stack.enter_context(pytest.MonkeyPatch.context())
        for variable, value in {
            "CONNECTORS_PUBLIC_URL": origin + PREFIX,
            "CONNECTORS_SECRET_KEYS": generate_key(),
            "CONNECTORS_INDEX_DIR": str(folder / "index"),
            "CONNECTORS_ACME_OAUTH_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_OAUTH_CLIENT_SECRET": ACME_SECRET,
            "CONNECTORS_WEBHOOK_URL": hook_url,
            "CONNECTORS_WEBHOOK_SECRET": webhook.secret,
            "SESSION_SECRET": secrets.token_hex(32),
            "FLASK_SECRET_KEY": secrets.token_hex(32),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_SETTINGS_MODULE": "docs.examples.django_host.settings",
            "DJANGO_DATABASE": str(folder / "django.sqlite3"),
            # The module-level app (the one uvicorn would serve) is made on import, from
            # the environment too. It is not served here, and keeps nothing open.
            "CONNECTORS_DATABASE_URL": "memory://",
        }.items():
            env.setenv(variable, value)
        module = importlib.import_module(module_name)
        # The app served: the same factory, the connectors of the test registry, and a
        # real SQLite file for the connections.
        env.setenv("CONNECTORS_DATABASE_URL", f"sqlite:///{folder / 'connectors.sqlite3'}")
        app = module.make_app(build_registry(provider_url))
        stack.enter_context(serve(app, sock))
        yield Host(origin, label, provider, webhook)


class _HiddenFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def submit_sign_in(
    client: httpx2.Client,
    email: str,
    *,
    password: str | None = None,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    """Open the host's sign-in form and send it (with its hidden fields, such as
    Django's CSRF token); ``target``, if given, as its ``next``."""
    form = client.get("/login", params={"next": target} if target is not None else None)
    assert form.status_code == 200, form.text
    parser = _HiddenFields()
    parser.feed(form.text)
    fields = {**parser.fields, "username": email, "password": password or PASSWORDS[email]}
    if target is not None:
        fields["next"] = target
    return client.post("/login", data=fields, headers=headers)


@contextmanager
def new_page(browser: Browser, host: Host) -> Iterator[Page]:
    """A page of a browser of its own (no cookies); no response in it may be an error."""
    context = browser.new_context(base_url=host.origin)
    context.set_default_timeout(TIMEOUT_MS)
    failed: list[str] = []
    context.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    try:
        yield context.new_page()
    finally:
        context.close()
    assert failed == []


def sign_in(page: Page, email: str) -> None:
    """Fill in and send the host's sign-in form, which the page shows."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORDS[email])
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()


def open_integrations(page: Page, host: Host, email: str) -> None:
    """Signed out, open the Integrations page: sign in on the way."""
    page.goto(f"{PREFIX}/integrations")
    sign_in(page, email)
    expect(page).to_have_url(f"{host.base}/integrations")
    expect(page).to_have_title("Integrations")


def card(page: Page, connector_id: str) -> Locator:
    return page.locator(f"#card-{connector_id}")


@pytest.mark.slow
def test_a_signed_out_visit_signs_in_at_the_host_and_comes_back(
    browser: Browser, host: Host
) -> None:
    with new_page(browser, host) as page:
        page.goto(f"{PREFIX}/integrations")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        login = urlsplit(page.url)
        assert login.path == "/login"
        assert parse_qs(login.query) == {"next": [f"{PREFIX}/integrations"]}

        sign_in(page, ADA)
        expect(page).to_have_url(f"{host.base}/integrations")
        expect(page).to_have_title("Integrations")
        expect(card(page, "acme-oauth")).to_be_visible()

        page.get_by_role("link", name=f"← {host.label}").click()
        expect(page).to_have_url(f"{host.origin}/")
        expect(page.get_by_text("Signed in as Ada Lovelace (org-a).")).to_be_visible()


@pytest.mark.slow
def test_connect_check_and_disconnect_while_another_organization_sees_none_of_it(
    browser: Browser, host: Host
) -> None:
    with new_page(browser, host) as page:
        open_integrations(page, host, ADA)
        card(page, "acme-oauth").get_by_role("link", name="Connect Acme-Oauth").click()
        expect(page.locator("#live")).to_contain_text("Acme-Oauth is connected.")
        card(page, "acme-key").get_by_label("API key").fill("sk_live_" + "e" * 24)
        card(page, "acme-key").get_by_role("button", name=re.compile("^Connect")).click()
        expect(page.locator("#live")).to_contain_text("Acme-Key is connected.")
        for connector in ("acme-oauth", "acme-key"):
            expect(card(page, connector).locator("[data-state]")).to_contain_text("Connected")
            status = page.request.get(f"{host.base}/api/integrations/{connector}/status")
            assert status.ok
            assert status.json()["connected"] is True

        # Someone of another organization, in the same browser: none of it is theirs.
        sign_out(page)
        open_integrations(page, host, GRACE)
        for connector, name in (("acme-oauth", "Acme-Oauth"), ("acme-key", "Acme-Key")):
            expect(card(page, connector).locator("[data-state]")).to_have_text("Not connected")
            disconnect = card(page, connector).get_by_role("link", name=f"Disconnect {name}")
            expect(disconnect).to_have_count(0)
        catalogue = page.request.get(f"{host.base}/api/integrations", headers=JSON).json()
        statuses = {each["id"]: each["status"] for each in catalogue["connectors"]}
        for connector in ("acme-oauth", "acme-key"):
            assert statuses[connector] == {"connected": False, "error": "not_connected"}

        # Back as Ada: hers are there, and she disconnects them, confirming each.
        sign_out(page)
        open_integrations(page, host, ADA)
        for connector, name in (("acme-oauth", "Acme-Oauth"), ("acme-key", "Acme-Key")):
            card(page, connector).get_by_role("link", name=f"Disconnect {name}").click()
            expect(page.get_by_role("heading", level=1)).to_have_text(f"Disconnect {name}?")
            expect(page.get_by_role("main")).to_contain_text("by Ada Lovelace")
            page.get_by_role("button", name=re.compile("^Disconnect")).click()
            expect(page.locator("#live")).to_contain_text(f"{name} is disconnected.")
            status = page.request.get(f"{host.base}/api/integrations/{connector}/status")
            assert status.json()["connected"] is False
    assert host.provider.revocations


def test_an_api_client_without_a_session_gets_json_401(host: Host) -> None:
    with httpx2.Client(headers=JSON, follow_redirects=False) as client:
        for path in ("/api/integrations", "/api/integrations/acme-oauth/status"):
            response = client.get(host.base + path)
            assert response.status_code == 401, path
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"] == "unauthenticated"
        # A browser is sent to the host's sign-in instead.
        page = client.get(f"{host.base}/integrations", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fsettings%2Fintegrations%2Fintegrations"


def test_the_host_runs_the_integrations_lifespan_which_delivers_their_events(
    host: Host,
) -> None:
    with httpx2.Client(base_url=host.origin, follow_redirects=False) as client:
        assert submit_sign_in(client, ADA).status_code in (302, 303)
        token = client.get(f"{PREFIX}/api/integrations/csrf").json()["csrfToken"]
        for action in ("connect", "disconnect"):
            answer = client.post(
                f"{PREFIX}/api/integrations/acme-plain/{action}",
                headers={"X-CSRF-Token": token, **JSON},
            )
            assert answer.status_code == 200, answer.text
    # Only the lifespan of the integrations delivers events.
    for kind in ("connected", "disconnected"):
        event = host.webhook.wait_for(type=kind, connectorId="acme-plain")
        assert (event["tenant"], event["actor"]) == ("org-a", ADA)
    assert host.webhook.forged == 0


def test_the_sign_in_returns_to_the_path_it_was_given(host: Host) -> None:
    with httpx2.Client(base_url=host.origin, follow_redirects=False) as client:
        response = submit_sign_in(client, GRACE, target=f"{PREFIX}/integrations?q=acme")
        assert response.status_code in (302, 303)
        assert response.headers["location"] == f"{PREFIX}/integrations?q=acme"
        catalogue = client.get(f"{PREFIX}/api/integrations", headers=JSON)
    assert catalogue.status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "javascript:alert(1)",
    ],
    ids=["scheme-relative", "absolute", "backslash", "tab", "javascript"],
)
def test_the_sign_in_never_returns_to_another_site(host: Host, target: str) -> None:
    with httpx2.Client(base_url=host.origin, follow_redirects=False) as client:
        response = submit_sign_in(client, ADA, target=target)
    assert response.status_code in (302, 303)
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(
    "cross_site",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},  # a browser that sends no Sec-Fetch-Site
    ],
    ids=["fetch-metadata", "origin-only"],
)
def test_a_sign_in_posted_by_another_site_is_refused(
    host: Host, cross_site: dict[str, str]
) -> None:
    with httpx2.Client(base_url=host.origin, follow_redirects=False) as client:
        response = submit_sign_in(client, ADA, headers=cross_site)
        assert response.status_code == 403
        assert client.get(f"{PREFIX}/api/integrations", headers=JSON).status_code == 401


def test_a_wrong_password_signs_nobody_in(host: Host) -> None:
    with httpx2.Client(base_url=host.origin, follow_redirects=False) as client:
        response = submit_sign_in(client, ADA, password=PASSWORDS[GRACE])
        assert response.status_code == 200
        assert "Wrong email or password." in response.text
        assert client.get(f"{PREFIX}/api/integrations", headers=JSON).status_code == 401
