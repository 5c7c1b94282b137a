"""The errors a plugin author meets: each says what is wrong, where, and how to fix it."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connectors_core import DiscoveryError, ManifestError, Phase, define_connector, discover
from connectors_core.cli import cli
from tests.distributions import Dist, manifest_source, simple_plugin

MakeSite = Callable[[Sequence[Dist]], Path]

# The keyword arguments of a valid connector (the one manifest_source describes).
KWARGS = """
    id="kw",
    name="Keyword",
    summary="The keyword connector.",
    description="Connects the app.",
    category="marketing",
    status="available",
    auth={"type": "api-key", "description": "Key.", "headerName": "X-Key"},
    capabilities=[{"id": "sync", "label": "Sync"}],
"""


def run(*args: str, allow: str | None = None) -> Result:
    env = {"CONNECTORS_PLUGINS_ALLOW": allow} if allow else None
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(autouse=True)
def _no_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CONNECTORS_PLUGINS_ALLOW", "CONNECTORS_PLUGINS_DENY", "CONNECTORS_STRICT"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def forget() -> Iterator[Callable[[str], None]]:
    """Names of top-level modules a test imports outside make_site; dropped afterwards."""
    names: list[str] = []
    yield names.append
    for module in list(sys.modules):
        if module.split(".")[0] in names:
            del sys.modules[module]


def line_of(path: Path, text: str) -> int:
    """The 1-based line of ``path`` holding ``text``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


# --- 1. keyword arguments are reported by their Python names -------------------------


def test_an_unknown_keyword_argument_is_named_as_typed_with_a_python_suggestion() -> None:
    with pytest.raises(ManifestError) as info:
        define_connector(
            id="kw",
            name="Keyword",
            summary="The keyword connector.",
            description="Connects the app.",
            category="marketing",
            status="available",
            auth={"type": "api-key", "description": "Key.", "headerName": "X-Key"},
            capabilities=[{"id": "sync", "label": "Sync"}],
            docs_url="https://docs.example.com/kw",
        )
    assert [str(p) for p in info.value.problems] == [
        "$.docs_url: unknown argument; did you mean 'docs_path'?"
    ]
    assert "docsUrl" not in str(info.value)


def test_unknown_arguments_are_listed_with_the_other_problems() -> None:
    with pytest.raises(ManifestError) as info:
        define_connector(id="Bad Id", docs_url="x", xyzzy=1)
    problems = [str(p) for p in info.value.problems]
    assert problems[:2] == [
        "$.docs_url: unknown argument; did you mean 'docs_path'?",
        "$.xyzzy: unknown argument",
    ]
    assert "$.name: required field is missing" in problems


def test_the_wire_form_keeps_wire_names() -> None:
    wire = {**eval(manifest_source("kw")), "docsUrl": "https://docs.example.com"}
    with pytest.raises(ManifestError) as info:
        define_connector(wire)
    assert [str(p) for p in info.value.problems] == [
        "$.docsUrl: unknown field; did you mean 'docsPath'?"
    ]


# --- 2. hook-like functions without @hookimpl ----------------------------------------

UNMARKED = Dist(
    "unmarked-dist",
    "1.0",
    {"unmarked": "unmarked_plugin"},
    {
        "unmarked_plugin/__init__.py": f"""
            def provide_connector():
                return {manifest_source("unmarked")}

            def connection_account(connector, access_token):
                return None
        """
    },
)


def test_doctor_warns_about_hook_like_functions_without_hookimpl(make_site: MakeSite) -> None:
    make_site([UNMARKED])

    result = run("doctor", allow="unmarked")

    assert result.exit_code == 0, result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert (
        "warning: plugin 'unmarked' (distribution unmarked-dist): function 'provide_connector' "
        "is named like a hook but is not decorated with @hookimpl, so it is never called; "
        "decorate it with @hookimpl (from connectors_core import hookimpl)"
    ) in warnings
    assert any("function 'connection_account'" in w for w in warnings)
    report = json.loads(run("doctor", "--json", allow="unmarked").stdout)
    assert any("'provide_connector'" in w and "@hookimpl" in w for w in report["warnings"])


def test_strict_discovery_fails_a_plugin_with_unmarked_hooks_even_after_a_lenient_one(
    make_site: MakeSite,
) -> None:
    make_site([UNMARKED, simple_plugin("marked-dist", "marked", "marked_plugin", "marked")])

    lenient = discover(allow=["unmarked", "marked"])  # fills the index
    assert not lenient.failures
    with pytest.raises(DiscoveryError) as info:
        discover(allow=["unmarked", "marked"], strict=True)
    (failure,) = info.value.failures
    assert failure.name == "unmarked"
    assert failure.phase is Phase.REGISTER
    assert "function 'provide_connector' is named like a hook" in str(info.value)

    result = run("--strict", "doctor", allow="unmarked,marked")
    assert result.exit_code == 1
    assert "unmarked failed during register:" in result.stdout
    rows = {line.split()[0]: line.split()[3] for line in result.stdout.splitlines()[1:4]}
    assert rows == {"evencio": "disabled", "marked": "loaded", "unmarked": "failed"}


# --- 3. an entry point named unlike its connector -------------------------------------


def test_doctor_warns_when_the_entry_point_name_differs_from_the_connector_id(
    make_site: MakeSite,
) -> None:
    make_site(
        [
            simple_plugin("acme-widgets", "acme_widgets", "widgets_plugin", "acme-widgets"),
            simple_plugin("same-name", "same", "same_plugin", "same"),
        ]
    )

    result = run("doctor", allow="acme_widgets,same")

    assert result.exit_code == 0
    assert (
        "warning: plugin 'acme_widgets' (distribution acme-widgets): the entry-point name "
        "'acme_widgets' differs from the id of the connector it provides, 'acme-widgets'"
    ) in result.stdout
    assert "plugin 'same'" not in result.stdout


# --- 4. a manifest error points at the author's define_connector(...) ----------------


def test_a_manifest_error_at_import_points_at_the_define_connector_call(
    make_site: MakeSite,
) -> None:
    source = f"""
        from connectors_core import define_connector, hookimpl

        CONNECTOR = define_connector(
            {textwrap.indent(KWARGS, "    ").strip()}
            docs_url="https://docs.example.com",
        )

        @hookimpl
        def provide_connector():
            return CONNECTOR
    """
    site = make_site(
        [
            Dist(
                "at-import",
                "1.0",
                {"at-import": "at_import_plugin"},
                {"at_import_plugin/__init__.py": source},
            )
        ]
    )
    module = site / "at_import_plugin" / "__init__.py"

    (record,) = discover(allow=["at-import"]).failures

    assert record.error is not None
    first, *problems = record.error.splitlines()
    line = line_of(module, "define_connector(")
    assert first == (
        f"invalid connector manifest in plugin 'at-import' at {module}:{line} (1 problem):"
    )
    assert problems == ["  $.docs_url: unknown argument; did you mean 'docs_path'?"]
    assert "_converter.py" not in record.error


def test_a_manifest_error_inside_the_hook_points_at_the_call(make_site: MakeSite) -> None:
    source = f"""
        from connectors_core import define_connector, hookimpl

        @hookimpl
        def provide_connector():
            return define_connector(
                {textwrap.indent(KWARGS.replace('"marketing"', '"nope"'), "        ").strip()}
            )
    """
    site = make_site(
        [
            Dist(
                "in-hook",
                "1.0",
                {"in-hook": "in_hook_plugin"},
                {"in_hook_plugin/__init__.py": source},
            )
        ]
    )
    module = site / "in_hook_plugin" / "__init__.py"

    (record,) = discover(allow=["in-hook"]).failures

    assert record.phase is Phase.PROVIDE
    assert record.error is not None
    assert record.error.startswith(
        f"invalid connector manifest in plugin 'in-hook' at {module}:"
        f"{line_of(module, 'return define_connector(')} (1 problem):"
    )
    assert "$.category: expected one of" in record.error

    result = run("validate", "in_hook_plugin")
    assert result.exit_code == 1
    assert f"{module}:{line_of(module, 'return define_connector(')}" in result.stderr
    assert "Traceback" not in result.stderr


def test_other_exceptions_point_at_the_authors_line_not_connectors_core(
    make_site: MakeSite,
) -> None:
    source = """
        from connectors_core import hookimpl

        @hookimpl
        def provide_connector():
            return {}["missing"]
    """
    make_site(
        [Dist("keyerr", "1.0", {"keyerr": "keyerr_plugin"}, {"keyerr_plugin/__init__.py": source})]
    )
    (record,) = discover(allow=["keyerr"]).failures
    assert record.error == "provide_connector raised KeyError: 'missing' (at __init__.py:5)"


# --- 5. validate a folder or a module name -------------------------------------------


def write_project(folder: Path, name: str, module: str, body: str, *, src: bool = True) -> Path:
    """A plugin project as its author has it: pyproject.toml and a package (src layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            name = "{name}"
            version = "0.1.0"

            [project.entry-points.connectors_core]
            {name.removeprefix("connectors-")} = "{module}"
            """
        ),
        encoding="utf-8",
    )
    package = (folder / "src" if src else folder) / module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return package


PLUGIN_BODY = f"""
    from connectors_core import hookimpl

    @hookimpl
    def provide_connector():
        return {manifest_source("acme-folder")}
"""


def test_validate_a_plugin_project_folder(tmp_path: Path, forget: Callable[[str], None]) -> None:
    forget("connectors_acme_folder")
    write_project(
        tmp_path / "proj", "connectors-acme-folder", "connectors_acme_folder", PLUGIN_BODY
    )

    result = run("validate", str(tmp_path / "proj"))

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "valid: acme-folder (Acme Folder)\n"


def test_validate_a_package_folder_and_a_module_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget: Callable[[str], None]
) -> None:
    forget("connectors_acme_pkg")
    package = write_project(
        tmp_path / "proj", "connectors-acme-pkg", "connectors_acme_pkg", PLUGIN_BODY, src=False
    )

    assert run("validate", str(package)).stdout == "valid: acme-folder (Acme Folder)\n"
    monkeypatch.chdir(tmp_path / "proj")
    assert run("validate", "connectors_acme_pkg").stdout == "valid: acme-folder (Acme Folder)\n"


def test_validate_a_module_name_in_a_src_layout_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget: Callable[[str], None]
) -> None:
    forget("connectors_acme_src")
    write_project(tmp_path / "proj", "connectors-acme-src", "connectors_acme_src", PLUGIN_BODY)
    monkeypatch.chdir(tmp_path / "proj")

    result = run("validate", "connectors_acme_src")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "valid: acme-folder (Acme Folder)\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "import not_a_module_at_all\n",
            "cannot import 'connectors_bad_folder': ModuleNotFoundError",
        ),
        ("raise SystemExit(2)\n", "cannot import 'connectors_bad_folder': SystemExit: 2"),
        ("X = 1\n", "has no attribute 'provide_connector'"),
        (
            "from connectors_core import hookimpl\n\n@hookimpl\ndef provide_connector():\n"
            "    return {'id': 'Bad'}\n",
            "invalid connector manifest in ",
        ),
    ],
)
def test_validate_folder_errors_are_clean(
    tmp_path: Path, forget: Callable[[str], None], body: str, message: str
) -> None:
    forget("connectors_bad_folder")
    write_project(tmp_path / "proj", "connectors-bad-folder", "connectors_bad_folder", body)

    result = run("validate", str(tmp_path / "proj"))

    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_a_folder_that_is_no_plugin_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pyproject.toml").write_text('[project]\nname = "other"\n')

    empty = run("validate", str(tmp_path / "empty"))
    other = run("validate", str(tmp_path / "other"))

    assert empty.exit_code == other.exit_code == 1
    assert empty.stderr == (
        f"error: {tmp_path / 'empty'}: is a folder, but neither a plugin project "
        "(pyproject.toml) nor a package (__init__.py)\n"
    )
    assert "declares no [project.entry-points.connectors_core]" in other.stderr


# --- 6. doctor inside a plugin's project folder ---------------------------------------


def test_doctor_in_a_plugin_folder_speaks_about_that_plugin_first(
    tmp_path: Path, make_site: MakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_site(
        [
            simple_plugin("connectors-here", "here", "connectors_here", "here"),
            simple_plugin("elsewhere", "elsewhere", "elsewhere_plugin", "elsewhere"),
        ]
    )
    write_project(tmp_path / "proj", "connectors-here", "connectors_here", "")
    monkeypatch.chdir(tmp_path / "proj")

    result = run("doctor", allow="here,elsewhere")

    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == [
        "This folder is the plugin project connectors-here:",
        "  here = connectors_here: loaded; provides here",
    ]
    report = json.loads(run("doctor", "--json", allow="here,elsewhere").stdout)
    assert report["project"]["plugins"] == [
        {
            "name": "here",
            "entryPoint": "connectors_here",
            "state": "loaded",
            "detail": "loaded; provides here",
        }
    ]


def test_doctor_in_a_plugin_folder_says_why_the_plugin_is_not_loaded(
    tmp_path: Path, make_site: MakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = Dist(
        "connectors-sad",
        "1.0",
        {"sad": "connectors_sad"},
        {"connectors_sad/__init__.py": "import no_such_dependency_here\n"},
    )
    make_site([failing])
    write_project(tmp_path / "sad", "connectors-sad", "connectors_sad", "")
    write_project(tmp_path / "new", "connectors-new", "connectors_new", "")

    monkeypatch.chdir(tmp_path / "sad")
    sad = run("doctor", allow="sad")
    monkeypatch.chdir(tmp_path / "new")
    new = run("doctor", allow="sad")

    assert sad.exit_code == 1
    assert sad.stdout.splitlines()[:3] == [
        "This folder is the plugin project connectors-sad:",
        "  sad = connectors_sad: failed during load:",
        "    ModuleNotFoundError: No module named 'no_such_dependency_here' (at __init__.py:1)",
    ]
    assert new.stdout.splitlines()[:2] == [
        "This folder is the plugin project connectors-new:",
        "  new = connectors_new: not installed in this environment; run `pip install -e .` here",
    ]
