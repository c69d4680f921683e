"""Password policy: length 12..128, not a common password, not the email."""

import pytest

from services.errors import ValidationFailed
from services.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    common_passwords,
    password_check,
)

EMAIL = "dana.smith@example.com"


def _rule_of(password: str, email: str = EMAIL) -> tuple[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        password_check(password=password, email=email)
    error = caught.value
    assert error.code == "weak_password"
    assert error.field == "password"
    return error.details["rule"], error.message


def test_a_long_uncommon_password_passes():
    password_check(password="velvet-harbor-kettle-92", email=EMAIL)


def test_too_short_names_the_minimum_length():
    rule, message = _rule_of("Short-pw-1")
    assert rule == "too_short"
    assert "at least 12 characters" in message and "(10 characters)" in message
    password_check(password="x7!Qw" + "k" * (MIN_PASSWORD_LENGTH - 5), email=EMAIL)


def test_too_long_names_the_maximum_length():
    rule, message = _rule_of("Zq8!" * 40)
    assert rule == "too_long"
    assert "at most 128 characters" in message
    password_check(password="Zq8!kLmp" * (MAX_PASSWORD_LENGTH // 8), email=EMAIL)


@pytest.mark.parametrize(
    "password", ["password1234", "qwertyuiop123", "PASSWORD1234", "QwertyUiop123", "Baseball2019!"]
)
def test_common_passwords_are_refused_case_insensitively(password):
    rule, message = _rule_of(password)
    assert rule == "common"
    assert "commonly used passwords" in message


def test_the_shipped_list_is_large_and_lowercase():
    passwords = common_passwords()
    assert len(passwords) >= 10_000
    assert "password1234" in passwords and "qwertyuiop123" in passwords
    assert all(p == p.lower() for p in list(passwords)[:1000])


def test_password_equal_to_the_email_is_refused():
    rule, message = _rule_of(EMAIL.upper())
    assert rule == "contains_email"
    assert "email" in message


def test_password_containing_the_email_or_its_local_part_is_refused():
    assert _rule_of("my-" + EMAIL + "-pw")[0] == "contains_email"
    assert _rule_of("Dana.Smith!Rocks99")[0] == "contains_email"


def test_a_very_short_local_part_is_not_forbidden_inside_a_password():
    # "al" appears in many words; forbidding it would refuse good passwords for no gain.
    password_check(password="crystal-valley-lantern", email="al@example.com")
