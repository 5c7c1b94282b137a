"""A Flask application with a sign-in of its own, and the integrations at
``/settings/integrations``, served together by one ASGI server.

It needs ``pip install 'connectors-core[server]' flask a2wsgi``. Run it from the
repository root::

    export FLASK_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')
    export CONNECTORS_SECRET_KEYS=$(connectors keygen)
    export CONNECTORS_PUBLIC_URL=http://127.0.0.1:8000/settings/integrations
    uvicorn docs.examples.flask_host.app:app

then open http://127.0.0.1:8000/ and sign in as ada@org-a.example (password
``lovelace-1843``) or grace@org-b.example (``hopper-1952``): each sees the
connections of their own organization only. Connections are kept in
``connectors.sqlite3`` unless ``CONNECTORS_DATABASE_URL`` names another store.
Flask reads its other settings from ``FLASK_*`` variables
(``FLASK_SESSION_COOKIE_SECURE=true`` behind https).

Flask is a WSGI application and the integrations an ASGI one. ``app`` is an
ASGI (Starlette) application that serves the integrations under their prefix
and hands every other request to Flask through a2wsgi's ``WSGIMiddleware``
(Flask's views run on its thread pool). Being ASGI at the top, it runs the
integrations' lifespan, which delivers their events and closes their store; a
WSGI server with a2wsgi's ``ASGIMiddleware`` in it would never start it.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple
from urllib.parse import urlsplit

from a2wsgi import WSGIMiddleware
from flask import Flask, abort, redirect, render_template_string, request, session
from flask.typing import ResponseReturnValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount
from werkzeug.datastructures import Headers

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

flask_app = Flask(__name__)
flask_app.config.update(SESSION_COOKIE_SAMESITE="Lax")
flask_app.config.from_prefixed_env()  # FLASK_SECRET_KEY signs the session cookie

HOME = """<!doctype html>
<html lang="en"><title>Acme</title>
<h1>Acme</h1>
{% if identity %}
<p>Signed in as {{ identity.name }} ({{ identity.tenant }}).</p>
<p><a href="{{ integrations }}">Integrations</a></p>
<form method="post" action="{{ url_for('sign_out') }}"><button>Sign out</button></form>
{% else %}
<p><a href="{{ url_for('sign_in') }}">Sign in</a></p>
{% endif %}
</html>"""

SIGN_IN = """<!doctype html>
<html lang="en"><title>Acme</title>
<h1>Sign in</h1>
{% if failed %}<p role="alert">Wrong email or password.</p>{% endif %}
<form method="post" action="{{ url_for('sign_in') }}">
<input type="hidden" name="next" value="{{ target }}">
<label>Email <input name="username" type="email" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button>Sign in</button>
</form>
</html>"""


def identity(email: str) -> Identity | None:
    """Who ``email`` is, for the integrations; None for no user of this application."""
    user = USERS.get(email)
    if user is None:
        return None
    return Identity(tenant=user.organization, user=email, name=user.name)


def current_user(request: Request) -> Identity | None:
    """The authenticator: who Flask's session says is signed in, or None."""
    # Flask opens its own session (checking its signature and age, as for a request it
    # serves) from a Flask request carrying this request's cookies.
    cookies = flask_app.request_class({"HTTP_COOKIE": request.headers.get("cookie", "")})
    opened = flask_app.session_interface.open_session(flask_app, cookies)
    return identity(opened.get("user", "")) if opened is not None else None


def posted_from_here(headers: Headers) -> bool:
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


@flask_app.get("/")
def home() -> str:
    who = identity(session.get("user", ""))
    return render_template_string(HOME, identity=who, integrations=f"{PREFIX}/integrations")


@flask_app.route("/login", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    target = request.values.get("next", "/")
    if request.method == "POST":
        # A sign-in posted by another site would sign this browser in to someone else's
        # account, whose organization the user might then connect their accounts to.
        if not posted_from_here(request.headers):
            abort(403)
        email, password = request.form.get("username", ""), request.form.get("password", "")
        user = USERS.get(email)
        if user is not None and hmac.compare_digest(user.password.encode(), password.encode()):
            session.clear()
            session["user"] = email
            return redirect(local_path(target), code=303)
    return render_template_string(SIGN_IN, target=target, failed=request.method == "POST")


@flask_app.post("/logout")
def sign_out() -> ResponseReturnValue:
    session.clear()
    return redirect("/", code=303)


def make_app(registry: Registry | None = None) -> Starlette:
    """This application, with the connectors of ``registry`` (default: those installed)."""
    integrations = create_app(
        registry,
        authenticator=current_user,
        login_url="/login",
        home=("Acme (Flask)", "/"),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Starlette does not run a mounted application's lifespan: run it from this one.
        async with integrations.router.lifespan_context(integrations):
            yield

    # The integrations under their prefix, every other path to Flask. (a2wsgi's type
    # hints for WSGI and ASGI are narrower than Flask's and Starlette's: the ignore.)
    site = Mount("/", app=WSGIMiddleware(flask_app))  # type: ignore[arg-type]
    return Starlette(routes=[Mount(PREFIX, app=integrations), site], lifespan=lifespan)


app = make_app()
