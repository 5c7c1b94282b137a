"""What rendering a page costs beyond the template: route lookups and template checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount, NoMatchFound, Route, Router

from connectors_core import discover
from connectors_core._settings import Settings
from connectors_core.store import generate_key
from connectors_core.web import create_app
from connectors_core.web._forms import BUILTIN, environment
from connectors_core.web._urls import Urls


def test_paths_of_named_routes_are_the_routers_and_stay_so_when_remembered() -> None:
    settings = Settings(
        public_url="http://127.0.0.1:8000/settings",
        database_url="memory://",
        secret_keys=(generate_key(),),
    )
    app = create_app(discover(allow=["evencio"]), settings=settings)
    urls = Urls(settings, app.routes)
    router = Router(routes=list(app.routes))
    scope = {"type": "http", "root_path": ""}
    params = {"connector_id": "evencio", "connection_id": "conn_0123456789abcdef"}
    for _ in range(2):  # the second time from the routes remembered by name
        for route in urls.router.routes:
            name = getattr(route, "name", None)
            if name is None:
                continue
            for given in ({}, {"connector_id": "evencio"}, params):
                try:
                    expected = "/settings" + str(router.url_path_for(name, **given))
                except NoMatchFound:
                    with pytest.raises(NoMatchFound):
                        urls.path(scope, name, **given)
                    assert not urls.has(name, **given)
                else:
                    assert urls.path(scope, name, **given) == expected
                    assert urls.has(name, **given)
    with pytest.raises(NoMatchFound):
        urls.path(scope, "integrations:no-such-route")


def test_a_remembered_route_is_asked_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        public_url="http://127.0.0.1:8000", database_url="memory://", secret_keys=(generate_key(),)
    )
    urls = Urls(settings, create_app(discover(allow=["evencio"]), settings=settings).routes)
    scope = {"type": "http", "root_path": ""}
    first = urls.path(scope, "integrations:disconnect", connector_id="evencio")
    asked: list[str] = []
    for kind in (Route, Mount):
        original = kind.url_path_for

        def counting(self: Any, name: str, /, _original: Any = original, **params: Any) -> Any:
            asked.append(name)
            return _original(self, name, **params)

        monkeypatch.setattr(kind, "url_path_for", counting)
    assert urls.path(scope, "integrations:disconnect", connector_id="evencio") == first
    assert asked == ["integrations:disconnect"]  # not every route before it in turn


def test_built_in_templates_are_not_checked_for_edits_at_every_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hello.html").write_text("Hello v1")
    env = environment([tmp_path])
    assert env.get_template("hello.html").render() == "Hello v1"
    env.get_template("_strings.html")  # loaded (and compiled) once
    env.get_template("connectors_core/card.html")
    checked: list[str] = []
    getmtime = os.path.getmtime

    def counting(path: str) -> float:
        checked.append(os.fspath(path))
        return getmtime(path)

    monkeypatch.setattr(os.path, "getmtime", counting)
    for _ in range(3):
        env.get_template("_strings.html")
        env.get_template("connectors_core/card.html")
    assert not [path for path in checked if path.startswith(str(BUILTIN))]
    # A host's own template is still seen when it is edited.
    (tmp_path / "hello.html").write_text("Hello v2, longer")
    stamp = getmtime(tmp_path / "hello.html") + 5
    os.utime(tmp_path / "hello.html", (stamp, stamp))
    assert env.get_template("hello.html").render() == "Hello v2, longer"
    assert any(path.startswith(str(tmp_path)) for path in checked)
