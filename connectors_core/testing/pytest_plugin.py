"""Fixtures for connector authors, loaded by pytest wherever connectors-core is installed.

Registered through the ``pytest11`` entry point. Loading it costs nothing:
this module imports only pytest, and each fixture imports what it needs when
a test asks for it.

* ``connectors_registry``: a fresh :class:`~connectors_core.Registry` of the
  installed connectors (discovered without the index).
* ``oauth_provider``: the strict local OAuth provider, on loopback, with one
  client per connector (``oauth_provider.client_id_for(id)`` /
  ``oauth_provider.client_secret``), allowed to redirect to that connector's
  callback and enforcing the quirks its manifest declares.
* ``integrations_client``: a Starlette test client of the integration routes,
  with an in-memory store, every OAuth connector pointed at
  ``oauth_provider``, and the tenant taken from the ``x-tenant`` header
  (default ``tenant-1``).

The contract suite for a connector is :class:`connectors_core.testing.contract.ConnectorContract`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from connectors_core import Registry
    from connectors_core.testing.contract import ProviderHandle

TESTSERVER = "http://testserver"


@pytest.fixture
def connectors_registry() -> Registry:
    """Every installed connector, discovered afresh (no index)."""
    from connectors_core import discover

    return discover(use_index=False)


@pytest.fixture
def oauth_provider(connectors_registry: Registry) -> Iterator[ProviderHandle]:
    """The strict local OAuth provider, running on loopback for this test."""
    from connectors_core.testing.contract import start_provider

    with start_provider(connectors_registry, TESTSERVER) as handle:
        yield handle


@pytest.fixture
def integrations_client(
    connectors_registry: Registry, oauth_provider: ProviderHandle
) -> Iterator[Any]:
    """A test client of the integration routes, wired to ``oauth_provider``."""
    from connectors_core.testing.contract import integrations_test_client

    with integrations_test_client(connectors_registry, oauth_provider, TESTSERVER) as client:
        yield client
