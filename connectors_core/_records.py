"""What discovery found out about each plugin, and who provides each connector."""

from __future__ import annotations

import enum

import attrs

__all__ = ["Phase", "PluginRecord", "PluginState", "Provider"]


@attrs.frozen
class Provider:
    """Where a connector came from: a plugin in an installed distribution."""

    plugin: str
    """The plugin's entry-point name, or a label for connectors registered in code."""

    distribution: str | None = None
    """The distribution (pip package) that declares the entry point."""

    version: str | None = None
    """That distribution's version."""

    def __str__(self) -> str:
        if self.distribution is None:
            return f"plugin {self.plugin!r}"
        return f"{self.distribution} {self.version or '?'} (plugin {self.plugin!r})"


class PluginState(enum.Enum):
    """The outcome of discovering one plugin."""

    LOADED = "loaded"
    """Imported, registered, and its connectors (if any) are in the registry."""

    DISABLED = "disabled"
    """Skipped by the allow or deny list, before being imported."""

    FAILED = "failed"
    """Something went wrong; see :attr:`PluginRecord.phase` and :attr:`PluginRecord.error`."""


class Phase(enum.Enum):
    """The discovery step in which a plugin failed."""

    LOAD = "load"
    """Importing the entry point's object raised."""

    REGISTER = "register"
    """pluggy rejected the plugin: an unknown (misspelled) hook or a bad signature."""

    PROVIDE = "provide"
    """``provide_connector`` raised or returned something that is not a manifest."""

    VALIDATE = "validate"
    """A returned manifest is invalid."""

    DUPLICATE = "duplicate"
    """A connector id is already provided by a plugin discovered earlier."""


@attrs.frozen
class PluginRecord:
    """One entry point of the ``connectors_core`` group and what became of it."""

    name: str
    """The entry-point name."""

    value: str
    """The entry-point value, such as ``connectors_evencio`` or ``pkg.mod:plugin``."""

    distribution: str | None
    """The distribution that declares the entry point."""

    version: str | None
    """That distribution's version."""

    state: PluginState
    """Loaded, disabled or failed."""

    phase: Phase | None = None
    """For a failed plugin, the step that failed."""

    error: str | None = None
    """For a failed plugin, what went wrong; for a disabled one, why it was skipped."""

    connectors: tuple[str, ...] = ()
    """Ids of the connectors this plugin provides (loaded plugins only)."""

    @property
    def provider(self) -> Provider:
        """The :class:`Provider` this record describes."""
        return Provider(self.name, self.distribution, self.version)

    def describe(self) -> str:
        """One readable line (more for multi-line errors) about this plugin."""
        head = f"{self.provider}, entry point {self.name} = {self.value}"
        if self.state is PluginState.FAILED:
            phase = self.phase.value if self.phase else "?"
            return f"{head}: failed during {phase}: {self.error}"
        if self.state is PluginState.DISABLED:
            return f"{head}: disabled ({self.error})"
        return f"{head}: loaded ({', '.join(self.connectors) or 'no connectors'})"

    def to_json(self) -> dict[str, object]:
        """Return this record as a JSON-ready mapping (camelCase keys)."""
        return {
            "name": self.name,
            "entryPoint": self.value,
            "distribution": self.distribution,
            "version": self.version,
            "state": self.state.value,
            "phase": self.phase.value if self.phase else None,
            "error": self.error,
            "connectors": list(self.connectors),
        }
