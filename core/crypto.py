"""Hashing, signing, encryption and random tokens. All keys derive from SECRET_KEY.

Key rotation: set the new SECRET_KEY and list the old one(s) in SECRET_KEY_PREVIOUS. Encrypted
values (2FA secrets, OAuth tokens) still decrypt with an old key and are re-encrypted with the
new one when next used (`reencrypt_if_stale`); signed links made with an old key still verify.
Keyed token hashes are looked up under every key (`token_hash_candidates`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from core.settings import get_settings

# argon2id at OWASP's minimum (Password Storage Cheat Sheet: m=19 MiB, t=2, p=1). Never go
# below it. Passwords used to be hashed with argon2-cffi's RFC 9106 "low memory" profile (t=3,
# m=64 MiB, p=4): about 90 ms per verification on a quiet 2-core server and 150-300 ms on a
# busy one, spent on every sign-in and the largest server-side share of signing in; this costs
# 15-20 ms. Hashes made with the old profile still verify, and `sign_in_password` re-hashes
# them with these parameters on the next successful sign-in (`password_needs_rehash`).
PASSWORD_TIME_COST = 2
PASSWORD_MEMORY_COST_KIB = 19 * 1024
PASSWORD_PARALLELISM = 1
_password_hasher = PasswordHasher(
    time_cost=PASSWORD_TIME_COST,
    memory_cost=PASSWORD_MEMORY_COST_KIB,
    parallelism=PASSWORD_PARALLELISM,
)
# The profile of hashes made before (argon2-cffi's defaults then); accounts that have not
# signed in since still have one. See `password_refusal_work`.
_previous_password_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current ones."""
    return _password_hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=4)
def _decoy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(16))


def password_refusal_work(password_hash: str | None, password: str) -> None:
    """After a refused password, verify it against a decoy of the profile not yet spent.

    A refusal then costs one verification under the current parameters and one under the
    previous ones whatever the address is: unknown (a decoy of the current profile was
    checked), an account re-hashed since the change, or one still on the old profile. Without
    it, an address whose hash is still on the slower old profile would answer measurably later
    than an unknown one, and its timing would tell that an account exists. Successful sign-ins
    never pay it.
    """
    try:
        spent_current = bool(password_hash) and not password_needs_rehash(password_hash)
    except InvalidHashError:  # a damaged stored hash is refused like a wrong password
        spent_current = False
    decoy_hasher = _previous_password_hasher if spent_current else _password_hasher
    verify_password(_decoy_hash(decoy_hasher), password)


def new_token(nbytes: int = 32) -> str:
    """An opaque URL-safe random token (default 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """Keyed SHA-256 of a high-entropy token; what the database stores instead of the token."""
    return _token_hash(_derive_key(b"token-hash"), token)


def token_hash_candidates(token: str) -> list[str]:
    """The token's hash under the current key, then under each previous key (look-ups)."""
    return [_token_hash(_derive_key(b"token-hash", secret), token) for secret in _all_secrets()]


def _token_hash(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def audit_chain_keys() -> list[bytes]:
    """HMAC keys of the audit log's hash chain: the current one first (new entries), then one
    per SECRET_KEY_PREVIOUS (entries hashed before a rotation still verify)."""
    return [_derive_key(b"audit-chain", secret) for secret in _all_secrets()]


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _all_secrets() -> list[str]:
    """The current SECRET_KEY first, then the previous ones (SECRET_KEY_PREVIOUS)."""
    settings = get_settings()
    return [settings.secret_key, *settings.previous_secret_keys]


def _derive_key(purpose: bytes, secret: str | None = None) -> bytes:
    secret_bytes = (secret if secret is not None else get_settings().secret_key).encode()
    return hmac.new(secret_bytes, b"creative-studio:" + purpose, hashlib.sha256).digest()


def _fernet_for(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive_key(b"encryption-at-rest", secret)))


def _fernet() -> MultiFernet:
    """Encrypts with the current key; decrypts with the current or any previous key."""
    return MultiFernet([_fernet_for(secret) for secret in _all_secrets()])


class SecretUndecryptable(ValueError):
    """A stored secret was encrypted with a key this server no longer has."""

    def __init__(self) -> None:
        super().__init__(
            "A stored secret cannot be decrypted with SECRET_KEY or SECRET_KEY_PREVIOUS: it was "
            "encrypted with a key this server no longer has. Add that key to "
            "SECRET_KEY_PREVIOUS, or have the secret set up again."
        )


def encrypt(plaintext: str) -> str:
    """Encrypt a secret for storage (OAuth tokens, TOTP secrets)."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt with the current or a previous key. Raises SecretUndecryptable."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:  # wrong key or tampered value
        raise SecretUndecryptable() from None


def reencrypt_if_stale(ciphertext: str) -> str | None:
    """The value re-encrypted under the current key, or None when it already is.

    Raises SecretUndecryptable when no known key decrypts it.
    """
    try:
        _fernet_for(get_settings().secret_key).decrypt(ciphertext.encode())
        return None
    except InvalidToken:
        pass
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUndecryptable() from None


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with any of them.
    return URLSafeTimedSerializer(list(reversed(_all_secrets())), salt=f"creative-studio:{purpose}")


def sign(value, *, purpose: str) -> str:
    return _serializer(purpose).dumps(value)


class SignatureInvalid(ValueError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "expired" | "invalid"


def unsign(signed: str, *, purpose: str, max_age_seconds: int):
    try:
        return _serializer(purpose).loads(signed, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise SignatureInvalid("expired") from exc
    except BadSignature as exc:
        raise SignatureInvalid("invalid") from exc
