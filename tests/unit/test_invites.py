"""Invitations: services/invites.py rules, link life cycle and guardrails at their boundaries."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from sqlmodel import func, select

from core import clock
from core.clock import as_utc, utcnow
from core.crypto import hash_token
from models import (
    AuditLogEntry,
    Invite,
    Membership,
    Organization,
    OutboxMail,
    Plan,
    Subscription,
    User,
)
from services import invites, orgs
from services.errors import Conflict, NotFound, PermissionDenied, PlanLimitReached, ValidationFailed
from services.policy import actor_for

BASE_URL = "https://studio.example.com/"


def make_user(session, email: str, name: str | None = None) -> User:
    user = User(
        email=email,
        name=name if name is not None else email.split("@")[0].title(),
        email_verified_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def set_plan(session, org: Organization, plan_key: str) -> None:
    org.plan_key = plan_key
    subscription = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
    subscription.plan_key = plan_key
    session.add_all([org, subscription])
    session.flush()


def token_of(url: str) -> str:
    parsed = urlparse(url)
    assert parsed.path == "/invite"
    return parse_qs(parsed.query)["token"][0]


def membership_count(session, org_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(Membership).where(Membership.org_id == org_id)
    ).one()


@pytest.fixture(autouse=True)
def frozen_now():
    clock.freeze(utcnow().replace(microsecond=0))
    yield clock.utcnow()
    clock.freeze(None)


@pytest.fixture
def owner(session) -> User:
    return make_user(session, "olivia@example.com", "Olivia Owner")


@pytest.fixture
def org(session, owner) -> Organization:
    org = orgs.org_create(session=session, owner=owner, name="Acme")
    set_plan(session, org, "starter")  # 5 seats, 10 pending invites
    return org


def invite(session, owner, org, email="pat@example.com", role="editor", **kwargs):
    return invites.invite_create(
        session=session,
        actor=owner,
        org_id=org.id,
        email=email,
        role=role,
        base_url=BASE_URL,
        **kwargs,
    )


# --- create ------------------------------------------------------------------------------------


def test_invite_create_stores_hash_and_returns_accept_url(session, owner, org, frozen_now):
    row, url = invite(session, owner, org, email="  Pat@Example.COM ", role="viewer")
    token = token_of(url)
    assert url.startswith("https://studio.example.com/invite?token=")
    assert row.email == "pat@example.com"
    assert row.token_hash == hash_token(token) and token not in row.token_hash
    assert row.role == "viewer" and row.status == "pending"
    assert as_utc(row.expires_at) == frozen_now + timedelta(days=7)
    assert row.invited_by_user_id == owner.id
    assert [i.id for i in invites.invites_pending(session=session, org_id=org.id)] == [row.id]
    entry = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "invite.created")
    ).one()
    assert entry.details["email"] == "pat@example.com"


def test_invite_create_for_scoped_editor(session, owner, org):
    project = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    row, url = invite(session, owner, org, role="editor", project_ids=[project.id])
    assert row.project_scoped is True and row.project_ids == [project.id]
    view = invites.invite_lookup(session=session, token=token_of(url))
    assert view.project_names == ("Launch",)
    with pytest.raises(ValidationFailed):
        invite(session, owner, org, email="v@example.com", role="viewer", project_ids=[project.id])


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "two@@example.com", "sp ace@x.com"])
def test_invite_create_rejects_bad_email(session, owner, org, email):
    with pytest.raises(ValidationFailed) as caught:
        invite(session, owner, org, email=email)
    assert caught.value.field == "email"


def test_owner_role_is_not_invitable(session, owner, org):
    with pytest.raises(ValidationFailed) as caught:
        invite(session, owner, org, role="owner")
    assert caught.value.code == "role_not_invitable"
    assert "transfer ownership" in caught.value.message
    with pytest.raises(ValidationFailed):
        invite(session, owner, org, role="superuser")


def test_only_owners_and_admins_invite(session, owner, org):
    admin = make_user(session, "admin@example.com")
    editor = make_user(session, "editor@example.com")
    orgs.membership_add(session=session, org_id=org.id, user_id=admin.id, role="admin")
    orgs.membership_add(session=session, org_id=org.id, user_id=editor.id, role="editor")
    invite(session, admin, org, email="one@example.com", role="admin")
    with pytest.raises(PermissionDenied) as caught:
        invite(session, editor, org, email="two@example.com")
    assert caught.value.code == "role_forbidden"
    stranger = make_user(session, "stranger@example.com")
    with pytest.raises(PermissionDenied) as caught:
        invite(session, stranger, org, email="three@example.com")
    assert caught.value.code == "not_a_member"


def test_already_member_is_a_clear_error(session, owner, org):
    with pytest.raises(Conflict) as caught:
        invite(session, owner, org, email="OLIVIA@example.com")
    assert caught.value.code == "already_member"
    assert "olivia@example.com is already a member of Acme" in caught.value.message


def test_pending_invite_for_same_email_suggests_resend(session, owner, org, frozen_now):
    row, _ = invite(session, owner, org)
    with pytest.raises(Conflict) as caught:
        invite(session, owner, org, email="PAT@example.com", role="viewer")
    assert caught.value.code == "invite_pending"
    assert "Resend" in caught.value.message
    assert caught.value.details["invite_id"] == row.id
    # Once the first link expired, a new invite can be created.
    clock.freeze(frozen_now + timedelta(days=7))
    invite(session, owner, org)


def mails_to(session, email: str) -> list[OutboxMail]:
    return list(
        session.exec(
            select(OutboxMail).where(OutboxMail.to_address == email).order_by(OutboxMail.id)
        )
    )


def test_invite_create_mails_the_accept_link(session, owner, org, frozen_now):
    launch = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    brand = orgs.project_create(session=session, actor=owner, org_id=org.id, name="brand kit")
    row, url = invite(session, owner, org, role="editor", project_ids=[launch.id, brand.id])
    [mail] = mails_to(session, "pat@example.com")
    assert mail.subject == "Olivia Owner invited you to Acme on Creative Studio"
    expires = as_utc(row.expires_at)
    assert mail.body_text == (
        "Hello,\n\nOlivia Owner invited you to join Acme on Creative Studio as editor in the "
        "projects brand kit, Launch.\n\n"
        f"Open this link to accept the invitation:\n{url}\n\n"
        f"The link works once and expires on {expires:%Y-%m-%d %H:%M} UTC (7 days). If you have "
        "no account yet, you can create one from that page with this email address.\n\n"
        "If you were not expecting this invitation, you can ignore this email.\n"
    )


def test_invite_resend_mails_the_new_link_and_refusals_mail_nothing(session, owner, org):
    old, old_url = invite(session, owner, org, role="viewer")
    new, new_url = invites.invite_resend(
        session=session, actor=owner, org_id=org.id, invite_id=old.id, base_url=BASE_URL
    )
    first, second = mails_to(session, "pat@example.com")
    assert old_url in first.body_text and "as viewer." in first.body_text
    assert new_url in second.body_text and old_url not in second.body_text
    with pytest.raises(Conflict):
        invite(session, owner, org)  # already pending: no second mail
    assert len(mails_to(session, "pat@example.com")) == 2


# --- guardrails --------------------------------------------------------------------------------


def test_seats_boundary_counts_members_and_pending_invites(session, owner, org):
    # Starter: 5 seats. Owner + 1 member + 2 invites = 4; the 4th seat-taker (N) is allowed...
    orgs.membership_add(
        session=session, org_id=org.id, user_id=make_user(session, "m@example.com").id,
        role="viewer",
    )  # fmt: skip
    invite(session, owner, org, email="a@example.com")
    invite(session, owner, org, email="b@example.com")
    invite(session, owner, org, email="c@example.com")  # 5 of 5
    with pytest.raises(PlanLimitReached) as caught:
        invite(session, owner, org, email="d@example.com")
    error = caught.value
    assert (error.limit, error.used, error.allowed, error.plan) == ("seats", 5, 5, "starter")
    assert error.message == (
        "Seat limit reached (5 of 5 on Starter). Upgrade in Billing to add more members."
    )


def test_seats_boundary_on_free(session, owner):
    free_org = orgs.org_create(session=session, owner=make_user(session, "f@example.com"), name="F")
    free_owner = session.get(User, free_org.created_by_user_id)
    invite(session, free_owner, free_org, email="a@example.com")  # 2 of 2
    with pytest.raises(PlanLimitReached) as caught:
        invite(session, free_owner, free_org, email="b@example.com")
    assert "(2 of 2 on Free)" in caught.value.message


def test_pending_invites_boundary(session, owner, org):
    session.add(Plan(key="tiny", name="Tiny", max_seats=50, max_pending_invites=2, max_projects=2))
    session.flush()
    set_plan(session, org, "tiny")
    invite(session, owner, org, email="a@example.com")
    invite(session, owner, org, email="b@example.com")  # 2 of 2: allowed
    with pytest.raises(PlanLimitReached) as caught:
        invite(session, owner, org, email="c@example.com")
    error = caught.value
    assert (error.limit, error.used, error.allowed, error.plan) == ("pending_invites", 2, 2, "tiny")
    assert error.message.startswith(
        "Pending invite limit reached (2 of 2 on Tiny). Upgrade in Billing to send more invites"
    )
    usage = orgs.plan_usage(session=session, org_id=org.id)
    assert usage["pending_invites"] == {"used": 2, "allowed": 2}


def test_expired_and_revoked_invites_free_their_slot(session, owner, org, frozen_now):
    session.add(Plan(key="tiny", name="Tiny", max_seats=50, max_pending_invites=1))
    session.flush()
    set_plan(session, org, "tiny")
    first, _ = invite(session, owner, org, email="a@example.com")
    with pytest.raises(PlanLimitReached):
        invite(session, owner, org, email="b@example.com")
    invites.invite_revoke(session=session, actor=owner, org_id=org.id, invite_id=first.id)
    invite(session, owner, org, email="b@example.com")
    clock.freeze(frozen_now + timedelta(days=7, seconds=1))
    invite(session, owner, org, email="c@example.com")


# --- resend / revoke / lookup --------------------------------------------------------------------


def test_resend_kills_the_old_link(session, owner, org, frozen_now):
    old, old_url = invite(session, owner, org)
    clock.freeze(frozen_now + timedelta(days=3))
    new, new_url = invites.invite_resend(
        session=session, actor=owner, org_id=org.id, invite_id=old.id, base_url=BASE_URL
    )
    assert new.id != old.id and old.status == "superseded"
    assert token_of(new_url) != token_of(old_url)
    assert as_utc(new.expires_at) == frozen_now + timedelta(days=10)
    with pytest.raises(Conflict) as caught:
        invites.invite_lookup(session=session, token=token_of(old_url))
    assert caught.value.code == "invite_superseded"
    assert "newer invite" in caught.value.message
    assert "Olivia Owner" in caught.value.message
    user = make_user(session, "pat@example.com")
    with pytest.raises(Conflict) as caught:
        invites.invite_accept(session=session, token=token_of(old_url), user=user)
    assert caught.value.code == "invite_superseded"
    assert (
        invites.invite_lookup(session=session, token=token_of(new_url)).email == "pat@example.com"
    )
    assert [i.id for i in invites.invites_pending(session=session, org_id=org.id)] == [new.id]
    assert session.exec(select(AuditLogEntry).where(AuditLogEntry.action == "invite.resent")).one()


def test_resend_revives_an_expired_invite(session, owner, org, frozen_now):
    old, _ = invite(session, owner, org)
    clock.freeze(frozen_now + timedelta(days=8))
    new, url = invites.invite_resend(
        session=session, actor=owner, org_id=org.id, invite_id=old.id, base_url=BASE_URL
    )
    assert invites.invite_lookup(session=session, token=token_of(url)).invite_id == new.id


def test_resend_refused_for_accepted_or_revoked(session, owner, org):
    accepted, url = invite(session, owner, org)
    invites.invite_accept(
        session=session, token=token_of(url), user=make_user(session, "pat@example.com")
    )
    with pytest.raises(Conflict) as caught:
        invites.invite_resend(
            session=session, actor=owner, org_id=org.id, invite_id=accepted.id, base_url=BASE_URL
        )
    assert caught.value.code == "invite_accepted"
    revoked, _ = invite(session, owner, org, email="r@example.com")
    invites.invite_revoke(session=session, actor=owner, org_id=org.id, invite_id=revoked.id)
    with pytest.raises(Conflict) as caught:
        invites.invite_resend(
            session=session, actor=owner, org_id=org.id, invite_id=revoked.id, base_url=BASE_URL
        )
    assert caught.value.code == "invite_revoked"


def test_revoke(session, owner, org):
    admin = make_user(session, "adam@example.com", "Adam Admin")
    viewer = make_user(session, "vera@example.com")
    orgs.membership_add(session=session, org_id=org.id, user_id=admin.id, role="admin")
    orgs.membership_add(session=session, org_id=org.id, user_id=viewer.id, role="viewer")
    row, url = invite(session, owner, org)
    with pytest.raises(PermissionDenied):
        invites.invite_revoke(session=session, actor=viewer, org_id=org.id, invite_id=row.id)
    invites.invite_revoke(session=session, actor=admin, org_id=org.id, invite_id=row.id)
    assert row.status == "revoked" and row.revoked_at is not None
    with pytest.raises(Conflict) as caught:
        invites.invite_lookup(session=session, token=token_of(url))
    assert caught.value.code == "invite_revoked"
    assert "Olivia Owner, Adam Admin" in caught.value.message
    assert invites.invites_pending(session=session, org_id=org.id) == []
    assert session.exec(select(AuditLogEntry).where(AuditLogEntry.action == "invite.revoked")).one()


def test_revoke_of_an_invite_in_another_org_is_not_found(session, owner, org):
    other_owner = make_user(session, "b@example.com")
    beta = orgs.org_create(session=session, owner=other_owner, name="Beta")
    row, _ = invite(session, other_owner, beta, email="x@example.com")
    with pytest.raises(NotFound):
        invites.invite_revoke(session=session, actor=owner, org_id=org.id, invite_id=row.id)


def test_lookup_view_and_expiry_boundary(session, owner, org, frozen_now):
    _, url = invite(session, owner, org, role="viewer")
    clock.freeze(frozen_now + timedelta(days=7, seconds=-1))
    view = invites.invite_lookup(session=session, token=token_of(url))
    assert (view.org_name, view.org_slug, view.email, view.role) == (
        "Acme", "acme", "pat@example.com", "viewer",
    )  # fmt: skip
    assert view.invited_by_name == "Olivia Owner"
    clock.freeze(frozen_now + timedelta(days=7))
    with pytest.raises(Conflict) as caught:
        invites.invite_lookup(session=session, token=token_of(url))
    assert caught.value.code == "invite_expired"
    assert "expired" in caught.value.message and "Olivia Owner" in caught.value.message


@pytest.mark.parametrize("token", ["", "garbage", "x" * 43])
def test_lookup_unknown_token(session, token):
    with pytest.raises(NotFound) as caught:
        invites.invite_lookup(session=session, token=token)
    assert caught.value.code == "invite_not_found"


# --- accept --------------------------------------------------------------------------------------


def test_accept_creates_one_membership_and_is_idempotent(session, owner, org):
    _, url = invite(session, owner, org, email="pat@example.com", role="editor")
    pat = make_user(session, "pat@example.com")
    membership = invites.invite_accept(session=session, token=token_of(url), user=pat)
    assert (membership.org_id, membership.user_id, membership.role) == (org.id, pat.id, "editor")
    again = invites.invite_accept(session=session, token=token_of(url), user=pat)
    assert again.id == membership.id
    assert membership_count(session, org.id) == 2
    row = session.exec(select(Invite)).one()
    assert (row.status, row.accepted_by_user_id) == ("accepted", pat.id)
    accepted = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "invite.accepted")
    ).all()
    assert len(accepted) == 1
    with pytest.raises(Conflict) as caught:
        invites.invite_lookup(session=session, token=token_of(url))
    assert caught.value.code == "invite_accepted"
    assert "already been used" in caught.value.message


def test_accept_with_another_address_names_both(session, owner, org):
    _, url = invite(session, owner, org, email="pat@example.com")
    sam = make_user(session, "sam@example.com")
    with pytest.raises(Conflict) as caught:
        invites.invite_accept(session=session, token=token_of(url), user=sam)
    error = caught.value
    assert error.code == "invite_email_mismatch"
    assert "sent to pat@example.com" in error.message
    assert "signed in as sam@example.com" in error.message
    assert "Sign out and sign in" in error.message
    assert "invite sam@example.com instead" in error.message
    assert membership_count(session, org.id) == 1


def test_accept_used_by_someone_else(session, owner, org):
    _, url = invite(session, owner, org, email="pat@example.com")
    pat = make_user(session, "pat@example.com")
    invites.invite_accept(session=session, token=token_of(url), user=pat)
    sam = make_user(session, "sam@example.com")
    with pytest.raises(Conflict) as caught:
        invites.invite_accept(session=session, token=token_of(url), user=sam)
    assert caught.value.code == "invite_accepted"


def test_accept_expired(session, owner, org, frozen_now):
    _, url = invite(session, owner, org, email="pat@example.com")
    pat = make_user(session, "pat@example.com")
    clock.freeze(frozen_now + timedelta(days=7))
    with pytest.raises(Conflict) as caught:
        invites.invite_accept(session=session, token=token_of(url), user=pat)
    assert caught.value.code == "invite_expired"


def test_accept_scoped_editor_gets_project_access(session, owner, org):
    launch = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    orgs.project_create(session=session, actor=owner, org_id=org.id, name="Secret")
    _, url = invite(session, owner, org, email="pat@example.com", project_ids=[launch.id])
    pat = make_user(session, "pat@example.com")
    membership = invites.invite_accept(session=session, token=token_of(url), user=pat)
    assert membership.project_scoped is True
    actor = actor_for(session=session, user=pat, org_id=org.id)
    assert actor.project_ids == frozenset({launch.id})
    visible = orgs.projects_visible(session=session, actor=actor, org_id=org.id)
    assert [p.name for p in visible] == ["Launch"]


def test_accept_when_already_member_returns_that_membership(session, owner, org):
    _, url = invite(session, owner, org, email="pat@example.com", role="viewer")
    pat = make_user(session, "pat@example.com")
    existing = orgs.membership_add(session=session, org_id=org.id, user_id=pat.id, role="admin")
    membership = invites.invite_accept(session=session, token=token_of(url), user=pat)
    assert membership.id == existing.id and membership.role == "admin"
    assert session.exec(select(Invite)).one().status == "accepted"


def test_accept_seat_boundary_after_downgrade(session, owner, org):
    # Starter org: owner + invite. Downgraded to Free (2 seats): accepting fills seat 2 of 2.
    _, url = invite(session, owner, org, email="pat@example.com")
    set_plan(session, org, "free")
    pat = make_user(session, "pat@example.com")
    invites.invite_accept(session=session, token=token_of(url), user=pat)

    beta_owner = make_user(session, "bo@example.com")
    beta = orgs.org_create(session=session, owner=beta_owner, name="Beta")
    set_plan(session, beta, "starter")
    orgs.membership_add(
        session=session, org_id=beta.id, user_id=make_user(session, "m@example.com").id,
        role="viewer",
    )  # fmt: skip
    _, url = invite(session, beta_owner, beta, email="late@example.com")
    set_plan(session, beta, "free")
    late = make_user(session, "late@example.com")
    with pytest.raises(PlanLimitReached) as caught:
        invites.invite_accept(session=session, token=token_of(url), user=late)
    assert (caught.value.limit, caught.value.used, caught.value.allowed) == ("seats", 2, 2)


def test_accept_for_deleted_org(session, owner, org):
    _, url = invite(session, owner, org, email="pat@example.com")
    org.deleted_at = utcnow()
    session.add(org)
    session.flush()
    with pytest.raises(Conflict) as caught:
        invites.invite_accept(
            session=session, token=token_of(url), user=make_user(session, "pat@example.com")
        )
    assert caught.value.code == "invite_revoked"
