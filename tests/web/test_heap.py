"""freeze_after_startup: start-up's objects frozen once the app's start-up completes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from connectors_core.web import freeze_after_startup


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_objects_alive_when_start_up_completes_are_frozen(unfrozen: None) -> None:
    seen: list[int] = []

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        seen.append(gc.get_freeze_count())  # during start-up: nothing frozen yet
        yield

    async def hello(_request: object) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)], lifespan=lifespan)
    with TestClient(freeze_after_startup(app)) as client:
        frozen = gc.get_freeze_count()
        assert client.get("/").text == "hello"  # requests pass through unchanged
    assert seen[0] == 0
    assert frozen > 1000  # the interpreter's, the test session's and the app's objects


def test_an_app_whose_start_up_fails_freezes_nothing(unfrozen: None) -> None:
    down = True

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if down:
            raise RuntimeError("the database is down")
        yield

    app = Starlette(lifespan=lifespan)
    with pytest.raises(RuntimeError, match="the database is down"):  # noqa: SIM117
        with TestClient(freeze_after_startup(app)):
            pass
    assert gc.get_freeze_count() == 0
