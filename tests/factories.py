"""Test data in one place: people, organizations, members, projects, signed-in cookies, ports.

Every factory takes either a `Session` or an `Engine` as its first argument:
- a session: rows are added and flushed; the caller commits (as with the services);
- an engine (PostgreSQL tests, threads, servers): a session of its own is opened and
  committed, and the rows come back detached with their columns loaded.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import routes
from core.clock import utcnow
from models import Organization, Project, User
from services import auth as auth_service
from services import credits as credit_service
from services import orgs as org_service


@contextmanager
def _writing(db: Session | Engine) -> Iterator[Session]:
    """The caller's session (flushed, not committed), or a new committed session on an engine."""
    if isinstance(db, Engine):
        with Session(db, expire_on_commit=False) as session:
            yield session
            session.commit()
        return
    yield db
    db.flush()


def make_user(
    db: Session | Engine,
    email: str,
    name: str | None = None,
    *,
    verified: bool = True,
    operator: bool = False,
) -> User:
    """A user without a password (sign-in goes through `signed_in_cookie`).

    The name defaults to the title-cased part of the address before the "@".
    """
    with _writing(db) as session:
        user = User(
            email=email,
            name=name if name is not None else email.split("@")[0].title(),
            email_verified_at=utcnow() if verified else None,
            is_operator=operator,
        )
        session.add(user)
        session.flush()
    return user


def make_org(
    db: Session | Engine,
    owner: User | None = None,
    name: str | None = None,
    *,
    slug: str | None = None,
    plan_key: str = "free",
    credits: int = 0,
) -> Organization:
    """An organization on `plan_key` (Free by default).

    Args:
        owner: with an owner, the organization is made by `org_create` (owner membership,
            subscription, credit account, audit entry; name "Acme Marketing" unless given).
            Without one it is a bare `organizations` row (slug "acme" unless given, name the
            title-cased slug), for ledger, sweep and connection tests that need nothing more.
        slug: explicit address; with an owner, derived from the name when None.
        credits: millicredits granted at once, with idempotency key "seed-<slug>".
    """
    with _writing(db) as session:
        if owner is not None:
            org = org_service.org_create(
                session=session,
                owner=owner,
                name=name if name is not None else "Acme Marketing",
                slug=slug,
                plan_key=plan_key,
            )
        else:
            slug = slug or "acme"
            org = Organization(
                slug=slug, name=name if name is not None else slug.title(), plan_key=plan_key
            )
            session.add(org)
            session.flush()
        if credits:
            credit_service.credits_grant(
                session=session,
                org_id=org.id,
                amount_millicredits=credits,
                idempotency_key=f"seed-{org.slug}",
            )
    return org


def make_projects(
    db: Session | Engine, org: Organization, count: int, *, name: str = "Project {index}"
) -> list[Project]:
    """`count` projects of `org` written directly (no plan check), named `name.format(index=i)`."""
    projects = []
    with _writing(db) as session:
        for index in range(count):
            project = Project(org_id=org.id, name=name.format(index=index))
            session.add(project)
            session.flush()
            projects.append(project)
    return projects


def add_member(
    db: Session | Engine,
    org: Organization,
    email: str,
    role: str,
    project_ids: list[int] | None = None,
    *,
    name: str | None = None,
) -> User:
    """A new verified user who joins `org` with `role` through `membership_add` (seat-checked).

    Non-empty `project_ids` make a project-scoped editor.
    """
    with _writing(db) as session:
        user = make_user(session, email, name)
        org_service.membership_add(
            session=session, org_id=org.id, user_id=user.id, role=role, project_ids=project_ids
        )
    return user


def signed_in_cookie(session: Session, user: User) -> str:
    """A `Cookie:` header value of a real, activated session of `user` (commits)."""
    challenge = auth_service.sign_in_handoff_create(session=session, user=user)
    token, _ = auth_service.session_activate(session=session, handoff_code=challenge.handoff_code)
    session.commit()  # session_activate leaves the commit to its caller
    return f"{routes.SESSION_COOKIE}={token}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subscribe_locally(
    engine: Engine, *, email: str, slug: str, name: str, plan_key: str, at: datetime
) -> tuple[int, int]:
    """An owner and an org subscribed to `plan_key` through the local checkout at `at`.

    The checkout's events are delivered through the signed webhook path, stamped with `at`
    as Stripe would. Returns (org id, owner id).
    """
    from core import clock
    from services import billing
    from services.providers.payments import payment_provider

    clock.freeze(at)
    with Session(engine, expire_on_commit=False) as session:
        owner = make_user(session, email, "owner")
        org = org_service.org_create(session=session, owner=owner, name=name, slug=slug)
        session.commit()
        checkout = billing.checkout_start(
            session=session,
            actor=owner,
            org_id=org.id,
            purpose="upgrade",
            plan_key=plan_key,
            billing_url=f"http://app.test/org/{slug}/billing",
        )
        session.commit()
    provider = payment_provider()
    read = provider.checkout_read(checkout.url.split("session=", 1)[1])
    billing.subscriptions._deliver(
        provider, provider.checkout_events(read, now=int(at.timestamp()))
    )
    return org.id, owner.id
