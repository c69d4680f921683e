"""Organization security: single sign-on (OIDC) settings, verified email domains, the
"require SSO" / "require 2FA" policy flags, and the IdP identities people sign in with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import created_at_field, utc_datetime_field


class OrgSecurity(SQLModel, table=True):
    """One row per organization that changed anything on Settings > Security & SSO.

    No row means: no SSO, nothing required. The client secret is stored encrypted
    (`core.crypto.encrypt`) and never leaves the server.
    """

    __tablename__ = "org_security"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", unique=True)
    require_2fa: bool = Field(default=False)
    sso_issuer: str = Field(default="", max_length=500)
    sso_client_id: str = Field(default="", max_length=255)
    sso_client_secret_encrypted: str = Field(default="", max_length=1024)
    sso_default_role: str = Field(default="editor", max_length=16)  # never "owner"
    sso_enabled: bool = Field(default=False)
    require_sso: bool = Field(default=False)
    # A successful test sign-in since the issuer, client id or secret last changed.
    sso_tested_at: datetime | None = utc_datetime_field()
    sso_tested_email: str = Field(default="", max_length=320)
    sso_last_test_at: datetime | None = utc_datetime_field()
    sso_last_test_error: str = Field(default="", max_length=64)  # an error code, "" when ok
    updated_at: datetime | None = utc_datetime_field()
    created_at: datetime = created_at_field()


class OrgDomain(SQLModel, table=True):
    """An email domain an organization claims; verified by a DNS TXT record with its token.

    A domain is verified for at most one organization (partial unique index).
    """

    __tablename__ = "org_domains"
    __table_args__ = (
        UniqueConstraint("org_id", "domain", name="uq_org_domains_org_domain"),
        Index(
            "uq_org_domains_verified_domain",
            "domain",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    domain: str = Field(max_length=253)  # lower-case, no trailing dot
    verification_token: str = Field(max_length=128)  # published in DNS: not a secret
    verified_at: datetime | None = utc_datetime_field()
    last_checked_at: datetime | None = utc_datetime_field()
    last_error: str = Field(default="", max_length=500)
    # The scheduled re-check (`services.domains.domains_recheck_due`): failed checks in a row
    # of a verified domain, and when it was marked unverified for that (shown to the owner).
    recheck_failures: int = Field(default=0)
    unverified_at: datetime | None = utc_datetime_field()
    created_at: datetime = created_at_field()


class SsoIdentity(SQLModel, table=True):
    """A person as the organization's identity provider knows them (issuer + subject)."""

    __tablename__ = "sso_identities"
    __table_args__ = (
        UniqueConstraint("org_id", "issuer", "subject", name="uq_sso_identities_subject"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    issuer: str = Field(max_length=500)
    subject: str = Field(max_length=255)
    created_at: datetime = created_at_field()
    last_sign_in_at: datetime | None = utc_datetime_field()
