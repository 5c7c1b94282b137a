"""Shared fixtures: real plugin distributions on a temporary ``sys.path``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.distributions import Dist, install, manifest_source, simple_plugin
from tests.harness import captured_logs, harness, make_harness
from tests.postgres import postgres_url

# Fixtures for every test module.
__all__ = ["captured_logs", "harness", "make_harness", "postgres_url"]

# The standard set of test plugins, each its own distribution.
STANDARD: list[Dist] = [
    Dist(
        "acme-connectors",
        "1.2.0",
        {"acme": "acme_connectors"},
        {
            "acme_connectors/__init__.py": f"""
                from connectors_core import define_connector, hookimpl, Capability

                CRM = define_connector(
                    id="acme-crm",
                    name="Acme CRM",
                    summary="Contacts from Acme CRM.",
                    description="Sync contacts.",
                    category="marketing",
                    status="available",
                    auth={{"type": "api-key", "description": "Key.", "headerName": "X-Acme"}},
                    capabilities=[Capability(id="contacts", label="Contacts")],
                    tags=["crm", "acme"],
                )

                @hookimpl
                def provide_connector():
                    return [CRM, {manifest_source("acme-ads", category=repr("analytics"))}]
            """
        },
    ),
    Dist(
        "globex-connector",
        "0.3.0",
        {"globex": "globex_plugin.hooks:plugin"},
        {
            "globex_plugin/__init__.py": "",
            "globex_plugin/hooks.py": f"""
                from connectors_core import hookimpl

                class GlobexPlugin:
                    @hookimpl
                    def provide_connector(self):
                        return {manifest_source("globex", status=repr("coming-soon"))}

                plugin = GlobexPlugin()
            """,
        },
    ),
    Dist(
        "broken-import",
        "0.1.0",
        {"broken": "broken_import_plugin"},
        {"broken_import_plugin/__init__.py": "import a_module_that_does_not_exist\n"},
    ),
    Dist(
        "raising-plugin",
        "0.1.0",
        {"raising": "raising_plugin"},
        {
            "raising_plugin/__init__.py": """
                from connectors_core import hookimpl

                @hookimpl
                def provide_connector():
                    raise RuntimeError("boom")
            """
        },
    ),
    Dist(
        "invalid-manifest",
        "0.1.0",
        {"invalid": "invalid_manifest_plugin"},
        {
            "invalid_manifest_plugin/__init__.py": f"""
                from connectors_core import hookimpl

                @hookimpl
                def provide_connector():
                    return {
                manifest_source("Bad_Id", category=repr("nope"), docsPath=repr("docs/bad.md"))
            }
            """
        },
    ),
    simple_plugin("twin-one", "twin-a", "twin_one_plugin", "twin"),
    simple_plugin("twin-two", "twin-b", "twin_two_plugin", "twin"),
    Dist(
        "typo-plugin",
        "0.1.0",
        {"typo": "typo_plugin"},
        {
            "typo_plugin/__init__.py": """
                from connectors_core import hookimpl

                @hookimpl
                def provide_conector():
                    return None
            """
        },
    ),
]

STANDARD_PLUGINS = sorted(name for d in STANDARD for name in d.entry_points)


def _forget_modules(names: set[str]) -> None:
    for module in list(sys.modules):
        if module.split(".")[0] in names:
            del sys.modules[module]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio (the loop uvicorn and Starlette use)."""
    return "asyncio"


@pytest.fixture(autouse=True)
def index_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep each test's discovery index in a folder of its own, not the user's cache."""
    folder = tmp_path_factory.mktemp("index")
    monkeypatch.setenv("CONNECTORS_INDEX_DIR", str(folder))
    monkeypatch.delenv("CONNECTORS_DISCOVERY_INDEX", raising=False)
    return folder


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the standard test plugins, installed as pip would."""
    site = tmp_path_factory.mktemp("site")
    for dist in STANDARD:
        install(site, dist)
    return site


@pytest.fixture
def installed(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make the standard test plugins importable and discoverable for one test."""
    monkeypatch.syspath_prepend(str(plugin_site))
    for variable in ("CONNECTORS_PLUGINS_ALLOW", "CONNECTORS_PLUGINS_DENY", "CONNECTORS_STRICT"):
        monkeypatch.delenv(variable, raising=False)
    yield plugin_site
    _forget_modules(set().union(*(d.modules for d in STANDARD)))


@pytest.fixture
def make_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Sequence[Dist]], Path]]:
    """Install a custom set of distributions into a fresh folder on ``sys.path``."""
    modules: set[str] = set()

    def make(dists: Sequence[Dist]) -> Path:
        site = tmp_path / f"site{len(modules)}"
        site.mkdir()
        for dist in dists:
            install(site, dist)
            modules.update(dist.modules)
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        return site

    yield make
    _forget_modules(modules)
