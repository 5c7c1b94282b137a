"""The discovery index against real pip installs in a throw-away virtual environment.

Each step runs ``connectors`` as a fresh process, as an application start-up
would, and checks that the next discovery sees exactly what was installed.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.environments import ROOT, Venv, build_wheels, run, write_project

pytestmark = pytest.mark.slow

SOURCE = """
from connectors_core import define_connector, hookimpl

@hookimpl
def provide_connector():
    return define_connector(
        id="zeta",
        name={name!r},
        summary="The zeta connector.",
        description="Used to test the discovery index.",
        category="custom",
        status="available",
        auth={{"type": "none"}},
        capabilities=[{{"id": "ping", "label": "Ping"}}],
    )
"""

PROBE = textwrap.dedent("""
    import json, sys
    import connectors_core
    registry = connectors_core.discover()
    imported = sorted(m for m in sys.modules if m.startswith(("zeta_", "connectors_evencio")))
    print(json.dumps({
        "connectors": {c.id: c.name for c in registry},
        "versions": {r.name: r.version for r in registry.plugins},
        "imported": imported,
    }))
""")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    wheels = tmp_path_factory.mktemp("wheels")
    build_wheels(wheels, ROOT, ROOT / "plugins" / "evencio")
    # hatchling in the environment, for the editable install below.
    return Venv(
        tmp_path_factory.mktemp("venv") / "env",
        sorted(wheels.glob("*.whl")),
        extra=["hatchling", "editables"],
    )


def probe(venv: Venv, index_dir: Path) -> dict[str, Any]:
    env = {"PATH": str(venv.path / "bin"), "CONNECTORS_INDEX_DIR": str(index_dir)}
    result = run(venv.python, "-c", PROBE, env=env)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def zeta_wheel(tmp_path: Path, version: str, name: str) -> Path:
    project = write_project(
        tmp_path / f"zeta-{version}",
        "zeta-connector",
        version,
        "zeta_connector",
        SOURCE.format(name=name),
        {"zeta": "zeta_connector"},
    )
    out = tmp_path / f"wheels-{version}"
    build_wheels(out, project)
    (wheel,) = out.glob("*.whl")
    return wheel


def test_install_upgrade_uninstall_and_editable_edits_are_seen(
    venv: Venv, tmp_path: Path, index_dir: Path
) -> None:
    first = probe(venv, index_dir)
    assert first["connectors"] == {"evencio": "Evencio"}
    assert first["imported"]  # a cold start imports the plugin
    warm = probe(venv, index_dir)
    assert warm["connectors"] == first["connectors"]
    assert warm["imported"] == []  # a warm one does not

    venv.pip("install", "--no-deps", zeta_wheel(tmp_path, "1.0.0", "Zeta"))
    installed = probe(venv, index_dir)
    assert installed["connectors"] == {"evencio": "Evencio", "zeta": "Zeta"}
    assert installed["versions"]["zeta"] == "1.0.0"
    assert installed["imported"] == ["zeta_connector"]  # only the new plugin was loaded

    venv.pip("install", "--no-deps", zeta_wheel(tmp_path, "2.0.0", "Zeta Two"))
    upgraded = probe(venv, index_dir)
    assert upgraded["connectors"]["zeta"] == "Zeta Two"
    assert upgraded["versions"]["zeta"] == "2.0.0"

    venv.pip("uninstall", "--yes", "zeta-connector")
    assert probe(venv, index_dir)["connectors"] == {"evencio": "Evencio"}

    source = write_project(
        tmp_path / "zeta-editable",
        "zeta-connector",
        "3.0.0",
        "zeta_connector",
        SOURCE.format(name="Zeta Editable"),
        {"zeta": "zeta_connector"},
    )
    venv.pip("install", "--no-deps", "--no-build-isolation", "--editable", source)
    assert probe(venv, index_dir)["connectors"]["zeta"] == "Zeta Editable"
    assert probe(venv, index_dir)["imported"] == []

    module = source / "zeta_connector" / "__init__.py"
    # Two edits in quick succession (same second, same size): each one is seen.
    for name in ("Zeta Edited A", "Zeta Edited B"):
        module.write_text(textwrap.dedent(SOURCE.format(name=name)).lstrip())
        assert probe(venv, index_dir)["connectors"]["zeta"] == name
