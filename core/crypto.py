"""Hashing, signing, encryption and random tokens. All keys derive from SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from core.settings import get_settings

# argon2id with argon2-cffi's RFC 9106 "low memory" defaults (t=3, m=64 MiB, p=4).
_password_hasher = PasswordHasher()


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
    return _password_hasher.check_needs_rehash(password_hash)


def new_token(nbytes: int = 32) -> str:
    """An opaque URL-safe random token (default 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """Keyed SHA-256 of a high-entropy token; what the database stores instead of the token."""
    key = _derive_key(b"token-hash")
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _derive_key(purpose: bytes) -> bytes:
    secret = get_settings().secret_key.encode()
    return hmac.new(secret, b"creative-studio:" + purpose, hashlib.sha256).digest()


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive_key(b"encryption-at-rest")))


def encrypt(plaintext: str) -> str:
    """Encrypt a secret for storage (OAuth tokens, TOTP secrets)."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:  # wrong key or tampered value
        raise ValueError("stored secret cannot be decrypted with the current SECRET_KEY") from exc


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"creative-studio:{purpose}")


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
