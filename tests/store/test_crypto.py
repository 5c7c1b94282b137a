"""Encryption at rest: authenticated, bound to its context, rotatable, loud when wrong."""

from __future__ import annotations

import pytest

from connectors_core import ConfigurationError, SecretError
from connectors_core.store import SecretBox, generate_key

OLD, NEW = generate_key(), generate_key()


def test_round_trip_and_no_plaintext() -> None:
    box = SecretBox([NEW])
    sealed = box.encrypt("refresh-token-value", context="t/evencio/refresh_token")
    assert "refresh-token-value" not in sealed
    assert sealed.startswith(f"v1.{box.current_key_id}.")
    assert box.decrypt(sealed, context="t/evencio/refresh_token") == "refresh-token-value"


def test_the_same_secret_encrypts_differently_each_time() -> None:
    box = SecretBox([NEW])
    assert box.encrypt("x", context="c") != box.encrypt("x", context="c")


def test_a_ciphertext_moved_to_another_context_fails() -> None:
    box = SecretBox([NEW])
    sealed = box.encrypt("tenant-a-token", context="tenant-a/evencio/access_token")
    with pytest.raises(SecretError, match="failed authentication"):
        box.decrypt(sealed, context="tenant-b/evencio/access_token")


@pytest.mark.parametrize("position", [10, 20, -3])
def test_a_tampered_ciphertext_is_an_error_never_plaintext(position: int) -> None:
    box = SecretBox([NEW])
    sealed = box.encrypt("secret", context="c")
    flipped = "A" if sealed[position] != "A" else "B"
    tampered = sealed[:position] + flipped + sealed[position + 1 :]
    with pytest.raises(SecretError):
        box.decrypt(tampered, context="c")


def test_rotation_the_first_key_encrypts_every_key_decrypts() -> None:
    old_box = SecretBox([OLD])
    sealed_with_old = old_box.encrypt("secret", context="c")
    rotated = SecretBox([NEW, OLD])

    assert rotated.decrypt(sealed_with_old, context="c") == "secret"
    assert rotated.key_id_of(sealed_with_old) == old_box.current_key_id
    assert rotated.key_id_of(rotated.encrypt("s", context="c")) == SecretBox([NEW]).current_key_id


def test_a_removed_key_fails_loudly_naming_the_key_id_not_the_key() -> None:
    sealed = SecretBox([OLD]).encrypt("secret", context="c")
    with pytest.raises(SecretError) as info:
        SecretBox([NEW]).decrypt(sealed, context="c")
    assert SecretBox([OLD]).current_key_id in str(info.value)
    assert OLD not in str(info.value)


@pytest.mark.parametrize("keys", [[], ["not-a-key"], [NEW, "short"]])
def test_missing_or_malformed_keys_refuse_to_start(keys: list[str]) -> None:
    with pytest.raises(ConfigurationError, match="CONNECTORS_SECRET_KEYS") as info:
        SecretBox(keys)
    for key in keys:
        assert key not in str(info.value) or (key == NEW and "#2" in str(info.value))


def test_repr_shows_no_key() -> None:
    assert NEW not in repr(SecretBox([NEW]))
