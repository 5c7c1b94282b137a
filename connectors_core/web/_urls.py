"""Every URL the integration routes produce, built from route names and the mount point.

The app may be served at the root of a site or mounted anywhere inside a
host application (``Mount("/settings/integrations", app=...)``, a Django or
Flask dispatcher, a proxy that strips a prefix). A link, a form's action, a
static file, a fetch of the page's script and a redirect after a flow are all
``<mount point><route path>``: the mount point is the request's ASGI
``root_path`` when the server or the host's router set one, else the path of
``CONNECTORS_PUBLIC_URL`` (a proxy that strips the prefix before the app sees
it). The OAuth ``redirect_uri`` is fixed by the settings alone
(:meth:`Settings.redirect_uri`): providers compare it byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.routing import BaseRoute, NoMatchFound, Router
from starlette.types import Scope

from .._settings import Settings

__all__ = ["Urls", "full_path", "mount_point"]


def mount_point(scope: Scope, settings: Settings) -> str:
    """Where the routes are mounted, as browsers see it (``""`` at the root)."""
    root: str = scope.get("root_path", "")
    return root.rstrip("/") or settings.mount_path


def full_path(scope: Scope, settings: Settings) -> str:
    """The path a browser asked for, mount point included, with its query string."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        # Servers that give the path below the mount point (ASGI's older convention).
        path = mount_point(scope, settings) + path
    query = scope.get("query_string", b"").decode("latin-1")
    return path + (f"?{query}" if query else "")


class Urls:
    """Paths of named routes, where the app is mounted for the request at hand."""

    def __init__(self, settings: Settings, routes: Sequence[BaseRoute] = ()) -> None:
        self.settings = settings
        self.router = Router(routes=list(routes))
        # The route each name (with those parameter names) was found on: a page writes
        # hundreds of links, and the router would try every route in turn, raising
        # NoMatchFound from each, for each of them.
        self._named: dict[tuple[str, frozenset[str]], BaseRoute] = {}

    def path(self, scope: Scope, name: str, /, **params: Any) -> str:
        """The path of route ``name`` with its path parameters, mount point included.

        :raises starlette.routing.NoMatchFound: no route of that name (or parameters).
        """
        return mount_point(scope, self.settings) + self._path(name, params)

    def has(self, name: str, **params: Any) -> bool:
        """Whether a route of that name (taking those parameters) exists."""
        try:
            self._path(name, params)
        except NoMatchFound:
            return False
        return True

    def _path(self, name: str, params: dict[str, Any]) -> str:
        """The route's own path (what ``Router.url_path_for`` gives), the route remembered."""
        asked = (name, frozenset(params))
        known = self._named.get(asked)
        if known is not None:
            return str(known.url_path_for(name, **params))
        for route in self.router.routes:  # in order, as the router does: the first wins
            try:
                found = route.url_path_for(name, **params)
            except NoMatchFound:
                continue
            self._named[asked] = route
            return str(found)
        raise NoMatchFound(name, params)

    def page(self, scope: Scope, **query: str) -> str:
        """Where a browser goes back to after a flow: the fixed ``return_path`` if the
        settings give one, else the Integrations page of this app, with ``query``."""
        target = self.settings.return_path
        if target is None:
            if self.has("integrations:page"):
                target = self.path(scope, "integrations:page")
            else:  # the host draws the page at the usual place
                target = mount_point(scope, self.settings) + "/integrations"
        return target + (f"?{urlencode(query)}" if query else "")
