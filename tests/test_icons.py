"""Connector icons: read from the plugin's package, checked at discovery and by load_icon."""

from __future__ import annotations

import ast
import hashlib
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from connectors_core import (
    Connector,
    Icon,
    IconError,
    ManifestError,
    Phase,
    PluginRecord,
    PluginState,
    Registry,
    define_connector,
    discover,
    load_icon,
)
from tests.distributions import Dist, install, manifest_source

MakeSite = Callable[[Sequence[Dist]], Path]

SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8">{}</svg>'
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'


def svg(body: str = '<rect width="8" height="8"/>', *, attributes: str = "") -> bytes:
    opening = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"'
    return f"{opening} {attributes}>{body}</svg>".encode()


def png(width: int = 16, height: int = 16, *, crc: bool = True) -> bytes:
    """A real PNG (RGBA, filled) of the given size."""

    def chunk(kind: bytes, body: bytes, good: bool = True) -> bytes:
        checksum = zlib.crc32(kind + body) ^ (0 if good else 1)
        return len(body).to_bytes(4, "big") + kind + body + checksum.to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    rows = b"".join(b"\x00" + b"\x4f\x46\xe5\xff" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header, crc)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


GOOD_SVG = svg(
    '<defs><linearGradient id="g"><stop offset="0" stop-color="#4f46e5"/></linearGradient>'
    "<style>.a { fill: url(#g) }</style></defs>"
    '<rect class="a" width="8" height="8"/><use href="#g"/>'
    '<image width="2" height="2" xlink:href="data:image/png;base64,iVBORw0KGgo="/>',
    attributes=XLINK,
)

# case -> (icon path in the manifest, files of the package, message the check gives)
BAD: dict[str, tuple[str, dict[str, str | bytes], str]] = {
    "script": (
        "icon.svg",
        {"icon.svg": svg("<script>alert(1)</script>")},
        "has a <script> element",
    ),
    "onload": (
        "icon.svg",
        {"icon.svg": svg(attributes='onload="alert(1)"')},
        "has an event handler attribute onload= on <svg>",
    ),
    "external-href": (
        "icon.svg",
        {"icon.svg": svg('<image xlink:href="https://evil.example.net/x.png"/>', attributes=XLINK)},
        "<image> href refers to 'https://evil.example.net/x.png': an icon may refer only to",
    ),
    "use-href": (
        "icon.svg",
        {"icon.svg": svg('<use href="https://evil.example.net/s.svg#a"/>')},
        "<use> href refers to 'https://evil.example.net/s.svg#a'",
    ),
    "javascript-link": (
        "icon.svg",
        {"icon.svg": svg('<a href=" javascript:alert(1)"><rect/></a>')},
        "<a> href refers to 'javascript:alert(1)'",
    ),
    "svg-data": (
        "icon.svg",
        {"icon.svg": svg('<image href="data:image/svg+xml;base64,PHN2Zy8+"/>')},
        "<image> href refers to 'data:image/svg+xml;base64,PHN2Zy8+'",
    ),
    "animated-href": (
        "icon.svg",
        {"icon.svg": svg('<a href="#x"><set attributeName="href" to="javascript:1"/></a>')},
        "<set> animates 'href', which is refused",
    ),
    "css-url": (
        "icon.svg",
        {"icon.svg": svg("<rect style=\"fill: url( 'https://evil.example.net/p' )\"/>")},
        "<rect> style= refers to 'https://evil.example.net/p'",
    ),
    "css-import": (
        "icon.svg",
        {"icon.svg": svg("<style>@import 'https://evil.example.net/a.css';</style>")},
        "has @import in a <style> element",
    ),
    "css-escape": (
        "icon.svg",
        {"icon.svg": svg("<style>rect { fill: u\\72l(https://evil.example.net/p) }</style>")},
        "<style> has a CSS escape",
    ),
    "css-escaped-import": (
        "icon.svg",
        {"icon.svg": svg("<style>@\\69mport 'https://evil.example.net/a.css';</style>")},
        "<style> has a CSS escape",
    ),
    "css-image-set": (
        "icon.svg",
        {
            "icon.svg": svg(
                "<rect style=\"background: image-set('https://evil.example.net/p' 1x)\"/>"
            )
        },
        "<rect> style= loads an image by CSS",
    ),
    "image-src": (
        "icon.svg",
        {"icon.svg": svg('<image src="https://evil.example.net/p.png"/>')},
        "<image> src refers to 'https://evil.example.net/p.png'",
    ),
    "foreign-object": (
        "icon.svg",
        {"icon.svg": svg("<foreignObject><p>hi</p></foreignObject>")},
        "has a <foreignObject> element",
    ),
    "html": (
        "icon.svg",
        {"icon.svg": svg('<h:iframe xmlns:h="http://www.w3.org/1999/xhtml"/>')},
        "has an HTML <iframe> element",
    ),
    "doctype-entity": (
        "icon.svg",
        {
            "icon.svg": b'<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY xxe SYSTEM '
            b'"file:///etc/passwd">]>\n' + svg("<text>&xxe;</text>")
        },
        "has a <!DOCTYPE> or <!ENTITY> declaration",
    ),
    "entity-expansion": (
        "icon.svg",
        {"icon.svg": b'<!doctype svg [<!entity a "aaaa">]>' + svg("<text>&a;</text>")},
        "has a <!DOCTYPE> or <!ENTITY> declaration",
    ),
    "stylesheet": (
        "icon.svg",
        {"icon.svg": b'<?xml-stylesheet href="https://evil.example.net/a.css"?>' + svg()},
        "has a processing instruction <?xml-stylesheet ...?>",
    ),
    "not-svg-root": (
        "icon.svg",
        {"icon.svg": b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>'},
        "is not an SVG image: its root element is <html> in namespace "
        "'http://www.w3.org/1999/xhtml', not an SVG <svg>",
    ),
    "no-namespace": (
        "icon.svg",
        {"icon.svg": b"<svg><rect/></svg>"},
        'is not an SVG image: its root <svg> lacks xmlns="http://www.w3.org/2000/svg"',
    ),
    "malformed": (
        "icon.svg",
        {"icon.svg": svg("<rect>")},
        "is not well-formed XML (mismatched tag, line 1)",
    ),
    "utf-16": (
        "icon.svg",
        {"icon.svg": svg().decode().encode("utf-16")},
        "is UTF-16 text; an SVG icon must be UTF-8",
    ),
    "latin-1": (
        "icon.svg",
        {"icon.svg": svg("<title>caf\xe9</title>").decode().encode("latin-1")},
        "is not UTF-8 text, as an SVG icon must be",
    ),
    "oversized": (
        "icon.svg",
        {"icon.svg": svg("<!--" + "x" * (256 * 1024) + "-->")},
        "is larger than 256 KiB",
    ),
    "wrong-magic": (
        "icon.png",
        {"icon.png": b"GIF89a\x01\x00\x01\x00" + bytes(20)},
        "is neither a PNG (it does not start with the PNG signature) nor an SVG",
    ),
    "png-named-svg": (
        "icon.svg",
        {"icon.svg": png()},
        "holds a PNG image but its name ends in '.svg': they must agree",
    ),
    "svg-named-png": (
        "logo.png",
        {"logo.png": svg()},
        "holds XML (an SVG image) but its name ends in '.png': they must agree",
    ),
    "png-too-wide": ("icon.png", {"icon.png": png(2048, 16)}, "is 2048 x 16 pixels"),
    "png-bad-header": (
        "icon.png",
        {"icon.png": png(crc=False)},
        "is a damaged PNG: its IHDR header fails its checksum",
    ),
    "png-truncated": (
        "icon.png",
        {"icon.png": b"\x89PNG\r\n\x1a\n\x00\x00"},
        "is a damaged PNG: its IHDR header does not follow the signature",
    ),
    "missing": ("static/icon.svg", {}, "no such file in the package"),
    "folder": ("icon.svg", {"icon.svg/readme.txt": "not an icon"}, "is a folder, not a file"),
    "link-out": ("static/icon.svg", {}, "leads outside the plugin's package (through a link)"),
}
GOOD = ("good-svg", "good-png")


def connector(connector_id: str, icon: str | None = None) -> Connector:
    """A valid connector with ``icon``, as the test plugins provide."""
    extra = {} if icon is None else {"icon": repr(icon)}
    return define_connector(ast.literal_eval(manifest_source(connector_id, **extra)))


def module_of(case: str) -> str:
    return "icons_" + case.replace("-", "_")


def icon_dist(case: str, icon: str, files: dict[str, str | bytes]) -> Dist:
    """A plugin distribution whose connector (id ``case``) has ``icon`` in its package."""
    module = module_of(case)
    source = f"""
        from connectors_core import hookimpl

        @hookimpl
        def provide_connector():
            return {manifest_source(case, icon=repr(icon))}
    """
    text = {f"{module}/{path}": c for path, c in files.items() if isinstance(c, str)}
    data = {f"{module}/{path}": c for path, c in files.items() if isinstance(c, bytes)}
    return Dist(
        f"icons-{case}", "1.0.0", {case: module}, {f"{module}/__init__.py": source, **text}, data
    )


DISTS = [
    *(icon_dist(case, icon, files) for case, (icon, files, _) in BAD.items()),
    icon_dist("good-svg", "icon.svg", {"icon.svg": GOOD_SVG}),
    icon_dist("good-png", "a/b/icon.png", {"a/b/icon.png": png(64, 32)}),
]


def forget(modules: set[str]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in modules:
            del sys.modules[name]


@pytest.fixture(scope="module")
def icon_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The icon plugins, installed as pip would, once for this module."""
    site = tmp_path_factory.mktemp("icon-site")
    for dist in DISTS:
        install(site, dist)
    outside = tmp_path_factory.mktemp("outside") / "icon.svg"
    outside.write_bytes(svg())
    (site / module_of("link-out") / "static").mkdir()
    (site / module_of("link-out") / "static" / "icon.svg").symlink_to(outside)
    return site


@pytest.fixture(scope="module")
def icon_registry(icon_site: Path) -> Iterator[Registry]:
    """Discovery of the icon plugins (without the index: each test has its own)."""
    modules = set().union(*(d.modules for d in DISTS))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(icon_site))
        names = [name for d in DISTS for name in d.entry_points]
        yield discover(allow=names, strict=False, use_index=False)
    forget(modules)


def record_of(registry: Registry, name: str) -> PluginRecord:
    (record,) = [r for r in registry.plugins if r.name == name]
    return record


# --- discovery -------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_icon_fails_its_plugin_at_discovery_with_the_icon_path(
    icon_registry: Registry, case: str
) -> None:
    icon, _files, expected = BAD[case]
    record = record_of(icon_registry, case)

    assert (record.state, record.phase) == (PluginState.FAILED, Phase.VALIDATE)
    assert case not in icon_registry
    assert record.error is not None
    head, problem = record.error.splitlines()
    assert head == (
        f"invalid connector manifest in icons-{case} 1.0.0 (plugin '{case}'), "
        f"connector '{case}' (1 problem):"
    )
    assert problem.startswith(f"  $.icon: {icon!r}: {expected}"), problem


@pytest.mark.parametrize("case", list(BAD))
def test_load_icon_refuses_the_same_file_naming_connector_distribution_and_path(
    icon_registry: Registry, case: str
) -> None:
    icon, _files, expected = BAD[case]
    with pytest.raises(IconError) as info:
        load_icon(connector(case, icon), record_of(icon_registry, case))

    error = info.value
    assert isinstance(error, ManifestError)
    assert (error.connector_id, error.distribution, error.icon) == (case, f"icons-{case}", icon)
    assert [p.path for p in error.problems] == ["$.icon"]
    assert error.problems[0].message.startswith(f"{icon!r}: {expected}")
    assert f"icons-{case} 1.0.0 (plugin '{case}'), connector '{case}'" in str(error)


def test_good_icons_load_with_their_media_type_and_etag(icon_registry: Registry) -> None:
    assert not [r for r in icon_registry.failures if r.name in GOOD]

    image = load_icon(icon_registry.get("good-svg"), icon_registry)
    etag = f'"{hashlib.sha256(GOOD_SVG).hexdigest()[:32]}"'
    assert image == Icon(GOOD_SVG, "image/svg+xml", etag)
    raster = load_icon(icon_registry.get("good-png"), record_of(icon_registry, "good-png"))
    assert raster.media_type == "image/png"
    assert raster.data == png(64, 32)
    assert raster.etag != image.etag
    assert "data" not in repr(raster)  # the bytes stay out of logs


def test_a_loaded_icon_is_cached_until_its_file_changes(make_site: MakeSite) -> None:
    site = make_site([icon_dist("cached", "icon.svg", {"icon.svg": svg()})])
    registry = discover(allow=["cached"])
    cached = registry.get("cached")

    first = load_icon(cached, registry)
    assert load_icon(cached, registry) is first

    (site / module_of("cached") / "icon.svg").write_bytes(svg('<circle r="4"/>'))
    second = load_icon(cached, registry)
    assert second.data == svg('<circle r="4"/>')
    assert second.etag != first.etag

    (site / module_of("cached") / "icon.svg").write_bytes(svg(attributes='onclick="x()"'))
    with pytest.raises(IconError, match=r"has an event handler attribute onclick="):
        load_icon(cached, registry)


# --- the index -------------------------------------------------------------------------


def test_the_index_watches_icon_files_and_warm_starts_import_nothing(make_site: MakeSite) -> None:
    site = make_site([icon_dist("indexed", "icon.svg", {"icon.svg": svg()})])
    module = module_of("indexed")
    assert discover(allow=["indexed"]).ids() == ["indexed"]  # cold: imported, icon checked

    forget({module})
    warm = discover(allow=["indexed"])
    assert warm.ids() == ["indexed"]
    assert module not in sys.modules  # taken from the index, icon check included
    assert load_icon(warm.get("indexed"), warm).media_type == "image/svg+xml"
    assert module not in sys.modules  # reading the icon imports nothing either

    (site / module / "icon.svg").write_bytes(svg("<script>alert(1)</script>"))
    broken = discover(allow=["indexed"])
    (record,) = broken.failures
    assert (record.name, record.phase) == ("indexed", Phase.VALIDATE)
    assert "$.icon: 'icon.svg': has a <script> element" in (record.error or "")

    (site / module / "icon.svg").write_bytes(svg())
    assert discover(allow=["indexed"]).ids() == ["indexed"]  # a fixed icon counts at once


def test_strict_discovery_fails_on_a_bad_icon(make_site: MakeSite) -> None:
    from connectors_core import DiscoveryError

    make_site([icon_dist("strict-icon", "gone.svg", {})])
    with pytest.raises(DiscoveryError, match=r"\$\.icon: 'gone.svg': no such file in the package"):
        discover(allow=["strict-icon"], strict=True)


def test_a_path_out_of_the_package_is_refused_before_anything_is_read(
    make_site: MakeSite,
) -> None:
    make_site([icon_dist("escape", "../escape.svg", {})])
    (record,) = discover(allow=["escape"]).failures
    assert record.phase is Phase.VALIDATE
    assert "$.icon: must stay inside the plugin's package (no '..'), got '../escape.svg'" in (
        record.error or ""
    )


# --- what load_icon does not load ----------------------------------------------------------


def test_load_icon_refuses_a_url_no_icon_and_a_connector_registered_in_code() -> None:
    registry = Registry()
    url = registry.register(connector("by-url", "https://cdn.acme.com/i.svg"))
    none = registry.register(connector("no-icon"))
    local = registry.register(connector("local", "i.svg"))

    with pytest.raises(IconError, match="is a URL: link to it"):
        load_icon(url, registry)
    with pytest.raises(IconError, match="the connector has no icon"):
        load_icon(none, registry)
    with pytest.raises(IconError, match="registered in code") as info:
        load_icon(local, registry)
    assert info.value.provider is None
    assert str(info.value).startswith("invalid connector manifest in connector 'local'")


# --- the bundled plugin ------------------------------------------------------------------


def test_the_evencio_icon_loads_from_the_installed_plugin() -> None:
    registry = discover(allow=["evencio"], strict=True)
    icon = load_icon(registry.get("evencio"), registry)

    assert icon.media_type == "image/svg+xml"
    assert icon.data.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
    assert len(icon.data) < 2048
    record = registry.plugin_for("evencio")
    assert record is not None
    assert record.distribution == "connectors-evencio"
    assert load_icon(registry.get("evencio"), record) is icon
