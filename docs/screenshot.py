"""Regenerate the pictures of the Integrations page in docs/.

Run it with the project's environment (the `test` extra brings Playwright)::

    .venv/bin/python docs/screenshot.py

It installs a few sample connector plugins into a temporary folder (they are
made up for the picture: names of well-known services, but no real
integration behind them; each with an icon and a French translation), starts
``connectors serve --demo`` with them, as a user would, connects Evencio
through the sandbox OAuth provider, and saves the catalogue at 1280 and 390
pixels wide, in English and in French (``docs/screenshots/``), and the
README's picture (``docs/integrations.png``, English at 1280). It needs a
Chromium (``CONNECTORS_CHROMIUM`` or ``chromium`` on ``PATH``); it never
downloads one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

DOCS = Path(__file__).resolve().parent
OUTPUT = DOCS / "integrations.png"
SCREENSHOTS = DOCS / "screenshots"
SHOTS = [(locale, width) for locale in ("en", "fr") for width in (1280, 390)]
"""(locale, viewport width) of each picture: ``screenshots/catalogue-<locale>-<width>.png``."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def connection(connector_id: str) -> dict[str, str]:
    base = f"/api/integrations/{connector_id}"
    return {
        "startPath": f"{base}/connect",
        "statusPath": f"{base}/status",
        "disconnectPath": f"{base}/disconnect",
    }


def oauth(host: str, *scopes: str) -> dict[str, object]:
    return {
        "type": "oauth",
        "authorizeUrl": f"https://{host}/oauth/authorize",
        "tokenUrl": f"https://{host}/oauth/token",
        "scopes": list(scopes),
    }


def api_key(description: str) -> dict[str, str]:
    return {"type": "api-key", "description": description, "headerName": "Authorization"}


# Sample manifests for the picture (Evencio, the real one, is installed already).
SAMPLES: list[dict[str, object]] = [
    {
        "id": "eventbrite",
        "name": "Eventbrite",
        "summary": "Ticket types, sales and attendees from your Eventbrite events.",
        "description": "Use ticket sales and attendee counts in campaigns.",
        "category": "ticketing",
        "status": "beta",
        "auth": api_key("Your Eventbrite private token."),
        "capabilities": [{"id": "tickets", "label": "Ticket sales"}],
        "tags": ["tickets", "attendees"],
        "connection": connection("eventbrite"),
        "icon": "icon.svg",
        "translations": {
            "fr": {
                "summary": "Types de billets, ventes et participants de vos événements Eventbrite.",
                "description": "Utilisez les ventes de billets et le nombre de participants "
                "dans vos campagnes.",
            }
        },
    },
    {
        "id": "mailchimp",
        "name": "Mailchimp",
        "summary": "Send event audiences to Mailchimp lists and track opens.",
        "description": "Sync audiences to Mailchimp and read campaign results.",
        "category": "marketing",
        "status": "available",
        "auth": api_key("Your Mailchimp API key."),
        "capabilities": [{"id": "audiences", "label": "Audience sync"}],
        "tags": ["email", "audiences"],
        "connection": connection("mailchimp"),
        "icon": "icon.svg",
        "translations": {
            "fr": {
                "summary": "Envoyez vos publics vers des listes Mailchimp "
                "et suivez les ouvertures.",
                "description": "Synchronisez vos publics avec Mailchimp et lisez les résultats "
                "des campagnes.",
            }
        },
    },
    {
        "id": "canva",
        "name": "Canva",
        "summary": "Turn event details into on-brand Canva designs.",
        "description": "Fill Canva templates with event names, dates and venues.",
        "category": "assets",
        "status": "available",
        "auth": oauth("www.canva.com", "design:content:write", "asset:read"),
        "capabilities": [{"id": "designs", "label": "Designs from templates"}],
        "tags": ["design", "templates"],
        "connection": connection("canva"),
        "icon": "icon.svg",
        "translations": {
            "fr": {
                "summary": "Transformez les détails de vos événements "
                "en visuels Canva à votre image.",
                "description": "Remplissez des modèles Canva avec les noms, dates et lieux "
                "de vos événements.",
            }
        },
    },
    {
        "id": "google-ads",
        "name": "Google Ads",
        "summary": "Launch and measure search campaigns for your events.",
        "description": "Create campaigns from events and report conversions.",
        "category": "marketing",
        "status": "coming-soon",
        "auth": oauth("accounts.google.com", "https://www.googleapis.com/auth/adwords"),
        "capabilities": [{"id": "campaigns", "label": "Campaigns"}],
        "tags": ["ads", "search"],
        "icon": "icon.svg",
        "translations": {
            "fr": {
                "summary": "Lancez et mesurez des campagnes de recherche pour vos événements.",
                "description": "Créez des campagnes à partir de vos événements et suivez les "
                "conversions.",
            }
        },
    },
    {
        "id": "plausible",
        "name": "Plausible Analytics",
        "summary": "See which campaigns bring visitors to your event pages.",
        "description": "Read page views and referrers for event pages.",
        "category": "analytics",
        "status": "beta",
        "auth": api_key("Your Plausible API key."),
        "capabilities": [{"id": "traffic", "label": "Traffic by campaign"}],
        "tags": ["analytics", "traffic"],
        "connection": connection("plausible"),
        "icon": "icon.svg",
        "translations": {
            "fr": {
                "summary": "Voyez quelles campagnes amènent des visiteurs sur vos pages "
                "d'événements.",
                "description": "Lisez les pages vues et les sites référents de vos pages "
                "d'événements.",
            }
        },
    },
]


# A sample's icon: a rounded square in the sample's colour with its initial.
COLOURS = {
    "eventbrite": "#d1410c",
    "mailchimp": "#1f5f4a",
    "canva": "#00838f",
    "google-ads": "#1a5fb4",
    "plausible": "#4a3aa8",
}


def icon(manifest: dict[str, object]) -> str:
    initial = str(manifest["name"])[0]
    colour = COLOURS.get(str(manifest["id"]), "#444444")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
        f'<rect width="64" height="64" rx="14" fill="{colour}"/>'
        '<text x="32" y="43" font-family="sans-serif" font-size="30" font-weight="700" '
        f'fill="#ffffff" text-anchor="middle">{initial}</text></svg>\n'
    )


def install_sample(site: Path, manifest: dict[str, object]) -> None:
    """Write one sample plugin into ``site`` as pip would (a module, its icon, its
    dist-info)."""
    connector_id = str(manifest["id"])
    module = "sample_" + connector_id.replace("-", "_")
    dist = f"{module}-1.0.0.dist-info"
    source = (
        "from connectors_core import hookimpl\n\n\n"
        "@hookimpl\n"
        "def provide_connector():\n"
        f"    return {manifest!r}\n"
    )
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(source, encoding="utf-8")
    (site / module / "icon.svg").write_text(icon(manifest), encoding="utf-8")
    (site / dist).mkdir()
    name = module.replace("_", "-")
    (site / dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n", encoding="utf-8"
    )
    (site / dist / "entry_points.txt").write_text(
        f"[connectors_core]\n{connector_id} = {module}\n", encoding="utf-8"
    )
    files = [
        f"{module}/__init__.py",
        f"{module}/icon.svg",
        *(f"{dist}/{n}" for n in ("METADATA", "entry_points.txt")),
    ]
    (site / dist / "RECORD").write_text(
        "".join(f"{f},,\n" for f in [*files, f"{dist}/RECORD"]), encoding="utf-8"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    sys.exit(f"`connectors serve --demo` did not start:\n{log.read_text(errors='replace')}")


def chromium() -> str:
    found = os.environ.get("CONNECTORS_CHROMIUM") or shutil.which("chromium")
    if not found or not Path(found).is_file():
        sys.exit("no Chromium: install Debian's `chromium` or set CONNECTORS_CHROMIUM")
    return found


def main() -> None:
    executable = chromium()
    with tempfile.TemporaryDirectory(prefix="connectors-screenshot-") as temporary:
        root = Path(temporary)
        site = root / "site"
        for manifest in SAMPLES:
            install_sample(site, manifest)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTORS_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        env["CONNECTORS_DATABASE_URL"] = f"sqlite:///{root / 'connectors.sqlite3'}"
        env["CONNECTORS_INDEX_DIR"] = str(root / "index")
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        log = root / "serve.log"
        command = [sys.executable, "-m", "connectors_core", "serve", "--demo", "--port", str(port)]
        with log.open("wb") as out:
            server = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=out)
        try:
            wait_until_up(f"{origin}/integrations", server, log)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                # Connect Evencio through the sandbox, so that one card shows "Connected".
                page = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=origin)
                page.goto("/integrations")
                page.get_by_role("link", name="Connect Evencio", exact=True).click()
                page.get_by_role("button", name="Approve").click()
                expect(page.get_by_role("status")).to_have_text("Evencio is connected.")
                cookies = page.context.cookies()
                page.close()
                SCREENSHOTS.mkdir(exist_ok=True)
                for locale, width in SHOTS:
                    context = browser.new_context(
                        viewport={"width": width, "height": 900 if width > 600 else 844},
                        device_scale_factor=1 if width > 600 else 2,
                        base_url=origin,
                        locale=locale,
                    )
                    context.add_cookies(cookies)  # type: ignore[arg-type]
                    shot = context.new_page()
                    shot.goto("/integrations")
                    shot.wait_for_load_state("networkidle")
                    target = SCREENSHOTS / f"catalogue-{locale}-{width}.png"
                    shot.screenshot(path=target)
                    print(f"wrote {target}")
                    if (locale, width) == ("en", 1280):
                        shot.screenshot(path=OUTPUT)
                    context.close()
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
