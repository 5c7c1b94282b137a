"""The public surface: a sorted, complete ``__all__``, docstrings, a light import."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import types

import connectors_core
from connectors_core import hookspecs


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "").startswith("connectors_core")
    }


def test_all_is_sorted() -> None:
    assert connectors_core.__all__ == sorted(connectors_core.__all__)
    assert hookspecs.__all__ == sorted(hookspecs.__all__)


def test_all_is_complete() -> None:
    exported = set(connectors_core.__all__) - {"__version__"}
    assert set(connectors_core._MODULE_OF) == exported
    assert all(hasattr(connectors_core, name) for name in connectors_core.__all__)
    assert public_names(connectors_core) - {"Auth"} <= exported


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        connectors_core.nope  # noqa: B018


def test_every_public_name_has_a_docstring() -> None:
    for name in connectors_core.__all__:
        value = getattr(connectors_core, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"
            for member_name, member in vars(value).items():
                if not member_name.startswith("_") and inspect.isfunction(member):
                    assert inspect.getdoc(member), f"{name}.{member_name} has no docstring"


HEAVY = [
    "authlib",
    "click",
    "cryptography",
    "httpx",
    "jinja2",
    "psycopg",
    "sqlalchemy",
    "starlette",
    "uvicorn",
]


def imported_after(code: str) -> list[str]:
    script = (
        f"import sys, json\n{code}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_importing_the_package_imports_no_dependency_at_all() -> None:
    loaded = imported_after("import connectors_core")
    assert not set(loaded) & {*HEAVY, "attr", "attrs", "cattrs", "pluggy", "importlib_metadata"}


def test_defining_a_manifest_pulls_in_no_cli_web_database_or_crypto_library() -> None:
    loaded = imported_after(
        "from connectors_core import define_connector, hookimpl, discover\ndiscover(allow=[])\n"
    )
    assert {"attr", "cattrs", "pluggy"} <= set(loaded)
    assert not set(loaded) & set(HEAVY)


def test_version_is_defined_once() -> None:
    from importlib.metadata import version

    assert connectors_core.__version__ == version("connectors-core")
