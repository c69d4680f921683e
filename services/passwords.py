"""Password policy: length, not a common password, not the account's email."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from services.error_codes import Code
from services.errors import DomainError, ValidationFailed, error_with_code

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# A local part shorter than this is too generic to forbid inside a password ("al", "jo").
_MIN_LOCAL_PART_TO_CHECK = 4

COMMON_PASSWORDS_FILE = (
    Path(__file__).resolve().parent.parent / "core" / "data" / "common_passwords.txt"
)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped common-password list, lower-cased (loaded once per process)."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as handle:
        return frozenset(
            line.strip().lower() for line in handle if line.strip() and not line.startswith("#")
        )


def _weak(rule: str, message: str) -> DomainError:
    return error_with_code(
        Code.weak_password, message, base=ValidationFailed, field="password", rule=rule
    )


def password_check(*, password: str, email: str) -> None:
    """Refuse a password that breaks the policy.

    Args:
        password: The candidate password, as typed.
        email: The account's email address (the password may not equal or contain it).

    Raises:
        ValidationFailed: code `weak_password`, `field="password"`, `details["rule"]` one of
            `too_short`, `too_long`, `common`, `contains_email`; the message names the rule.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _weak(
            "too_short",
            f"This password is too short ({len(password)} characters). Use at least "
            f"{MIN_PASSWORD_LENGTH} characters; a few unrelated words make a long, memorable one.",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise _weak(
            "too_long",
            f"This password is too long ({len(password)} characters). Use at most "
            f"{MAX_PASSWORD_LENGTH} characters.",
        )
    lowered = password.strip().lower()
    if lowered in common_passwords():
        raise _weak(
            "common",
            "This password is on the list of commonly used passwords that attackers try "
            "first. Choose a password that is not common, e.g. a few unrelated words.",
        )
    normalized_email = email.strip().lower()
    local_part = normalized_email.split("@", 1)[0]
    if normalized_email and (
        normalized_email in lowered
        or (len(local_part) >= _MIN_LOCAL_PART_TO_CHECK and local_part in lowered)
    ):
        raise _weak(
            "contains_email",
            "This password contains your email address, which is easy to guess. Choose a "
            "password that does not include your email or its name part.",
        )
