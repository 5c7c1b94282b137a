"""Discovery: from installed entry points to a validated :class:`Registry`.

``discover()`` is the one explicit call that loads plugins. It lists the
``connectors_core`` entry points of the installed distributions, applies the
allow and deny lists *before* importing anything, then takes each plugin, in a
deterministic order (entry-point name, then distribution), through:

1. **load**: import the entry point's object;
2. **register**: register it with pluggy and check its hooks (``check_pending``);
3. **provide**: call its ``provide_connector``;
4. **validate**: validate each manifest it returned;
5. **duplicate**: refuse ids already provided by an earlier plugin.

A plugin failing any step is recorded as failed (with distribution, version,
entry point, phase and error), removed from the plugin manager, and the rest
carry on. Strict mode turns any failure into a :class:`DiscoveryError`, and
also fails a plugin with a function named like a hook (``provide_connector``)
that lacks ``@hookimpl``, which pluggy would otherwise ignore silently.

A manifest error raised by the plugin's own ``define_connector(...)`` (at
import, or inside its hook) names the plugin and the call site,
``plugin 'acme' at acme/__init__.py:12``.

Step 4 also checks each icon file a manifest names in its plugin's package
(:mod:`._icons`): a missing or unsafe icon fails the plugin at ``$.icon``.

With the discovery index (on by default, see :mod:`._index`), steps 1 to 4
are skipped for every plugin whose files (modules and icons) are unchanged
since they last loaded: its validated manifests come from the index, and it
is imported only when one of its hooks is called. Failed plugins are never
taken from the index, so a fixed environment shows up at once, and the
outcome is the same as without the index.
"""

from __future__ import annotations

import os
import sys

from ._bulk import PausedGC
from ._entrypoints import GROUP, EntryPointSpec, normalize, scan
from ._index import ENV_INDEX, Index, index_directory
from ._outcome import Outcome
from ._registry import Registry

# Not `typing.TYPE_CHECKING`: importing typing would cost every start-up (see _index).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import pluggy

__all__ = ["ENV_ALLOW", "ENV_DENY", "ENV_INDEX", "ENV_STRICT", "discover", "survey"]

ENTRY_POINT_GROUP = GROUP

ENV_ALLOW = "CONNECTORS_PLUGINS_ALLOW"
"""Comma-separated plugin names; when set, only these plugins are loaded."""

ENV_DENY = "CONNECTORS_PLUGINS_DENY"
"""Comma-separated plugin names that are never loaded."""

ENV_STRICT = "CONNECTORS_STRICT"
"""``1``/``true``/``yes``/``on`` makes any plugin failure raise DiscoveryError."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def discover(
    *,
    allow: Iterable[str] | None = None,
    deny: Iterable[str] | None = None,
    strict: bool | None = None,
    use_index: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Registry:
    """Load every installed connector plugin and return a :class:`Registry`.

    Idempotent: each call builds a fresh registry from what is installed.

    :param allow: plugin names to load, and no others. A name matches an
        entry-point name or a distribution name. Defaults to
        ``$CONNECTORS_PLUGINS_ALLOW`` (unset: every plugin).
    :param deny: plugin names never to load; wins over ``allow``. Defaults to
        ``$CONNECTORS_PLUGINS_DENY``.
    :param strict: raise :class:`DiscoveryError` if any plugin failed.
        Defaults to ``$CONNECTORS_STRICT``.
    :param use_index: read and update the discovery index, so that unchanged
        plugins are neither imported nor validated again. Defaults to
        ``$CONNECTORS_DISCOVERY_INDEX`` (unset: on).
    :param environ: where the defaults are read from (default ``os.environ``).
    :raises DiscoveryError: in strict mode, listing every failed plugin.
    :raises ConfigurationError: when an environment variable is malformed.
    """
    with PausedGC():  # a warm discovery only allocates, and keeps all it allocates
        registry, strict = _discover(allow, deny, strict, use_index, environ)
    if strict and registry.failures:
        from ._exceptions import DiscoveryError

        raise DiscoveryError(registry.failures)
    return registry


def survey(*, strict: bool | None = None) -> Registry:
    """Discover as :func:`discover` does, but never raise for failed plugins.

    For ``connectors doctor``, which reports every failure instead: in strict
    mode, the checks that only strict discovery makes (hook-like functions
    without ``@hookimpl``) fail their plugin here too.
    """
    with PausedGC():
        return _discover(None, None, strict, None, None)[0]


def _discover(
    allow: Iterable[str] | None,
    deny: Iterable[str] | None,
    strict: bool | None,
    use_index: bool | None,
    environ: Mapping[str, str] | None,
) -> tuple[Registry, bool]:
    env = os.environ if environ is None else environ
    allowed = _names(allow) if allow is not None else _env_names(env, ENV_ALLOW)
    denied = _names(deny) if deny is not None else _env_names(env, ENV_DENY) or set()
    if strict is None:
        strict = _env_flag(env, ENV_STRICT, default=False)
    if use_index is None:
        use_index = _env_flag(env, ENV_INDEX, default=True)

    index, specs = _entry_points(env) if use_index else (None, None)
    if specs is None:
        specs = _entry_points_from_importlib()

    manager: pluggy.PluginManager | None = None
    outcomes: list[Outcome] = []
    owners: dict[str, Outcome] = {}
    for spec in sorted(specs, key=lambda s: s.sort_key):
        reason = _disabled(spec, allowed, denied)
        if reason is not None:
            outcomes.append(Outcome.disabled(spec, reason))
            continue
        cached, changed = index.lookup(spec) if index is not None else (None, [])
        if cached is not None:
            outcome = Outcome.cached(spec, *cached)
        else:
            from . import _loading

            _loading.forget_bytecode(changed)
            manager = manager or _loading.new_manager()
            outcome = _loading.process(manager, spec, strict=strict)
            # A plugin with unmarked hooks is never indexed, so a later strict
            # discovery imports it again and fails it.
            if (
                index is not None
                and outcome.state == "loaded"
                and not _loading.unmarked_hooks(outcome.plugin)
            ):
                index.store(spec, _loading.indexed_files(outcome), _loading.wire_manifests(outcome))
        _claim_ids(outcome, owners, manager)
        outcomes.append(outcome)

    if index is not None:
        index.save()
    return Registry._from_outcomes(outcomes, manager), strict


def _entry_points(env: Mapping[str, str]) -> tuple[Index | None, list[EntryPointSpec] | None]:
    """The plugin entry points, read through the index; (None, None) to fall back."""
    paths = list(sys.path)
    dists = scan(paths)
    if dists is None:
        return None, None
    index = Index.open(index_directory(env), ENTRY_POINT_GROUP, paths)
    specs: list[EntryPointSpec] = []
    for dist in dists:
        if dist.entry_points_stat is None:
            continue
        name, version, pairs = index.entry_points(dist, ENTRY_POINT_GROUP)
        specs.extend(EntryPointSpec(n, v, name, version, dist.path) for n, v in pairs)
    return index, specs


def _entry_points_from_importlib() -> list[EntryPointSpec]:
    """The plugin entry points, read by importlib.metadata (the reference)."""
    from importlib import metadata

    specs: list[EntryPointSpec] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        name, version = (dist.name, dist.version) if dist is not None else (None, None)
        specs.append(EntryPointSpec(ep.name, ep.value, name, version))
    return specs


def _claim_ids(
    outcome: Outcome, owners: dict[str, Outcome], manager: pluggy.PluginManager | None
) -> None:
    """Register ``outcome``'s ids, or fail it if an earlier plugin owns one (all or nothing)."""
    if outcome.state != "loaded":
        return
    ids = outcome.ids
    clash = next((i for i in ids if i in owners), None)
    if clash is None:
        owners.update((i, outcome) for i in ids)
        return
    from ._exceptions import DuplicateConnectorError

    error = DuplicateConnectorError(
        clash, owners[clash].record().provider, outcome.record().provider
    )
    if manager is not None and outcome.plugin is not None:
        manager.unregister(outcome.plugin)
    outcome.fail("duplicate", str(error))


def _disabled(spec: EntryPointSpec, allowed: set[str] | None, denied: set[str]) -> str | None:
    if allowed is None and not denied:
        return None
    names = {normalize(spec.name)}
    if spec.distribution is not None:
        names.add(normalize(spec.distribution))
    if names & denied:
        return f"listed in {ENV_DENY}"
    if allowed is not None and not names & allowed:
        return f"not in {ENV_ALLOW}"
    return None


def _names(values: Iterable[str]) -> set[str]:
    return {normalize(v.strip()) for v in values if v.strip()}


def _env_names(env: Mapping[str, str], variable: str) -> set[str] | None:
    raw = env.get(variable)
    if raw is None or not raw.strip():
        return None
    return _names(raw.replace(",", " ").split())


def _env_flag(env: Mapping[str, str], variable: str, *, default: bool) -> bool:
    raw = env.get(variable, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    from ._exceptions import ConfigurationError

    raise ConfigurationError(variable, f"expected 1/true/yes/on or 0/false/no/off, got {raw!r}")
