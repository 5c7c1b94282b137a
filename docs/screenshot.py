"""Regenerate docs/integrations.png, the README's picture of the Integrations page.

Run it with the project's environment (the `test` extra brings Playwright)::

    .venv/bin/python docs/screenshot.py

It installs a few sample connector plugins into a temporary folder (they are
made up for the picture: names of well-known services, but no real
integration behind them), starts ``connectors serve --demo`` with them, as a
user would, connects Evencio through the sandbox OAuth provider, and saves a
1280x900 screenshot of the page. It needs a Chromium (``CONNECTORS_CHROMIUM``
or ``chromium`` on ``PATH``); it never downloads one.
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

OUTPUT = Path(__file__).resolve().parent / "integrations.png"
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
    },
]


def install_sample(site: Path, manifest: dict[str, object]) -> None:
    """Write one sample plugin into ``site`` as pip would (a module and its dist-info)."""
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
    (site / dist).mkdir()
    name = module.replace("_", "-")
    (site / dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n", encoding="utf-8"
    )
    (site / dist / "entry_points.txt").write_text(
        f"[connectors_core]\n{connector_id} = {module}\n", encoding="utf-8"
    )
    files = [f"{module}/__init__.py", *(f"{dist}/{n}" for n in ("METADATA", "entry_points.txt"))]
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
                page = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=origin)
                # Connect Evencio through the sandbox, so that one card shows "Connected".
                page.goto("/integrations")
                page.get_by_role("link", name="Connect Evencio", exact=True).click()
                page.get_by_role("button", name="Approve").click()
                expect(page.get_by_role("status")).to_have_text("Evencio is connected.")
                page.goto("/integrations")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=OUTPUT)
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
