"""Typed domain errors. Each has a stable `code` shared by the UI and the API error body.

Codes come from the one catalogue in `services/error_codes.py`, which also gives each code its
HTTP status and help article.
"""

from __future__ import annotations

from typing import Any

from services.error_codes import Code, error_code_info


class DomainError(Exception):
    """Base of every rule a service refuses. `message` is written for the person acting."""

    code: str = "error"
    http_status: int = 400

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class NotFound(DomainError):
    """Also used where existence must not leak (out-of-scope projects and assets)."""

    code = "not_found"
    http_status = 404


class PermissionDenied(DomainError):
    code = "permission_denied"
    http_status = 403


class ValidationFailed(DomainError):
    code = "validation_failed"
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, **details: Any):
        super().__init__(message, field=field, **details)
        self.field = field


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class PlanLimitReached(DomainError):
    code = "plan_limit_reached"
    http_status = 402

    def __init__(self, message: str, *, limit: str, used: int, allowed: int, plan: str):
        super().__init__(message, limit=limit, used=used, allowed=allowed, plan=plan)
        self.limit, self.used, self.allowed, self.plan = limit, used, allowed, plan


class InsufficientCredits(DomainError):
    code = "insufficient_credits"
    http_status = 402

    def __init__(self, message: str, *, needed_millicredits: int, available_millicredits: int):
        super().__init__(
            message,
            needed_millicredits=needed_millicredits,
            available_millicredits=available_millicredits,
        )
        self.needed_millicredits = needed_millicredits
        self.available_millicredits = available_millicredits


def error_with_code(
    code: Code,
    message: str,
    *,
    base: type[DomainError] = DomainError,
    http_status: int | None = None,
    **details: Any,
) -> DomainError:
    """A domain error with a catalogued code (e.g. `Code.account_locked`).

    The HTTP status comes from the catalogue unless given; an uncatalogued code raises
    KeyError, so a typo cannot reach a person or an API client.
    """
    info = error_code_info(code)
    error = base(message, **details)
    error.code = info.code.value
    error.http_status = http_status if http_status is not None else info.http_status
    return error
