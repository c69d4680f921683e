"""Verified domains and SSO settings on PostgreSQL: two organizations verifying one domain at the
same moment end with one owner of it; settings rows are created once under concurrent saves."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from models import OrgDomain, OrgSecurity, User
from services import domains, sso
from services.errors import DomainError
from tests.conftest import requires_postgres
from tests.factories import make_org, make_user

pytestmark = [requires_postgres, pytest.mark.postgres]


class _AlwaysPublished:
    """A resolver whose every TXT answer carries each claim's token (the DNS side is tested
    against a real server in tests/unit/test_domains.py; here only the race matters)."""

    def __init__(self, values: list[str]) -> None:
        self.values = values

    def resolve(self, *_args, **_kwargs):
        class Answer:
            rrset = [type("R", (), {"strings": [v.encode()]})() for v in self.values]

        return Answer()


def test_two_organizations_verifying_one_domain_at_once_end_with_one_owner(pg_engine):
    owners, claims = [], []
    for name in ("alpha", "beta"):
        owner = make_user(pg_engine, f"owner@{name}.test")
        org = make_org(pg_engine, owner, name.title(), slug=name)
        with Session(pg_engine, expire_on_commit=False) as session:
            claim = domains.domain_add(
                session=session, actor=owner, org_id=org.id, domain="contested.test"
            )
            session.commit()
        owners.append(owner)
        claims.append(claim)
    resolver = _AlwaysPublished([domains.txt_record_value(c.verification_token) for c in claims])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def verify(index: int) -> None:
        with Session(pg_engine) as session:
            barrier.wait(timeout=10)
            try:
                domains.domain_verify(
                    session=session,
                    actor=session.get(User, owners[index].id),
                    org_id=claims[index].org_id,
                    domain_id=claims[index].id,
                    resolver=resolver,
                )
                session.commit()
                outcomes.append("verified")
            except DomainError as error:
                session.rollback()
                outcomes.append(error.code)

    threads = [threading.Thread(target=verify, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["domain_taken", "verified"]
    with Session(pg_engine) as session:
        verified = session.exec(
            select(OrgDomain).where(OrgDomain.verified_at.is_not(None))  # type: ignore[union-attr]
        ).all()
    assert len(verified) == 1


def test_concurrent_first_saves_create_one_settings_row(pg_engine):
    owner = make_user(pg_engine, "owner@gamma.test")
    org = make_org(pg_engine, owner, "Gamma", slug="gamma")
    barrier = threading.Barrier(3)
    errors: list[Exception] = []

    def save() -> None:
        with Session(pg_engine) as session:
            barrier.wait(timeout=10)
            try:
                sso.require_2fa_set(
                    session=session,
                    actor=session.get(User, owner.id),
                    org_id=org.id,
                    required=False,
                )
                session.commit()
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

    threads = [threading.Thread(target=save) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with Session(pg_engine) as session:
        assert len(session.exec(select(OrgSecurity)).all()) == 1


def _both_schedulers_at_once(engine, resolver) -> list[domains.RecheckResult]:
    barrier = threading.Barrier(2)
    results: list[domains.RecheckResult] = []

    def scheduler() -> None:
        barrier.wait()
        with Session(engine, expire_on_commit=False) as session:
            results.append(domains.domains_recheck_due(session=session, resolver=resolver))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_schedulers_rechecking_at_once_count_each_failed_check_once(pg_engine, monkeypatch):
    """Both schedulers run the re-check job at the same moment over the same verified domains:
    each domain is checked by one of them, and its missing record counts once."""
    from datetime import timedelta

    from core import clock
    from core.settings import reset_settings_cache

    monkeypatch.setenv("DOMAIN_RECHECK_FAILURES", "2")
    reset_settings_cache()
    owner = make_user(pg_engine, "olivia@recheck.test")
    org = make_org(pg_engine, owner, "Recheck Corp", slug="recheck-corp")
    start = clock.utcnow()
    with Session(pg_engine) as session:
        for index in range(6):
            session.add(
                OrgDomain(
                    org_id=org.id,
                    domain=f"d{index}.recheck.test",
                    verification_token=f"t{index}",
                    verified_at=start - timedelta(days=1),
                )
            )
        session.commit()
    gone = _AlwaysPublished([])  # every record has disappeared
    for attempt, moment in enumerate((start, start + domains.RECHECK_INTERVAL * 2), start=1):
        clock.freeze(moment)
        results = _both_schedulers_at_once(pg_engine, gone)
        assert sum(r.checked for r in results) == 6  # each domain once, whoever claimed it
        with Session(pg_engine) as session:
            rows = session.exec(select(OrgDomain)).all()
            assert {row.recheck_failures for row in rows} == {attempt}
    assert all(row.verified_at is None and row.unverified_at is not None for row in rows)
    assert sorted(name for r in results for name in r.unverified) == sorted(r.domain for r in rows)
    clock.freeze(None)
    reset_settings_cache()
