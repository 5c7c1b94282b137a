"""Discovery against real installed distributions (dist-info on sys.path)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from connectors_core import (
    ConfigurationError,
    DiscoveryError,
    Phase,
    PluginRecord,
    PluginState,
    Registry,
    Status,
    discover,
)
from tests.conftest import STANDARD_PLUGINS
from tests.distributions import Dist, simple_plugin

MakeSite = Callable[[Sequence[Dist]], Path]


def records(registry: Registry) -> dict[str, PluginRecord]:
    return {r.name: r for r in registry.plugins}


@pytest.mark.usefixtures("installed")
def test_good_plugins_load_and_broken_ones_are_recorded() -> None:
    registry = discover()
    found = records(registry)

    assert {"acme-ads", "acme-crm", "globex", "twin"} <= set(registry.ids())
    assert found["acme"].state is PluginState.LOADED
    assert found["acme"].connectors == ("acme-crm", "acme-ads")
    assert found["acme"].distribution == "acme-connectors"
    assert found["acme"].version == "1.2.0"
    assert found["globex"].value == "globex_plugin.hooks:plugin"
    assert registry.get("globex").status is Status.COMING_SOON

    failed = {r.name: r for r in registry.failures}
    assert set(failed) == {"broken", "raising", "invalid", "twin-b", "typo"}
    assert failed["broken"].phase is Phase.LOAD
    assert failed["raising"].phase is Phase.PROVIDE
    assert failed["invalid"].phase is Phase.VALIDATE
    assert failed["twin-b"].phase is Phase.DUPLICATE
    assert failed["typo"].phase is Phase.REGISTER


@pytest.mark.usefixtures("installed")
def test_failures_carry_distribution_version_entry_point_and_reason() -> None:
    failed = {r.name: r for r in discover().failures}

    broken = failed["broken"]
    assert (broken.distribution, broken.version, broken.value) == (
        "broken-import",
        "0.1.0",
        "broken_import_plugin",
    )
    assert broken.error is not None
    assert broken.error.startswith(
        "ModuleNotFoundError: No module named 'a_module_that_does_not_exist' (at __init__.py:1)"
    )
    assert failed["raising"].error == (
        "provide_connector raised RuntimeError: boom (at __init__.py:5)"
    )
    assert failed["typo"].error is not None
    assert failed["typo"].error.startswith(
        "unknown hook 'provide_conector'; did you mean 'provide_connector'?"
    )
    assert failed["invalid"].error is not None
    assert failed["invalid"].error.splitlines() == [
        "invalid connector manifest in plugin 'invalid' (3 problems):",
        "  $.id: must be kebab-case (lowercase letters and digits in words joined by single "
        "hyphens, starting with a letter, at most 64 characters), got 'Bad_Id'",
        "  $.category: expected one of events, ticketing, marketing, assets, analytics, custom; "
        "got string 'nope'",
        "  $.docsPath: must be a public http(s) URL, got 'docs/bad.md' (a repository path or a "
        "local address will not open from a web page)",
    ]
    assert failed["broken"].describe() == (
        "broken-import 0.1.0 (plugin 'broken'), entry point broken = broken_import_plugin: "
        f"failed during load: {broken.error}"
    )


@pytest.mark.usefixtures("installed")
def test_duplicate_id_fails_the_later_plugin_naming_both_distributions() -> None:
    registry = discover()
    twin_b = records(registry)["twin-b"]

    assert registry.provider("twin").distribution == "twin-one"
    assert twin_b.error == (
        "connector id 'twin' is provided by both twin-one 1.0.0 (plugin 'twin-a') and "
        "twin-two 1.0.0 (plugin 'twin-b'); uninstall or deny one of them"
    )
    assert twin_b.connectors == ()


@pytest.mark.usefixtures("installed")
def test_discovery_is_idempotent_and_deterministic() -> None:
    first, second = discover(), discover()

    assert first is not second
    assert first.ids() == second.ids()
    assert first.plugins == second.plugins
    names = [r.name for r in first.plugins if r.name in STANDARD_PLUGINS]
    assert names == STANDARD_PLUGINS


@pytest.mark.usefixtures("installed")
def test_failed_plugins_are_removed_from_the_plugin_manager() -> None:
    registry = discover()
    registered = {name for name, _ in registry.plugin_manager.list_name_plugin()}

    assert {"acme", "globex", "twin-a"} <= registered
    assert not registered & {"broken", "raising", "invalid", "twin-b", "typo"}
    impls = registry.hook.provide_connector.get_hookimpls()
    assert {impl.plugin_name for impl in impls} >= {"acme", "globex", "twin-a"}


@pytest.mark.usefixtures("installed")
def test_deny_list_skips_plugins_before_importing_them() -> None:
    registry = discover(deny=["broken", "raising-plugin"])
    found = records(registry)

    assert found["broken"].state is PluginState.DISABLED
    assert found["broken"].error == "listed in CONNECTORS_PLUGINS_DENY"
    assert found["raising"].state is PluginState.DISABLED  # matched by distribution name
    assert "broken_import_plugin" not in sys.modules
    assert "raising_plugin" not in sys.modules


@pytest.mark.usefixtures("installed")
def test_allow_list_loads_only_the_named_plugins() -> None:
    registry = discover(allow=["acme", "globex-connector"])
    found = records(registry)

    assert registry.ids() == ["acme-ads", "acme-crm", "globex"]
    assert found["typo"].state is PluginState.DISABLED
    assert found["typo"].error == "not in CONNECTORS_PLUGINS_ALLOW"
    assert registry.failures == ()
    assert "typo_plugin" not in sys.modules


@pytest.mark.usefixtures("installed")
def test_deny_wins_over_allow() -> None:
    registry = discover(allow=["acme", "globex"], deny=["acme"])
    assert registry.ids() == ["globex"]


@pytest.mark.usefixtures("installed")
def test_allow_and_deny_lists_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTORS_PLUGINS_ALLOW", "acme, globex twin_a")
    monkeypatch.setenv("CONNECTORS_PLUGINS_DENY", "globex")

    registry = discover()

    assert registry.ids() == ["acme-ads", "acme-crm", "twin"]
    assert registry.failures == ()


@pytest.mark.usefixtures("installed")
def test_strict_mode_raises_listing_every_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DiscoveryError) as info:
        discover(strict=True)
    assert {r.name for r in info.value.failures} == {
        "broken",
        "raising",
        "invalid",
        "twin-b",
        "typo",
    }
    assert str(info.value).startswith("5 connector plugin(s) failed to load:\n")

    monkeypatch.setenv("CONNECTORS_STRICT", "1")
    with pytest.raises(DiscoveryError):
        discover()
    assert discover(strict=False).failures


@pytest.mark.usefixtures("installed")
def test_strict_mode_passes_when_every_loaded_plugin_is_healthy() -> None:
    registry = discover(strict=True, deny=["broken", "raising", "invalid", "twin-b", "typo"])
    assert registry.failures == ()


@pytest.mark.usefixtures("installed")
def test_a_malformed_strict_flag_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTORS_STRICT", "sometimes")
    with pytest.raises(ConfigurationError, match=r"^CONNECTORS_STRICT: expected 1/true"):
        discover()


def test_a_plugin_may_provide_nothing(make_site: MakeSite) -> None:
    make_site(
        [
            Dist(
                "quiet",
                "1.0",
                {"quiet": "quiet_plugin"},
                {
                    "quiet_plugin/__init__.py": """
            from connectors_core import hookimpl

            @hookimpl
            def provide_connector():
                return None
        """,
                },
            )
        ]
    )
    record = records(discover(allow=["quiet"]))["quiet"]
    assert record.state is PluginState.LOADED
    assert record.connectors == ()


@pytest.mark.parametrize(
    ("body", "phase", "error"),
    [
        ("return 42", Phase.PROVIDE, "provide_connector returned int; expected a manifest"),
        ("return [42]", Phase.VALIDATE, "$: expected a Connector or a mapping, got int"),
        (
            "return [MANIFEST, MANIFEST]",
            Phase.VALIDATE,
            "plugin 'odd' provides connector id(s) odd more than once",
        ),
    ],
)
def test_a_plugin_returning_something_else_fails(
    make_site: MakeSite, body: str, phase: Phase, error: str
) -> None:
    from tests.distributions import manifest_source

    make_site(
        [
            Dist(
                "odd",
                "1.0",
                {"odd": "odd_plugin"},
                {
                    "odd_plugin/__init__.py": f"""
            from connectors_core import hookimpl

            MANIFEST = {manifest_source("odd")}

            @hookimpl
            def provide_connector():
                {body}
        """,
                },
            )
        ]
    )
    record = records(discover(allow=["odd"]))["odd"]
    assert record.state is PluginState.FAILED
    assert record.phase is phase
    assert record.error is not None
    assert error in record.error


def test_a_plugin_calling_sys_exit_fails_without_ending_discovery(make_site: MakeSite) -> None:
    make_site(
        [
            Dist(
                "exits",
                "1.0",
                {"exits": "exits_plugin"},
                {
                    "exits_plugin/__init__.py": "import sys\nsys.exit(3)\n",
                },
            ),
            simple_plugin("fine", "fine", "fine_plugin", "fine"),
        ]
    )
    registry = discover(allow=["exits", "fine"])
    assert registry.ids() == ["fine"]
    assert records(registry)["exits"].error == "SystemExit: 3 (at __init__.py:2)"


def test_a_hook_with_an_unknown_argument_fails_registration(make_site: MakeSite) -> None:
    make_site(
        [
            Dist(
                "args",
                "1.0",
                {"args": "args_plugin"},
                {
                    "args_plugin/__init__.py": """
            from connectors_core import hookimpl

            @hookimpl
            def provide_connector(registry):
                return None
        """,
                },
            )
        ]
    )
    record = records(discover(allow=["args"]))["args"]
    assert record.phase is Phase.REGISTER
    assert record.error is not None
    assert "registry" in record.error


def test_two_entry_points_to_one_module_fail_the_second(make_site: MakeSite) -> None:
    make_site(
        [
            simple_plugin("same-one", "same-a", "same_module", "same"),
            Dist("same-two", "1.0", {"same-b": "same_module"}, {}),
        ]
    )
    registry = discover(allow=["same-a", "same-b"])
    assert registry.ids() == ["same"]
    assert records(registry)["same-b"].phase is Phase.REGISTER


def test_a_new_distribution_appears_on_the_next_discover(make_site: MakeSite) -> None:
    assert "late" not in discover()
    make_site([simple_plugin("late-connector", "late", "late_plugin", "late")])
    assert discover().get("late").name == "Late"


def test_importing_the_package_loads_no_plugin(plugin_site: Path) -> None:
    import subprocess

    code = (
        "import sys, connectors_core\n"
        "prefixes = ('acme_', 'globex_', 'connectors_evencio')\n"
        "loaded = [m for m in sys.modules if m.startswith(prefixes)]\n"
        "print(loaded)\n"
    )
    env = {"PYTHONPATH": str(plugin_site), "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_discovery_and_iteration_leave_the_garbage_collector_as_they_found_it(
    make_site: MakeSite,
) -> None:
    make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    assert gc.isenabled()
    assert [c.id for c in discover(allow=["alpha"])] == ["alpha"]  # cold, then warm below
    assert [c.id for c in discover(allow=["alpha"])] == ["alpha"]
    assert gc.isenabled()
    gc.disable()
    try:
        assert [c.id for c in discover(allow=["alpha"])] == ["alpha"]
        assert not gc.isenabled()  # an application that turned it off keeps it off
    finally:
        gc.enable()
    with pytest.raises(ConfigurationError):  # raised while the collector is paused
        discover(allow=["alpha"], environ={"CONNECTORS_STRICT": "maybe"})
    assert gc.isenabled()
