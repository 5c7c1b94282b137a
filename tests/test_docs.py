"""The documentation agrees with the code it describes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs
import pluggy
import pytest

from connectors_core import Category, Connector, Status, hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def spec_names() -> list[str]:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    return sorted(
        name for name in dir(hookspecs) if manager.parse_hookspec_opts(hookspecs, name) is not None
    )


def hook_sections() -> dict[str, str]:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `(\w+)`\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def signature_line(name: str) -> str:
    function = getattr(hookspecs, name)
    signature = inspect.signature(function)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {name}({params}) -> {signature.return_annotation}"


def test_every_hook_is_documented_and_every_documented_hook_exists() -> None:
    assert sorted(hook_sections()) == spec_names()


@pytest.mark.parametrize("name", spec_names())
def test_documented_signature_matches_the_spec(name: str) -> None:
    section = hook_sections()[name]
    block = re.search(r"```python\n(.*?)\n```", section, flags=re.DOTALL)
    assert block is not None, f"no signature block for {name}"
    assert block.group(1).strip() == signature_line(name)


@pytest.mark.parametrize("name", spec_names())
def test_firstresult_is_documented(name: str) -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    opts = manager.parse_hookspec_opts(hookspecs, name)
    assert opts is not None
    assert ("firstresult=True" in hook_sections()[name]) == bool(opts.get("firstresult"))


@pytest.mark.parametrize("name", spec_names())
def test_every_hookspec_has_a_full_docstring(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert ":return:" in doc
    for parameter in inspect.signature(getattr(hookspecs, name)).parameters:
        assert f":param {parameter}:" in doc


@pytest.mark.parametrize("name", spec_names())
def test_every_hook_example_is_valid_python(name: str) -> None:
    blocks = re.findall(r"```python\n(.*?)\n```", hook_sections()[name], flags=re.DOTALL)
    assert len(blocks) >= 2, f"{name} needs a signature and an example"
    compile(blocks[-1], f"docs/hooks.md#{name}", "exec")


def test_manifest_reference_lists_every_field_with_its_wire_name() -> None:
    text = (DOCS / "manifest.md").read_text(encoding="utf-8")
    top_level = text.split("## Auth variants", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", top_level, flags=re.MULTILINE)
    assert [python for _, python in rows] == [a.name for a in attrs.fields(Connector)]
    for wire, python in rows:
        head, *rest = python.split("_")
        assert wire == head + "".join(p.title() for p in rest)
    for enum in (Category, Status):
        for member in enum:
            assert f"`{member.value}`" in text


def test_the_hooks_example_manifest_is_valid() -> None:
    from connectors_core import define_connector

    example = re.findall(
        r"```python\n(.*?)\n```", hook_sections()["provide_connector"], flags=re.DOTALL
    )[-1]
    namespace: dict[str, object] = {}
    exec(compile(example, "docs/hooks.md", "exec"), namespace)
    assert define_connector(namespace["ACME"]).id == "acme"


def test_every_bundled_connector_has_a_docs_page() -> None:
    for plugin in (ROOT / "plugins").iterdir():
        if (plugin / "pyproject.toml").exists():
            assert (DOCS / "connectors" / f"{plugin.name}.md").exists()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.DOTALL)
    test_command = next(c for c in commands if "pytest" in c)
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci_lines


def test_the_guide_s_manifest_examples_are_valid() -> None:
    guide = (DOCS / "writing-a-connector.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)\n```", guide, flags=re.DOTALL)
    examples = [b for b in blocks if "MANIFEST = define_connector(" in b]
    assert len(examples) == 2
    for example in examples:
        namespace: dict[str, object] = {}
        exec(compile(example, "docs/writing-a-connector.md", "exec"), namespace)
        manifest = namespace["MANIFEST"]
        assert getattr(manifest, "id", None) == "acme"


def test_every_cli_command_is_documented() -> None:
    from connectors_core.cli import cli

    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"`connectors {name}" in reference, f"connectors {name} is not in docs/cli.md"


def test_every_provider_answer_and_its_outcomes_are_documented() -> None:
    from connectors_core.connections._answers import OUTCOMES, Answer

    text = (DOCS / "connections.md").read_text(encoding="utf-8")
    section = text.split("## What a provider's answer means", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| .+ \| `(\w+)` \| `(\w+)` \|$", section, flags=re.MULTILINE)
    assert [name for name, _, _ in rows] == [answer.value for answer in Answer]
    assert {Answer(name): (exchange, refresh) for name, exchange, refresh in rows} == dict(OUTCOMES)


def test_every_reason_code_is_documented_with_its_status_and_line() -> None:
    from connectors_core import Reason

    text = (DOCS / "connections.md").read_text(encoding="utf-8")
    section = text.split("### Reason codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \| (.*) \|$", section, flags=re.MULTILINE)
    assert [code for code, _, _ in rows] == [reason.value for reason in Reason]
    for code, status, line in rows:
        reason = Reason(code)
        assert (int(status), line) == (reason.status, reason.doc), code


def test_the_connection_field_reference_lists_every_attribute() -> None:
    from connectors_core import Field, FieldType

    text = (DOCS / "manifest.md").read_text(encoding="utf-8")
    section = text.split("## Connection fields", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", section, flags=re.MULTILINE)
    assert [python for _, python in rows] == [a.name for a in attrs.fields(Field)]
    for member in FieldType:
        assert f"`{member.value}`" in section


def test_every_auth_field_is_documented() -> None:
    from connectors_core._checks import camel as _camel
    from connectors_core._manifest import AUTH_CLASSES, TokenResponsePaths

    text = (DOCS / "manifest.md").read_text(encoding="utf-8")
    for cls in [*AUTH_CLASSES.values(), TokenResponsePaths]:
        for field in attrs.fields(cls):
            assert _camel(field.name) in text, f"{cls.__name__}.{field.name}"


def test_every_public_method_of_the_jobs_api_is_documented_with_an_example() -> None:
    from connectors_core.connections import Connections

    text = (DOCS / "connections.md").read_text(encoding="utf-8")
    section = text.split("## The Python API, for your jobs", 1)[1].split("\n## ", 1)[0]
    examples = "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))
    # What flows use of the service (FlowContext) is documented with the flows.
    for_flows = {"connector", "oauth_client", "http", "plugin_hooks", "now", "save_connection"}
    public = {
        name
        for name, member in inspect.getmembers(Connections)
        if not name.startswith("_") and callable(member) and name not in for_flows
    }
    missing = sorted(name for name in public if f".{name}(" not in examples)
    assert missing == [], f"no example of {missing} in docs/connections.md"
