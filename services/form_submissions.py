"""Forms that act once: a retried submit returns the first result instead of acting again.

Every mutating form carries a token issued when the form renders (`form_token_new`). The first
submit with a token runs its work and records `(purpose, token) -> who, result` in the same
transaction (`form_submission_record`); a second submit with the same token (a double click, a
retry after a lost answer) finds the record (`form_submission_find`) and shows the first result.

Invariants:
- A token acts at most once per purpose: the unique key `uq_form_submissions_token` holds it
  across processes; the loser of a race gets an IntegrityError at flush or commit, rolls back
  its work, and reads the winner's result.
- Only the person who submitted first gets the first result back; a token someone else used
  is refused (`FormAlreadyUsed`), so a forged token cannot reveal another person's result.
- A submit without a (well-formed) token acts as it would without this module: callers outside
  the browser forms (tests, scripts) keep working.
- Records are kept `FORM_SUBMISSION_TTL`; `form_submissions_purge` removes older ones.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, select

from core.clock import utcnow
from models.forms import FormSubmission
from services.error_codes import Code
from services.errors import Conflict, error_with_code

FORM_SUBMISSION_TTL = timedelta(days=2)
_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_RESULT_MAX_CHARS = 2000


def form_token_new() -> str:
    """A fresh token for a form being rendered."""
    return secrets.token_urlsafe(24)


def form_token_clean(value: Any) -> str:
    """The token from a submitted form, or "" when it is missing or malformed."""
    token = value if isinstance(value, str) else ""
    return token if _TOKEN_PATTERN.match(token) else ""


def form_submission_find(
    *, session: Session, user_id: int | None, purpose: str, token: str
) -> str | None:
    """The first result of this form submit, or None when the token has not acted yet.

    Raises:
        Conflict: code "form_already_used" when someone else submitted this token.
    """
    if not token:
        return None
    row = session.exec(
        select(FormSubmission).where(
            FormSubmission.purpose == purpose[:40], FormSubmission.token == token
        )
    ).first()
    if row is None:
        return None
    if row.user_id != user_id:
        raise error_with_code(
            Code.form_already_used,
            "This form was already submitted. Reload the page and try again.",
            base=Conflict,
        )
    return row.result


def form_submission_record(
    *, session: Session, user_id: int | None, purpose: str, token: str, result: Any
) -> None:
    """Record that `token` acted, with what it showed (flushed; the caller commits).

    Raises:
        sqlalchemy.exc.IntegrityError: another submit with the same token acted first.
    """
    if not token:
        return
    text = result if isinstance(result, str) else ""
    session.add(
        FormSubmission(
            user_id=user_id, purpose=purpose[:40], token=token, result=text[:_RESULT_MAX_CHARS]
        )
    )
    session.flush()


def form_submissions_purge(*, session: Session) -> int:
    """Delete records older than the TTL; returns how many. The caller commits."""
    cutoff = utcnow() - FORM_SUBMISSION_TTL
    outcome = session.exec(delete(FormSubmission).where(FormSubmission.created_at < cutoff))
    return int(outcome.rowcount or 0)
