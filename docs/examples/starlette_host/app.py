"""A Starlette application with a sign-in of its own, serving the integrations at
``/settings/integrations``.

It needs ``pip install 'connectors-core[server]' itsdangerous python-multipart``
(SessionMiddleware signs its cookie with itsdangerous; Starlette reads forms with
python-multipart). Run it from the repository root::

    export SESSION_SECRET=$(python -c 'import secrets; print(secrets.token_hex(32))')
    export CONNECTORS_SECRET_KEYS=$(connectors keygen)
    export CONNECTORS_PUBLIC_URL=http://127.0.0.1:8000/settings/integrations
    uvicorn docs.examples.starlette_host.app:app

then open http://127.0.0.1:8000/ and sign in as ada@org-a.example (password
``lovelace-1843``) or grace@org-b.example (``hopper-1952``): each sees the
connections of their own organization only. Connections are kept in
``connectors.sqlite3`` unless ``CONNECTORS_DATABASE_URL`` names another store.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from html import escape
from typing import NamedTuple
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from connectors_core import Registry
from connectors_core.web import Identity, create_app

PREFIX = "/settings/integrations"


class User(NamedTuple):
    name: str
    organization: str
    password: str


# This application's users: two people in two organizations. (A real one keeps
# password hashes in a database.)
USERS = {
    "ada@org-a.example": User("Ada Lovelace", "org-a", "lovelace-1843"),
    "grace@org-b.example": User("Grace Hopper", "org-b", "hopper-1952"),
}


def current_user(request: Request) -> Identity | None:
    """The authenticator: who this application's session says is signed in, or None."""
    email = request.session.get("user", "")
    user = USERS.get(email)
    if user is None:
        return None
    return Identity(tenant=user.organization, user=email, name=user.name)


def posted_from_here(headers: Mapping[str, str]) -> bool:
    """Whether a form was posted by a page of this site: ``Sec-Fetch-Site`` where the
    browser sends it, else ``Origin`` (older browsers), else (neither) yes."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host")


def local_path(target: str) -> str:
    """``target`` if it is a path on this site, else the home page.

    Only local paths: ``https://evil.example/`` and ``//evil.example/`` are other
    sites (an open redirect), and browsers read ``/\\evil.example/`` as the latter
    (once they have dropped tabs and newlines, which isprintable() refuses).
    """
    if target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable():
        return target
    return "/"


def page(body: str) -> HTMLResponse:
    return HTMLResponse(f'<!doctype html><html lang="en"><title>Acme</title>{body}</html>')


def sign_in_page(target: str, *, failed: bool = False) -> HTMLResponse:
    alert = '<p role="alert">Wrong email or password.</p>' if failed else ""
    return page(
        f"<h1>Sign in</h1>{alert}"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{escape(target)}">'
        '<label>Email <input name="username" type="email" autocomplete="username"></label>'
        '<label>Password <input name="password" type="password"'
        ' autocomplete="current-password"></label>'
        "<button>Sign in</button></form>"
    )


async def home(request: Request) -> HTMLResponse:
    identity = current_user(request)
    if identity is None:
        return page('<h1>Acme</h1><p><a href="/login">Sign in</a></p>')
    who = escape(f"{identity.name} ({identity.tenant})")
    integrations = request.app.url_path_for("integrations:page")
    return page(
        f"<h1>Acme</h1><p>Signed in as {who}.</p>"
        f'<p><a href="{integrations}">Integrations</a></p>'
        '<form method="post" action="/logout"><button>Sign out</button></form>'
    )


async def sign_in_form(request: Request) -> HTMLResponse:
    return sign_in_page(request.query_params.get("next", "/"))


async def sign_in(request: Request) -> Response:
    # A sign-in posted by another site would sign this browser in to someone else's
    # account, whose organization the user might then connect their accounts to.
    if not posted_from_here(request.headers):
        return Response("cross-site sign-in refused", status_code=403)
    async with request.form() as form:
        email, password, target = (str(form.get(k, "")) for k in ("username", "password", "next"))
    user = USERS.get(email)
    if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
        return sign_in_page(target, failed=True)
    request.session.clear()
    request.session["user"] = email
    return RedirectResponse(local_path(target), status_code=303)


async def sign_out(request: Request) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


def make_app(registry: Registry | None = None) -> Starlette:
    """This application, with the connectors of ``registry`` (default: those installed)."""
    integrations = create_app(
        registry,
        authenticator=current_user,
        login_url="/login",
        home=("Acme (Starlette)", "/"),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Starlette does not run a mounted application's lifespan: run it from this one.
        async with integrations.router.lifespan_context(integrations):
            yield

    session = Middleware(
        SessionMiddleware,
        secret_key=os.environ["SESSION_SECRET"],
        https_only=os.environ.get("CONNECTORS_PUBLIC_URL", "").startswith("https://"),
    )
    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", sign_in_form, methods=["GET"]),
            Route("/login", sign_in, methods=["POST"]),
            Route("/logout", sign_out, methods=["POST"]),
            Mount(PREFIX, app=integrations),
        ],
        middleware=[session],
        lifespan=lifespan,
    )


app = make_app()
