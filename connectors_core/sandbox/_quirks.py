"""How the strict provider departs from the standard for one client, like a real provider.

:class:`Quirks` are enforced by :class:`~connectors_core.sandbox.OAuthProvider`;
:func:`quirks_for` reads them off a connector's manifest, and
:func:`verify_answer` makes the answer to its verify request, so the contract
suite meets each connector with a provider that behaves as its manifest says.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

__all__ = ["Quirks", "quirks_for", "verify_answer"]

_CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
_TOKEN_FIELDS = ("access_token", "token_type", "expires_in", "refresh_token", "scope")


def _one_of(*values: object) -> Callable[[Any, Any, Any], Any]:
    return attrs.validators.in_(values)


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    # A read-only copy; being unhashable, these mappings are left out of the hash.
    return types.MappingProxyType(dict(value))


@attrs.frozen
class Quirks:
    """How the provider departs from its defaults for one client, like a real provider.

    The defaults are today's strict, standard behaviour. Each departure is
    enforced as strictly: a client that does not follow it is refused.
    """

    client_auth: Literal["client_secret_basic", "client_secret_post", "none"] | None = attrs.field(
        default=None, validator=_one_of(None, *_CLIENT_AUTH_METHODS)
    )
    """The only client authentication accepted at the token and revocation endpoints
    (``none``: a public client that sends its ``client_id`` in the form and no secret);
    None accepts Basic or the form. Another method is ``invalid_client``, a 401 with
    ``WWW-Authenticate`` when it was Basic, a 400 otherwise."""
    scope_separator: str = " "
    """What separates scopes in requests and in the response's ``scope``, such as ``","``."""
    pkce: bool = True
    """Whether PKCE (S256) is required; when False a ``code_challenge`` is ignored and
    no ``code_verifier`` is needed, as for providers that do not support it."""
    authorize_params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen, hash=False)
    """Parameters the authorization request must carry with exactly these values,
    such as ``{"access_type": "offline", "prompt": "consent"}``."""
    token_params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen, hash=False)
    """Parameters the code exchange must carry with exactly these values."""
    refresh_params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen, hash=False)
    """Parameters the refresh request must carry with exactly these values."""
    token_request_format: Literal["form", "json"] = attrs.field(
        default="form", validator=_one_of("form", "json")
    )
    """The only body the token endpoint accepts: a form or a JSON object of strings."""
    nest_tokens_under: str | None = None
    """Put the token fields of the token response in an object under this key, next to
    ``"ok": true`` (Slack's ``authed_user``)."""
    expires_in_unit: Literal["seconds", "milliseconds"] = attrs.field(
        default="seconds", validator=_one_of("seconds", "milliseconds")
    )
    """The unit of the response's ``expires_in``; the real lifetime is the same."""
    extra_response: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen, hash=False)
    """Values added at the top level of every token response (Salesforce's ``instance_url``)."""
    issuer: str | None = None
    """Add ``iss`` with this value to every authorization response (RFC 9207)."""
    api_token_header: str = "Authorization"
    """The header the connector API at ``/connector-api`` takes this client's access tokens in."""
    api_token_prefix: str = "Bearer "
    """What comes before the access token in that header (``"OAuth "``; ``""`` for none);
    a scheme ending in a space is compared without regard to case, as HTTP does."""

    def __attrs_post_init__(self) -> None:
        if not self.scope_separator:
            raise ValueError("scope_separator must not be empty")
        # Nested tokens leave the top level free, as Slack's bot token beside the user's.
        nest = self.nest_tokens_under
        reserved = {"ok", nest} if nest else set(_TOKEN_FIELDS)
        if clash := sorted(reserved & set(self.extra_response)):
            raise ValueError(f"extra_response may not set {', '.join(clash)}")


def quirks_for(connector: Any) -> Quirks:
    """The quirks the provider enforces for a connector: exactly what its manifest declares.

    So a connector whose manifest says ``clientAuth: client_secret_post`` meets
    a provider that refuses Basic, one that says ``scopeSeparator: ","`` meets
    one that refuses spaces, and so on (the contract suite's provider).
    """
    from .._manifest import ExpiresInUnit, OAuth

    auth = connector.auth
    if not isinstance(auth, OAuth):
        return Quirks()
    paths = auth.token_response
    nested = None
    if paths is not None and "." in paths.access_token_path:
        nested = paths.access_token_path.rpartition(".")[0]
    return Quirks(
        client_auth=auth.client_auth.value,
        scope_separator=auth.scope_separator,
        pkce=auth.pkce,
        authorize_params={k: v for k, v in auth.authorize_params.items() if "{" not in v},
        token_params={k: v for k, v in auth.token_params.items() if "{" not in v},
        refresh_params={k: v for k, v in auth.refresh_params.items() if "{" not in v},
        token_request_format=auth.token_request_format.value,
        nest_tokens_under=nested,
        expires_in_unit=(
            "milliseconds"
            if paths is not None and paths.expires_in_unit is ExpiresInUnit.MILLISECONDS
            else "seconds"
        ),
        extra_response=_kept_values(paths.keep if paths else ()),
        issuer=auth.issuer,
        api_token_header=auth.header_name,
        api_token_prefix=auth.value_prefix,
    )


def _kept_values(paths: Sequence[str]) -> dict[str, Any]:
    """A token response's extra values at each dotted path (``team.id`` -> ``{"team": {"id"}}``)."""
    extra: dict[str, Any] = {}
    for path in paths:
        *parents, last = path.split(".")
        node = extra
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = f"contract-{last}"
    return extra


def verify_answer(connector: Any) -> dict[str, Any]:
    """A JSON answer to the connector's verify request with every value it reads.

    Each account field and kept value is ``contract-<last part of its path>``
    (``org.id`` -> ``{"org": {"id": "contract-id"}}``).
    """
    verify = connector.verify
    if verify is None:
        return {}
    return _kept_values([*verify.account.values(), *verify.keep])
