"""Start-up's objects kept out of the cyclic garbage collector's way, for long-running servers.

A server's heap is mostly what start-up built: modules, the registry and its
manifests, templates, SQLAlchemy's tables and compiled statements, tens of
thousands of objects that live as long as the process. CPython's full (oldest
generation) collection walks all of them each time it runs, and under load it
runs every second or so: measured with the status route on PostgreSQL, each
took about 55 ms on a 2-core machine, every request in flight waited for it,
and it set the 99th percentile. :func:`gc.freeze` moves the objects alive at
that moment to a permanent generation the collector no longer walks (they are
still freed by reference counting; only a reference cycle among them would
stay): the full collections then take well under a millisecond.
"""

from __future__ import annotations

import gc

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["freeze_after_startup"]


def freeze_after_startup(app: ASGIApp) -> ASGIApp:
    """``app``, which freezes the objects start-up allocated once its start-up completes.

    When ``app``'s lifespan reports start-up complete, the garbage start-up left
    is collected and every object alive is frozen (:func:`gc.freeze`). Wrap the
    outermost app of a server process, once; ``connectors serve`` does.
    Process-wide by nature: a host wraps its own app or calls :func:`gc.freeze`
    itself, at the end of its own start-up.
    """

    async def frozen(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def started(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            await send(message)

        await app(scope, receive, started)

    return frozen
