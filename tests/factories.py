"""Test data in one place: people, organizations, members, signed-in cookies, free ports."""

from __future__ import annotations

import socket

from sqlmodel import Session

from core import routes
from core.clock import utcnow
from models import Organization, User
from services import auth as auth_service
from services import orgs as org_service


def make_user(
    session: Session,
    email: str,
    name: str | None = None,
    *,
    verified: bool = True,
    operator: bool = False,
) -> User:
    """A user without a password (sign-in goes through `signed_in_cookie`)."""
    user = User(
        email=email,
        name=name if name is not None else email.split("@")[0].title(),
        email_verified_at=utcnow() if verified else None,
        is_operator=operator,
    )
    session.add(user)
    session.flush()
    return user


def make_org(session: Session, owner: User, name: str = "Acme Marketing") -> Organization:
    """An organization on the Free plan owned by `owner` (with its default project)."""
    return org_service.org_create(session=session, owner=owner, name=name)


def add_member(
    session: Session,
    org: Organization,
    email: str,
    role: str,
    project_ids: list[int] | None = None,
    *,
    name: str | None = None,
) -> User:
    user = make_user(session, email, name)
    org_service.membership_add(
        session=session, org_id=org.id, user_id=user.id, role=role, project_ids=project_ids
    )
    return user


def signed_in_cookie(session: Session, user: User) -> str:
    """A `Cookie:` header value of a real, activated session of `user` (commits)."""
    challenge = auth_service.sign_in_handoff_create(session=session, user=user)
    token, _ = auth_service.session_activate(session=session, handoff_code=challenge.handoff_code)
    return f"{routes.SESSION_COOKIE}={token}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
