"""The strict local OAuth 2.0 provider, for tests (see :mod:`connectors_core.sandbox`).

The implementation is the sandbox's own provider; tests import it from here,
with :func:`running` to serve it on loopback in a thread of its own.
"""

from __future__ import annotations

from ..sandbox._provider import (
    ALL_GRANTS,
    Account,
    Client,
    OAuthProvider,
    Quirks,
    quirks_for,
    running,
    verify_answer,
)

__all__ = [
    "ALL_GRANTS",
    "Account",
    "Client",
    "OAuthProvider",
    "Quirks",
    "quirks_for",
    "running",
    "verify_answer",
]
