"""Two processes submitting one form token at once: one project is created, and the other
submit gets the first one's answer (PostgreSQL, real concurrent transactions)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from core.clock import utcnow
from models import FormSubmission, Project, User
from services import form_submissions, orgs
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres]


def _submit(engine, barrier, *, user_id: int, org_id: int, token: str) -> str:
    """What `OrgPageState._act` does for a tokened form, in a transaction of its own."""
    with Session(engine, expire_on_commit=False) as session:
        user = session.get(User, user_id)
        earlier = form_submissions.form_submission_find(
            session=session, user_id=user_id, purpose="project_create", token=token
        )
        if earlier is not None:
            return "replayed " + earlier
        barrier.wait()  # both have looked and found nothing: now both act
        try:
            name = orgs.project_create(
                session=session, actor=user, org_id=org_id, name="Launch"
            ).name
            form_submissions.form_submission_record(
                session=session, user_id=user_id, purpose="project_create", token=token,
                result=name,
            )  # fmt: skip
            session.commit()
            return "created " + name
        except IntegrityError:
            session.rollback()
    with Session(engine) as session:  # the winner's answer
        return "replayed " + str(
            form_submissions.form_submission_find(
                session=session, user_id=user_id, purpose="project_create", token=token
            )
        )


def test_one_token_submitted_twice_at_once_creates_one_project(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as session:
        owner = User(email="olivia@example.com", name="Olivia", email_verified_at=utcnow())
        session.add(owner)
        session.flush()
        org = orgs.org_create(session=session, owner=owner, name="Acme", plan_key="growth")
        session.commit()
        user_id, org_id = owner.id, org.id
    token = form_submissions.form_token_new()
    barrier = threading.Barrier(2, timeout=30)
    results: list = [None, None]

    def run(index: int) -> None:
        try:
            results[index] = _submit(
                pg_engine, barrier, user_id=user_id, org_id=org_id, token=token
            )
        except BaseException as error:  # noqa: BLE001 - shown by the assertion below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(str(r) for r in results) == ["created Launch", "replayed Launch"], results
    with Session(pg_engine) as session:
        projects = session.exec(
            select(func.count()).select_from(Project).where(Project.org_id == org_id)
        ).one()
        records = session.exec(select(func.count()).select_from(FormSubmission)).one()
    assert (projects, records) == (1, 1)
