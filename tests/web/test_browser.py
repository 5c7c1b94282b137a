"""The Integrations page in a real browser, against a real ``connectors serve --demo``.

The server runs as a subprocess, exactly as a user starts it: no encryption
key configured (development mode on loopback), the sandbox OAuth provider at
``/sandbox``, and plugins found on ``PYTHONPATH``. Chromium is driven by
Playwright; the tests need a Chromium binary (``CONNECTORS_CHROMIUM`` or
``chromium`` on ``PATH``) and never download one. They skip without it, except
on CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from playwright.sync_api import Browser, Locator, Page, Response, expect
from playwright.sync_api import Error as PlaywrightError

from tests.distributions import Dist, install, manifest_source

pytestmark = pytest.mark.slow

# No internet here, and none wanted: keep Chromium from phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 20.0  # seconds for `connectors serve` to answer
TIMEOUT_MS = 10_000  # for every Playwright action and expectation

API_KEY = "sk_live_BrowserTest_7c41e9d2a5f3"


def connection(connector_id: str) -> str:
    """Python source of a manifest's ``connection`` paths."""
    base = f"/api/integrations/{connector_id}"
    return repr(
        {
            "startPath": f"{base}/connect",
            "statusPath": f"{base}/status",
            "disconnectPath": f"{base}/disconnect",
        }
    )


def plugin(dist_name: str, module: str, manifest: str) -> Dist:
    """A plugin distribution whose one hook returns ``manifest`` (Python source)."""
    source = f"""
        from connectors_core import hookimpl

        @hookimpl
        def provide_connector():
            return {manifest}
    """
    return Dist(dist_name, "1.0.0", {module: module}, {f"{module}/__init__.py": source})


SITE: list[Dist] = [
    plugin(
        "acme-crm-connector",
        "acme_crm_connector",
        manifest_source(
            "acme-crm",
            name=repr("Acme CRM"),
            summary=repr("Contacts and segments from Acme CRM."),
            category=repr("marketing"),
            auth=repr({"type": "api-key", "description": "Your Acme API key.", "headerName": "X"}),
            tags=repr(["crm", "contacts"]),
            connection=connection("acme-crm"),
        ),
    ),
    plugin(
        "globex-ads-connector",
        "globex_ads_connector",
        manifest_source(
            "globex-ads",
            name=repr("Globex Ads"),
            summary=repr("Campaign results from Globex Ads."),
            category=repr("marketing"),
            status=repr("coming-soon"),
            tags=repr(["ads"]),
            connection=connection("globex-ads"),
        ),
    ),
    Dist(
        "broken-widgets",
        "0.1.0",
        {"broken-widgets": "broken_widgets_plugin"},
        {"broken_widgets_plugin/__init__.py": "import a_module_that_does_not_exist\n"},
    ),
]


@attrs.frozen
class Server:
    """A running ``connectors serve --demo``."""

    origin: str
    log: Path

    def url(self, path: str) -> str:
        return self.origin + path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (straight to loopback, never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``connectors serve --demo`` in a subprocess, with the test plugins installed."""
    root = tmp_path_factory.mktemp("browser")
    site = root / "site"
    for dist in SITE:
        install(site, dist)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTORS_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])),
            "CONNECTORS_DATABASE_URL": f"sqlite:///{root / 'c.sqlite3'}",
            "CONNECTORS_INDEX_DIR": str(root / "index"),
        }
    )
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    log = root / "serve.log"
    command = [sys.executable, "-m", "connectors_core", "serve", "--demo", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(f"{origin}/integrations"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"`connectors serve --demo` did not answer within {START_TIMEOUT:.0f} s "
                    f"(exit code {process.poll()}):\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.1)
        yield Server(origin, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def chromium_executable() -> str:
    """The Chromium to drive; skips (fails on CI) when there is none."""
    configured = os.environ.get("CONNECTORS_CHROMIUM")
    found = configured or shutil.which("chromium")
    if found and Path(found).is_file():
        return found
    reason = (
        f"CONNECTORS_CHROMIUM={configured!r} is not a file"
        if configured
        else "no Chromium found: install Debian's `chromium` or set CONNECTORS_CHROMIUM"
    )
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests must run on CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A fresh browser context (its own cookies) with one page."""
    context = browser.new_context(base_url=server.origin, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def card(page: Page, connector_id: str) -> Locator:
    return page.locator(f"#card-{connector_id}")


def disconnect(page: Page, connector_id: str) -> None:
    """Make sure ``connector_id`` is not connected, through the JSON route (as a script would).

    Tests that need a connector disconnected reset it themselves, so that they
    pass in any order and after a failure of another test.
    """
    token = page.request.get("/api/integrations/csrf").json()["csrfToken"]
    response = page.request.post(
        f"/api/integrations/{connector_id}/disconnect", headers={"X-CSRF-Token": token}
    )
    assert response.ok, response.text()
    assert response.json() == {"connected": False, "error": "not_connected"}


def submit(page: Page, button: Locator) -> Response:
    """Click a form's submit button; the response that ends the navigation, which must be OK."""
    with page.expect_navigation() as navigation:
        button.click()
    response = navigation.value
    assert response is not None
    assert response.ok, f"{response.request.method} -> {response.status}: {response.text()}"
    return response


# --- a. what the page shows --------------------------------------------------------------


def test_the_page_shows_every_connector_the_demo_banner_and_the_failed_plugin(
    page: Page,
) -> None:
    page.goto("/integrations")

    expect(page).to_have_title("Integrations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Integrations")
    banner = page.get_by_role("note")
    expect(banner).to_contain_text("Sandbox.")
    expect(banner).to_contain_text("sandbox")

    evencio = card(page, "evencio")
    expect(evencio.get_by_role("heading", name="Evencio")).to_be_visible()
    expect(evencio.get_by_role("link", name="Connect Evencio", exact=True)).to_be_visible()
    acme = card(page, "acme-crm")
    expect(acme.get_by_role("heading", name="Acme CRM")).to_be_visible()
    key = acme.get_by_label("API key", exact=True)
    expect(key).to_have_attribute("type", "password")
    expect(key).to_have_accessible_description("Your Acme API key.")
    expect(acme.get_by_role("button", name="Connect Acme CRM", exact=True)).to_be_visible()

    soon = card(page, "globex-ads")
    expect(soon.get_by_role("heading", name="Globex Ads")).to_be_visible()
    expect(soon.locator(".pill")).to_have_text("Coming soon")
    expect(soon.locator("[data-state]")).to_have_text("")  # the pill says it once
    expect(soon.get_by_role("link", name=re.compile("connect", re.IGNORECASE))).to_have_count(0)
    expect(soon.get_by_role("button", name=re.compile("connect", re.IGNORECASE))).to_have_count(0)
    expect(soon.locator("form")).to_have_count(0)

    failed = page.get_by_role("region", name="1 connector plugin failed to load")
    expect(failed).to_be_visible()
    expect(failed.get_by_role("listitem")).to_have_count(1)
    expect(failed.get_by_role("listitem")).to_contain_text("broken-widgets")
    expect(failed.get_by_role("listitem")).to_contain_text("a_module_that_does_not_exist")
    expect(page.locator(".card")).to_have_count(3)
    expect(page.locator("#count")).to_have_text("Showing 3 of 3 integrations")


# --- b. filtering --------------------------------------------------------------------------


def test_typing_in_the_search_box_hides_the_cards_that_do_not_match(page: Page) -> None:
    page.goto("/integrations")
    page.evaluate("() => { window.notReloaded = true; }")
    search = page.get_by_role("searchbox", name="Search integrations")

    search.press_sequentially("acme")

    expect(card(page, "acme-crm")).to_be_visible()
    expect(card(page, "evencio")).to_be_hidden()
    expect(card(page, "globex-ads")).to_be_hidden()
    expect(page.locator("#count")).to_have_text("Showing 1 of 3 integrations")
    assert page.evaluate("() => window.notReloaded === true"), "filtering reloaded the page"

    search.fill("")
    expect(page.locator(".card:visible")).to_have_count(3)


def test_widening_a_filter_from_a_filtered_address_shows_every_card(page: Page) -> None:
    page.goto("/integrations?q=acme")
    expect(page.locator(".card:visible")).to_have_count(1)
    expect(page.locator("#count")).to_have_text("Showing 1 of 3 integrations")

    page.get_by_role("searchbox", name="Search integrations").fill("")

    expect(page.locator(".card:visible")).to_have_count(3)
    expect(page.locator("#count")).to_have_text("Showing 3 of 3 integrations")
    expect(page).to_have_url(re.compile(r"/integrations$"))


def test_the_category_filter_works_without_javascript(browser: Browser, server: Server) -> None:
    context = browser.new_context(base_url=server.origin, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/integrations?category=marketing")

        # Every card is sent; those the filter leaves out are hidden.
        cards = page.locator(".card:visible")
        expect(cards).to_have_count(2)
        assert sorted(cards.evaluate_all("cards => cards.map(c => c.id)")) == [
            "card-acme-crm",
            "card-globex-ads",
        ]
        expect(page.locator(".card")).to_have_count(3)
        expect(page.locator("#count")).to_have_text("Showing 2 of 3 integrations")
        expect(page.get_by_label("Category")).to_have_value("marketing")

        # The filter form itself is a plain GET form.
        page.get_by_label("Category").select_option("events")
        page.get_by_role("button", name="Apply filters").click()
        expect(page).to_have_url(re.compile(r"/integrations\?.*category=events"))
        expect(cards).to_have_count(1)
        expect(card(page, "evencio")).to_be_visible()
    finally:
        context.close()


# --- c. OAuth through the sandbox ---------------------------------------------------------


def connect_evencio(page: Page, server: Server) -> Locator:
    """Connect Evencio through the sandbox's consent page; its card, connected."""
    disconnect(page, "evencio")
    page.goto("/integrations")

    page.get_by_role("link", name="Connect Evencio", exact=True).click()

    expect(page).to_have_url(re.compile(re.escape(server.url("/sandbox/")) + ".*authorize"))
    expect(page).to_have_title(re.compile("Sandbox"))
    expect(page.get_by_text("not a real service")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("sandbox-evencio")
    page.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(server.url("/integrations?connector=evencio&result=connected"))
    expect(page.get_by_role("status")).to_have_text("Evencio is connected.")
    evencio = card(page, "evencio")
    expect(evencio).to_have_class(re.compile(r"\bis-connected\b"))
    state = evencio.locator("[data-state]")
    expect(state).to_contain_text("Connected")
    expect(state).to_contain_text("organization sandbox-org")
    expect(evencio.get_by_role("link", name="Connect Evencio", exact=True)).to_have_count(0)
    expect(evencio.get_by_role("link", name="Disconnect Evencio", exact=True)).to_be_visible()
    expect(evencio.locator("[data-attribution]")).to_have_text(
        re.compile(r"^Connected on \d{4}-\d{2}-\d{2}$")
    )
    return evencio


def test_connecting_evencio_through_the_sandbox(page: Page, server: Server) -> None:
    connect_evencio(page, server)

    page.reload()  # the server-rendered state agrees, not only the notice
    evencio = card(page, "evencio")
    expect(evencio.locator("[data-state]")).to_contain_text("organization sandbox-org")
    disconnect(page, "evencio")


def test_disconnecting_evencio_from_its_card(page: Page, server: Server) -> None:
    evencio = connect_evencio(page, server)

    evencio.get_by_role("link", name="Disconnect Evencio", exact=True).click()
    # A page asks first; Cancel goes back with nothing changed.
    expect(page.get_by_role("heading", level=1)).to_have_text("Disconnect Evencio?")
    expect(page.get_by_role("main")).to_contain_text("sandbox-org")
    page.get_by_role("link", name="Cancel").click()
    expect(card(page, "evencio")).to_have_class(re.compile(r"\bis-connected\b"))

    card(page, "evencio").get_by_role("link", name="Disconnect Evencio", exact=True).click()
    submit(page, page.get_by_role("button", name=re.compile("^Disconnect")))

    expect(page).to_have_url(server.url("/integrations?connector=evencio&result=disconnected"))
    expect(page.get_by_role("status")).to_have_text("Evencio is disconnected.")
    evencio = card(page, "evencio")
    expect(evencio.locator("[data-state]")).to_have_text("Not connected")
    expect(evencio).not_to_have_class(re.compile(r"\bis-connected\b"))
    expect(evencio.get_by_role("link", name="Connect Evencio", exact=True)).to_be_visible()


def test_denying_at_the_sandbox_comes_back_not_connected(page: Page, server: Server) -> None:
    disconnect(page, "evencio")
    page.goto("/integrations")

    page.get_by_role("link", name="Connect Evencio", exact=True).click()
    page.get_by_role("button", name="Deny").click()

    expect(page).to_have_url(server.url("/integrations?connector=evencio&error=access_denied"))
    expect(page.get_by_role("status")).to_have_text(
        "Connecting Evencio was cancelled at the provider."
    )
    expect(card(page, "evencio").locator("[data-state]")).to_have_text("Not connected")
    expect(page.get_by_role("link", name="Connect Evencio", exact=True)).to_be_visible()


# --- d. an API key never comes back -------------------------------------------------------


@attrs.define
class Traffic:
    """Everything the server sent the page, and every URL the page requested or showed."""

    texts: list[str] = attrs.field(factory=list)
    unread: list[str] = attrs.field(factory=list)
    responses: int = 0

    def record(self, page: Page) -> None:
        page.on("request", lambda request: self.texts.append(request.url))
        page.on("framenavigated", lambda frame: self.texts.append(frame.url))
        page.on("response", lambda response: self._response(response))

    def _response(self, response: Response) -> None:
        self.responses += 1
        self.texts.append(f"{response.status} {response.url}")
        self.texts.extend(f"{name}: {value}" for name, value in response.headers.items())
        if 300 <= response.status < 400:
            return  # a redirect has no body (its Location header is recorded above)
        try:  # now: a document's body is gone once the page navigates away
            self.texts.append(response.body().decode("utf-8", errors="replace"))
        except PlaywrightError as error:
            self.unread.append(f"{response.url}: {error.message.splitlines()[0]}")


def test_an_api_key_is_stored_and_never_sent_back_to_the_browser(page: Page) -> None:
    traffic = Traffic()
    traffic.record(page)
    disconnect(page, "acme-crm")
    page.goto("/integrations")

    acme = card(page, "acme-crm")
    acme.get_by_label("API key", exact=True).fill(API_KEY)
    submit(page, acme.get_by_role("button", name="Connect Acme CRM", exact=True))

    expect(page).to_have_url(re.compile(r"/integrations\?connector=acme-crm&result=connected$"))
    expect(page.get_by_role("status")).to_have_text("Acme CRM is connected.")
    acme = card(page, "acme-crm")
    state = acme.locator("[data-state]")
    expect(state).to_contain_text("Connected")
    expect(state).to_contain_text(f"key ••••{API_KEY[-4:]}")
    expect(acme.get_by_label("API key", exact=True)).to_have_count(0)
    page.wait_for_load_state("networkidle")  # the page's own status requests too

    assert not traffic.unread, traffic.unread
    assert any("Acme CRM is connected." in text for text in traffic.texts)  # bodies were read
    assert any(API_KEY[-4:] in text for text in traffic.texts)  # ... the hint among them
    everything = [*traffic.texts, page.content(), page.url]
    leaks = [text[:200] for text in everything if API_KEY in text]
    assert not leaks, leaks
    disconnect(page, "acme-crm")


# --- e. keyboard only ---------------------------------------------------------------------


def test_connect_is_reachable_and_usable_with_the_keyboard_alone(
    page: Page, server: Server
) -> None:
    disconnect(page, "evencio")
    page.goto("/integrations")  # a fresh load: focus starts at the top of the document

    focused = ""
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => (document.activeElement.textContent || '').replace(/\\s+/g, ' ').trim()"
        )
        if focused == "Connect Evencio":
            break
    else:
        pytest.fail(f"Tab never reached 'Connect Evencio' (last focused: {focused!r})")

    link = page.get_by_role("link", name="Connect Evencio", exact=True)
    expect(link).to_be_focused()
    outline = link.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return [s.outlineStyle, s.outlineWidth, el.matches(':focus-visible')]; }"
    )
    assert outline[0] != "none", outline
    assert outline[1] != "0px", outline
    assert outline[2] is True, outline

    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(re.escape(server.url("/sandbox/")) + ".*authorize"))
    expect(page.get_by_role("button", name="Approve")).to_be_visible()


# --- f. a non-trivial rendering -----------------------------------------------------------


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the inflated (still filtered) image data of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width = height = 0
    idat = b""
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunk = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        offset += 12 + length
    return width, height, zlib.decompress(idat)


def test_a_full_page_screenshot_is_not_blank(page: Page, tmp_path: Path) -> None:
    page.goto("/integrations")
    page.wait_for_load_state("networkidle")
    target = tmp_path / "integrations.png"

    data = page.screenshot(path=target, full_page=True)

    assert target.read_bytes() == data
    assert len(data) > 20_000, len(data)
    width, height, pixels = png_pixels(data)
    assert width == 1280
    assert height >= 900
    assert len(pixels) >= width * height * 3
    assert len(set(pixels)) > 64, "the screenshot is (nearly) one colour"
    grid = page.locator(".grid").bounding_box()
    assert grid is not None
    assert grid["width"] > 300
    assert grid["height"] > 100
    boxes = page.locator(".card").evaluate_all(
        "cards => cards.map(c => { const r = c.getBoundingClientRect();"
        " return [r.width, r.height]; })"
    )
    assert len(boxes) == 3
    assert all(w > 150 and h > 80 for w, h in boxes), boxes
