"""The layers hold: each package imports only the layers below it.

manifest model → hookspecs → discovery and registry (the light core)
→ flows → store → connections → sandbox → web → CLI. Checked on the source,
statically, like import-linter would. The sandbox is a product feature: it
and the web layer never import the test helpers (``testing``) or a test-only
library, not even inside a function. Flows sit low and stay light: they
describe an auth type from its manifest alone, and import the store or the
OAuth client only inside the functions that do server work.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "connectors_core"

LIGHT_CORE = {
    "_bulk",
    "_converter",
    "_fields",
    "_discovery",
    "_icons",
    "_entrypoints",
    "_exceptions",
    "_index",
    "_jsonschema",
    "_loading",
    "_manifest",
    "_outcome",
    "_reasons",
    "_records",
    "_registry",
    "_sources",
    "_version",
    "hookspecs",
    "__init__",
    "__main__",
    "_scaffold",
}
# For each layer, the layers (first-level names in connectors_core) it must not import.
FORBIDDEN = {
    "core": {"flows", "store", "connections", "sandbox", "web", "cli", "testing", "_settings"},
    "flows": {"store", "connections", "sandbox", "web", "cli", "testing", "_settings"},
    "store": {"connections", "sandbox", "web", "cli", "testing"},
    "connections": {"sandbox", "web", "cli", "testing"},
    "sandbox": {"web", "cli", "testing"},
    "web": {"cli", "testing"},
}
# What only the test extra installs: the product (sandbox, web, CLI) never imports it.
TEST_ONLY = {"pytest", "playwright", "schemathesis", "standardwebhooks", "jsonschema", "hatchling"}
THIRD_PARTY_HEAVY = {
    "starlette",
    "sqlalchemy",
    "cryptography",
    "httpx2",
    "authlib",
    "uvicorn",
    "jinja2",
    "alembic",
    "babel",
    "psycopg",
    "click",
}


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    if relative.name == "__main__.py":
        return "cli"  # `python -m connectors_core` is the command line
    if len(relative.parts) == 1:
        return "core" if relative.stem in LIGHT_CORE else relative.stem
    return relative.parts[0]


def imports(path: Path) -> set[str]:
    """First-level connectors_core names and top-level packages imported at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package_parts = path.relative_to(PACKAGE).parts[:-1]
    for node in tree.body:  # module level only: imports inside functions are lazy on purpose
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks do not run
            continue
        for item in [node]:
            if isinstance(item, ast.Import):
                found.update(alias.name.split(".")[0] for alias in item.names)
            elif isinstance(item, ast.ImportFrom):
                if item.level:
                    base = list(package_parts[: len(package_parts) - (item.level - 1)])
                    target = [*base, *(item.module.split(".") if item.module else [])]
                    if target:
                        found.add("cc:" + target[0].removesuffix(".py"))
                    else:
                        found.update("cc:" + alias.name for alias in item.names)
                elif item.module:
                    name = item.module.split(".")[0]
                    if name == "connectors_core":
                        rest = item.module.split(".")[1:]
                        found.update(
                            ["cc:" + rest[0]]
                            if rest
                            else ["cc:" + alias.name for alias in item.names]
                        )
                    else:
                        found.add(name)
    return found


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_a_module_imports_no_layer_above_its_own(path: Path) -> None:
    layer = layer_of(path)
    forbidden = FORBIDDEN.get(layer, set())
    imported = {name.removeprefix("cc:") for name in imports(path) if name.startswith("cc:")}
    assert not imported & forbidden, f"{path.name} ({layer}) imports {imported & forbidden}"


LIGHT = [p for p in SOURCES if layer_of(p) in ("core", "flows")]


@pytest.mark.parametrize("path", LIGHT, ids=[str(p.relative_to(PACKAGE)) for p in LIGHT])
def test_the_light_core_imports_no_web_database_crypto_or_cli_library(path: Path) -> None:
    assert not imports(path) & THIRD_PARTY_HEAVY


def deep_imports(path: Path) -> set[str]:
    """What :func:`imports` finds, and the imports inside functions and blocks too."""
    package_parts = path.relative_to(PACKAGE).parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = list(package_parts[: len(package_parts) - (node.level - 1)])
            target = [*base, *(node.module.split(".") if node.module else [])]
            found.update(["cc:" + target[0]] if target else ["cc:" + a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and node.module:
            first, *rest = node.module.split(".")
            found.add("cc:" + rest[0] if first == "connectors_core" and rest else first)
    return found


PRODUCT = [p for p in SOURCES if layer_of(p) in ("sandbox", "web", "cli")]


@pytest.mark.parametrize("path", PRODUCT, ids=[str(p.relative_to(PACKAGE)) for p in PRODUCT])
def test_the_sandbox_and_the_web_layer_never_import_test_helpers(path: Path) -> None:
    found = deep_imports(path)
    assert "cc:testing" not in found, f"{path.name} imports connectors_core.testing"
    assert not found & TEST_ONLY, f"{path.name} imports {found & TEST_ONLY}"
