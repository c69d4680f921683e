"""Development seed: organization `acme` on Growth with one user per role and an operator.

Never runs in production (core.manage refuses). Idempotent: a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from core.clock import utcnow
from core.crypto import hash_password
from models import Organization, User
from models.enums import OrgRole
from services import credits, orgs

DEV_PASSWORD = "studio-dev-password-2026"
ORG_SLUG = "acme"

SEED_USERS: tuple[tuple[str, str, str], ...] = (
    # email, name, role ("operator" = platform staff, not a member)
    ("owner@acme.test", "Olivia Owner", "owner"),
    ("admin@acme.test", "Adam Admin", "admin"),
    ("editor@acme.test", "Erin Editor", "editor"),
    ("scoped@acme.test", "Sam Scoped", "scoped_editor"),
    ("viewer@acme.test", "Vera Viewer", "viewer"),
    ("operator@creative-studio.test", "Oscar Operator", "operator"),
)


@dataclass
class SeedReport:
    created: bool

    def __str__(self) -> str:
        lines = [
            "Development data " + ("created." if self.created else "already present."),
            f"Organization: {ORG_SLUG} (Growth plan). Password for every account: {DEV_PASSWORD}",
        ]
        lines += [f"  {role:<14} {email}" for email, _name, role in SEED_USERS]
        return "\n".join(lines)


def seed_development_data(*, session: Session) -> SeedReport:
    if session.exec(select(Organization).where(Organization.slug == ORG_SLUG)).first() is not None:
        return SeedReport(created=False)
    now = utcnow()
    users: dict[str, User] = {}
    for email, name, role in SEED_USERS:
        user = session.exec(select(User).where(User.email == email)).first()
        if user is None:
            user = User(
                email=email,
                name=name,
                password_hash=hash_password(DEV_PASSWORD),
                email_verified_at=now,
                is_operator=role == "operator",
            )
            session.add(user)
            session.flush()
        users[role] = user

    org = orgs.org_create(
        session=session, owner=users["owner"], name="Acme Inc.", slug=ORG_SLUG, plan_key="growth"
    )
    org.billing_profile_added_at = now
    spring = orgs.project_create(
        session=session, actor=users["owner"], org_id=org.id, name="Spring Launch"
    )
    orgs.project_create(session=session, actor=users["owner"], org_id=org.id, name="Brand Refresh")
    orgs.membership_add(
        session=session,
        org_id=org.id,
        user_id=users["admin"].id,
        role=OrgRole.admin,
        actor_user_id=users["owner"].id,
    )
    orgs.membership_add(
        session=session,
        org_id=org.id,
        user_id=users["editor"].id,
        role=OrgRole.editor,
        actor_user_id=users["owner"].id,
    )
    orgs.membership_add(
        session=session,
        org_id=org.id,
        user_id=users["scoped_editor"].id,
        role=OrgRole.editor,
        project_ids=[spring.id],
        actor_user_id=users["owner"].id,
    )
    orgs.membership_add(
        session=session,
        org_id=org.id,
        user_id=users["viewer"].id,
        role=OrgRole.viewer,
        actor_user_id=users["owner"].id,
    )
    credits.credits_grant(
        session=session,
        org_id=org.id,
        amount_millicredits=3000 * 1000,
        idempotency_key=f"seed:{ORG_SLUG}:monthly-grant",
        memo="Growth monthly credits (development seed)",
    )
    session.flush()
    return SeedReport(created=True)
