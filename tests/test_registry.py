"""The registry: lookup, stable iteration, filters, duplicate protection, thread-safe imports."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from connectors_core import (
    Category,
    Connector,
    DuplicateConnectorError,
    PluginLoadError,
    Provider,
    Registry,
    Status,
    UnknownConnectorError,
    define_connector,
    discover,
)
from tests.distributions import Dist, manifest_source, simple_plugin


def make(
    connector_id: str,
    category: str = "events",
    status: str = "available",
    tags: tuple[str, ...] = (),
) -> Connector:
    return define_connector(
        id=connector_id,
        name=connector_id.title(),
        summary="s",
        description="d",
        category=category,
        status=status,
        auth={"type": "none"},
        capabilities=[{"id": "sync", "label": "Sync"}],
        tags=list(tags),
    )


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.register(make("zeta", "marketing", tags=("ads",)))
    registry.register(make("alpha", "events", "beta", tags=("official", "ads")))
    registry.register(make("mid", "events", "coming-soon"))
    return registry


def test_get_returns_the_connector(registry: Registry) -> None:
    assert registry.get("alpha").name == "Alpha"
    assert registry["mid"].status is Status.COMING_SOON
    assert "zeta" in registry
    assert "nope" not in registry


def test_unknown_id_is_a_clear_error_with_a_suggestion(registry: Registry) -> None:
    with pytest.raises(UnknownConnectorError) as info:
        registry.get("alpa")
    assert str(info.value) == "no connector with id 'alpa' is registered; did you mean 'alpha'?"
    assert info.value.connector_id == "alpa"
    assert isinstance(info.value, LookupError)


def test_unknown_id_in_an_empty_registry_says_nothing_is_installed() -> None:
    with pytest.raises(UnknownConnectorError, match=r"no connectors are installed"):
        Registry().get("evencio")


def test_iteration_is_sorted_by_id_whatever_the_registration_order(registry: Registry) -> None:
    assert [c.id for c in registry] == ["alpha", "mid", "zeta"]
    assert registry.ids() == ["alpha", "mid", "zeta"]
    assert len(registry) == 3


def test_filter_by_category_status_and_tag(registry: Registry) -> None:
    assert [c.id for c in registry.filter(category="events")] == ["alpha", "mid"]
    assert [c.id for c in registry.filter(category=Category.MARKETING)] == ["zeta"]
    assert [c.id for c in registry.filter(status="coming-soon")] == ["mid"]
    assert [c.id for c in registry.filter(tag="ads")] == ["alpha", "zeta"]
    assert [c.id for c in registry.filter(category="events", tag="ads")] == ["alpha"]
    assert registry.filter(category="analytics") == []
    assert len(registry.filter()) == 3


def test_filter_rejects_unknown_values_naming_the_valid_ones(registry: Registry) -> None:
    with pytest.raises(ValueError, match=r"unknown status 'soon'; expected one of available"):
        registry.filter(status="soon")


def test_registering_an_existing_id_names_both_providers(registry: Registry) -> None:
    first = Provider("acme", "acme-connectors", "1.0")
    second = Provider("acme2", "other-connectors", "2.0")
    registry.register(make("dup"), first)

    with pytest.raises(DuplicateConnectorError) as info:
        registry.register(make("dup"), second)

    assert info.value.existing == first
    assert info.value.duplicate == second
    assert str(info.value) == (
        "connector id 'dup' is provided by both acme-connectors 1.0 (plugin 'acme') and "
        "other-connectors 2.0 (plugin 'acme2'); uninstall or deny one of them"
    )
    assert registry.provider("dup") == first


def test_code_registered_connectors_have_a_code_provider(registry: Registry) -> None:
    assert registry.provider("alpha") == Provider("<code>")
    assert str(registry.provider("alpha")) == "plugin '<code>'"


# --- plugin imports from several threads ----------------------------------------------


def slow_plugin(connector_id: str, module: str, **overrides: str) -> Dist:
    """A plugin whose import blocks while ``$SLOW_PLUGIN_GATE`` names a missing file.

    It touches ``<gate>.started`` when its import begins and waits until the
    gate file exists, at most ``$SLOW_PLUGIN_SECONDS`` (default 8): a slow
    import that a test can end early, and that never hangs a test run.
    """
    source = f"""
        import os
        import time
        from pathlib import Path

        from connectors_core import hookimpl

        _gate = os.environ.get("SLOW_PLUGIN_GATE")
        if _gate:
            Path(_gate + ".started").touch()
            _deadline = time.monotonic() + float(os.environ.get("SLOW_PLUGIN_SECONDS", "8"))
            while time.monotonic() < _deadline and not Path(_gate).exists():
                time.sleep(0.01)

        @hookimpl
        def provide_connector():
            return {manifest_source(connector_id, **overrides)}
    """
    return Dist(
        f"{connector_id}-plugin", "1.0.0", {connector_id: module}, {f"{module}/__init__.py": source}
    )


class Gate:
    """Holds the slow plugin's import until :meth:`open` (or its deadline)."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = folder / "gate"
        self.started = folder / "gate.started"
        monkeypatch.setenv("SLOW_PLUGIN_GATE", str(self.path))

    def wait_started(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.started.exists():
            assert time.monotonic() < deadline, "the slow import never started"
            time.sleep(0.01)

    def open(self) -> None:
        self.path.touch()

    def release(self, registry: Registry, connector_id: str) -> None:
        """Open the gate and, if the import had begun, let it finish (nothing runs on after)."""
        self.open()
        deadline = time.monotonic() + 10
        while self.started.exists() and not registry.is_loaded(connector_id):
            assert time.monotonic() < deadline, "the slow import did not finish"
            time.sleep(0.01)


def warm_registry(
    make_site: Callable[[Sequence[Dist]], Path],
    monkeypatch: pytest.MonkeyPatch,
    dists: Sequence[Dist],
) -> Registry:
    """Install ``dists``, discover them once (writing the index), forget them, discover again.

    The registry returned took every plugin from the index: none is imported.
    """
    monkeypatch.delenv("SLOW_PLUGIN_GATE", raising=False)
    make_site(dists)
    names = [name for dist in dists for name in dist.entry_points]
    assert discover(allow=names).failures == ()
    for module in list(sys.modules):
        if module.split(".")[0] in set().union(*(d.modules for d in dists)):
            del sys.modules[module]
    registry = discover(allow=names)
    assert not any(registry.is_loaded(i) for i in registry.ids())
    return registry


@pytest.fixture
def slow_and_quick(
    make_site: Callable[[Sequence[Dist]], Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[tuple[Registry, Gate]]:
    registry = warm_registry(
        make_site,
        monkeypatch,
        [
            slow_plugin("slow", "slow_plugin"),
            simple_plugin("quick", "quick", "quick_plugin", "quick"),
        ],
    )
    gate = Gate(tmp_path, monkeypatch)
    yield registry, gate
    gate.release(registry, "slow")  # never leave an import running behind the test


def in_thread(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_slow_import_never_blocks_hook_calls_for_another_plugin(
    slow_and_quick: tuple[Registry, Gate],
) -> None:
    registry, gate = slow_and_quick
    slow = in_thread(lambda: registry.hook_for("slow"))
    gate.wait_started()

    started = time.monotonic()
    assert registry.hook_for("quick").provide_connector()[0]["id"] == "quick"
    assert time.monotonic() - started < 1.0
    assert registry.is_loaded("quick")
    assert not registry.is_loaded("slow")
    assert slow.is_alive()  # still importing

    gate.open()
    slow.join(timeout=10)
    assert registry.is_loaded("slow")
    assert registry.hook_for("slow").provide_connector()[0]["id"] == "slow"


def test_concurrent_first_calls_import_and_register_a_plugin_once(
    slow_and_quick: tuple[Registry, Gate],
) -> None:
    registry, gate = slow_and_quick
    answers: list[object] = []
    callers = [
        in_thread(lambda: answers.append(registry.hook_for("slow").provide_connector()))
        for _ in range(8)
    ]
    background = in_thread(registry.import_plugins)
    gate.wait_started()
    gate.open()
    for thread in [*callers, background]:
        thread.join(timeout=10)

    # A second registration of the same plugin would have been recorded as a failure.
    assert registry.failures == ()
    assert len(answers) == 8
    assert all(answer == answers[0] for answer in answers)
    names = {name for name, _ in registry.plugin_manager.list_name_plugin()}
    assert {"slow", "quick"} <= names


def test_a_plugin_that_failed_to_import_is_not_imported_again(
    make_site: Callable[[Sequence[Dist]], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = warm_registry(
        make_site, monkeypatch, [simple_plugin("flaky", "flaky", "flaky_plugin", "flaky")]
    )
    site = Path(sys.path[0])
    (site / "flaky_plugin").rename(site / "elsewhere")
    try:
        with pytest.raises(PluginLoadError):
            registry.hook_for("flaky")
    finally:
        (site / "elsewhere").rename(site / "flaky_plugin")
    assert registry.is_loaded("flaky")  # nothing left to import: hook_for answers at once
    with pytest.raises(PluginLoadError, match=r"No module named 'flaky_plugin'"):
        registry.hook_for("flaky")
    assert [record.name for record in registry.failures] == ["flaky"]


def test_connectors_registered_in_code_need_no_import(registry: Registry) -> None:
    assert registry.is_loaded("alpha")
    with pytest.raises(UnknownConnectorError):
        registry.is_loaded("nope")
