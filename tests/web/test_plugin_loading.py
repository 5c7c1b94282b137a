"""A slow plugin stalls no one: plugin imports run off the event loop, with a bounded wait.

Real installed plugin distributions, taken from a warm discovery index (so
none is imported when the app starts), served by uvicorn on loopback. One
plugin's import blocks (for seconds) until the test lets it go; another user
of another plugin is answered at once all the while.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connectors_core import Registry
from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.store import generate_key, open_store
from connectors_core.web import create_app
from tests.distributions import Dist, manifest_source
from tests.harness import TENANT_HEADER, header_tenant, serve
from tests.test_registry import Gate, slow_plugin, warm_registry

MakeSite = Callable[[Sequence[Dist]], Path]
TIMEOUT = 0.5  # settings.plugin_load_timeout in these tests
PROMPT = 2.0  # a generous bound for an answer that must not wait for the slow import


def connection(connector_id: str) -> str:
    return repr({"startPath": f"/api/integrations/{connector_id}/connect"})


def quick_plugin(connector_id: str, module: str) -> Dist:
    source = f"""
        from connectors_core import hookimpl

        @hookimpl
        def provide_connector():
            return {manifest_source(connector_id, connection=connection(connector_id))}
    """
    return Dist(
        f"{connector_id}-plugin", "1.0.0", {connector_id: module}, {f"{module}/__init__.py": source}
    )


class Served:
    """The app over HTTP on loopback; users are told apart by the tenant header."""

    def __init__(self, registry: Registry, stack: ExitStack, **settings: Any) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.settings = Settings.from_env(
            {
                "CONNECTORS_PUBLIC_URL": self.origin,
                "CONNECTORS_DATABASE_URL": "memory://",
                "CONNECTORS_SECRET_KEYS": generate_key(),
            },
            **settings,
        )
        connections = Connections(registry, open_store(self.settings), self.settings)
        self.app = create_app(connections=connections, authenticator=header_tenant)
        self._serving = serve(self.app, sock)
        self._serving.__enter__()
        self._stack = stack
        stack.callback(self.stop)
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._serving.__exit__(None, None, None)

    def user(self, tenant: str) -> httpx2.Client:
        client = httpx2.Client(base_url=self.origin, headers={TENANT_HEADER: tenant}, timeout=30)
        self._stack.enter_context(client)
        return client


def timed(call: Callable[[], httpx2.Response]) -> tuple[httpx2.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def connect_with_key(user: httpx2.Client, connector_id: str) -> httpx2.Response:
    token = user.get("/api/integrations/csrf").json()["csrfToken"]
    return user.post(
        f"/api/integrations/{connector_id}/connect",
        json={"apiKey": "sk_plugin_loading_0123"},
        headers={"X-CSRF-Token": token},
    )


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def slow_and_quick(
    make_site: MakeSite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack: ExitStack
) -> tuple[Registry, Gate]:
    registry = warm_registry(
        make_site,
        monkeypatch,
        [
            slow_plugin("slow", "slow_web_plugin", connection=connection("slow")),
            quick_plugin("quick", "quick_web_plugin"),
        ],
    )
    gate = Gate(tmp_path, monkeypatch)
    monkeypatch.setenv("SLOW_PLUGIN_SECONDS", "8")
    # Let the import finish before the modules are forgotten, whatever the test did;
    # pushed first, so it runs after the server has stopped.
    stack.callback(gate.release, registry, "slow")
    return registry, gate


def test_a_slow_plugin_import_stalls_no_other_user(
    slow_and_quick: tuple[Registry, Gate],
    stack: ExitStack,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    registry, gate = slow_and_quick
    served = Served(registry, stack, plugin_load_timeout=TIMEOUT)
    gate.wait_started()  # the app's start-up began importing the plugins, slow first or not
    alice, bob = served.user("tenant-alice"), served.user("tenant-bob")

    # Alice waits for the slow plugin in the background while Bob uses the other one.
    slow_answer: list[tuple[httpx2.Response, float]] = []
    waiting = threading.Thread(
        target=lambda: slow_answer.append(
            timed(lambda: alice.get("/api/integrations/slow/connect"))
        )
    )
    waiting.start()
    for call in (
        lambda: bob.get("/api/integrations/quick/status"),
        lambda: bob.get("/api/integrations/quick/connect"),
        lambda: connect_with_key(bob, "quick"),
        lambda: bob.get("/api/integrations/slow/status"),
    ):
        response, elapsed = timed(call)
        assert response.status_code == 200, response.text
        assert elapsed < PROMPT, (response.request.url, elapsed)
    assert bob.get("/api/integrations/quick/status").json()["connected"] is True
    waiting.join(timeout=10)

    # Alice's connect answered after the bounded wait: the plugin is still loading.
    ((response, elapsed),) = slow_answer
    assert response.status_code == 503
    assert response.json() == {
        "error": "plugin_unavailable",
        "message": f"the plugin of 'slow' is still loading after {TIMEOUT:g} s; try again shortly",
    }
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + PROMPT
    assert not registry.is_loaded("slow")
    warnings = [r.getMessage() for r in captured_logs.records if "still loading" in r.getMessage()]
    assert warnings == [
        "plugin 'slow' (distribution slow-plugin) of connector 'slow' is still loading after "
        f"{TIMEOUT:g} s; the request was answered plugin_unavailable, the import goes on"
    ]

    # Once the import is done, the same request works, and without waiting.
    gate.open()
    deadline = time.monotonic() + 10
    while not registry.is_loaded("slow"):
        assert time.monotonic() < deadline, "the slow import never finished"
        time.sleep(0.01)
    response, elapsed = timed(lambda: alice.get("/api/integrations/slow/connect"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert elapsed < PROMPT
    assert connect_with_key(alice, "slow").json()["connected"] is True


def test_a_request_that_waits_gets_the_plugin_as_soon_as_its_import_ends(
    slow_and_quick: tuple[Registry, Gate], stack: ExitStack
) -> None:
    registry, gate = slow_and_quick
    served = Served(registry, stack, plugin_load_timeout=20.0)
    gate.wait_started()
    alice = served.user("tenant-alice")
    threading.Timer(1.0, gate.open).start()
    response, elapsed = timed(lambda: alice.get("/api/integrations/slow/connect"))
    assert response.status_code == 200, response.text
    assert elapsed < 1.0 + PROMPT


def test_the_app_stops_promptly_while_a_plugin_is_still_importing(
    slow_and_quick: tuple[Registry, Gate], stack: ExitStack
) -> None:
    registry, gate = slow_and_quick
    served = Served(registry, stack, plugin_load_timeout=TIMEOUT)
    gate.wait_started()
    importing = [t for t in threading.enumerate() if t.name.startswith("connectors-core")]
    assert importing
    assert all(thread.daemon for thread in importing)  # they never hold the process open

    started = time.monotonic()
    served.stop()
    assert time.monotonic() - started < PROMPT
    assert not registry.is_loaded("slow")  # the import was still sleeping


def test_a_plugin_failing_in_the_background_import_is_recorded_and_answers_503(
    make_site: MakeSite, monkeypatch: pytest.MonkeyPatch, stack: ExitStack
) -> None:
    source = f"""
        import os

        from connectors_core import hookimpl

        if os.environ.get("FRAGILE_PLUGIN_BREAKS"):
            raise RuntimeError("the SDK this plugin needs is missing")

        @hookimpl
        def provide_connector():
            return {manifest_source("fragile", connection=connection("fragile"))}
    """
    files = {"fragile_web_plugin/__init__.py": source}
    fragile = Dist("fragile-plugin", "2.0.0", {"fragile": "fragile_web_plugin"}, files)
    registry = warm_registry(make_site, monkeypatch, [fragile])
    monkeypatch.setenv("FRAGILE_PLUGIN_BREAKS", "1")
    served = Served(registry, stack, plugin_load_timeout=TIMEOUT)
    deadline = time.monotonic() + 10
    while not registry.failures:
        assert time.monotonic() < deadline, "the background import never ran"
        time.sleep(0.01)
    (failure,) = registry.failures
    assert (failure.name, failure.phase and failure.phase.value) == ("fragile", "load")
    assert "the SDK this plugin needs is missing" in (failure.error or "")

    response, elapsed = timed(
        lambda: served.user("tenant-a").get("/api/integrations/fragile/connect")
    )
    assert response.status_code == 503
    assert response.json() == {
        "error": "plugin_unavailable",
        "message": "the plugin 'fragile' of 'fragile' failed to load (phase load); "
        "see the server log",
    }
    assert elapsed < PROMPT


def test_a_handle_connect_that_raises_is_a_503_that_shows_nothing_of_the_error(
    make_site: MakeSite,
    monkeypatch: pytest.MonkeyPatch,
    stack: ExitStack,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    source = f"""
        from connectors_core import hookimpl

        @hookimpl
        def provide_connector():
            return {manifest_source("buggy", connection=connection("buggy"))}

        @hookimpl
        def handle_connect(connector, request, tenant):
            raise ValueError("token sk_live_do_not_show_9f2c rejected")
    """
    buggy = Dist("buggy-plugin", "1.0.0", {"buggy": "buggy_web_plugin"}, {
        "buggy_web_plugin/__init__.py": source
    })  # fmt: skip
    registry = warm_registry(make_site, monkeypatch, [buggy])
    served = Served(registry, stack, plugin_load_timeout=5.0)
    response = served.user("tenant-a").get("/api/integrations/buggy/connect")
    assert response.status_code == 503
    assert response.json()["error"] == "plugin_unavailable"
    assert "sk_live" not in response.text
    assert "ValueError" in captured_logs.text
    assert "sk_live" not in captured_logs.text
