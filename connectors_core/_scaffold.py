"""``connectors new``: a complete, pip-installable connector package to start from."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ._exceptions import ConnectorsError

__all__ = ["scaffold"]

_PACKAGE = '''\
"""The {name} connector for connectors-core."""

from connectors_core import Connector, define_connector, hookimpl

MANIFEST = define_connector(
    id="{id}",
    name="{name}",
    summary="Bring {name} data into your marketing.",
    description="Connect {name} to use its data in campaigns and assets.",
    category="custom",
    status="beta",
    auth={auth_source},
    capabilities=[{{"id": "sync", "label": "Sync"}}],
    # docs_path="https://...",  # a public page documenting the connector
    connection={{
        "startPath": "/api/integrations/{id}/connect",
        "statusPath": "/api/integrations/{id}/status",
        "disconnectPath": "/api/integrations/{id}/disconnect",
    }},
)


@hookimpl
def provide_connector() -> Connector:
    """Provide the {name} manifest."""
    return MANIFEST
'''

_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "connectors-{id}"
version = "0.1.0"
description = "The {name} connector for connectors-core."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["connectors-core>={core}"]

[project.optional-dependencies]
test = ["connectors-core[server]>={core}", "pytest>=8"]

# This entry point is how connectors-core finds the connector.
[project.entry-points.connectors_core]
{id} = "{package}"

[tool.hatch.build.targets.wheel]
packages = ["{package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_README = """\
# connectors-{id}

The {name} connector for [connectors-core](https://pypi.org/project/connectors-core/).

```bash
pip install -e '.[test]'
connectors list          # {id} is there
pytest                   # the connector contract
```

Edit the manifest in `{package}/__init__.py`; `connectors validate {package}:MANIFEST`
checks it. Set-up for users is in `docs/connectors/{id}.md`.
"""

_DOCS = """\
# {name}

The {name} connector ({auth} sign-in).

## Set up

1. {setup}
2. Open the Integrations page and click **Connect** on the {name} card.

## Troubleshooting

- Describe the errors users may meet, and what to do about them.
"""

_TEST = '''\
"""The connectors-core contract: manifest, entry point, docs, connect / status / disconnect."""

from connectors_core.testing.contract import ConnectorContract


class Test{pascal}Contract(ConnectorContract):
    connector_id = "{id}"
'''


def _python(value: dict[str, Any]) -> str:
    """A dict as the Python source of a literal, one key per line."""
    lines = ["{"]
    for key, item in value.items():
        lines.append(f"    {key!r}: {item!r},".replace("'", '"'))
    lines.append("}")
    return "\n".join(lines)


def _placeholder(connector_id: str, auth: dict[str, Any]) -> Any:
    """A minimal connector with this ``auth``, for asking its flow."""
    from ._converter import define_connector

    return define_connector(
        id=connector_id,
        name=connector_id,
        summary="x",
        description="x",
        category="custom",
        status="beta",
        auth=auth,
        capabilities=[{"id": "x", "label": "x"}],
    )


def scaffold(
    connector_id: str, auth: str, parent: Path, core_version: str, *, pkce: bool = True
) -> Path:
    """Write a new connector package for ``connector_id`` into ``parent/<id>``.

    :raises ConnectorsError: for a malformed id, an unknown auth type, or an
        existing folder.
    """
    from ._checks import ID_MAX, KEBAB

    if len(connector_id) > ID_MAX or not KEBAB.fullmatch(connector_id):
        raise ConnectorsError(
            f"{connector_id!r} is not a valid connector id: use kebab-case (lowercase letters "
            f"and digits in words joined by single hyphens, starting with a letter), "
            f"such as 'acme' or 'google-ads'"
        )
    from .flows import FLOWS

    flow = FLOWS.get(auth)
    if flow is None:
        raise ConnectorsError(f"unknown auth type {auth!r}; expected one of {', '.join(FLOWS)}")
    folder = parent / connector_id
    if folder.exists():
        raise ConnectorsError(f"{folder} already exists; choose another folder or remove it")
    words = connector_id.split("-")
    values = {
        "id": connector_id,
        "name": " ".join(w.capitalize() for w in words),
        "pascal": "".join(w.capitalize() for w in words),
        "env": connector_id.upper().replace("-", "_"),
        "package": "connectors_" + connector_id.replace("-", "_"),
        "core": core_version,
        "auth": auth,
    }
    manifest_auth, setup = flow.scaffold(connector_id, values["name"])
    if not pkce:
        import attrs

        from ._manifest import AUTH_CLASSES

        if "pkce" not in {a.name for a in attrs.fields(AUTH_CLASSES[auth])}:
            raise ConnectorsError(f"--no-pkce applies to auth types with PKCE, not {auth!r}")
        manifest_auth = {**manifest_auth, "pkce": False}
    values["setup"] = setup
    auth_source = textwrap.indent(_python(manifest_auth), "    ").lstrip()
    if flow.needs_client(_placeholder(connector_id, manifest_auth)):
        env = values["env"]
        auth_source = (
            "# Client id and secret are server settings, never part of the manifest:\n"
            f"    # CONNECTORS_{env}_CLIENT_ID and CONNECTORS_{env}_CLIENT_SECRET.\n"
            "    " + auth_source
        )
    files = {
        "pyproject.toml": _PYPROJECT.format(**values),
        "README.md": _README.format(**values),
        f"{values['package']}/__init__.py": _PACKAGE.format(**values, auth_source=auth_source),
        f"{values['package']}/py.typed": "",
        f"docs/connectors/{connector_id}.md": _DOCS.format(**values),
        "tests/test_contract.py": _TEST.format(**values),
    }
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
