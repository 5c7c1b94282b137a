"""connectors new: a package that installs, appears, and passes its own contract tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connectors_core.cli import cli
from tests.environments import ROOT, Venv, build_wheels, run


def new(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["new", *args, "--dir", str(tmp_path)])


@pytest.mark.parametrize("bad", ["Acme", "acme_crm", "1acme", "a--b", "x" * 65])
def test_a_bad_id_is_refused(tmp_path: Path, bad: str) -> None:
    result = new(tmp_path, bad)
    assert result.exit_code == 1
    assert "is not a valid connector id: use kebab-case" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    result = new(tmp_path, "acme")
    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_an_installed_id_is_refused(tmp_path: Path) -> None:
    result = new(tmp_path, "evencio")
    assert result.exit_code == 1
    assert "already installed, provided by connectors-evencio" in result.stderr


@pytest.mark.parametrize("auth", ["oauth", "api-key", "basic", "none"])
def test_the_generated_manifest_validates(
    tmp_path: Path, auth: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert new(tmp_path, "acme-thing", "--auth", auth).exit_code == 0
    package = tmp_path / "acme-thing"
    monkeypatch.chdir(package)
    try:
        result = CliRunner().invoke(cli, ["validate", "connectors_acme_thing:MANIFEST"])
    finally:
        sys.modules.pop("connectors_acme_thing", None)
    assert result.stdout == "valid: acme-thing (Acme Thing)\n", result.stderr
    assert (package / "docs" / "connectors" / "acme-thing.md").is_file()
    assert (package / "tests" / "test_contract.py").is_file()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    wheels = tmp_path_factory.mktemp("wheels")
    build_wheels(wheels, ROOT)
    (core,) = wheels.glob("connectors_core-*.whl")
    return Venv(
        tmp_path_factory.mktemp("venv") / "env",
        [Path(f"{core}[server]")],
        extra=["pytest", "hatchling", "editables"],
    )


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["oauth", "oauth --no-pkce", "api-key", "basic", "none"])
def test_scaffold_installs_appears_and_passes_its_own_tests(
    venv: Venv, tmp_path: Path, auth: str
) -> None:
    kind, *options = auth.split()
    connector_id = f"scaffolded-{kind.replace('-', '')}{'-nopkce' if options else ''}"
    run(venv.bin("connectors"), "new", connector_id, "--auth", kind, *options, "--dir", tmp_path)
    folder = tmp_path / connector_id
    venv.pip("install", "--no-deps", "--no-build-isolation", "--editable", folder)

    listed = json.loads(run(venv.bin("connectors"), "list", "--json").stdout)
    assert connector_id in [c["id"] for c in listed]
    tests = run(venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=folder)
    assert "passed" in tests.stdout, tests.stdout
    assert "failed" not in tests.stdout
    assert "error" not in tests.stdout.lower()
    venv.pip("uninstall", "--yes", f"connectors-{connector_id}")


def test_no_pkce_applies_to_oauth_only(tmp_path: Path) -> None:
    from connectors_core import ConnectorsError
    from connectors_core._scaffold import scaffold

    folder = scaffold("acme-np", "oauth", tmp_path, "0.1", pkce=False)
    assert '"pkce": False' in (folder / "connectors_acme_np" / "__init__.py").read_text()
    with pytest.raises(ConnectorsError, match="--no-pkce applies to auth types with PKCE"):
        scaffold("acme-key", "api-key", tmp_path, "0.1", pkce=False)
