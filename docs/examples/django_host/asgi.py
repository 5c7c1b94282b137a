"""A Django project with a sign-in of its own (django.contrib.auth), and the
integrations at ``/settings/integrations``, served together by one ASGI server.

It needs ``pip install 'connectors-core[server]' django``. Run it from the
repository root::

    export DJANGO_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')
    export CONNECTORS_SECRET_KEYS=$(connectors keygen)
    export CONNECTORS_PUBLIC_URL=http://127.0.0.1:8000/settings/integrations
    uvicorn docs.examples.django_host.asgi:application

then open http://127.0.0.1:8000/ and sign in as ada@org-a.example (password
``lovelace-1843``) or grace@org-b.example (``hopper-1952``): each sees the
connections of their own organization only. Django keeps its users and sessions
in the SQLite file ``DJANGO_DATABASE`` names (default: ``django_host.sqlite3``
in the temporary folder); the connections are kept in ``connectors.sqlite3``
unless ``CONNECTORS_DATABASE_URL`` names another store.

``application`` is an ASGI (Starlette) application that serves the integrations
under their prefix and hands every other request to Django's own ASGI handler.
Starlette runs the integrations' lifespan, which delivers their events and
closes their store; Django's handler serves no lifespan.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module

from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from connectors_core import Registry
from connectors_core.web import Identity, create_app

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")
django_application = get_asgi_application()  # sets Django up: models can be imported now

# What needs Django set up comes after it, not at the top of the module (E402).
from django.conf import settings  # noqa: E402
from django.contrib.auth import aget_user  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.http import HttpRequest  # noqa: E402

from .users import setup  # noqa: E402


async def current_user(request: Request) -> Identity | None:
    """The authenticator: who Django's session says is signed in, or None."""
    # What Django's session and authentication middleware do for a view: open the
    # session the cookie names, in the configured engine, and ask django.contrib.auth
    # whose it is (which also checks it against the user's password hash).
    django_request = HttpRequest()
    engine = import_module(settings.SESSION_ENGINE)
    django_request.session = engine.SessionStore(request.cookies.get(settings.SESSION_COOKIE_NAME))
    user = await aget_user(django_request)
    if not isinstance(user, User):  # AnonymousUser: nobody is signed in
        return None
    organization = await user.groups.values_list("name", flat=True).afirst()
    if organization is None:
        return None
    return Identity(tenant=organization, user=user.get_username(), name=user.get_full_name())


def make_app(registry: Registry | None = None) -> Starlette:
    """This project, with the connectors of ``registry`` (default: those installed)."""
    integrations = create_app(
        registry,
        authenticator=current_user,
        login_url="/login",
        home=("Acme (Django)", "/"),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The demo's database and users (a real project migrates when it deploys), off
        # the event loop. Then the integrations' lifespan, which Starlette does not run.
        await sync_to_async(setup)()
        async with integrations.router.lifespan_context(integrations):
            yield

    # The integrations under their prefix, every other path to Django. (Django's type
    # stubs say its scope is a dict, Starlette's a MutableMapping: the ignore.)
    site = Mount("/", app=django_application)  # type: ignore[arg-type]
    return Starlette(
        routes=[Mount(settings.INTEGRATIONS_PREFIX, app=integrations), site],
        lifespan=lifespan,
    )


application = make_app()
