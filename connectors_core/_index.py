"""The discovery index: what discovery learned, kept until something changes.

One file per Python environment (interpreter and ``sys.path``) in the user's
cache folder. It holds, for every installed distribution that declares entry
points, the stat of its ``entry_points.txt`` and what that file declared; and
for every plugin that loaded, the stat of each of its module files and the
manifests it provided, validated, in wire form. A later ``discover()`` stats
the same files (no plugin import, no metadata parsing) and reuses every entry
whose files are unchanged at full ``st_mtime_ns`` precision; whatever changed
is read or loaded again, and the file is rewritten.

The file is two lines: a JSON header (format, connectors-core version,
interpreter, ``sys.path``, and a CRC-32 of the body) and the JSON body. A file
that cannot be read, parsed or checked is ignored and rebuilt, never trusted.
It is written to a temporary file and renamed into place, so concurrent
writers never leave a torn file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from ._entrypoints import DistInfo, EntryPointSpec, FileStat, stat_file
from ._version import __version__

__all__ = ["ENV_INDEX", "ENV_INDEX_DIR", "Index", "index_directory"]

ENV_INDEX = "CONNECTORS_DISCOVERY_INDEX"
"""``0``/``false``/``no``/``off`` turns the discovery index off."""

ENV_INDEX_DIR = "CONNECTORS_INDEX_DIR"
"""Folder for index files (default: ``$XDG_CACHE_HOME/connectors-core``)."""

FORMAT = 1
_KEEP_FILES = 32  # index files kept per folder (one per distinct environment)


def index_directory(environ: Mapping[str, str]) -> str:
    """The folder index files live in."""
    configured = environ.get(ENV_INDEX_DIR)
    if configured:
        return configured
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "connectors-core")


def _environment(group: str, paths: Sequence[str]) -> list[Any]:
    return [FORMAT, __version__, group, sys.executable, sys.version, list(paths)]


class Index:
    """The index of one environment, loaded from disk and updated in memory."""

    def __init__(self, path: str, environment: list[Any], body: dict[str, Any] | None) -> None:
        self.path = path
        self._environment = environment
        self._old_dists: dict[str, Any] = body["dists"] if body else {}
        self._old_plugins: dict[str, Any] = body["plugins"] if body else {}
        self._dists: dict[str, Any] = {}
        self._plugins: dict[str, Any] = {}
        self.changed = body is None

    @classmethod
    def open(cls, directory: str, group: str, paths: Sequence[str]) -> Index:
        """Read the index for this environment; an unusable file reads as empty."""
        environment = _environment(group, paths)
        key = json.dumps(environment[2:], separators=(",", ":")).encode()
        name = f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}.json"
        path = os.path.join(directory, name)
        return cls(path, environment, _read(path, environment))

    # --- distributions -----------------------------------------------------------

    def entry_points(
        self, dist: DistInfo, group: str
    ) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        """Name, version and ``group`` entry points of ``dist``, from the index when fresh."""
        cached = self._old_dists.get(dist.path)
        if cached is not None and _same_stat(cached["stat"], dist.entry_points_stat):
            name, version, pairs = cached["name"], cached["version"], cached["entryPoints"]
            entry_points = [(n, v) for n, v in pairs]
        else:
            self.changed = True
            entry_points = dist.entry_points(group)
            name, version = dist.name_and_version() if entry_points else (None, None)
        self._dists[dist.path] = {
            "stat": dist.entry_points_stat,
            "name": name,
            "version": version,
            "entryPoints": entry_points,
        }
        return name, version, entry_points

    # --- plugins -------------------------------------------------------------

    @staticmethod
    def _key(spec: EntryPointSpec) -> str:
        return f"{spec.dist_path}\n{spec.name}\n{spec.value}"

    def lookup(self, spec: EntryPointSpec) -> tuple[list[dict[str, Any]] | None, list[str]]:
        """The manifests ``spec``'s plugin provided, if none of its files changed.

        :return: ``(manifests, [])`` when the entry is fresh; ``(None, changed)``
            otherwise, where ``changed`` lists the module files edited since.
        """
        key = self._key(spec)
        cached = self._old_plugins.get(key)
        if cached is None:
            return None, []
        changed = [path for path, stat in cached["files"] if not _same_stat(stat, stat_file(path))]
        if changed:
            return None, changed
        self._plugins[key] = cached
        manifests: list[dict[str, Any]] = cached["manifests"]
        return manifests, []

    def store(
        self,
        spec: EntryPointSpec,
        files: Sequence[tuple[str, FileStat]],
        manifests: Sequence[dict[str, Any]],
    ) -> None:
        """Remember a plugin that loaded: its module files and validated manifests."""
        self._plugins[self._key(spec)] = {"files": list(files), "manifests": list(manifests)}
        self.changed = True

    # --- persistence ---------------------------------------------------------

    def save(self) -> None:
        """Write the index if anything changed; failures to write are not errors."""
        stale = self._old_plugins.keys() - self._plugins.keys()
        if not (self.changed or stale or self._old_dists.keys() - self._dists.keys()):
            return
        body = json.dumps(
            {"dists": self._dists, "plugins": self._plugins}, separators=(",", ":")
        ).encode()
        header = json.dumps({"environment": self._environment, "crc32": zlib.crc32(body)})
        directory = os.path.dirname(self.path)
        temporary = f"{self.path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        try:
            os.makedirs(directory, exist_ok=True)
            with open(temporary, "xb") as f:
                f.write(header.encode() + b"\n" + body)
            os.replace(temporary, self.path)
        except OSError:
            _remove(temporary)
            return
        _prune(directory)


def _same_stat(cached: Any, current: FileStat) -> bool:
    if cached is None or current is None:
        return cached is None and current is None
    return tuple(cached) == current


def _read(path: str, environment: list[Any]) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
        head, _, body = data.partition(b"\n")
        header = json.loads(head)
        if header["environment"] != environment or header["crc32"] != zlib.crc32(body):
            return None
        parsed = json.loads(body)
        if not (isinstance(parsed["dists"], dict) and isinstance(parsed["plugins"], dict)):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return parsed  # type: ignore[no-any-return]


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _prune(directory: str) -> None:
    """Keep the most recently written index files only."""
    try:
        with os.scandir(directory) as entries:
            files = [(e.stat().st_mtime_ns, e.path) for e in entries if e.name.endswith(".json")]
    except OSError:
        return
    for _mtime, path in sorted(files, reverse=True)[_KEEP_FILES:]:
        _remove(path)
