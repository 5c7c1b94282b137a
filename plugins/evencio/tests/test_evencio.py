"""The Evencio plugin, as connectors-core finds it: through its installed entry point."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import connectors_evencio
from connectors_core import Category, OAuth, PluginState, Status, discover, to_wire

PACKAGE = Path(connectors_evencio.__file__).parent
REPO = Path(__file__).resolve().parents[3]


def test_the_entry_point_is_declared_by_the_installed_distribution() -> None:
    (entry_point,) = [
        ep for ep in metadata.entry_points(group="connectors_core") if ep.name == "evencio"
    ]
    assert entry_point.value == "connectors_evencio"
    assert entry_point.dist is not None
    assert entry_point.dist.name == "connectors-evencio"
    assert entry_point.dist.version == connectors_evencio.__version__


def test_discovery_finds_and_loads_evencio() -> None:
    registry = discover(allow=["evencio"], strict=True)
    (record,) = [r for r in registry.plugins if r.name == "evencio"]

    assert record.state is PluginState.LOADED
    assert record.connectors == ("evencio",)
    assert registry.get("evencio") == connectors_evencio.EVENCIO
    assert registry.provider("evencio").distribution == "connectors-evencio"


def test_the_manifest() -> None:
    evencio = connectors_evencio.EVENCIO

    assert evencio.category is Category.EVENTS
    assert evencio.status is Status.BETA
    assert isinstance(evencio.auth, OAuth)
    assert evencio.auth.pkce is True
    assert (evencio.auth.authorize_url or "").startswith("https://")
    assert "offline_access" in evencio.auth.scopes
    assert all(
        scope.endswith(":read") for scope in evencio.auth.scopes if scope != "offline_access"
    )
    assert [c.id for c in evencio.capabilities] == ["event-sync", "venue-details", "guest-lists"]
    assert len(evencio.setup) >= 2
    assert evencio.docs_path is not None
    assert evencio.docs_path.startswith("https://")
    assert evencio.publisher is not None
    assert to_wire(evencio)["connection"] == {
        "startPath": "/api/integrations/evencio/connect",
        "statusPath": "/api/integrations/evencio/status",
        "disconnectPath": "/api/integrations/evencio/disconnect",
    }


def test_the_plugin_uses_only_the_public_api() -> None:
    for source in PACKAGE.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                private = node.module.startswith("connectors_core") and "._" in node.module
                assert not private, f"{source.name} imports {node.module}"
                names = [a.name for a in node.names if node.module == "connectors_core"]
                assert not [n for n in names if n.startswith("_")], f"{source.name}: {names}"
            if isinstance(node, ast.Import):
                assert all(
                    "._" not in a.name for a in node.names if a.name.startswith("connectors_core")
                )


def test_registering_the_plugin_imports_no_http_client_nor_web_stack() -> None:
    # pluggy reads every name dir() gives: the client must stay out of it until used.
    script = """
import sys, pluggy, connectors_evencio
from connectors_core import hookspecs
manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
manager.add_hookspecs(hookspecs)
manager.register(connectors_evencio)
manager.check_pending()
heavy = ("httpx2", "starlette", "connectors_evencio._client", "connectors_evencio._sandbox")
print(sorted(m for m in heavy if m in sys.modules))
connectors_evencio.EvencioClient
print("httpx2" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "True"]


def test_the_docs_page_exists_and_names_the_settings() -> None:
    page = (REPO / "docs" / "connectors" / "evencio.md").read_text(encoding="utf-8")
    assert "CONNECTORS_EVENCIO_CLIENT_ID" in page
    assert "CONNECTORS_EVENCIO_CLIENT_SECRET" in page
    assert "CONNECTORS_EVENCIO_API_BASE_URL" in page
    for scope in connectors_evencio.EVENCIO.auth.scopes:  # type: ignore[union-attr]
        assert f"`{scope}`" in page
