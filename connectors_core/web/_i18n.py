"""The languages of the pages: gettext catalogues (Babel), one chosen per request.

A catalogue is a ``.po`` file, ``locale/<tag>/LC_MESSAGES/messages.po`` next to
this module, compiled in memory the first time its language is asked for (once
per process; no ``.mo`` file is built or shipped). English, the language the
sources are written in, needs none. A request gets the host's choice
(``create_app(locale=...)``: a tag, or a function of the request), else the
best match of its ``Accept-Language`` header among the languages there are,
else English. The page speaks that one language: its own strings, the
messages of reason codes, and the connectors' display strings (a manifest's
``translations``). JSON answers stay English, except the catalogue's manifests
(``GET /api/integrations?locale=fr``).

Templates translate through gettext calls that read the request's
:class:`Language` from a context variable, set while a page renders.
``docs/i18n.md`` has the workflow (extract, translate, add a locale).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from io import BytesIO
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from .._manifest import Category, Connector, Status
from .._reasons import Reason

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..flows import Input

__all__ = [
    "DEFAULT_LOCALE",
    "N_",
    "Language",
    "Languages",
    "LocaleOption",
    "extract_reasons",
    "locales",
]

LOCALE_DIR = Path(__file__).parent / "locale"
"""The catalogues: ``messages.pot``, and ``<tag>/LC_MESSAGES/messages.po`` per language."""

DEFAULT_LOCALE = "en"
"""The language of the sources, and of a request that asks for none there is."""

LocaleOption = str | Callable[["Request"], str | None] | None
"""``create_app(locale=...)``: None (``Accept-Language`` decides), a tag every request
gets, or a function of the request giving a tag (or None to let ``Accept-Language``
decide)."""

# A language tag as Accept-Language and ?locale= carry it (BCP 47, loosely: ``pt-BR``).
_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")
_MAX_TAG = 35
_MAX_RANGES = 32  # ranges of an Accept-Language header looked at (a header is not a workload)


def N_(message: str) -> str:
    """Mark ``message`` for extraction and return it untranslated (translated where shown)."""
    return message


# --- strings of lower layers, translated where the page shows them --------------------
CATEGORY_LABELS: Mapping[str, str] = {
    Category.EVENTS.value: N_("Events"),
    Category.TICKETING.value: N_("Ticketing"),
    Category.MARKETING.value: N_("Marketing"),
    Category.ASSETS.value: N_("Assets"),
    Category.ANALYTICS.value: N_("Analytics"),
    Category.CUSTOM.value: N_("Custom"),
}
"""The label of each category, in English."""

STATUS_LABELS: Mapping[str, str] = {
    Status.AVAILABLE.value: N_("Available"),
    Status.BETA.value: N_("Beta"),
    Status.COMING_SOON.value: N_("Coming soon"),
    Status.DEPRECATED.value: N_("Deprecated"),
}
"""The label of each connector status, in English."""

FLOW_TEXTS = (
    # The flows' labels (``Flow.label``: how a connector signs in).
    N_("OAuth"),
    N_("API key"),
    N_("Username and password"),
    N_("No credentials"),
    # The labels of the credentials a flow asks for itself (and Basic's defaults).
    N_("Client ID"),
    N_("Client secret"),
    N_("Username"),
    N_("Password"),
)
"""What the flows (a layer below) say on the page; translated when shown."""


# --- catalogues -------------------------------------------------------------------------
@functools.cache
def locales() -> tuple[str, ...]:
    """Every language there is: English, then each one with a catalogue, by tag."""
    found = sorted(path.parent.parent.name for path in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po"))
    return (DEFAULT_LOCALE, *(tag for tag in found if tag != DEFAULT_LOCALE))


@functools.cache
def catalogue(tag: str) -> NullTranslations:
    """The translations of language ``tag`` (one of :func:`locales`), compiled once.

    Fuzzy entries are left out, so their English shows until they are reviewed.
    """
    if tag == DEFAULT_LOCALE:
        return NullTranslations()
    with (LOCALE_DIR / tag / "LC_MESSAGES" / "messages.po").open("rb") as source:
        messages = read_po(source, locale=tag)
    compiled = BytesIO()
    write_mo(compiled, messages, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def accept_language(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first.

    ``fr-CH, fr;q=0.9, en;q=0.8`` is ``["fr-CH", "fr", "en"]``; a range with
    ``q=0``, a malformed one and ``*`` are left out; equal weights keep their order.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "")[:4096].split(",")[:_MAX_RANGES]):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0 and len(tag) <= _MAX_TAG and _TAG.fullmatch(tag):
            ranked.append((-weight, position, tag.replace("_", "-")))
    return [tag for _, _, tag in sorted(ranked)]


def is_tag(value: str) -> bool:
    """Whether ``value`` looks like a language tag (``fr``, ``pt-BR``)."""
    return len(value) <= _MAX_TAG and _TAG.fullmatch(value) is not None


def negotiate(wanted: Sequence[str], available: Collection[str]) -> str | None:
    """The tag of ``available`` that serves ``wanted`` (in order) best, or None.

    A tag matches itself (any case), and a regional tag its language (``fr-CH``
    is served by ``fr``).
    """
    found = negotiate_locale(
        [tag.replace("_", "-") for tag in wanted], list(available), sep="-", aliases={}
    )
    if found is None:
        return None
    by_key = {tag.lower(): tag for tag in available}
    return by_key.get(found.lower())


# --- the request's language ---------------------------------------------------------
@attrs.frozen
class Language:
    """The language of one request: its tag, its catalogue, and the tags its manifests'
    ``translations`` are looked up with (``fr-CA`` before ``fr``)."""

    tag: str
    """The page's language (``en``, ``fr``): ``<html lang>``."""

    translations: NullTranslations = attrs.field(repr=False)
    """Its compiled catalogue."""

    wanted: tuple[str, ...] = ()
    """The tags a connector's translations are chosen by, best first."""

    def gettext(self, message: str) -> str:
        """``message`` in this language (itself when the catalogue lacks it)."""
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The singular or plural message for ``n``, by this language's plural rule."""
        return self.translations.ngettext(singular, plural, n)

    def reason(self, code: str, name: str) -> str:
        """The page's message for reason ``code`` about the connector called ``name``."""
        return self.gettext(Reason.of(code).message).format(name=name)

    def localize(self, connector: Connector) -> Connector:
        """``connector`` with its display strings in this language, where it has them."""
        return connector.localized(self.wanted) if self.wanted else connector

    def inputs(self, inputs: Sequence[Input]) -> tuple[Input, ...]:
        """A connect form's inputs, the labels of the flow's own credentials translated
        (a manifest field's texts come from its connector's translations)."""
        return tuple(
            item if item.field is not None else attrs.evolve(item, label=self.gettext(item.label))
            for item in inputs
        )


ENGLISH = Language(DEFAULT_LOCALE, NullTranslations(), ())
"""The language of the sources, spoken where no request chose one."""

_STATE_KEY = "connectors_core.language"


@attrs.frozen
class Languages:
    """Chooses the language of each request, as the host configured it."""

    option: LocaleOption = None
    """``create_app(locale=...)``."""

    available: tuple[str, ...] = attrs.field(factory=locales)
    """The languages with a catalogue (English included)."""

    def __attrs_post_init__(self) -> None:
        if callable(self.option) and (
            inspect.iscoroutinefunction(self.option)
            or inspect.iscoroutinefunction(type(self.option).__call__)
        ):
            raise ValueError(
                "locale must be a tag or a synchronous function of the request (it runs "
                "while a page renders); read an async preference in the authenticator, "
                "keep it on request.state, and return it from the locale function"
            )
        if isinstance(self.option, str) and negotiate([self.option], self.available) is None:
            raise ValueError(
                f"no catalogue for locale {self.option!r}; there are: {', '.join(self.available)}"
            )

    def preferences(self, request: Request) -> list[str]:
        """The tags the request wants, best first: the host's choice, else its
        ``Accept-Language``."""
        option = self.option
        if isinstance(option, str):
            return [option.replace("_", "-")]
        header = accept_language(request.headers.get("accept-language"))
        if option is not None:
            chosen = option(request)
            if chosen and is_tag(chosen):
                return [chosen.replace("_", "-"), *header]
        return header

    def of(self, request: Request) -> Language:
        """The language of ``request`` (worked out once per request)."""
        state = request.scope.setdefault("state", {})
        found = state.get(_STATE_KEY)
        if isinstance(found, Language):
            return found
        wanted = self.preferences(request)
        tag = negotiate(wanted, self.available) or DEFAULT_LOCALE
        # Regional variants of the page's language first (a manifest may have fr-CA).
        same = [t for t in wanted if t.lower().split("-")[0] == tag.lower()]
        language = Language(tag, catalogue(tag), tuple(dict.fromkeys([*same, tag])))
        state[_STATE_KEY] = language
        return language


# --- what templates call ----------------------------------------------------------------
_current: ContextVar[Language] = ContextVar("connectors_core_language", default=ENGLISH)


@contextlib.contextmanager
def speaking(language: Language) -> Iterator[None]:
    """Make ``language`` the one templates translate into, for the ``with`` block."""
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """``message`` in the language of the page being rendered."""
    return _current.get().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural ``message`` for ``n``, in the language of the page."""
    return _current.get().ngettext(singular, plural, n)


def category_label(value: str) -> str:
    """A template filter: the label of a category value (``events`` → ``Events``)."""
    label = CATEGORY_LABELS.get(value)
    return gettext(label) if label else value.capitalize()


def status_label(value: str) -> str:
    """A template filter: the label of a connector status (``coming-soon`` → ``Coming soon``)."""
    label = STATUS_LABELS.get(value)
    return gettext(label) if label else value.replace("-", " ").capitalize()


# --- extraction -------------------------------------------------------------------------
def extract_reasons(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extractor for ``_reasons.py``: the page message of every reason code.

    The messages stay plain strings in their table (the light core knows nothing of
    gettext); this reads them from the table's source, each with its code and what
    ``{name}`` stands for as a comment for translators.
    """
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Dict)):
            continue
        if not (isinstance(node.target, ast.Name) and node.target.id == "_TABLE"):
            continue
        for key, value in zip(node.value.keys, node.value.values, strict=True):
            if not isinstance(value, ast.Tuple) or not isinstance(key, ast.Attribute):
                continue
            message = ast.literal_eval(value.elts[1])
            code = Reason[key.attr].value
            comment = f"reason {code}" + (
                "; {name} is the connector's name" if "{name}" in message else ""
            )
            yield value.elts[1].lineno, "gettext", message, [comment]
