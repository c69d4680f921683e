"""Forms that act once, and organization addresses that moved.

`FormSubmission`: one row per form token (issued when a form renders) that did its work; a
retried submit with the same token finds the row and gets the first result back instead of
acting again. The unique key makes this hold across processes as well.

`OrgOldAddress`: an organization's previous slug, so old links redirect to the new address for
a while (`expires_at`); an old slug is never given to another organization.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, utc_datetime_field


class FormSubmission(SQLModel, table=True):
    __tablename__ = "form_submissions"
    __table_args__ = (UniqueConstraint("purpose", "token", name="uq_form_submissions_token"),)

    id: int | None = Field(default=None, primary_key=True)
    # Who submitted (None for a signed-out form such as Register); only they get the replay.
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")
    purpose: str = Field(max_length=40)  # which form: "org_create", "invite", ...
    token: str = Field(max_length=64)
    result: str = Field(default="", max_length=2000)  # what the first submit showed
    created_at: datetime = created_at_field()


class OrgOldAddress(SQLModel, table=True):
    __tablename__ = "org_old_addresses"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()
    expires_at: datetime | None = utc_datetime_field()
