"""Organizations, memberships, projects, scoped-editor project access, invitations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, utc_datetime_field


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=120)
    plan_key: str = Field(default="free", max_length=32, foreign_key="plans.key")
    created_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    stripe_customer_id: str | None = Field(default=None, max_length=255, unique=True)
    billing_profile_added_at: datetime | None = utc_datetime_field()
    monthly_spend_cap_credits: int | None = Field(default=None)
    low_balance_alert_credits: int | None = Field(default=None)
    api_enabled: bool = Field(default=False)
    api_allowed_models: list = json_field(list)  # empty = every model the plan allows
    created_at: datetime = created_at_field()
    deleted_at: datetime | None = utc_datetime_field()


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=16)  # OrgRole
    project_scoped: bool = Field(default=False)  # editor limited to ProjectAccess rows
    created_at: datetime = created_at_field()
    last_active_at: datetime | None = utc_datetime_field()


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_projects_org_name"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=120)
    created_at: datetime = created_at_field()
    archived_at: datetime | None = utc_datetime_field()


class ProjectAccess(SQLModel, table=True):
    """A project a project-scoped editor is approved for."""

    __tablename__ = "project_access"
    __table_args__ = (UniqueConstraint("membership_id", "project_id", name="uq_project_access"),)

    id: int | None = Field(default=None, primary_key=True)
    membership_id: int = Field(foreign_key="memberships.id", ondelete="CASCADE", index=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()


class Invite(SQLModel, table=True):
    __tablename__ = "invites"
    __table_args__ = (Index("ix_invites_org_status", "org_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    email: str = Field(max_length=320, index=True)
    role: str = Field(max_length=16)
    project_scoped: bool = Field(default=False)
    project_ids: list = json_field(list)
    token_hash: str = Field(max_length=128, unique=True)
    status: str = Field(default="pending", max_length=16)  # InviteStatus
    invited_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    expires_at: datetime = utc_datetime_field(nullable=False, index=True)
    accepted_at: datetime | None = utc_datetime_field()
    accepted_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    revoked_at: datetime | None = utc_datetime_field()
