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

    __slots__ = (
        "_cached_ids",
        "_manifests",
        "_wire",
        "connectors",
        "error",
        "phase",
        "plugin",
        "spec",
        "state",
    )

    def __init__(
        self,
        spec: EntryPointSpec,
        state: str,
        *,
        phase: str | None = None,
        error: str | None = None,
        connectors: Sequence[Connector] = (),
        cached_ids: Sequence[str] = (),
        wire: bytes | None = None,
        plugin: object = None,
    ) -> None:
        self.spec = spec
        self.state = state
        self.phase = phase
        self.error = error
        self.connectors = list(connectors)
        """Validated connectors, when the plugin was loaded in this process."""
        self._cached_ids = list(cached_ids)
        self._wire = wire  # the index's marshalled manifests, decoded on first use
        self._manifests: list[dict[str, Any]] | None = None
        self.plugin = plugin
        """The plugin object, or None until it is imported."""

    @classmethod
    def loaded(
        cls, spec: EntryPointSpec, *, connectors: Sequence[Connector], plugin: object
    ) -> Outcome:
        """A plugin imported and validated in this process."""
        return cls(spec, "loaded", connectors=connectors, plugin=plugin)

    @classmethod
    def cached(cls, spec: EntryPointSpec, ids: Sequence[str], wire: bytes) -> Outcome:
        """A plugin whose validated manifests came from the index; not imported yet.

        :param ids: the ids of its connectors, in the order of its manifests.
        :param wire: its marshalled wire manifests, decoded by :meth:`manifest`.
        """
        return cls(spec, "loaded", cached_ids=ids, wire=wire)

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
        return list(self._cached_ids)

    def manifest(self, position: int) -> dict[str, Any]:
        """The validated wire manifest at ``position``, for a plugin taken from the index."""
        if self._manifests is None:
            from ._index import load_manifests

            assert self._wire is not None
            self._manifests = load_manifests(self._wire)
        return self._manifests[position]

    def fail(self, phase: str, error: str) -> None:
        """Mark this plugin failed (its connectors are no longer offered)."""
        self.state, self.phase, self.error = "failed", phase, error
        # The manifests stay: a registry built before this failure still lists them.
        self.connectors, self._cached_ids, self.plugin = [], [], None

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
