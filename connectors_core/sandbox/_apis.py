"""The connectors' APIs behind the provider: canned verify answers and plugins' stand-ins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import PluginLoadError
from .._fields import placeholders
from .._registry import Registry
from ._quirks import verify_answer

if TYPE_CHECKING:
    from ._provider import OAuthProvider

__all__ = ["answer_verify_requests", "mount_sandbox_apis"]


def answer_verify_requests(provider: OAuthProvider, registry: Registry) -> None:
    """Have ``provider``'s connector API answer each connector's verify request.

    With every value the request reads (``account`` and ``keep`` paths), on
    a literal path; a test may give another answer later (``answer_api``).
    """
    for connector in registry:
        verify = connector.verify
        if verify is not None and not list(placeholders(verify.path)):
            provider.answer_api(
                verify.path, verify_answer(connector), status=verify.expect[0], method=verify.method
            )


def mount_sandbox_apis(provider: OAuthProvider, registry: Registry) -> list[str]:
    """Serve each plugin's ``sandbox_api`` app behind ``provider``; the connector ids served."""
    mounted = []
    for connector in registry:
        if connector.connection is None:
            continue
        try:
            app = registry.hook_for(connector.id).sandbox_api(connector=connector)
        except PluginLoadError:
            continue  # the contract's own tests report a plugin that cannot load
        if app is not None:
            provider.mount_api(connector.id, app)
            mounted.append(connector.id)
    return mounted
