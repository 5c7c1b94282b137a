"""What an HTTP error a plugin's hook raises means, in one place.

The hooks that call the provider with the ``http`` client they are given
(``connection_account``, ``verify_connection``) let its errors out; they mean
the same everywhere: no answer, a 5xx or a 429 is ``provider_unavailable``
(try again), any other HTTP status is the caller's own refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .._exceptions import IntegrationError, ProviderUnavailableError
from .._manifest import Connector

__all__ = ["provider_errors"]


@contextmanager
def provider_errors(
    connector: Connector, refused: Callable[[int], IntegrationError]
) -> Iterator[None]:
    """Turn the httpx2 errors raised in the block into connectors-core's.

    :param refused: the error for an HTTP status that is not transient.
    """
    import httpx2

    try:
        yield
    except httpx2.TransportError as exc:
        raise ProviderUnavailableError(
            f"the provider could not be reached ({type(exc).__name__})", connector_id=connector.id
        ) from None
    except httpx2.HTTPStatusError as exc:
        status = exc.response.status_code
        if status >= 500 or status == 429:
            raise ProviderUnavailableError(
                f"the provider answered HTTP {status}", connector_id=connector.id
            ) from None
        raise refused(status) from None
