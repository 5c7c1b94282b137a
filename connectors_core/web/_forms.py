"""Server-rendered pages of the routes: the connect form, "disconnect?", "sign in first".

Rendered from Jinja templates (``templates/connect.html``, with the inputs
macro the Integrations page shares), never from HTML strings. A secret input
is never filled in: after a failed submit the form keeps the non-secret
values only, and shows each message beside its input. Every page is in the
request's language (:mod:`._i18n`): its strings through gettext, the
connector's through its manifest's ``translations``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .._manifest import Connector
from .._registry import Registry
from ..flows import flow_for
from . import _i18n
from ._i18n import Language, Languages, LocaleOption
from ._urls import Urls

__all__ = ["Forms", "Pages", "environment"]

HERE = Path(__file__).parent


def day(timestamp: float | None) -> str:
    """A UNIX time as the day it fell on (UTC, ``2026-12-07``); empty for None."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


BUILTIN = HERE / "templates"


class _PackageLoader(FileSystemLoader):
    """The built-in templates: files of the installed package, never edited while it runs,
    so that rendering them does not stat each one (a page with 100 cards includes the card
    template 100 times). A host's template folders are checked for edits as usual."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, _uptodate = super().get_source(environment, template)
        return source, filename, _unchanged


def _unchanged() -> bool:
    return True


def environment(folders: Sequence[str | os.PathLike[str]] = ()) -> Environment:
    """The Jinja environment of the pages: the host's template ``folders`` first, then the
    built-in templates, which are also reachable as ``connectors_core/<name>`` (so that a
    host's ``card.html`` can extend ``connectors_core/card.html`` and change one block)."""
    builtin = _PackageLoader(BUILTIN)
    loader = ChoiceLoader(
        [
            *(FileSystemLoader(Path(folder)) for folder in folders),
            PrefixLoader({"connectors_core": builtin}),
            builtin,
        ]
    )
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # {% trans %} blocks collapse their whitespace, as the extraction does (pyproject.toml).
    env.policies["ext.i18n.trimmed"] = True
    # In the language of the page being rendered (set by Pages.render).
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
        _i18n.gettext, _i18n.ngettext, newstyle=True
    )
    env.filters["day"] = day
    env.filters["category_label"] = _i18n.category_label
    env.filters["status_label"] = _i18n.status_label
    return env


class Pages:
    """Renders the app's HTML pages, with what every template may use.

    Each template gets ``url(name, **params)`` (a route's path where the app is
    mounted), ``static(file)``, ``home`` (``(label, url)`` of the host application,
    or None), ``sandbox``, ``lang`` (the page's language tag), ``csrf_token`` when
    given, and gettext: ``_()``, ``ngettext()`` and ``{% trans %}``, in the request's
    language.
    """

    def __init__(
        self,
        urls: Urls,
        *,
        folders: Sequence[str | os.PathLike[str]] = (),
        home: tuple[str, str] | None = None,
        sandbox: bool = False,
        locale: LocaleOption = None,
    ) -> None:
        self.urls = urls
        self.env = environment(folders)
        self.home = home
        self.sandbox = sandbox
        self.languages = Languages(locale)

    def language(self, request: Request) -> Language:
        """The language ``request`` is answered in."""
        return self.languages.of(request)

    def render(
        self, request: Request, name: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Template ``name`` rendered for ``request`` as an HTML response."""
        scope = request.scope

        def url(route: str, /, **params: Any) -> str:
            return self.urls.path(scope, route, **params)

        def static(file: str) -> str:
            return url("integrations:static", path=file)

        language = self.language(request)
        with _i18n.speaking(language):
            html = self.env.get_template(name).render(
                url=url,
                static=static,
                page_url=self.urls.page(scope),
                home=self.home,
                sandbox=self.sandbox,
                lang=language.tag,
                **context,
            )
        # The same URL answers in another language for another Accept-Language.
        return HTMLResponse(html, status_code=status_code, headers={"Vary": "Accept-Language"})


def plugin_failures(registry: Registry) -> list[dict[str, str]]:
    """The plugins that failed to load, for those allowed to ``manage``: each one's
    name, distribution, phase and the first line of its error (never a traceback)."""
    return [
        {
            "name": record.name,
            "distribution": record.distribution or "?",
            "phase": record.phase.value if record.phase else "?",
            "error": (record.error or "").splitlines()[0][:160] if record.error else "",
        }
        for record in registry.failures
    ]


def connection_title(connector: Connector, status: Mapping[str, Any]) -> str:
    """How the page names one connection: its label, else its account, else its id."""
    details = status.get("status") or {}
    if status.get("error") == "needs_reauth":
        details = {**status.get("account", {}), "label": status.get("label")}
    if details.get("label"):
        return str(details["label"])
    key = connector.connection.account_key if connector.connection else None
    for name in (key, "accountName", "organizationId", "userId", "keyHint"):
        if name and details.get(name):
            return str(details[name])
    return str(details.get("connectionId") or status.get("connectionId") or connector.name)


class Forms:
    """Renders the connect form, "disconnect?" and the signed-out page."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def connect_page(
        self,
        request: Request,
        connector: Connector,
        *,
        action: str,
        csrf_token: str,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        again: bool = False,
        status_code: int = 200,
    ) -> HTMLResponse:
        """The connect form of ``connector``, posting to ``action``; ``values`` and ``errors``
        by input name (``again``: of an existing connection)."""
        language = self.pages.language(request)
        connector = language.localize(connector)
        flow = flow_for(connector)
        inputs = language.inputs(flow.inputs(connector))
        known = {i.name for i in inputs}
        return self.pages.render(
            request,
            "connect.html",
            status_code=status_code,
            connector=connector,
            action=action,
            again=again,
            inputs=inputs,
            values=values,
            errors={name: message for name, message in errors.items() if name in known},
            other_errors=[message for name, message in errors.items() if name not in known],
            csrf_token=csrf_token,
            continues=flow.continues_at_provider(connector),
            sign_in=language.gettext(flow.label),
        )

    def confirm_disconnect_page(
        self,
        request: Request,
        connector: Connector,
        status: Mapping[str, Any],
        *,
        action: str,
        csrf_token: str,
    ) -> HTMLResponse:
        """The page asking whether to disconnect one connection (its status JSON): a form
        posting to ``action``, and a way back."""
        details = status.get("status") or {}
        connector = self.pages.language(request).localize(connector)
        return self.pages.render(
            request,
            "confirm.html",
            connector=connector,
            title=connection_title(connector, status),
            connected_by=(details.get("connectedBy") or {}),
            connected_at=details.get("connectedAt"),
            action=action,
            csrf_token=csrf_token,
        )

    def signed_out(self, request: Request, connector: Connector | None) -> HTMLResponse:
        """A page for a browser without a signed-in user (a 401)."""
        if connector is not None:
            connector = self.pages.language(request).localize(connector)
        return self.pages.render(request, "signed_out.html", status_code=401, connector=connector)
