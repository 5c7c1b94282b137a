"""Connector icons: a file in the plugin's package, checked before it is ever served.

A manifest's ``icon`` is either a public https URL (a page links to it;
nothing here fetches it) or a path relative to the top-level package of the
plugin's entry point: with ``evencio = "connectors_evencio"``, ``icon.svg`` is
``connectors_evencio/icon.svg``. :func:`load_icon` reads such a file and checks
it: at most 256 KiB; a PNG with a sound header of at most 1024 x 1024 pixels;
an SVG parsed without any DTD (no ``<!DOCTYPE``, no ``<!ENTITY``), rooted in
an SVG ``<svg>``, with no script, event handler, ``<foreignObject>``, HTML
element, processing instruction, or reference to anything outside itself but
an embedded raster image. The media type is decided by the content (the PNG
signature, the root element), and must agree with the file's name.

Discovery checks each icon when it loads the plugin (a cold start): a bad icon
fails its plugin at ``$.icon``. The discovery index then keeps the icon file's
stat beside the plugin's modules, so a warm start stays import-free and an
edited icon is checked again at the next discovery.

The package is found without importing it when it lives in folders
(``importlib.util.find_spec`` of a top-level name imports nothing); from a zip
archive, through :mod:`importlib.resources`, which imports it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from xml.parsers import expat

import attrs

from ._checks import icon_is_url
from ._entrypoints import FileStat, stat_file, top_level
from ._exceptions import IconError
from ._records import PluginRecord, Provider

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from ._entrypoints import EntryPointSpec
    from ._manifest import Connector
    from ._registry import Registry

__all__ = [
    "MAX_BYTES",
    "MAX_SIDE",
    "Icon",
    "check_plugin_icon",
    "icon_file",
    "load_icon",
    "media_type_of",
]

MAX_BYTES = 256 * 1024
"""The largest icon file, in bytes."""

MAX_SIDE = 1024
"""The widest and tallest PNG icon, in pixels."""

PNG = "image/png"
SVG = "image/svg+xml"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_ROOT = "http://www.w3.org/2000/svg svg"  # expat's name: namespace, space, local name
_XHTML = "http://www.w3.org/1999/xhtml"
_DTD = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_URL_FUNCTION = re.compile(r"url\(\s*['\"]?\s*([^'\")]*)", re.IGNORECASE)
# An embedded raster image; not an SVG, which could hold anything this module refuses.
_EMBEDDED = re.compile(r"data:image/(?:png|jpeg|gif|webp)[;,]", re.IGNORECASE)


@attrs.frozen
class Icon:
    """A connector's icon, read from its plugin's package and checked, ready to serve."""

    data: bytes = attrs.field(repr=False)
    """The file's bytes."""

    media_type: str
    """``image/svg+xml`` or ``image/png``, decided by the content."""

    etag: str
    """A strong HTTP entity tag of the bytes, quoted, ready for an ``ETag`` header."""


class _Refused(ValueError):
    """What is wrong with an icon file, in plain words (becomes an :class:`IconError`)."""


def _refuse(message: str) -> NoReturn:
    raise _Refused(message)


# --- finding the file --------------------------------------------------------------


def _locate(package: str, icon: str) -> tuple[Traversable, str | None]:
    """The resource ``icon`` of ``package``, and the folder it must stay in (None: not on disk)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        _refuse(f"cannot find the package {package!r} ({exc})")
    if spec is None:
        _refuse(f"the package {package!r} is not installed")
    if spec.submodule_search_locations is None:
        _refuse(f"{package!r} is a module, not a package: an icon file lives in a package")
    parts = icon.split("/")
    locations = list(spec.submodule_search_locations)
    if locations and all(os.path.isdir(location) for location in locations):
        # A namespace package may have several folders: the first that has the file wins.
        for location in locations:
            candidate = Path(location, *parts)
            if candidate.exists():
                return candidate, location
        return Path(locations[0], *parts), locations[0]
    try:  # not in folders (a zip archive): importlib.resources imports the package
        root = importlib.resources.files(package)
    except Exception as exc:  # noqa: BLE001 - any import failure is the icon's, reported as such
        _refuse(f"cannot read the package {package!r} ({type(exc).__name__}: {exc})")
    return root.joinpath(*parts), None


def _read(resource: Traversable, folder: str | None) -> bytes:
    if folder is not None:
        real, root = os.path.realpath(str(resource)), os.path.realpath(folder)
        if not real.startswith(root + os.sep):
            _refuse("leads outside the plugin's package (through a link)")
    if not resource.is_file():
        _refuse("is a folder, not a file" if resource.is_dir() else "no such file in the package")
    with resource.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        _refuse(f"is larger than {MAX_BYTES // 1024} KiB")
    return data


# --- checking the content ----------------------------------------------------------


def media_type_of(data: bytes, name: str) -> str:
    """Check an icon file's content; return its media type.

    :param name: the file's name: its suffix must agree with the content.
    :raises ValueError: saying what is wrong with the file.
    """
    if data.startswith(_PNG_SIGNATURE):
        kind = PNG
    elif data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<"):
        kind = SVG
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        _refuse("is UTF-16 text; an SVG icon must be UTF-8")
    else:
        _refuse("is neither a PNG (it does not start with the PNG signature) nor an SVG")
    suffix = os.path.splitext(name)[1]
    if kind != (PNG if suffix == ".png" else SVG):
        content = "a PNG image" if kind == PNG else "XML (an SVG image)"
        _refuse(f"holds {content} but its name ends in {suffix!r}: they must agree")
    if kind == PNG:
        _check_png(data)
    else:
        _check_svg(data)
    return kind


def _check_png(data: bytes) -> None:
    # The signature, then the IHDR chunk: length 13, type, width, height, ..., CRC.
    header = data[8:33]
    if len(header) < 25 or header[:8] != b"\x00\x00\x00\x0dIHDR":
        _refuse("is a damaged PNG: its IHDR header does not follow the signature")
    if zlib.crc32(header[4:21]).to_bytes(4, "big") != header[21:25]:
        _refuse("is a damaged PNG: its IHDR header fails its checksum")
    width, height = int.from_bytes(header[8:12], "big"), int.from_bytes(header[12:16], "big")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        _refuse(f"is {width} x {height} pixels; an icon is at most {MAX_SIDE} x {MAX_SIDE}")


def _check_svg(data: bytes) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        _refuse("is not UTF-8 text, as an SVG icon must be")
    # Before parsing: a DTD is where entities (file reads, exponential expansion) live.
    if _DTD.search(text):
        _refuse("has a <!DOCTYPE> or <!ENTITY> declaration, which an SVG icon must not have")
    checker = _SvgChecker()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = checker.doctype
    parser.EntityDeclHandler = checker.doctype
    parser.ExternalEntityRefHandler = checker.doctype
    parser.ProcessingInstructionHandler = checker.instruction
    parser.StartElementHandler = checker.start
    parser.EndElementHandler = checker.end
    parser.CharacterDataHandler = checker.text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        _refuse(f"is not well-formed XML ({expat.errors.messages[exc.code]}, line {exc.lineno})")


class _SvgChecker:
    """expat handlers refusing anything in an SVG that could run, embed HTML or load a URL."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.style: list[str] | None = None  # the text of the <style> element being read

    def doctype(self, *_: object) -> NoReturn:
        _refuse("has a <!DOCTYPE> or <!ENTITY> declaration, which an SVG icon must not have")

    def instruction(self, target: str, _data: str) -> NoReturn:
        _refuse(f"has a processing instruction <?{target[:20]} ...?>")

    def start(self, name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        if self.root is None:
            self.root = name
            if name != _SVG_ROOT:
                if not namespace and local == "svg":
                    _refuse(f'is not an SVG image: its root <svg> lacks xmlns="{_SVG_ROOT[:-4]}"')
                shown = f"<{local}> in namespace {namespace!r}" if namespace else f"<{local}>"
                _refuse(f"is not an SVG image: its root element is {shown}, not an SVG <svg>")
        if local.lower() == "script":
            _refuse("has a <script> element")
        if local.lower() == "foreignobject":
            _refuse("has a <foreignObject> element (HTML inside the image)")
        if namespace == _XHTML:
            _refuse(f"has an HTML <{local}> element")
        for attribute, value in attributes.items():
            self._attribute(local, attribute.rpartition(" ")[2], value)
        if local == "style":
            self.style = []

    def _attribute(self, element: str, name: str, value: str) -> None:
        if name.lower().startswith("on"):
            _refuse(f"has an event handler attribute {name}= on <{element}>")
        if name == "href":
            _reference(value, f"<{element}> href")
        if name == "attributeName":
            target = value.strip().rpartition(":")[2]
            if target == "href" or target.lower().startswith("on"):
                _refuse(f"<{element}> animates {value.strip()[:40]!r}, which is refused")
        if name == "src":
            _reference(value, f"<{element}> src")
        if name == "style":
            _plain_css(value, f"<{element}> style=")
        for target in _URL_FUNCTION.findall(value):
            _reference(target, f"<{element}> {name}=")

    def text(self, data: str) -> None:
        if self.style is not None:
            self.style.append(data)

    def end(self, name: str) -> None:
        if self.style is not None and name.rpartition(" ")[2] == "style":
            css, self.style = "".join(self.style), None
            if "@import" in css.lower():
                _refuse("has @import in a <style> element")
            _plain_css(css, "<style>")
            for target in _URL_FUNCTION.findall(css):
                _reference(target, "<style> url()")


def _plain_css(css: str, where: str) -> None:
    """Refuse CSS that could spell a reference the checks above would not recognise:
    escapes (``u\\72l(``, ``@\\69mport``) and ``image-set()``/``image()`` with strings."""
    if "\\" in css:
        _refuse(f"{where} has a CSS escape (a backslash), which an icon has no use for")
    lowered = css.lower()
    if "image-set(" in lowered or "image(" in lowered or "@import" in lowered:
        _refuse(f"{where} loads an image by CSS, which an icon has no use for")


def _reference(value: str, where: str) -> None:
    target = value.strip()
    if not target.startswith("#") and not _EMBEDDED.match(target):
        _refuse(
            f"{where} refers to {target[:40]!r}: an icon may refer only to a '#fragment' of "
            "itself or an embedded data:image/ (png, jpeg, gif, webp)"
        )


# --- loading, with a cache ---------------------------------------------------------

_Key = tuple[str, str | None, str | None, str, str]
_CACHE: dict[_Key, tuple[FileStat, Icon]] = {}


def _load(connector_id: str, icon: str, package: str, provider: Provider | None) -> Icon:
    """Read and check the icon, or take it from the cache when its file is unchanged."""

    def failed(message: str) -> IconError:
        return IconError(connector_id, icon, message, provider=provider)

    distribution = provider.distribution if provider else None
    version = provider.version if provider else None
    key = (connector_id, distribution, version, package, icon)
    try:
        resource, folder = _locate(package, icon)
        stat = stat_file(str(resource)) if folder is not None else None
        cached = _CACHE.get(key)
        # On disk, the file's stat tells an edit; in an archive, the version does.
        if cached is not None and cached[0] == stat:
            return cached[1]
        data = _read(resource, folder)
        media_type = media_type_of(data, icon)
    except _Refused as exc:
        raise failed(str(exc)) from None
    except OSError as exc:
        raise failed(f"cannot be read ({exc.strerror or exc})") from None
    result = Icon(data, media_type, f'"{hashlib.sha256(data).hexdigest()[:32]}"')
    _CACHE[key] = (stat, result)
    return result


def load_icon(connector: Connector, plugin: Registry | PluginRecord) -> Icon:
    """Read ``connector``'s icon from its plugin's package and check it.

    ``connector.icon`` is a path relative to the top-level package of the
    plugin's entry point. The file must be at most 256 KiB: a PNG of at most
    1024 x 1024 pixels or a plain SVG (no DTD, script, event handler,
    ``<foreignObject>`` or outside reference), as its content and its name
    both say. An icon loaded once is kept in memory until its file changes.

    :param connector: the connector, as the registry gives it.
    :param plugin: the :class:`~connectors_core.Registry` the connector is in
        (it knows which plugin provides it), or that plugin's
        :class:`~connectors_core.PluginRecord`.
    :return: the icon's bytes, media type and entity tag.
    :raises IconError: when the connector has no icon, its icon is a URL (link to
        it instead), it was registered in code (no package), or the file is
        missing or fails a check; naming the connector, its distribution and ``$.icon``.
    :raises UnknownConnectorError: when ``plugin`` is a registry without the connector.
    """
    record = plugin if isinstance(plugin, PluginRecord) else plugin.plugin_for(connector.id)
    provider = record.provider if record is not None else None
    if connector.icon is None:
        raise IconError(connector.id, None, "the connector has no icon", provider=provider)
    if icon_is_url(connector.icon):
        raise IconError(
            connector.id,
            connector.icon,
            "is a URL: link to it; only an icon inside the plugin's package is loaded",
            provider=provider,
        )
    if record is None:
        raise IconError(
            connector.id,
            connector.icon,
            "the connector was registered in code, so there is no plugin package to read "
            "the icon from",
            provider=None,
        )
    return _load(connector.id, connector.icon, top_level(record.value), provider)


def check_plugin_icon(connector: Connector, spec: EntryPointSpec) -> None:
    """Check the relative icon of a connector a plugin just provided (at discovery).

    :raises IconError: when it is missing or fails a check.
    """
    if connector.icon is None or icon_is_url(connector.icon):
        return
    provider = Provider(spec.name, spec.distribution, spec.version)
    _load(connector.id, connector.icon, spec.top_level, provider)


def icon_file(connector: Connector, spec: EntryPointSpec) -> str | None:
    """The file on disk of a connector's relative icon, for the index to watch; else None."""
    if connector.icon is None or icon_is_url(connector.icon):
        return None
    try:
        resource, folder = _locate(spec.top_level, connector.icon)
    except _Refused:
        return None
    return str(resource) if folder is not None else None
