"""Plain-text rendering of registries, manifests and plugin records."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

from .._manifest import Connector
from .._records import PluginRecord, PluginState, Provider


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Render left-aligned columns separated by two spaces."""
    rows = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def connector_rows(connectors: Iterable[tuple[Connector, Provider]]) -> list[list[str]]:
    """Rows for ``connectors list``."""
    return [
        [
            c.id,
            c.name,
            c.category.value,
            c.status.value,
            c.auth.type,
            f"{p.distribution} {p.version}" if p.distribution else p.plugin,
        ]
        for c, p in connectors
    ]


def connector_details(connector: Connector, provider: Provider) -> str:
    """The human-readable page of ``connectors show``."""
    c = connector
    out = [
        f"{c.name} ({c.id})",
        f"  {c.summary}",
        "",
        f"category:     {c.category.value}",
        f"status:       {c.status.value}",
        f"provided by:  {provider}",
    ]
    if c.publisher is not None:
        extras = ", ".join(x for x in (c.publisher.url, c.publisher.email) if x)
        out.append(f"publisher:    {c.publisher.name}" + (f" ({extras})" if extras else ""))
    if c.docs_path:
        out.append(f"docs:         {c.docs_path}")
    if c.tags:
        out.append(f"tags:         {', '.join(c.tags)}")
    if c.icon:
        out.append(f"icon:         {c.icon}")
    if c.translations:
        out.append(f"languages:    {', '.join(sorted({'en', *c.translations}))}")
    out += ["", "description:", *_indent(c.description), "", f"auth:         {c.auth.type}"]
    from ..flows import flow_for

    flow = flow_for(c)
    for label, value in flow.describe(c):
        out += [f"  {label + ':':<11} {value}"] if label else _indent(value)
    if c.fields:
        out += ["", "fields:"]
        for field in c.fields:
            optional = "" if field.required else ", optional"
            out.append(f"  - {field.label} ({field.id}: {field.type.value}{optional})")
    out += ["", "capabilities:"]
    out += [f"  - {cap.label} ({cap.id})" for cap in c.capabilities]
    if c.setup:
        out += ["", "setup:"]
        for number, step in enumerate(c.setup, start=1):
            out.append(f"  {number}. {step.title}")
            out += _indent(step.description, "     ")
    if c.connection is not None:
        out += ["", "connection:", f"  start:      {c.connection.start_path}"]
        if c.connection.status_path:
            out.append(f"  status:     {c.connection.status_path}")
        if c.connection.disconnect_path:
            out.append(f"  disconnect: {c.connection.disconnect_path}")
    return "\n".join(out)


def _indent(text: str, prefix: str = "  ") -> list[str]:
    return textwrap.wrap(text, width=88, initial_indent=prefix, subsequent_indent=prefix)


def plugin_rows(records: Iterable[PluginRecord]) -> list[list[str]]:
    """Rows for ``connectors doctor``."""
    rows = []
    for r in records:
        if r.state is PluginState.LOADED:
            detail = ", ".join(r.connectors) or "provides no connectors"
        elif r.state is PluginState.FAILED:
            first_line = (r.error or "").splitlines()[0] if r.error else ""
            detail = f"{r.phase.value if r.phase else '?'}: {first_line}"
        else:
            detail = r.error or ""
        rows.append([r.name, r.distribution or "?", r.version or "?", r.state.value, detail])
    return rows
