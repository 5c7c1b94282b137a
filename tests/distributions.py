"""Write real, installed-looking plugin distributions for tests.

A distribution here is what pip leaves in ``site-packages``: the package's
modules plus a ``<name>-<version>.dist-info`` folder with ``METADATA``,
``entry_points.txt`` and ``RECORD``. ``importlib.metadata`` reads them exactly
as it reads anything pip installed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path

import attrs

GROUP = "connectors_core"


@attrs.frozen
class Dist:
    """A plugin distribution: name, version, entry points, module sources and data files."""

    name: str
    version: str
    entry_points: Mapping[str, str]
    files: Mapping[str, str]
    data: Mapping[str, bytes] = attrs.field(factory=dict)
    """Other files of the package (icons), written byte for byte."""

    @property
    def modules(self) -> set[str]:
        """Top-level module names this distribution installs."""
        return {path.split("/")[0].removesuffix(".py") for path in self.files}


def _record_line(root: Path, relative: str) -> str:
    data = (root / relative).read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{relative},sha256={digest},{len(data)}"


def install(site: Path, dist: Dist) -> None:
    """Write ``dist`` into the folder ``site`` as pip would install it."""
    written = []
    for relative, source in dist.files.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        written.append(relative)
    for relative, content in dist.data.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(relative)
    folder = f"{re.sub(r'[-_.]+', '_', dist.name)}-{dist.version}.dist-info"
    info = site / folder
    info.mkdir(parents=True, exist_ok=True)
    metadata = f"Metadata-Version: 2.1\nName: {dist.name}\nVersion: {dist.version}\n"
    (info / "METADATA").write_text(metadata, encoding="utf-8")
    lines = "".join(f"{name} = {value}\n" for name, value in dist.entry_points.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}", encoding="utf-8")
    (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    meta_files = [f"{folder}/{name}" for name in ("METADATA", "entry_points.txt", "INSTALLER")]
    record = [_record_line(site, f) for f in [*written, *meta_files]]
    (info / "RECORD").write_text("\n".join([*record, f"{folder}/RECORD,,"]) + "\n", "utf-8")


def manifest_source(connector_id: str, **overrides: str) -> str:
    """Python source of a valid api-key manifest mapping, with field overrides."""
    fields = {
        "id": repr(connector_id),
        "name": repr(connector_id.replace("-", " ").title()),
        "summary": repr(f"The {connector_id} connector."),
        "description": repr(f"Connects the app to {connector_id}."),
        "category": repr("marketing"),
        "status": repr("available"),
        "auth": repr({"type": "api-key", "description": "Your API key.", "headerName": "X-Key"}),
        "capabilities": repr([{"id": "sync", "label": "Sync"}]),
        "tags": repr(["test"]),
        **overrides,
    }
    body = ", ".join(f"{key!r}: {value}" for key, value in fields.items())
    return "{" + body + "}"


def simple_plugin(dist_name: str, ep_name: str, module: str, connector_id: str) -> Dist:
    """A well-behaved plugin distribution providing one connector."""
    source = f"""
        from connectors_core import hookimpl

        @hookimpl
        def provide_connector():
            return {manifest_source(connector_id)}
    """
    return Dist(dist_name, "1.0.0", {ep_name: module}, {f"{module}/__init__.py": source})
