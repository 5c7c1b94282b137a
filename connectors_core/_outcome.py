"""What discovery made of one entry point, kept cheaply until someone asks.

A plain slotted class rather than an attrs class: a warm discovery builds one
per plugin without importing attrs; :meth:`Outcome.record` turns it into the
public :class:`~connectors_core.PluginRecord` on demand.
"""

from __future__ import annotations

from ._entrypoints import EntryPointSpec

# Not `typing.TYPE_CHECKING`: importing typing would cost every start-up (see _index).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from ._manifest import Connector
    from ._records import PluginRecord

__all__ = ["Outcome"]


class Outcome:
    """The state of one plugin: loaded (now or from the index), disabled or failed."""

    __slots__ = ("connectors", "error", "manifests", "phase", "plugin", "spec", "state")

    def __init__(
        self,
        spec: EntryPointSpec,
        state: str,
        *,
        phase: str | None = None,
        error: str | None = None,
        connectors: Sequence[Connector] = (),
        manifests: Sequence[dict[str, Any]] = (),
        plugin: object = None,
    ) -> None:
        self.spec = spec
        self.state = state
        self.phase = phase
        self.error = error
        self.connectors = list(connectors)
        """Validated connectors, when the plugin was loaded in this process."""
        self.manifests = list(manifests)
        """Validated wire manifests, when they came from the index."""
        self.plugin = plugin
        """The plugin object, or None until it is imported."""

    @classmethod
    def loaded(
        cls, spec: EntryPointSpec, *, connectors: Sequence[Connector], plugin: object
    ) -> Outcome:
        """A plugin imported and validated in this process."""
        return cls(spec, "loaded", connectors=connectors, plugin=plugin)

    @classmethod
    def cached(cls, spec: EntryPointSpec, manifests: Sequence[dict[str, Any]]) -> Outcome:
        """A plugin whose validated manifests came from the index; not imported yet."""
        return cls(spec, "loaded", manifests=manifests)

    @classmethod
    def failed(cls, spec: EntryPointSpec, phase: str, error: str) -> Outcome:
        """A plugin that failed in ``phase``."""
        return cls(spec, "failed", phase=phase, error=error)

    @classmethod
    def disabled(cls, spec: EntryPointSpec, reason: str) -> Outcome:
        """A plugin skipped by the allow or deny list, never imported."""
        return cls(spec, "disabled", error=reason)

    @property
    def ids(self) -> list[str]:
        """The ids of the connectors this plugin provides."""
        if self.connectors:
            return [c.id for c in self.connectors]
        return [str(m["id"]) for m in self.manifests]

    def fail(self, phase: str, error: str) -> None:
        """Mark this plugin failed (its connectors are no longer offered)."""
        self.state, self.phase, self.error = "failed", phase, error
        self.connectors, self.manifests, self.plugin = [], [], None

    def record(self) -> PluginRecord:
        """The public record of this outcome."""
        from ._records import Phase, PluginRecord, PluginState

        spec = self.spec
        return PluginRecord(
            name=spec.name,
            value=spec.value,
            distribution=spec.distribution,
            version=spec.version,
            state=PluginState(self.state),
            phase=Phase(self.phase) if self.phase else None,
            error=self.error,
            connectors=tuple(self.ids) if self.state == "loaded" else (),
        )
