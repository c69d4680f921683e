"""Users, server-side sessions, one-time email tokens, 2FA recovery codes, OAuth flow state,
and failed sign-ins of addresses that have no account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.base import created_at_field, utc_datetime_field


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)  # stored lower-cased
    name: str = Field(default="", max_length=200)
    password_hash: str | None = Field(default=None, max_length=255)
    email_verified_at: datetime | None = utc_datetime_field()
    is_operator: bool = Field(default=False)
    google_subject: str | None = Field(default=None, max_length=255, unique=True)
    failed_sign_in_count: int = Field(default=0)
    locked_until: datetime | None = utc_datetime_field()
    totp_secret_encrypted: str | None = Field(default=None, max_length=512)
    totp_enabled_at: datetime | None = utc_datetime_field()
    totp_last_used_step: int | None = Field(default=None)
    created_at: datetime = created_at_field()
    last_active_at: datetime | None = utc_datetime_field()


class UserSession(SQLModel, table=True):
    """A signed-in browser or device. The browser holds only the token; we keep its hash."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_active", "user_id", "revoked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    token_hash: str = Field(max_length=128, unique=True)
    mfa_pending: bool = Field(default=False)  # password ok, TOTP still to be entered
    # Sign-in is a two-step handoff: the row starts with the hash of a short-lived one-time
    # code; an HTTP route swaps that code for the long-lived cookie token (rotation).
    activated_at: datetime | None = utc_datetime_field()
    user_agent: str = Field(default="", max_length=500)
    ip_address: str = Field(default="", max_length=64)
    created_at: datetime = created_at_field()
    last_seen_at: datetime | None = utc_datetime_field()
    expires_at: datetime = utc_datetime_field(nullable=False)  # absolute timeout
    revoked_at: datetime | None = utc_datetime_field(index=True)
    # Keyed hash of the pre-auth cookie of the browser that started this sign-in: only that
    # browser may swap the handoff code for a session (login CSRF). None for rows made by
    # server code that hands the session over itself.
    browser_binding_hash: str | None = Field(default=None, max_length=128)


class EmailToken(SQLModel, table=True):
    """Single-use, expiring link tokens (email verification, password reset)."""

    __tablename__ = "email_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    purpose: str = Field(max_length=32)
    token_hash: str = Field(max_length=128, unique=True)
    created_at: datetime = created_at_field()
    expires_at: datetime = utc_datetime_field(nullable=False)
    used_at: datetime | None = utc_datetime_field()


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(max_length=255)
    created_at: datetime = created_at_field()
    used_at: datetime | None = utc_datetime_field()


class OAuthFlowState(SQLModel, table=True):
    """Server-side state of an in-flight OAuth/OIDC authorization (state, PKCE verifier, nonce)."""

    __tablename__ = "oauth_flow_states"

    id: int | None = Field(default=None, primary_key=True)
    state_hash: str = Field(max_length=128, unique=True)
    purpose: str = Field(max_length=32)  # "google_sign_in" | "connection"
    provider_key: str = Field(max_length=64)
    code_verifier_encrypted: str = Field(max_length=512)
    nonce: str = Field(default="", max_length=128)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")
    org_id: int | None = Field(default=None, foreign_key="organizations.id", ondelete="CASCADE")
    redirect_after: str = Field(default="/", max_length=500)
    created_at: datetime = created_at_field()
    expires_at: datetime = utc_datetime_field(nullable=False)
    used_at: datetime | None = utc_datetime_field()
    # Google sign-in: keyed hash of the pre-auth cookie of the browser that started the flow;
    # the callback must come from that browser (login CSRF).
    browser_binding_hash: str | None = Field(default=None, max_length=128)


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins for an address that has no account, keyed by the address's keyed hash.

    Unknown addresses lock exactly like accounts do (5 failures, 15 minutes), so the answer
    never tells whether an account exists. Accounts keep their own counter on `users`.
    """

    __tablename__ = "sign_in_throttles"

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=128, unique=True)
    failed_sign_in_count: int = Field(default=0)
    locked_until: datetime | None = utc_datetime_field()
    created_at: datetime = created_at_field()
    last_failed_at: datetime | None = utc_datetime_field(index=True)
