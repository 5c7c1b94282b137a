"""The discovery index: what discovery learned, kept until something changes.

One file per Python environment (interpreter and ``sys.path``) in the user's
cache folder. It holds, for every installed distribution that declares entry
points, the stat of its ``entry_points.txt`` and what that file declared; and
for every plugin that loaded, the stat of each of its module files (and of
the icon files its manifests name, checked when it loaded), the ids of the
connectors it provided and their validated manifests in wire form. A later
``discover()`` stats the same files (no plugin import, no metadata parsing)
and reuses every entry whose files are unchanged at full ``st_mtime_ns``
precision; whatever changed is read or loaded again, and the file is
rewritten with the fresh entries, the others carried over as they were.

Each plugin's manifests are kept as one marshalled ``bytes`` value inside the
file, decoded only when one of its connectors is first asked for: a start-up
that needs the ids (or a few connectors) does not decode a thousand
manifests, and rewriting the file after one install copies the others' bytes
as they are.

The file is a cache in the same sense as a ``.pyc`` file and uses the same
serialization, :mod:`marshal`: a magic string, the CRC-32 of the payload, and
the payload (the environment it was built for, then the data). Reading it
costs a fraction of parsing JSON and needs no import, which matters here:
every start-up pays for it. A file that cannot be read, fails its checksum,
was built for another environment, or has the wrong shape is ignored and
rebuilt, never trusted. It is written to a temporary file and renamed into
place, so concurrent writers never leave a torn file behind.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
import zlib

from ._entrypoints import DistInfo, EntryPointSpec, FileStat, stat_file
from ._version import __version__

# Not `typing.TYPE_CHECKING`: importing typing would cost every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["ENV_INDEX", "ENV_INDEX_DIR", "Index", "index_directory"]

ENV_INDEX = "CONNECTORS_DISCOVERY_INDEX"
"""``0``/``false``/``no``/``off`` turns the discovery index off."""

ENV_INDEX_DIR = "CONNECTORS_INDEX_DIR"
"""Folder for index files (default: ``$XDG_CACHE_HOME/connectors-core``)."""

FORMAT = 2
_MAGIC = b"connectors-core index\n"
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
        key = repr(environment[2:]).encode()
        name = f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}.index"
        path = os.path.join(directory, name)
        return cls(path, environment, _read(path, environment))

    # --- distributions -----------------------------------------------------------

    def entry_points(
        self, dist: DistInfo, group: str
    ) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        """Name, version and ``group`` entry points of ``dist``, from the index when fresh."""
        cached = self._old_dists.get(dist.path)
        # marshal keeps tuples, so a stored stat compares equal to a fresh one (None too).
        if cached is not None and cached["stat"] == dist.entry_points_stat:
            self._dists[dist.path] = cached
            return cached["name"], cached["version"], cached["entryPoints"]
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

    def lookup(self, spec: EntryPointSpec) -> tuple[tuple[list[str], bytes] | None, list[str]]:
        """The connectors ``spec``'s plugin provided, if none of its files changed.

        :return: ``((ids, manifests), [])`` when the entry is fresh, where
            ``manifests`` is the marshalled list of wire manifests (see
            :func:`load_manifests`); ``(None, changed)`` otherwise, where
            ``changed`` lists the module files edited since.
        """
        key = self._key(spec)
        cached = self._old_plugins.get(key)
        if cached is None:
            return None, []
        changed = [path for path, stat in cached["files"] if stat != stat_file(path)]
        if changed:
            return None, changed
        self._plugins[key] = cached
        return (cached["ids"], cached["manifests"]), []

    def store(
        self,
        spec: EntryPointSpec,
        files: Sequence[tuple[str, FileStat]],
        manifests: Sequence[dict[str, Any]],
    ) -> None:
        """Remember a plugin that loaded: its module files and validated manifests."""
        self._plugins[self._key(spec)] = {
            "files": list(files),
            "ids": [str(m["id"]) for m in manifests],
            "manifests": marshal.dumps(list(manifests)),
        }
        self.changed = True

    # --- persistence ---------------------------------------------------------

    def save(self) -> None:
        """Write the index if anything changed; failures to write are not errors."""
        stale = self._old_plugins.keys() - self._plugins.keys()
        if not (self.changed or stale or self._old_dists.keys() - self._dists.keys()):
            return
        payload = marshal.dumps((self._environment, self._dists, self._plugins))
        directory = os.path.dirname(self.path)
        temporary = f"{self.path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        try:
            os.makedirs(directory, exist_ok=True)
            with open(temporary, "xb") as f:
                f.write(_MAGIC + _crc(payload) + payload)
            os.replace(temporary, self.path)
        except OSError:
            _remove(temporary)
            return
        _prune(directory)


def load_manifests(data: bytes) -> list[dict[str, Any]]:
    """Decode the manifests :meth:`Index.lookup` returned (covered by the file's checksum)."""
    manifests: list[dict[str, Any]] = marshal.loads(data)
    return manifests


def _read(path: str, environment: list[Any]) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    start = len(_MAGIC) + 4
    if not data.startswith(_MAGIC) or data[len(_MAGIC) : start] != _crc(data[start:]):
        return None
    try:
        stored, dists, plugins = marshal.loads(data[start:])
    except (ValueError, EOFError, TypeError):
        return None
    if stored != environment or not (isinstance(dists, dict) and isinstance(plugins, dict)):
        return None
    return {"dists": dists, "plugins": plugins}


def _crc(payload: bytes) -> bytes:
    return zlib.crc32(payload).to_bytes(4, "big")


def _remove(path: str) -> None:
    try:  # noqa: SIM105 - contextlib would be one more import on every start-up
        os.remove(path)
    except OSError:
        pass


def _prune(directory: str) -> None:
    """Keep the most recently written index files only."""
    try:
        with os.scandir(directory) as entries:
            files = [(e.stat().st_mtime_ns, e.path) for e in entries if e.name.endswith(".index")]
    except OSError:
        return
    for _mtime, path in sorted(files, reverse=True)[_KEEP_FILES:]:
        _remove(path)
