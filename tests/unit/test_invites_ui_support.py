"""invite_confirms_email: registering from a valid invite to the same address verifies it."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from sqlmodel import select

from core import clock
from core.clock import utcnow
from models import AuditLogEntry, User
from services import invites, orgs

BASE_URL = "https://studio.example.com"


def _user(session, email: str, verified: bool) -> User:
    user = User(
        email=email, name=email.split("@")[0], email_verified_at=utcnow() if verified else None
    )
    session.add(user)
    session.flush()
    return user


def _setup(session):
    owner = _user(session, "owner@example.com", verified=True)
    org = orgs.org_create(session=session, owner=owner, name="Acme", plan_key="starter")
    _, url = invites.invite_create(
        session=session, actor=owner, org_id=org.id, email="pat@example.com", role="editor",
        base_url=BASE_URL,
    )  # fmt: skip
    return owner, org, parse_qs(urlparse(url).query)["token"][0]


def test_valid_invite_to_the_same_address_verifies_the_email(session):
    _, org, token = _setup(session)
    pat = _user(session, "Pat@Example.com", verified=False)
    assert invites.invite_confirms_email(session=session, token=token, user=pat) is True
    assert pat.email_verified_at is not None
    entry = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "user.email_verified_by_invite")
    ).one()
    assert entry.org_id == org.id and entry.target_id == str(pat.id)
    # The invite is still pending: joining is a separate, explicit step.
    assert invites.invite_lookup(session=session, token=token).email == "pat@example.com"


def test_other_address_unknown_or_unusable_invite_does_not_verify(session):
    owner, org, token = _setup(session)
    other = _user(session, "someone@example.com", verified=False)
    assert invites.invite_confirms_email(session=session, token=token, user=other) is False
    assert invites.invite_confirms_email(session=session, token="not-a-token", user=other) is False
    assert other.email_verified_at is None

    pat = _user(session, "pat@example.com", verified=False)
    clock.freeze(utcnow() + timedelta(days=8))  # expired
    assert invites.invite_confirms_email(session=session, token=token, user=pat) is False
    clock.freeze(None)
    invite_id = invites.invites_pending(session=session, org_id=org.id)[0].id
    invites.invite_revoke(session=session, actor=owner, org_id=org.id, invite_id=invite_id)
    assert invites.invite_confirms_email(session=session, token=token, user=pat) is False
    assert pat.email_verified_at is None


def test_already_verified_user_stays_verified_without_a_second_audit_entry(session):
    _, _, token = _setup(session)
    pat = _user(session, "pat@example.com", verified=True)
    before = pat.email_verified_at
    assert invites.invite_confirms_email(session=session, token=token, user=pat) is True
    assert pat.email_verified_at == before
    assert not session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "user.email_verified_by_invite")
    ).all()
