"""Installed distributions and their entry points, read cheaply.

:mod:`importlib.metadata` is the reference for what is installed, and
discovery uses it directly when the index is off. Building the index needs
more than it offers, though: the modification time of every distribution's
metadata, and no import of ``importlib.metadata`` itself (its import alone
costs several interpreter start-ups). This module reads the same files the
same way: ``*.dist-info`` / ``*.egg-info`` folders in ``sys.path`` order, the
first distribution of a name wins, ``entry_points.txt`` parsed as
``importlib.metadata`` parses it. A test checks both agree.
"""

from __future__ import annotations

import os

# Not `typing.TYPE_CHECKING`: importing typing would cost every start-up (see _index).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["GROUP", "DistInfo", "EntryPointSpec", "FileStat", "scan", "stat_file", "top_level"]

GROUP = "connectors_core"
"""The entry-point group plugins register under (also pluggy's project name)."""

FileStat = tuple[int, int] | None
"""``(st_mtime_ns, st_size)`` of a file, or None when it does not exist."""

_SUFFIXES = (".dist-info", ".egg-info")


def stat_file(path: str, dir_fd: int | None = None) -> FileStat:
    """Return ``(st_mtime_ns, st_size)`` of ``path``, or None if it is missing.

    :param dir_fd: a folder ``path`` is relative to, opened with :func:`os.open`.
    """
    try:
        result = os.stat(path, dir_fd=dir_fd)
    except OSError:
        return None
    return (result.st_mtime_ns, result.st_size)


# Stat files relative to their folder where the platform can: the kernel then walks one
# path component instead of the whole path, about a quarter off each of thousands of stats.
_DIR_FD = os.stat in os.supports_dir_fd


class DistInfo:
    """One installed distribution's metadata folder, as found on ``sys.path``."""

    __slots__ = ("entry_points_stat", "key", "path", "root")

    def __init__(self, root: str, path: str, key: str, entry_points_stat: FileStat) -> None:
        self.root = root
        """The ``sys.path`` entry it was found in."""
        self.path = path
        """The ``.dist-info`` / ``.egg-info`` folder."""
        self.key = key
        """The normalized distribution name (duplicates on later paths are ignored)."""
        self.entry_points_stat = entry_points_stat
        """Stat of its ``entry_points.txt``, None when it declares no entry points."""

    def entry_points(self, group: str) -> list[tuple[str, str]]:
        """Return ``(name, value)`` of each entry point in ``group``."""
        if self.entry_points_stat is None:
            return []
        try:
            with open(os.path.join(self.path, "entry_points.txt"), encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            return []
        return parse_entry_points(text, group)

    def name_and_version(self) -> tuple[str | None, str | None]:
        """Read ``Name`` and ``Version`` from ``METADATA`` (or ``PKG-INFO``)."""
        for filename in ("METADATA", "PKG-INFO"):
            try:
                with open(os.path.join(self.path, filename), encoding="utf-8") as f:
                    return _parse_headers(f)
            except (OSError, UnicodeDecodeError):
                continue
        return None, None


class EntryPointSpec:
    """An entry point of the plugin group, with its distribution."""

    __slots__ = ("dist_path", "distribution", "name", "value", "version")

    def __init__(
        self,
        name: str,
        value: str,
        distribution: str | None,
        version: str | None,
        dist_path: str | None = None,
    ) -> None:
        self.name = name
        self.value = value
        self.distribution = distribution
        self.version = version
        self.dist_path = dist_path

    @property
    def sort_key(self) -> tuple[str, str, str]:
        """Discovery order: entry-point name, then distribution, then value."""
        return (self.name, self.distribution or "", self.value)

    @property
    def top_level(self) -> str:
        """The top-level package of the object the entry point names."""
        return top_level(self.value)


def top_level(value: str) -> str:
    """The top-level package of the object an entry-point value names (``pkg`` of ``pkg.mod:x``)."""
    return value.partition(":")[0].strip().split(".")[0]


def normalize(name: str) -> str:
    """PEP 503 normalization, as importlib.metadata uses to tell names apart."""
    result = name.replace("-", "_").replace(".", "_").lower()
    while "__" in result:
        result = result.replace("__", "_")
    return result


def scan(paths: Iterable[str]) -> list[DistInfo] | None:
    """List installed distributions in ``paths`` order, the first of each name only.

    Returns None when a path entry is a file (a zip archive), whose contents
    this scanner does not read; the caller then falls back to importlib.metadata.
    """
    seen: set[str] = set()
    found: list[DistInfo] = []
    for root in paths:
        folder = root or "."
        try:
            names = sorted(n for n in os.listdir(folder) if n.lower().endswith(_SUFFIXES))
        except NotADirectoryError:
            return None
        except OSError:
            continue
        prefix = folder if folder.endswith(os.sep) else folder + os.sep
        dir_fd = _open_folder(folder) if names else None
        try:
            for name in names:
                stem = name[: name.rindex(".")].partition("-")[0]
                # Folder names are normally normalized already; the regex is the rare path.
                key = stem.lower() if stem.isidentifier() and "__" not in stem else normalize(stem)
                if key in seen:
                    continue
                seen.add(key)
                if dir_fd is None:
                    stat = stat_file(prefix + name + "/entry_points.txt")
                else:
                    stat = stat_file(name + "/entry_points.txt", dir_fd)
                found.append(DistInfo(root, prefix + name, key, stat))
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
    return found


def _open_folder(folder: str) -> int | None:
    if not _DIR_FD:
        return None
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


def parse_entry_points(text: str, group: str) -> list[tuple[str, str]]:
    """Parse ``entry_points.txt`` the way importlib.metadata does; keep ``group``."""
    section: str | None = None
    pairs: list[tuple[str, str]] = []
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section == group and "=" in line:
            name, value = line.split("=", 1)
            pairs.append((name.rstrip(), value.strip()))
    return pairs


def _parse_headers(lines: Iterable[str]) -> tuple[str | None, str | None]:
    name = version = None
    for line in lines:
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if not sep or line[:1].isspace():
            continue
        if key.lower() == "name" and name is None:
            name = value.strip()
        elif key.lower() == "version" and version is None:
            version = value.strip()
    return name, version
