"""Rotating SECRET_KEY: what the old key protected still opens, and moves to the new key."""

from __future__ import annotations

import pytest

from core import crypto
from core.settings import reset_settings_cache

OLD = "old-secret-Zq7vB2xLk9pW4mN8rT1yH6cF3jD5sA0"
NEW = "new-secret-Pk3xQ9vL2mW7nB4tR8yC1hF6jD0sG5e"


def _use_keys(monkeypatch, current: str, previous: str = "") -> None:
    monkeypatch.setenv("SECRET_KEY", current)
    monkeypatch.setenv("SECRET_KEY_PREVIOUS", previous)
    reset_settings_cache()


def test_a_secret_encrypted_with_the_old_key_decrypts_after_rotation(monkeypatch):
    _use_keys(monkeypatch, OLD)
    stored = crypto.encrypt("JBSWY3DPEHPK3PXP")
    _use_keys(monkeypatch, NEW, previous=OLD)
    assert crypto.decrypt(stored) == "JBSWY3DPEHPK3PXP"


def test_reencrypt_moves_a_stale_value_to_the_new_key_once(monkeypatch):
    _use_keys(monkeypatch, OLD)
    stored = crypto.encrypt("token-value")
    _use_keys(monkeypatch, NEW, previous=OLD)
    fresh = crypto.reencrypt_if_stale(stored)
    assert fresh is not None and fresh != stored
    assert crypto.reencrypt_if_stale(fresh) is None  # already on the current key
    _use_keys(monkeypatch, NEW)  # the old key can now be dropped
    assert crypto.decrypt(fresh) == "token-value"


def test_without_the_old_key_decryption_fails_with_a_message_saying_what_to_do(monkeypatch):
    _use_keys(monkeypatch, OLD)
    stored = crypto.encrypt("secret")
    _use_keys(monkeypatch, NEW)
    with pytest.raises(crypto.SecretUndecryptable, match="SECRET_KEY_PREVIOUS"):
        crypto.decrypt(stored)


def test_links_signed_with_the_old_key_still_verify_and_new_ones_use_the_new_key(monkeypatch):
    _use_keys(monkeypatch, OLD)
    old_link = crypto.sign({"asset": 1}, purpose="asset")
    _use_keys(monkeypatch, NEW, previous=OLD)
    assert crypto.unsign(old_link, purpose="asset", max_age_seconds=60) == {"asset": 1}
    new_link = crypto.sign({"asset": 2}, purpose="asset")
    _use_keys(monkeypatch, NEW)
    assert crypto.unsign(new_link, purpose="asset", max_age_seconds=60) == {"asset": 2}
    with pytest.raises(crypto.SignatureInvalid):
        crypto.unsign(old_link, purpose="asset", max_age_seconds=60)


def test_token_hash_candidates_find_rows_hashed_under_an_old_key(monkeypatch):
    _use_keys(monkeypatch, OLD)
    stored_hash = crypto.hash_token("session-token")
    _use_keys(monkeypatch, NEW, previous=OLD)
    candidates = crypto.token_hash_candidates("session-token")
    assert candidates[0] == crypto.hash_token("session-token") != stored_hash
    assert stored_hash in candidates
