"""The sandbox: try every OAuth connector end to end before any provider knows your app.

``create_app(..., sandbox=True)`` (and ``connectors serve --demo``) serves a
local OAuth provider at ``<mount point>/sandbox`` and points every OAuth
connector without a configured client at it: Connect leads to its consent
page, Approve comes back connected (account ``sandbox-org``), and the
connector's API is the plugin's ``sandbox_api`` stand-in, or canned answers.
Every page says "Sandbox", and so does the JSON catalogue (``"sandbox": true``).

It runs only on a loopback public URL or in development mode
(``CONNECTORS_DEV_MODE=1``); anywhere else it is a
:class:`~connectors_core.ConfigurationError` (:func:`check_allowed`). See
``docs/mounting.md`` ("Trying it out: the sandbox").

:class:`OAuthProvider` is the strict provider behind it, also used by the
tests (:mod:`connectors_core.testing.oauth_provider`). Needs the ``server``
extra.
"""

from ._apis import answer_verify_requests, mount_sandbox_apis
from ._provider import ALL_GRANTS, Account, Client, OAuthProvider, Quirks, quirks_for
from ._sandbox import (
    SANDBOX_ACCOUNT,
    SANDBOX_PATH,
    Sandbox,
    check_allowed,
    is_loopback_url,
)

__all__ = [
    "ALL_GRANTS",
    "SANDBOX_ACCOUNT",
    "SANDBOX_PATH",
    "Account",
    "Client",
    "OAuthProvider",
    "Quirks",
    "Sandbox",
    "answer_verify_requests",
    "check_allowed",
    "is_loopback_url",
    "mount_sandbox_apis",
    "quirks_for",
]
