"""Competitor Intel on PostgreSQL: a report delivered twice runs once; the worker's completion,
the lease recovery and the 15-minute sweep racing each other move credits and the daily
report unit exactly once; concurrent requests never pass the Free plan's daily cap."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from core.clock import utcnow
from core.settings import reset_settings_cache
from models import CompetitorReport
from services import credits
from services.caps import Cap, DailyCapReached, cap_status
from services.generations import GenerationBlocked
from services.intel import reports, runner
from tests.conftest import requires_postgres
from tests.factories import make_org, make_projects, make_user
from tests.intel_site import competitor_site

pytestmark = [requires_postgres, pytest.mark.postgres]


@pytest.fixture
def site(monkeypatch):
    monkeypatch.setenv("INTEL_ALLOWED_HOSTS", "127.0.0.1")
    reset_settings_cache()
    with competitor_site() as running:
        yield running
    reset_settings_cache()


def _world(engine, plan: str = "growth"):
    owner = make_user(engine, f"owner-{plan}@rival-pg.test")
    org = make_org(engine, owner, name=f"Rival PG {plan}", plan_key=plan, credits=100_000)
    with Session(engine, expire_on_commit=False) as session:
        org = session.merge(org)
        org.billing_profile_added_at = utcnow()
        session.add(org)
        session.commit()
    (project,) = make_projects(engine, org, 1)
    return owner, org, project


def _start(engine, owner, org, project, site, key: str) -> int:
    with Session(engine, expire_on_commit=False) as session:
        report = reports.report_start(
            session=session,
            user=owner,
            org_id=org.id,
            request=reports.report_request_clean(
                competitor="Rival", urls=site.url("/"), project_id=project.id
            ),
            request_key=key,
        )
        session.commit()
        return report.id


def _balance(engine, org) -> int:
    with Session(engine) as session:
        return credits.balance_get(session=session, org_id=org.id).balance


def test_a_report_delivered_twice_runs_once(pg_engine, site):
    owner, org, project = _world(pg_engine)
    before = _balance(pg_engine, org)
    report_id = _start(pg_engine, owner, org, project, site, "twice-key-01")
    barrier = threading.Barrier(2)

    def deliver() -> str:
        barrier.wait()
        return runner.report_task(report_id)

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: deliver(), range(2)))
    assert outcomes == ["skipped", "succeeded"]
    assert _balance(pg_engine, org) == before - 5000
    with Session(pg_engine) as session:
        assert credits.ledger_sum(session=session, org_id=org.id) == _balance(pg_engine, org)


def test_sweep_and_recovery_racing_refund_and_give_back_once(pg_engine, site):
    owner, org, project = _world(pg_engine, plan="free")
    before = _balance(pg_engine, org)
    ids = [_start(pg_engine, owner, org, project, site, f"race-key-{i:03d}") for i in range(3)]
    for report_id in ids:
        with Session(pg_engine, expire_on_commit=False) as session:
            assert runner.report_mark_running(
                session=session, report_id=report_id, worker_id="dead:1", lease_seconds=5
            )
    later = utcnow() + timedelta(minutes=20)
    barrier = threading.Barrier(4)

    def sweep(kind: int):
        barrier.wait()
        if kind % 2:
            return runner.reports_sweep_stuck(now=later).timed_out
        return runner.reports_recover(now=later).lost

    with ThreadPoolExecutor(4) as pool:
        failed = sum(pool.map(sweep, range(4)))
    assert failed == 3
    assert _balance(pg_engine, org) == before
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.competitor_reports).used == 0
        statuses = session.exec(select(CompetitorReport.status)).all()
    assert statuses == ["failed"] * 3


def test_concurrent_requests_never_pass_the_daily_cap(pg_engine, site, monkeypatch):
    # Reports count toward the concurrent-runs limit too; room for six here, so the cap decides.
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "10")
    reset_settings_cache()
    owner, org, project = _world(pg_engine, plan="free")
    barrier = threading.Barrier(6)

    def request(index: int) -> str:
        barrier.wait()
        try:
            _start(pg_engine, owner, org, project, site, f"cap-race-{index:03d}")
            return "started"
        except DailyCapReached:
            return "refused"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(request, range(6)))
    assert outcomes.count("started") == 3 and outcomes.count("refused") == 3
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.competitor_reports).used == 3
        assert len(session.exec(select(CompetitorReport)).all()) == 3


def test_concurrent_requests_never_pass_the_concurrent_run_limit(pg_engine, site, monkeypatch):
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "2")
    reset_settings_cache()
    owner, org, project = _world(pg_engine)  # Growth: no daily cap, so the run limit decides
    barrier = threading.Barrier(5)

    def request(index: int) -> str:
        barrier.wait()
        try:
            _start(pg_engine, owner, org, project, site, f"slot-race-{index:03d}")
            return "started"
        except GenerationBlocked as refused:
            assert refused.code == "concurrent_run_limit"
            return "refused"

    with ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(request, range(5)))
    assert outcomes.count("started") == 2 and outcomes.count("refused") == 3
    with Session(pg_engine) as session:
        assert len(session.exec(select(CompetitorReport)).all()) == 2
