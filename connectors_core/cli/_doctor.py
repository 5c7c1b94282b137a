"""What ``connectors doctor`` says besides the plugin table.

Warnings a plugin author can act on (hook-like functions without
``@hookimpl``, an entry-point name unlike the connector id, missing docs),
and, run inside a plugin's project folder, a section about that plugin first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._entrypoints import normalize
from .._records import PluginRecord, PluginState
from .._registry import Registry
from .._sources import project_entry_points, project_name

__all__ = ["docs_warnings", "plugin_warnings", "project_lines", "project_report"]


def plugin_warnings(registry: Registry) -> list[str]:
    """Warnings about loaded plugins: unmarked hooks, an entry point named unlike its connector."""
    from .. import _loading

    warnings: list[str] = []
    for record in registry.plugins:
        if record.state is not PluginState.LOADED:
            continue
        who = f"plugin {record.name!r} (distribution {record.distribution or '?'})"
        try:
            plugin = _loading.load_object(record.value)
        except (Exception, SystemExit):  # noqa: BLE001 - it loaded for discovery; nothing new to say
            plugin = None
        if plugin is not None:
            unmarked = _loading.unmarked_hooks(plugin)
            warnings.extend(f"{who}: {line}" for line in _loading.unmarked_message(unmarked))
        if len(record.connectors) == 1 and record.connectors[0] != record.name:
            warnings.append(
                f"{who}: the entry-point name {record.name!r} differs from the id of the "
                f"connector it provides, {record.connectors[0]!r}; name the entry point "
                f"{record.connectors[0]!r} so that allow/deny lists and messages match the id"
            )
    return warnings


def docs_warnings(registry: Registry) -> list[str]:
    """Connectors without documentation: no public docs URL, or (in a checkout) no page."""
    pages = Path("docs/connectors")
    warnings = []
    for connector in registry:
        if connector.docs_path is None:
            warnings.append(f"{connector.id} has no docsPath (a public documentation URL)")
        if pages.is_dir() and not (pages / f"{connector.id}.md").is_file():
            warnings.append(f"{connector.id} has no docs page {pages / connector.id}.md")
    return warnings


def project_report(registry: Registry, folder: Path) -> dict[str, Any] | None:
    """The state of the plugin(s) whose project is ``folder``, or None if it is not one.

    A plugin project is a folder whose ``pyproject.toml`` declares entry points
    in the ``connectors_core`` group. Each is matched with what discovery found
    by entry-point name and distribution name.
    """
    entry_points = project_entry_points(folder)
    if not entry_points:
        return None
    name = project_name(folder)
    plugins = []
    for ep_name, value in entry_points:
        record = _find(registry, name, ep_name)
        plugins.append({"name": ep_name, "entryPoint": value, **_status(record, value)})
    return {"project": name, "folder": str(folder), "plugins": plugins}


def _find(registry: Registry, project: str | None, ep_name: str) -> PluginRecord | None:
    for record in registry.plugins:
        if record.name != ep_name:
            continue
        if project is None or record.distribution is None:
            return record
        if normalize(record.distribution) == normalize(project):
            return record
    return None


def _status(record: PluginRecord | None, value: str) -> dict[str, str]:
    if record is None:
        return {
            "state": "not installed",
            "detail": "not installed in this environment; run `pip install -e .` here",
        }
    if record.value != value:
        return {
            "state": "stale",
            "detail": f"installed with entry point {record.value!r}, not {value!r}; "
            "reinstall (`pip install -e .`) to refresh its metadata",
        }
    if record.state is PluginState.LOADED:
        provided = ", ".join(record.connectors) or "no connectors"
        return {"state": "loaded", "detail": f"loaded; provides {provided}"}
    if record.state is PluginState.FAILED:
        phase = record.phase.value if record.phase else "?"
        return {"state": "failed", "detail": f"failed during {phase}:\n{record.error or ''}"}
    return {"state": "disabled", "detail": f"disabled ({record.error})"}


def project_lines(report: dict[str, Any]) -> list[str]:
    """The doctor section about the plugin project in the current folder."""
    project = report["project"] or "(unnamed)"
    lines = [f"This folder is the plugin project {project}:"]
    for plugin in report["plugins"]:
        first, *rest = str(plugin["detail"]).splitlines()
        lines.append(f"  {plugin['name']} = {plugin['entryPoint']}: {first}")
        lines.extend(f"    {line}" for line in rest)
    return lines
