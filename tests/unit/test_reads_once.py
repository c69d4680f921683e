"""Lookups that one event repeats (who is acting, the subscription, the plan) are read once
per unit of work, and any change made in that unit of work is seen by the next check."""

from __future__ import annotations

import contextlib

from sqlalchemy import event, text
from sqlmodel import select

from models import Membership, Subscription
from models.enums import OrgRole
from services import plan_limits, policy
from tests.factories import add_member, make_org, make_user


@contextlib.contextmanager
def counted(engine, table: str):
    seen: list[str] = []

    def before(_conn, _cursor, statement, *_args):
        if f"FROM {table}" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _world(session):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    editor = add_member(session, org, "edward@example.com", "editor")
    session.commit()
    return org, editor


def test_who_is_acting_is_read_once_per_unit_of_work(session, engine):
    org, editor = _world(session)

    with counted(engine, "memberships") as reads:
        first = policy.actor_for(session=session, user=editor, org_id=org.id)
        again = policy.actor_for(session=session, user=editor, org_id=org.id)
        policy.target_for(session=session, org_id=org.id)
        policy.target_for(session=session, org_id=org.id)

    assert first == again and first.role == OrgRole.editor
    assert len(reads) == 1


def test_a_change_in_the_same_unit_of_work_is_seen_by_the_next_check(session, engine):
    org, editor = _world(session)
    assert policy.actor_for(session=session, user=editor, org_id=org.id).role == OrgRole.editor

    membership = session.exec(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == editor.id)
    ).one()
    membership.role = OrgRole.viewer.value
    session.add(membership)
    session.flush()

    assert policy.actor_for(session=session, user=editor, org_id=org.id).role == OrgRole.viewer


def test_a_statement_that_writes_or_the_end_of_the_transaction_forgets_what_was_read(
    session, engine
):
    org, _ = _world(session)
    assert policy.target_for(session=session, org_id=org.id).subscription_executable is True
    subscription = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
    subscription.plan_key, subscription.status = "starter", "canceled"
    session.add(subscription)
    session.commit()

    assert policy.target_for(session=session, org_id=org.id).subscription_executable is False
    assert plan_limits.org_plan(session=session, org_id=org.id).key == "starter"

    session.execute(
        text("UPDATE subscriptions SET plan_key = 'growth', status = 'active' WHERE org_id = :o"),
        {"o": org.id},
    )
    assert policy.target_for(session=session, org_id=org.id).subscription_executable is True
    assert plan_limits.org_plan(session=session, org_id=org.id).key == "growth"
