"""``connectors serve --demo`` restarted: the page and the status agree with what the tokens can do.

The real command in a process of its own, in an empty folder, as a user runs
it: connect Evencio through the sandbox's consent page, restart, check.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import httpx2
import pytest

from tests.connections.test_events import SECRET, Receiver
from tests.harness import serve
from tests.helpers import without_id

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo(
    folder: Path, port: int, settings: Mapping[str, str] | None = None, *, killed: bool = False
) -> Iterator[httpx2.Client]:
    """``connectors serve --demo`` in ``folder`` (with these ``CONNECTORS_*`` settings); a
    browser on its origin. ``killed``: it ends with SIGKILL, not a shutdown."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTORS_")}
    environ.update(settings or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors_core", "serve", "--demo", "--port", str(port)],
        cwd=folder,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                httpx2.get(f"{origin}/api/integrations/csrf", timeout=1)
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline, "connectors serve did not start"
                time.sleep(0.1)
        with httpx2.Client(base_url=origin, follow_redirects=False, timeout=10) as browser:
            yield browser
    finally:
        if killed:
            process.kill()  # no shutdown, no lifespan end: as a crash or an OOM kill
        else:
            process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def connect(browser: httpx2.Client) -> None:
    """Connect Evencio: the sandbox's consent page, Approve, and back."""
    start = browser.get("/api/integrations/evencio/connect")
    assert start.status_code == 303, start.text
    consent = browser.get(start.headers["location"])
    assert "Sandbox OAuth provider" in consent.text
    action = re.search(r'<form method="post" action="([^"]+)"', consent.text)
    request_id = re.search(r'name="request" value="([^"]+)"', consent.text)
    assert action is not None
    assert request_id is not None
    approved = browser.post(  # the action is relative to the page, as a browser resolves it
        urljoin(str(consent.url), action.group(1)),
        data={"request": request_id.group(1), "decision": "approve"},
    )
    landed = browser.get(approved.headers["location"])
    assert landed.headers["location"].endswith("result=connected"), landed.headers


def status(browser: httpx2.Client) -> dict[str, object]:
    answer = browser.get("/api/integrations/evencio/status")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def check(browser: httpx2.Client) -> httpx2.Response:
    """The Test connection button, as a JSON client presses it."""
    token = browser.get("/api/integrations/csrf").json()["csrfToken"]
    return browser.post(
        "/api/integrations/evencio/test",
        headers={"X-CSRF-Token": token, "Origin": str(browser.base_url).rstrip("/")},
    )


def test_a_restarted_demo_keeps_its_connections_working(tmp_path: Path) -> None:
    port = free_port()
    with demo(tmp_path, port) as browser:
        connect(browser)
        assert status(browser)["connected"] is True
    assert (tmp_path / "connectors.sqlite3.sandbox.json").exists()

    with demo(tmp_path, port) as browser:  # the restart
        before = status(browser)
        assert before["connected"] is True
        tested = check(browser)
        assert tested.status_code == 200, tested.text
        assert "verifiedAt" in tested.json()["status"]
        page = browser.get("/integrations").text
        assert "Connected" in page

    # The sandbox's grants are gone: what it minted is dead, and the page says so.
    (tmp_path / "connectors.sqlite3.sandbox.json").unlink()
    with demo(tmp_path, port) as browser:
        assert without_id(status(browser)) == {
            "connected": False,
            "error": "needs_reauth",
            "reason": "sandbox_reset",
            "account": {"organizationId": "sandbox-org", "userId": "sandbox-user"},
        }
        connect(browser)  # connecting again is all it takes
        assert status(browser)["connected"] is True


def test_a_killed_server_loses_no_event(tmp_path: Path) -> None:
    # The webhook is down while the server makes changes; the server is killed with
    # their events undelivered; another one, started later, delivers every one.
    hook = Receiver()
    hook.down = True
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    webhook = {
        "CONNECTORS_WEBHOOK_URL": f"http://127.0.0.1:{sock.getsockname()[1]}/hook",
        "CONNECTORS_WEBHOOK_SECRET": SECRET,
    }
    port = free_port()
    with serve(hook.app, sock):
        with demo(tmp_path, port, webhook, killed=True) as browser:
            connect(browser)
            token = browser.get("/api/integrations/csrf").json()["csrfToken"]
            origin = str(browser.base_url).rstrip("/")
            gone = browser.post(
                "/api/integrations/evencio/disconnect",
                headers={"X-CSRF-Token": token, "Origin": origin},
            )
            assert gone.status_code == 200
            deadline = time.monotonic() + 30
            while hook.refused == 0:  # it tried, and failed: a retry is pending
                assert time.monotonic() < deadline, "the server never tried the webhook"
                time.sleep(0.05)
        assert hook.received == []

        hook.down = False
        with demo(tmp_path, port, webhook):
            deadline = time.monotonic() + 60
            while len(hook.received) < 2:
                assert time.monotonic() < deadline, f"only {hook.received} arrived"
                time.sleep(0.1)
    # Each signed (the receiver checked), in order, each once.
    assert [m["type"] for m in hook.received] == [
        "connection.connected",
        "connection.disconnected",
    ]
    assert len(set(hook.ids)) == 2
