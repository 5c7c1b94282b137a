"""The ``connectors`` command, in-process with click's runner and once as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connectors_core import __version__, discover, to_wire
from connectors_core.cli import cli

pytestmark = pytest.mark.usefixtures("installed")

FAILED = {"broken", "raising", "invalid", "twin-b", "typo"}
HEALTHY_ONLY = {"CONNECTORS_PLUGINS_DENY": ",".join(sorted(FAILED))}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_list_prints_a_table_and_warns_about_failed_plugins() -> None:
    result = run("list")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CATEGORY", "STATUS", "AUTH", "PROVIDED", "BY"]
    assert "acme-crm  Acme CRM" in result.stdout
    row = next(line for line in lines if line.startswith("globex "))
    assert row.split()[-4:] == ["coming-soon", "api-key", "globex-connector", "0.3.0"]
    assert result.stderr.startswith("warning: 5 plugin(s) failed to load (")
    assert "run `connectors doctor`" in result.stderr


def test_list_json_prints_the_wire_manifests() -> None:
    result = run("list", "--json")

    data = json.loads(result.stdout)
    assert [item["id"] for item in data] == discover().ids()
    assert data[[item["id"] for item in data].index("acme-crm")] == to_wire(
        discover().get("acme-crm")
    )
    assert data[0]["auth"]["type"] in {"api-key", "oauth", "none"}


def test_list_filters() -> None:
    assert json.loads(run("list", "--json", "--category", "analytics").stdout)[0]["id"] == (
        "acme-ads"
    )
    assert [c["id"] for c in json.loads(run("list", "--json", "--tag", "crm").stdout)] == [
        "acme-crm"
    ]
    assert [
        c["id"] for c in json.loads(run("list", "--json", "--status", "coming-soon").stdout)
    ] == ["globex"]
    result = run("list", "--category", "nope")
    assert result.exit_code == 2
    assert "'nope' is not one of" in result.stderr


def test_list_with_nothing_matching_says_so() -> None:
    result = run("list", "--tag", "no-such-tag")
    assert result.exit_code == 0
    assert result.stdout == "No connectors found.\n"


def test_show_prints_the_details() -> None:
    result = run("show", "acme-crm")

    assert result.exit_code == 0
    assert result.stdout.startswith("Acme CRM (acme-crm)\n  Contacts from Acme CRM.\n")
    assert "provided by:  acme-connectors 1.2.0 (plugin 'acme')" in result.stdout
    assert "  header:     X-Acme" in result.stdout
    assert "  - Contacts (contacts)" in result.stdout


def test_show_names_the_icon_and_the_languages() -> None:
    result = run("show", "evencio")

    assert "\nicon:         icon.svg\n" in result.stdout
    assert "\nlanguages:    en, fr\n" in result.stdout
    assert "icon:" not in run("show", "acme-crm").stdout


def test_show_json_prints_one_wire_manifest() -> None:
    assert json.loads(run("show", "globex", "--json").stdout) == to_wire(discover().get("globex"))


def test_show_unknown_id_is_a_clean_error() -> None:
    result = run("show", "acme")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no connector with id 'acme' is registered")
    assert "Traceback" not in result.stderr


def test_doctor_reports_every_plugin_and_fails_when_any_failed() -> None:
    result = run("doctor")

    assert result.exit_code == 1
    table = result.stdout.split("\n\n")[0]
    rows = {line.split()[0]: line for line in table.splitlines()}
    assert rows["acme"].split()[1:4] == ["acme-connectors", "1.2.0", "loaded"]
    assert "failed  load: ModuleNotFoundError" in rows["broken"]
    assert "failed  duplicate: connector id 'twin' is provided by both twin-one" in rows["twin-b"]
    assert "failed  register: unknown hook 'provide_conector'" in rows["typo"]
    assert "invalid failed during validate:\n  invalid connector manifest" in result.stdout
    assert "    $.category: expected one of" in result.stdout
    assert "5 failed." in result.stdout


def test_doctor_json() -> None:
    result = run("doctor", "--json")

    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["ok"] is False
    plugins = {p["name"]: p for p in report["plugins"]}
    assert plugins["raising"] == {
        "name": "raising",
        "entryPoint": "raising_plugin",
        "distribution": "raising-plugin",
        "version": "0.1.0",
        "state": "failed",
        "phase": "provide",
        "error": "provide_connector raised RuntimeError: boom (at __init__.py:5)",
        "connectors": [],
    }
    assert plugins["acme"]["connectors"] == ["acme-crm", "acme-ads"]
    assert "acme-crm" in report["connectors"]


def test_doctor_passes_and_shows_disabled_plugins_when_broken_ones_are_denied() -> None:
    result = run("doctor", env=HEALTHY_ONLY)

    assert result.exit_code == 0, result.stdout
    assert "disabled  listed in CONNECTORS_PLUGINS_DENY" in result.stdout
    assert "5 disabled, 0 failed." in result.stdout


def test_strict_makes_list_fail_cleanly() -> None:
    result = run("--strict", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: 5 connector plugin(s) failed to load:\n")
    assert "Traceback" not in result.stderr
    assert run("--strict", "list", env=HEALTHY_ONLY).exit_code == 0


def test_a_bad_environment_setting_is_a_clean_error() -> None:
    result = run("list", env={"CONNECTORS_STRICT": "perhaps"})
    assert result.exit_code == 1
    assert result.stderr == (
        "error: CONNECTORS_STRICT: expected 1/true/yes/on or 0/false/no/off, got 'perhaps'\n"
    )


def test_keygen_prints_a_usable_key() -> None:
    from connectors_core.store import SecretBox

    first, second = run("keygen").stdout.strip(), run("keygen").stdout.strip()
    assert first != second
    assert (
        SecretBox([first]).decrypt(SecretBox([first]).encrypt("x", context="c"), context="c") == "x"
    )


def test_keygen_webhook_prints_a_secret_the_settings_and_the_signature_take() -> None:
    from connectors_core._settings import Settings
    from connectors_core.connections import sign_webhook

    secret = run("keygen", "--webhook").stdout.strip()
    assert secret.startswith("whsec_")
    assert secret != run("keygen", "--webhook").stdout.strip()
    settings = Settings.from_env(
        {
            "CONNECTORS_WEBHOOK_URL": "https://hooks.example.com/in",
            "CONNECTORS_WEBHOOK_SECRET": secret,
        }
    )
    assert settings.webhook_secret == secret
    assert sign_webhook(secret, "evt_1", 1, b"{}").startswith("v1,")


def test_version() -> None:
    assert run("--version").stdout == f"connectors, version {__version__}\n"


# --- validate -----------------------------------------------------------------

MANIFEST = {
    "id": "file-connector",
    "name": "File Connector",
    "summary": "From a file.",
    "description": "Long.",
    "category": "custom",
    "status": "available",
    "auth": {"type": "none"},
    "capabilities": [{"id": "read", "label": "Read"}],
}

TOML = """
id = "toml-connector"
name = "TOML Connector"
summary = "From TOML."
description = "Long."
category = "assets"
status = "beta"
capabilities = [{ id = "read", label = "Read" }]

[auth]
type = "api-key"
description = "Key."
headerName = "X-Key"
"""


def test_validate_a_valid_json_file(tmp_path: Path) -> None:
    path = tmp_path / "connector.json"
    path.write_text(json.dumps({"$schema": "https://example.com/s.json", **MANIFEST}))

    result = run("validate", str(path))

    assert result.exit_code == 0
    assert result.stdout == "valid: file-connector (File Connector)\n"


def test_validate_an_invalid_json_file_prints_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "connector.json"
    path.write_text(json.dumps({**MANIFEST, "id": "File", "status": 1, "extra": True}))

    result = run("validate", str(path))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"invalid connector manifest in {path} (3 problems):",
        "  $.id: must be kebab-case (lowercase letters and digits in words joined by single "
        "hyphens, starting with a letter, at most 64 characters), got 'File'",
        "  $.status: expected one of available, beta, coming-soon, deprecated; got number 1",
        "  $.extra: unknown field",
    ]


def test_validate_toml(tmp_path: Path) -> None:
    path = tmp_path / "connector.toml"
    path.write_text(TOML)
    assert run("validate", str(path)).stdout == "valid: toml-connector (TOML Connector)\n"

    path.write_text(TOML.replace('headerName = "X-Key"', 'header = "X-Key"'))
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert "  $.auth.header: unknown field; did you mean 'headerName'?" in result.stderr
    assert "  $.auth.header: unknown field; did you mean 'headerName'?" in result.stderr


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"id": ', ".json", "invalid JSON: Expecting value (line 1, column 8)"),
        ("id = ", ".toml", "invalid TOML: "),
    ],
)
def test_validate_unparsable_file_is_a_clean_error(
    tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"connector{suffix}"
    path.write_text(content)
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: {message}")


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "missing.json"))
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: {tmp_path / 'missing.json'}: cannot read file: "
        "No such file or directory\n"
    )


def test_validate_a_module_attribute_and_a_plugin_module() -> None:
    assert run("validate", "acme_connectors:CRM").stdout == "valid: acme-crm (Acme CRM)\n"
    assert run("validate", "acme_connectors").stdout == (
        "valid: acme-crm (Acme CRM)\nvalid: acme-ads (Acme Ads)\n"
    )


def test_validate_a_module_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "local_manifest.py").write_text(f"MANIFEST = {MANIFEST!r}\n")
    monkeypatch.chdir(tmp_path)
    try:
        assert run("validate", "local_manifest:MANIFEST").exit_code == 0
    finally:
        sys.modules.pop("local_manifest", None)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:THING", "cannot import 'no_such_module_xyz': ModuleNotFoundError"),
        ("acme_connectors:MISSING", "module 'acme_connectors' has no attribute 'MISSING'"),
        ("raising_plugin", "calling it raised RuntimeError: boom"),
        ("not a target", "no such file, and not a module:attribute reference"),
    ],
)
def test_validate_bad_targets_are_clean_errors(target: str, message: str) -> None:
    result = run("validate", target)
    assert result.exit_code == 1
    assert result.stderr == f"error: {target}: {message}\n" or message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_runs_as_a_real_process(plugin_site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    env.pop("CONNECTORS_PLUGINS_DENY", None)
    doctor = subprocess.run(
        [sys.executable, "-m", "connectors_core", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert doctor.returncode == 1
    assert {
        p["name"] for p in json.loads(doctor.stdout)["plugins"] if p["state"] == "failed"
    } == FAILED

    shown = subprocess.run(
        [sys.executable, "-m", "connectors_core", "show", "nope"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 1
    assert shown.stderr.startswith("error: no connector with id 'nope' is registered")
    assert "Traceback" not in shown.stderr


def test_doctor_warns_about_connectors_without_documentation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs" / "connectors").mkdir(parents=True)
    (tmp_path / "docs" / "connectors" / "acme-crm.md").write_text("# Acme CRM\n")
    monkeypatch.chdir(tmp_path)

    result = run("doctor", env=HEALTHY_ONLY)

    assert result.exit_code == 0  # warnings do not fail doctor
    assert "warning: acme-crm has no docsPath (a public documentation URL)" in result.stdout
    assert "warning: acme-crm has no docs page" not in result.stdout
    assert "warning: globex has no docs page docs/connectors/globex.md" in result.stdout
    report = json.loads(run("doctor", "--json", env=HEALTHY_ONLY).stdout)
    assert "globex has no docs page docs/connectors/globex.md" in report["warnings"]
