"""Authenticated encryption of secrets at rest, with key rotation.

AES-256-GCM from ``cryptography``. Each ciphertext is
``v1.<key id>.<base64url(nonce + ciphertext + tag)>``: it records which key
encrypted it, so keys can rotate (the first key encrypts, every listed key
decrypts). The *context* (which tenant, connector and field a secret belongs
to) is authenticated as associated data, so a ciphertext copied into another
row or column fails to decrypt instead of handing over the wrong secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._exceptions import ConfigurationError, SecretError

__all__ = ["SecretBox", "connection_context", "generate_key", "state_context"]

_VERSION = "v1"
_NONCE = 12


def generate_key() -> str:
    """A new random key, in the form ``CONNECTORS_SECRET_KEYS`` takes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def connection_context(
    tenant: str, connector_id: str, connection_id: str | None, field: str
) -> str:
    """The associated data binding a connection's secret to its row and column.

    Every backend and :func:`~connectors_core.store._rotate.rotate_keys` seal
    with this, so a ciphertext moved to another row or field fails to decrypt.
    ``connection_id`` None is the form secrets were sealed in before
    connections had ids (rows marked ``legacy_seal``): they open as they are
    until they are written again.
    """
    if connection_id is None:
        return json.dumps(["connection", tenant, connector_id, field])
    return json.dumps(["connection", tenant, connector_id, connection_id, field])


def state_context(state_hash: str, field: str = "code_verifier") -> str:
    """The associated data binding a pending authorization's secret to its row and column.

    The PKCE verifier keeps the form it had before pending authorizations had
    other secrets, so verifiers stored then still decrypt.
    """
    if field == "code_verifier":
        return f"state:{state_hash}"
    return f"state:{state_hash}:{field}"


def _decode_key(text: str, position: int) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        # Never echo the value: it is (meant to be) a key.
        raise ConfigurationError(
            "CONNECTORS_SECRET_KEYS",
            f"key #{position} is not 32 bytes of base64url; make one with `connectors keygen`",
        )
    return raw


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"connectors-core key id\0" + key).hexdigest()[:12]


class SecretBox:
    """Encrypts and decrypts secrets with the configured keys (the first encrypts)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError(
                "CONNECTORS_SECRET_KEYS",
                "no encryption key is configured; refusing to store secrets in plaintext",
            )
        decoded = [_decode_key(text, number) for number, text in enumerate(keys, start=1)]
        self._keys = {_key_id(key): AESGCM(key) for key in decoded}
        self.current_key_id = _key_id(decoded[0])
        """The id of the key new secrets are encrypted with."""
        self.key_ids = tuple(self._keys)
        """The ids of every configured key, newest first (non-secret hashes of the keys)."""

    def __repr__(self) -> str:
        return f"<SecretBox keys={list(self._keys)}>"

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext``, bound to ``context`` (such as ``tenant/connector/field``)."""
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self.current_key_id].encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        payload = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self.current_key_id}.{payload}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Decrypt a ciphertext made by :meth:`encrypt` with the same ``context``.

        :raises SecretError: when it was tampered with, belongs to another
            context, or was encrypted with a key that is no longer configured.
        """
        version, _, rest = token.partition(".")
        key_id, _, payload = rest.partition(".")
        if version != _VERSION or not payload:
            raise SecretError(f"stored secret for {context} is not a ciphertext")
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretError(
                f"stored secret for {context} was encrypted with key {key_id}, "
                "which is not in CONNECTORS_SECRET_KEYS"
            )
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise SecretError(
                f"stored secret for {context} failed authentication (tampered or misplaced)"
            ) from None

    def key_id_of(self, token: str) -> str:
        """The id of the key that encrypted ``token`` ("" when it is not a ciphertext)."""
        return token.split(".")[1] if token.count(".") >= 2 else ""

    def can_open(self, token: str) -> bool:
        """Whether the key that encrypted ``token`` is configured (it may still be tampered)."""
        return self.key_id_of(token) in self._keys
