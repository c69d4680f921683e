"""Every error code the product can raise is in the one catalogue, with a status and an article."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.error_codes import CATALOGUE, Code, error_code_info
from services.errors import DomainError, error_with_code

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for d in ("services", "creative_studio", "state", "jobs", "core")
    for p in (ROOT / d).rglob("*.py")
]


def _codes_in_source() -> set[str]:
    """String literals used as codes: `code = "..."` in error classes, Blocker("...", ...)."""
    found: set[str] = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {getattr(t, "attr", getattr(t, "id", "")) for t in targets}
                if "code" in names and isinstance(node.value, ast.Constant):
                    if isinstance(node.value.value, str) and node.value.value:
                        found.add(node.value.value)
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", ""))
                in {"Blocker", "_deny", "error_with_code"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def test_every_code_raised_in_the_code_is_catalogued():
    missing = sorted(code for code in _codes_in_source() if code not in set(Code))
    assert missing == []


def test_every_catalogued_code_has_status_message_and_article():
    assert set(CATALOGUE) == set(Code)
    for info in CATALOGUE.values():
        assert 400 <= info.http_status <= 599, info
        assert info.message.endswith(".") and info.help_slug, info


def test_error_with_code_takes_status_from_the_catalogue():
    error = error_with_code(Code.billing_required, "Add a billing profile.")
    assert (error.code, error.http_status) == ("billing_required", 402)
    assert isinstance(error, DomainError)


def test_an_uncatalogued_code_cannot_be_raised():
    with pytest.raises(ValueError):
        error_with_code("made_up_code", "Nope.")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        error_code_info("made_up_code")
