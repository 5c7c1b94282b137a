"""The discovery index: warm starts import no plugin, and it is never stale."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from connectors_core import DiscoveryError, PluginLoadError, Registry, _index, discover
from connectors_core._manifest import from_trusted_wire
from tests.conftest import STANDARD
from tests.distributions import Dist, install, manifest_source, simple_plugin

MakeSite = Callable[[Sequence[Dist]], Path]
PLUGIN_MODULES = sorted(set().union(*(d.modules for d in STANDARD)))


def forget(*modules: str) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in modules:
            del sys.modules[name]


def index_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.index"))


def summary(registry: Registry) -> tuple[object, ...]:
    return (
        registry.ids(),
        list(registry),
        registry.plugins,
        [registry.provider(i) for i in registry.ids()],
    )


# --- the same answer with and without the index ------------------------------------


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    "options",
    [{}, {"deny": ["broken", "twin-a"]}, {"allow": ["acme", "twin-b", "typo"]}],
    ids=["all", "deny", "allow"],
)
def test_cold_warm_and_no_index_discoveries_agree(options: dict[str, Any]) -> None:
    reference = summary(discover(use_index=False, **options))

    cold = summary(discover(**options))
    forget(*PLUGIN_MODULES)
    warm = summary(discover(**options))

    assert cold == reference
    assert warm == reference


@pytest.mark.usefixtures("installed")
def test_strict_mode_fails_the_same_with_and_without_the_index() -> None:
    discover()  # build the index
    errors = []
    for use_index in (True, False):
        with pytest.raises(DiscoveryError) as info:
            discover(strict=True, use_index=use_index)
        errors.append((str(info.value), info.value.failures))
    assert errors[0] == errors[1]


@pytest.mark.usefixtures("installed")
def test_index_scan_finds_what_importlib_metadata_finds() -> None:
    from importlib import metadata

    from connectors_core._discovery import _entry_points

    _index, specs = _entry_points(os.environ)
    assert specs is not None
    ours = sorted((s.name, s.value, s.distribution, s.version) for s in specs)
    reference = sorted(
        (ep.name, ep.value, ep.dist.name if ep.dist else None, ep.dist.version if ep.dist else None)
        for ep in metadata.entry_points(group="connectors_core")
    )
    assert ours == reference


def trusted_corpus() -> list[dict[str, Any]]:
    """Valid wire manifests using every part and option of the model, for the index's builder."""
    from connectors_evencio import EVENCIO
    from tests.test_manifest import VALID_EDGES, kept_wire, shop_wire, wire, with_

    variants = [wire(), shop_wire(), kept_wire(keep=["dc"]), EVENCIO.to_wire()]
    variants.extend(with_(path, value) for path, value in VALID_EDGES)
    for auth in (
        {"type": "none"},
        {"type": "api-key", "description": "d", "headerName": "X-K"},
        {"type": "api-key", "description": "d", "queryParam": "k", "valuePrefix": "Token "},
        {"type": "basic", "description": "d", "usernameLabel": "U", "passwordRequired": False},
        {
            "type": "oauth",
            "grant": "client_credentials",
            "tokenUrl": "https://a.example/t",
            "scopes": [],
        },
    ):
        variants.append({**wire(), "auth": auth})
    variants.append(
        {
            **wire(),
            "fields": [
                {"id": "n", "label": "N", "type": "integer", "default": 3, "help": "h"},
                {"id": "c", "label": "C", "type": "choice", "choices": ["a"], "required": False},
                {
                    "id": "t",
                    "label": "T",
                    "pattern": "[a-z]+",
                    "minLength": 1,
                    "maxLength": 9,
                    "example": "abc",
                    "prefix": "p",
                    "suffix": "s",
                },
            ],
        }
    )
    minimal = {
        k: v
        for k, v in wire().items()
        if k not in {"setup", "docsPath", "tags", "publisher", "connection"}
    }
    variants.append(minimal)
    variants.append(
        {
            **wire(),
            "auth": {
                "type": "oauth",
                "authorizeUrl": "https://a.example.com/authorize",
                "tokenUrl": "https://a.example.com/token",
                "scopes": ["a", "b"],
                "pkce": False,
                "clientAuth": "client_secret_post",
                "scopeSeparator": ",",
                "authorizeParams": {"prompt": "consent"},
                "tokenParams": {"audience": "x"},
                "refreshParams": {"audience": "y"},
                "tokenRequestFormat": "json",
                "tokenResponse": {
                    "accessTokenPath": "user.token",
                    "expiresInUnit": "milliseconds",
                    "keep": ["team.id"],
                },
                "refreshMarginSeconds": 30,
                "issuer": "https://a.example.com",
                "headerName": "X-Token",
                "valuePrefix": "",
            },
            "api": {
                "baseUrl": "https://{dc}.api.example.com",
                "headers": {"X-Version": "2", "X-Team": "{team_id}"},
                "allowedHosts": ["*.files.example.com"],
                "retry": {"statuses": [429], "retryAfterHeaders": ["X-Reset"], "maxAttempts": 2},
                "tokenExpiredStatuses": [401, 403],
            },
            "verify": {
                "baseUrl": "https://login.example.com",
                "path": "/me",
                "method": "POST",
                "expect": [200, 201],
                "account": {"userId": "user.id"},
                "keep": ["dc"],
            },
        }
    )
    variants.append(
        {
            **wire(),
            "publisher": {"name": "P"},
            "connection": {"startPath": "/api/integrations/google-ads/connect"},
        }
    )
    variants.append(
        {
            **wire(),
            "connection": {
                "startPath": "/api/integrations/google-ads/connect",
                "multiple": True,
                "accountKey": "customerId",
            },
        }
    )
    variants.append(
        {
            **wire(),
            "fields": [{"id": "shop", "label": "Shop", "help": "The shop's name."}],
            "icon": "static/icon.svg",
            "translations": {
                "fr": {
                    "name": "Annonces",
                    "summary": "Audiences et conversions.",
                    "description": "Synchronise les audiences.",
                    "setup": [{"title": "Créer un client", "description": "Dans la console."}],
                    "fields": {"shop": {"label": "Boutique", "help": "Le nom."}},
                },
                "pt-BR": {"setup": [{}], "fields": {"shop": {}}},
            },
        }
    )
    variants.append({**wire(), "icon": "https://cdn.acme.com/icon.png", "translations": {}})
    return variants


def parts(value: object) -> list[object]:
    """``value`` and every model object inside it, depth first."""
    found = [value]
    cls: Any = type(value)
    if attrs.has(cls):
        for field in attrs.fields(cls):
            found.extend(parts(getattr(value, field.name)))
    elif isinstance(value, tuple):
        for item in value:
            found.extend(parts(item))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(parts(item))
    return found


def test_trusted_wire_builds_what_the_converter_builds() -> None:
    from connectors_core import define_connector, to_wire

    for data in trusted_corpus():
        connector = define_connector(data)
        assert from_trusted_wire(to_wire(connector)) == connector


def test_the_index_builds_frozen_hashable_objects_identical_to_validated_ones() -> None:
    from connectors_core import define_connector, to_wire

    for data in trusted_corpus():
        validated = define_connector(data)
        built = from_trusted_wire(to_wire(validated))
        assert hash(built) == hash(validated)
        assert repr(built) == repr(validated)
        assert to_wire(built) == to_wire(validated)
        built_parts, validated_parts = parts(built), parts(validated)
        assert [type(p) for p in built_parts] == [type(p) for p in validated_parts]
        for part in built_parts:
            kind: Any = type(part)
            if attrs.has(kind) and attrs.fields(kind):
                first = attrs.fields(kind)[0].name
                with pytest.raises(attrs.exceptions.FrozenInstanceError):
                    setattr(part, first, getattr(part, first))
        # A default made by a factory is a fresh object, never one shared between builds.
        again = from_trusted_wire(to_wire(validated))
        assert again.translations is not built.translations
        if built.api is not None:
            assert again.api is not None
            assert again.api.headers is not built.api.headers


# --- warm starts import nothing ------------------------------------------------------


def run_python(code: str, site: Path, index_dir: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(site), "CONNECTORS_INDEX_DIR": str(index_dir)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


WARM = """
    import json, sys
    import connectors_core
    registry = connectors_core.discover(deny=["broken", "raising", "invalid", "typo", "twin-b"])
    ids = registry.ids()
    before = sorted(m for m in sys.modules if m.split(".")[0] in {plugins!r})
    heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"pluggy", "cattrs", "attr",
                    "importlib_metadata", "click"}} | ({{"importlib.metadata"}} & set(sys.modules)))
    names = [c.name for c in registry]
    after = sorted(m for m in sys.modules if m.split(".")[0] in {plugins!r})
    print(json.dumps({{"ids": ids, "before": before, "heavy": heavy, "names": names,
                      "after": after}}))
"""


def test_a_warm_enumeration_imports_no_plugin_and_no_heavy_library(
    plugin_site: Path, index_dir: Path
) -> None:
    code = WARM.format(plugins=PLUGIN_MODULES)
    cold = run_python(code, plugin_site, index_dir)
    warm = run_python(code, plugin_site, index_dir)

    assert cold["before"]  # the first discovery had to import the plugins
    assert warm["ids"] == cold["ids"]
    assert warm["names"] == cold["names"]
    assert warm["before"] == []
    assert warm["heavy"] == []
    assert warm["after"] == []  # building the connector objects imports no plugin either


@pytest.mark.usefixtures("installed")
def test_hooks_import_plugins_lazily() -> None:
    healthy = {"acme_connectors", "globex_plugin", "twin_one_plugin", "twin_two_plugin"}
    deny = ["broken", "raising", "invalid", "typo"]
    discover(deny=deny)
    forget(*PLUGIN_MODULES)
    registry = discover(deny=deny)
    assert not healthy & set(sys.modules)

    assert registry.hook_for("acme-crm").provide_connector() != []
    assert healthy & set(sys.modules) == {"acme_connectors"}

    names = {name for name, _ in registry.plugin_manager.list_name_plugin()}
    assert {"acme", "globex", "twin-a"} <= names
    assert healthy & set(sys.modules) == {"acme_connectors", "globex_plugin", "twin_one_plugin"}


def test_a_plugin_that_cannot_be_imported_later_is_reported_on_hook_use(
    make_site: MakeSite,
) -> None:
    site = make_site([simple_plugin("flaky", "flaky", "flaky_plugin", "flaky")])
    discover(allow=["flaky"])
    forget("flaky_plugin")
    registry = discover(allow=["flaky"])
    (site / "flaky_plugin").rename(site / "elsewhere")
    try:
        with pytest.raises(PluginLoadError, match=r"No module named 'flaky_plugin'"):
            registry.hook_for("flaky")
        (failure,) = registry.failures
        assert (failure.name, failure.phase and failure.phase.value) == ("flaky", "load")
        assert registry.hook.provide_connector() == []  # the others still answer
    finally:
        (site / "elsewhere").rename(site / "flaky_plugin")


def test_connectors_of_a_plugin_that_fails_to_import_later_can_still_be_built(
    make_site: MakeSite,
) -> None:
    site = make_site([simple_plugin("flaky", "flaky", "flaky_plugin", "flaky")])
    discover(allow=["flaky"])
    forget("flaky_plugin")
    registry = discover(allow=["flaky"])
    (site / "flaky_plugin").rename(site / "elsewhere")
    try:
        registry.import_plugins()  # fails before any connector object was built
        assert [r.name for r in registry.failures] == ["flaky"]
        assert [c.id for c in registry] == ["flaky"]  # listed as before the failure
    finally:
        (site / "elsewhere").rename(site / "flaky_plugin")


def test_hook_for_a_connector_registered_in_code_has_no_implementations() -> None:
    from tests.test_registry import make

    registry = Registry()
    registry.register(make("local"))
    assert registry.hook_for("local").provide_connector() == []


# --- never stale -------------------------------------------------------------------


def ids(**options: object) -> list[str]:
    return discover(allow=["alpha", "beta", "gamma"], **options).ids()  # type: ignore[arg-type]


def enabled(registry: Registry) -> list[str]:
    return [r.name for r in registry.plugins if r.state.value != "disabled"]


def test_a_new_distribution_is_seen(make_site: MakeSite) -> None:
    site = make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    assert ids() == ["alpha"]
    install(site, simple_plugin("beta", "beta", "beta_plugin", "beta"))
    assert ids() == ["alpha", "beta"]


def index_entries(folder: Path) -> dict[str, Any]:
    """The plugin entries of the one index file in ``folder``, by entry-point name."""
    (path,) = index_files(folder)
    _environment, _dists, plugins = marshal.loads(path.read_bytes()[len(_index._MAGIC) + 4 :])
    return {key.split("\n")[1]: entry for key, entry in plugins.items()}


def test_after_an_install_upgrade_or_removal_only_what_changed_is_imported(
    make_site: MakeSite, index_dir: Path
) -> None:
    forget("alpha_plugin", "beta_plugin", "gamma_plugin")  # left over by other tests' installs
    site = make_site(
        [
            simple_plugin("alpha", "alpha", "alpha_plugin", "alpha"),
            simple_plugin("beta", "beta", "beta_plugin", "beta"),
        ]
    )
    assert ids() == ["alpha", "beta"]
    before = index_entries(index_dir)
    forget("alpha_plugin", "beta_plugin")

    install(site, simple_plugin("gamma", "gamma", "gamma_plugin", "gamma"))
    assert ids() == ["alpha", "beta", "gamma"]
    assert {"alpha_plugin", "beta_plugin", "gamma_plugin"} & set(sys.modules) == {"gamma_plugin"}
    after = index_entries(index_dir)
    assert after["alpha"] == before["alpha"]  # carried over unchanged
    assert after["beta"] == before["beta"]
    forget("gamma_plugin")

    module = site / "beta_plugin" / "__init__.py"
    module.write_text(module.read_text().replace("'Beta'", "'Beta Two'"))
    registry = discover(allow=["alpha", "beta", "gamma"])
    assert registry.get("beta").name == "Beta Two"
    assert {"alpha_plugin", "beta_plugin", "gamma_plugin"} & set(sys.modules) == {"beta_plugin"}
    forget("beta_plugin")

    uninstall(site, "gamma", "gamma_plugin")
    assert ids() == ["alpha", "beta"]
    assert not {"alpha_plugin", "beta_plugin", "gamma_plugin"} & set(sys.modules)
    assert set(index_entries(index_dir)) == {"alpha", "beta"}
    forget("gamma_plugin")


def uninstall(site: Path, dist_name: str, module: str) -> None:
    """Remove a distribution installed by :func:`install`, as ``pip uninstall`` would."""
    import shutil

    shutil.rmtree(site / module)
    (info,) = site.glob(f"{dist_name}-*.dist-info")
    shutil.rmtree(info)


def test_an_in_place_edit_of_entry_points_txt_is_seen(make_site: MakeSite) -> None:
    beta = simple_plugin("beta", "beta", "beta_plugin", "beta")
    site = make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha"), beta])
    assert ids() == ["alpha", "beta"]
    entry_points = site / "beta-1.0.0.dist-info" / "entry_points.txt"

    entry_points.write_text("[connectors_core]\ngamma = beta_plugin\n")
    assert enabled(discover(allow=["alpha", "beta", "gamma"])) == ["alpha", "gamma"]

    entry_points.write_text("[other_group]\ngamma = beta_plugin\n")
    assert ids() == ["alpha"]


def test_two_changes_within_the_same_second_are_told_apart(make_site: MakeSite) -> None:
    site = make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    entry_points = site / "alpha-1.0.0.dist-info" / "entry_points.txt"
    second = (entry_points.stat().st_mtime_ns // 10**9) * 10**9

    entry_points.write_text("[connectors_core]\nalpha = alpha_plugin\n")
    os.utime(entry_points, ns=(second, second + 100))
    assert enabled(discover(allow=["alpha", "gamma"])) == ["alpha"]

    entry_points.write_text("[connectors_core]\ngamma = alpha_plugin\n")  # same size
    os.utime(entry_points, ns=(second, second + 200))
    assert enabled(discover(allow=["alpha", "gamma"])) == ["gamma"]


def test_an_edited_plugin_module_is_loaded_again(make_site: MakeSite) -> None:
    site = make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    assert discover(allow=["alpha"]).get("alpha").name == "Alpha"
    module = site / "alpha_plugin" / "__init__.py"
    module.write_text(module.read_text().replace("'Alpha'", "'Alpha Renamed'"))
    forget("alpha_plugin")
    assert discover(allow=["alpha"]).get("alpha").name == "Alpha Renamed"


def test_a_removed_distribution_is_gone(make_site: MakeSite) -> None:
    site = make_site(
        [
            simple_plugin("alpha", "alpha", "alpha_plugin", "alpha"),
            simple_plugin("beta", "beta", "beta_plugin", "beta"),
        ]
    )
    assert ids() == ["alpha", "beta"]
    for path in sorted(site.glob("beta*"), reverse=True):
        for child in sorted(path.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
        path.rmdir()
    assert ids() == ["alpha"]


def test_a_fixed_plugin_is_retried_at_once(make_site: MakeSite) -> None:
    broken = Dist(
        "alpha",
        "1.0.0",
        {"alpha": "alpha_plugin"},
        {"alpha_plugin/__init__.py": "raise RuntimeError('not yet')\n"},
    )
    site = make_site([broken])
    assert discover(allow=["alpha"]).failures[0].phase is not None
    (site / "alpha_plugin" / "__init__.py").write_text(
        simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")
        .files["alpha_plugin/__init__.py"]
        .replace("\n        ", "\n")
        .strip()
        + "\n"
    )
    forget("alpha_plugin")
    assert discover(allow=["alpha"]).ids() == ["alpha"]


# --- robustness --------------------------------------------------------------------


def sealed(payload: Any) -> bytes:
    """A well-formed index file around ``payload``."""
    data = marshal.dumps(payload)
    return _index._MAGIC + _index._crc(data) + data


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],
        lambda data: b"not an index at all",
        lambda data: data[:-9] + bytes([data[-9] ^ 0x20]) + data[-8:],  # one flipped bit
        lambda data: sealed((["another", "environment"], {}, {})),
        lambda data: sealed([1, 2, 3]),
        lambda data: _index._MAGIC + _index._crc(b"\xff\xff") + b"\xff\xff",
    ],
    ids=[
        "empty",
        "truncated",
        "garbage",
        "bit-flip",
        "other-environment",
        "wrong-shape",
        "bad-marshal",
    ],
)
def test_a_damaged_index_is_rebuilt_never_trusted(
    make_site: MakeSite, index_dir: Path, damage: Callable[[bytes], bytes]
) -> None:
    make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    discover(allow=["alpha"])
    (index,) = index_files(index_dir)
    index.write_bytes(damage(index.read_bytes()))
    forget("alpha_plugin")

    registry = discover(allow=["alpha"])

    assert registry.get("alpha").name == "Alpha"
    assert "alpha_plugin" in sys.modules  # rebuilt by loading the plugin
    forget("alpha_plugin")
    discover(allow=["alpha"])
    assert "alpha_plugin" not in sys.modules  # and the rewritten index is good again


def test_an_unwritable_index_folder_is_not_an_error(
    make_site: MakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CONNECTORS_INDEX_DIR", str(blocker / "index"))
    assert discover(allow=["alpha"]).ids() == ["alpha"]


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_the_index_can_be_turned_off(
    make_site: MakeSite, index_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    if how == "argument":
        registry = discover(allow=["alpha"], use_index=False)
    else:
        monkeypatch.setenv("CONNECTORS_DISCOVERY_INDEX", "off")
        registry = discover(allow=["alpha"])
    assert registry.ids() == ["alpha"]
    assert index_files(index_dir) == []


def test_concurrent_writers_leave_a_valid_index(plugin_site: Path, index_dir: Path) -> None:
    code = WARM.format(plugins=PLUGIN_MODULES)
    env = {**os.environ, "PYTHONPATH": str(plugin_site), "CONNECTORS_INDEX_DIR": str(index_dir)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [process.communicate() for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    results = [json.loads(out.splitlines()[-1]) for out, _err in outputs]
    assert len({json.dumps(r["ids"]) for r in results}) == 1
    assert len(index_files(index_dir)) == 1
    assert not list(index_dir.glob("*.tmp"))

    warm = run_python(code, plugin_site, index_dir)
    assert warm["before"] == []
    assert warm["ids"] == results[0]["ids"]


def test_old_index_files_are_pruned(make_site: MakeSite, index_dir: Path) -> None:
    for number in range(34):
        (index_dir / f"{number:016x}.index").write_text("{}")
        os.utime(index_dir / f"{number:016x}.index", ns=(10**9, 10**9 + number))
    make_site([simple_plugin("alpha", "alpha", "alpha_plugin", "alpha")])
    discover(allow=["alpha"])
    remaining = index_files(index_dir)
    assert len(remaining) == 32
    assert index_dir / f"{0:016x}.json" not in remaining
    assert index_dir / f"{1:016x}.json" not in remaining


def test_manifest_source_helper_is_valid() -> None:
    from connectors_core import define_connector

    assert define_connector(eval(manifest_source("x-y"))).id == "x-y"
