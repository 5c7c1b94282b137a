"""Both distributions build as complete wheels, and install into a fresh environment.

These tests build real wheels and a real virtual environment (dependencies
come from the package index), so they are marked ``slow``.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

import connectors_core
from tests.environments import ROOT, Venv, build_wheels, run, write_project

pytestmark = pytest.mark.slow

THIRD_PARTY_MODULE = """
from connectors_core import define_connector, hookimpl

@hookimpl
def provide_connector():
    return define_connector(
        id="acme",
        name="Acme",
        summary="A third-party connector.",
        description="Written without touching connectors-core.",
        category="custom",
        status="available",
        auth={"type": "none"},
        capabilities=[{"id": "ping", "label": "Ping"}],
    )
"""


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of connectors-core, connectors-evencio and a third-party plugin."""
    out = tmp_path_factory.mktemp("wheels")
    third_party = write_project(
        tmp_path_factory.mktemp("third-party"),
        "acme-third-party",
        "0.4.2",
        "acme_third_party",
        THIRD_PARTY_MODULE,
        {"acme": "acme_third_party"},
    )
    build_wheels(out, ROOT, ROOT / "plugins" / "evencio", third_party)
    return out


def wheel_metadata(wheels: Path, prefix: str) -> tuple[Message, zipfile.ZipFile]:
    (path,) = wheels.glob(f"{prefix}-*.whl")
    archive = zipfile.ZipFile(path)
    (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(archive.read(name).decode()), archive


@pytest.mark.parametrize("prefix", ["connectors_core", "connectors_evencio"])
def test_wheel_has_full_metadata(wheels: Path, prefix: str) -> None:
    meta, archive = wheel_metadata(wheels, prefix)

    assert meta["Version"]
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Summary"]
    assert meta.get_payload()  # the README, as the long description
    assert any(
        c.startswith("Programming Language :: Python :: 3.11")
        for c in meta.get_all("Classifier", [])
    )
    assert "Typing :: Typed" in meta.get_all("Classifier", [])
    assert meta.get_all("Project-URL")
    assert any(name.endswith("/py.typed") for name in archive.namelist())


def test_core_wheel_version_and_entry_points(wheels: Path) -> None:
    meta, archive = wheel_metadata(wheels, "connectors_core")
    assert meta["Version"] == connectors_core.__version__
    assert any(name.endswith("LICENSE") for name in archive.namelist())
    requires = meta.get_all("Requires-Dist", [])
    assert {r.split(">")[0].split(";")[0].strip() for r in requires if "extra" not in r} == {
        "attrs",
        "cattrs",
        "click",
        "pluggy",
    }
    (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
    assert "connectors = connectors_core.cli:main" in archive.read(entry_points).decode()


def test_evencio_wheel_declares_its_entry_point(wheels: Path) -> None:
    _meta, archive = wheel_metadata(wheels, "connectors_evencio")
    (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
    text = archive.read(entry_points).decode()
    assert "[connectors_core]\nevencio = connectors_evencio" in text


def test_evencio_wheel_ships_its_icon(wheels: Path) -> None:
    _meta, archive = wheel_metadata(wheels, "connectors_evencio")
    source = ROOT / "plugins" / "evencio" / "connectors_evencio" / "icon.svg"
    assert archive.read("connectors_evencio/icon.svg") == source.read_bytes()


def test_core_wheel_ships_the_message_catalogues_as_po_files(wheels: Path) -> None:
    meta, archive = wheel_metadata(wheels, "connectors_core")
    po = "connectors_core/web/locale/fr/LC_MESSAGES/messages.po"
    assert archive.read(po) == (ROOT / po).read_bytes()
    assert "connectors_core/web/templates/_strings.html" in archive.namelist()
    # Compiled in memory at run time: no .mo file ships, even one left in the source tree.
    assert not [name for name in archive.namelist() if name.endswith(".mo")]
    assert "babel>=2.16; extra == 'server'" in meta.get_all("Requires-Dist", [])


def test_a_fresh_environment_lists_every_installed_connector(wheels: Path, tmp_path: Path) -> None:
    venv = Venv(tmp_path / "venv", sorted(wheels.glob("connectors_*.whl")))
    python, connectors = venv.python, venv.bin("connectors")

    listed = json.loads(run(connectors, "list", "--json").stdout)
    assert [c["id"] for c in listed] == ["evencio"]

    # A third party installs its own package: no edit anywhere in connectors-core.
    venv.pip("install", "--no-deps", *wheels.glob("acme_third_party-*.whl"))
    listed = json.loads(run(connectors, "list", "--json").stdout)
    assert [c["id"] for c in listed] == ["acme", "evencio"]
    doctor = json.loads(run(connectors, "doctor", "--json").stdout)
    assert {
        (p["name"], p["distribution"], p["version"], p["state"]) for p in doctor["plugins"]
    } == {
        ("acme", "acme-third-party", "0.4.2", "loaded"),
        ("evencio", "connectors-evencio", connectors_evencio_version(wheels), "loaded"),
    }

    code = textwrap.dedent("""
        import sys, connectors_core
        registry = connectors_core.discover(strict=True)
        assert "click" not in sys.modules
        print(" ".join(registry.ids()))
    """)
    assert run(python, "-c", code).stdout.split() == ["acme", "evencio"]


def connectors_evencio_version(wheels: Path) -> str:
    meta, _ = wheel_metadata(wheels, "connectors_evencio")
    return str(meta["Version"])
